# Source this file: it installs Debian's Chromium if needed and exports LIGHTNING_HPO_TEST_CHROMIUM,
# the browser the dashboard's Playwright tests drive (Playwright's own browser download is not used).
# It fails loudly (non-zero status) when it cannot: the browser tests must run, never skip.

_hpo_chromium_setup() {
    local as_root=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "chromium.sh: need root or sudo to install Chromium" >&2; return 1; }
        as_root="sudo"
    fi
    if ! command -v chromium >/dev/null 2>&1; then
        echo "chromium.sh: installing Chromium from Debian packages" >&2
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || return 1
    fi
    local path
    path=$(command -v chromium) || { echo "chromium.sh: chromium is not on PATH after installing it" >&2; return 1; }
    "$path" --version >/dev/null 2>&1 || { echo "chromium.sh: $path does not start" >&2; return 1; }
    export LIGHTNING_HPO_TEST_CHROMIUM="$path"
    echo "chromium.sh: $("$path" --version) at $LIGHTNING_HPO_TEST_CHROMIUM" >&2
}

_hpo_chromium_setup || { echo "chromium.sh: FAILED to provide Chromium for the browser tests" >&2; return 1 2>/dev/null || exit 1; }
