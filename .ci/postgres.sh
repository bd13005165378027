# Source this file: it installs PostgreSQL from Debian's packages if needed, starts a local server,
# creates the role and database the tests use, and exports LIGHTNING_HPO_TEST_POSTGRES_URL.
# It fails loudly (non-zero status) when it cannot: the PostgreSQL tests must run, never skip.

_hpo_pg_setup() {
    local as_root=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "postgres.sh: need root or sudo to install/start PostgreSQL" >&2; return 1; }
        as_root="sudo"
    fi
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        echo "postgres.sh: installing PostgreSQL from Debian packages" >&2
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || return 1
    fi
    local version
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version main"; then
        $as_root pg_createcluster "$version" main >/dev/null || return 1
    fi
    if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -qx online; then
        $as_root pg_ctlcluster "$version" main start || return 1
    fi
    local port
    port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p "$port" && break
        sleep 0.5
    done
    pg_isready -q -h 127.0.0.1 -p "$port" || { echo "postgres.sh: server did not come up on port $port" >&2; return 1; }
    local psql_admin="$as_root -u postgres psql -p $port -v ON_ERROR_STOP=1 -qtA"
    [ "$(id -u)" = 0 ] && psql_admin="runuser -u postgres -- psql -p $port -v ON_ERROR_STOP=1 -qtA"
    if [ "$($psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname='hpo'")" != 1 ]; then
        $psql_admin -c "CREATE USER hpo PASSWORD 'hpo' SUPERUSER;" || return 1
    fi
    if [ "$($psql_admin -c "SELECT 1 FROM pg_database WHERE datname='hpo'")" != 1 ]; then
        $psql_admin -c "CREATE DATABASE hpo OWNER hpo;" || return 1
    fi
    export LIGHTNING_HPO_TEST_POSTGRES_URL="postgresql+psycopg://hpo:hpo@127.0.0.1:$port/hpo"
    echo "postgres.sh: PostgreSQL $version ready at $LIGHTNING_HPO_TEST_POSTGRES_URL" >&2
}

_hpo_pg_setup || { echo "postgres.sh: FAILED to provide PostgreSQL for the tests" >&2; return 1 2>/dev/null || exit 1; }
