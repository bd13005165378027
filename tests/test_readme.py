"""Every snippet of README.md works as written, run as a new user runs it: from a fresh directory, twice.

A ``python`` block is saved as a script and run; a ``bash`` block is run by bash; both in a
directory that holds only a copy of ``examples/`` (what a checkout has; the snippets import their
module and data from it). The README runs section by section, one test per group of sections (the
blocks under one heading, in README order, so later blocks find what earlier ones made), each in a
fresh directory of its own, so that pytest-xdist workers share the run. A section whose blocks read
what another section made (its study, its files) is listed in :data:`READS_FROM` and runs in the same
group, after that section. Each group then runs a second time in the same directory, where every
study must resume rather than start over.

Budgets shrink, nothing else does: each ``n_trials`` / ``--n-trials`` above 4 becomes 4, each
``max_epochs`` / ``--max-epochs`` above 2 becomes 2, and ``n_jobs`` above 2 becomes 2 (the cores of a
small CI machine), in the snippets, in the copied YAML files and in the defaults of the copied example
scripts' options (``"--max-epochs", type=int, default=15``: a snippet that leaves it out trains 2 epochs).

A block that starts with a comment naming a file of the repository (``# examples/cli_digits.py``)
is an excerpt of that file, checked against it. A block that cannot run here (placeholders such as
``train.py``, a cluster, the network) says so with ``<!-- not-run: reason -->`` on the line above it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

_FENCE = re.compile(r"^```(?P<language>\w*)\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
_MARKER = re.compile(r"<!--\s*not-run\b(?P<rest>.*?)-->", re.DOTALL)
_REASON = re.compile(r":\s*(?P<reason>\S.*?)\s*", re.DOTALL)
_HEADING = re.compile(r"^#{1,6} +(?P<title>.+?) *$", re.MULTILINE)
_EXCERPT = re.compile(r"# (?P<path>[\w./-]+\.\w+)\b")
_BUDGET = re.compile(
    r"\b(?P<key>n_trials|n-trials|max_epochs|max-epochs|n_jobs)(?P<sep>\"?\s*[:=]\s*|\s+|\", type=int, default=)(?P<value>\d+)"
)
_CAPS = {"n_trials": 4, "n-trials": 4, "max_epochs": 2, "max-epochs": 2, "n_jobs": 2}
RUNNABLE = ("python", "bash")
#: Section -> the section whose studies or files its blocks read; both run in one test, in README order.
READS_FROM = {
    "Look at studies from the shell: `lightning-hpo`": "A `tune` subcommand for your LightningCLI script",
    "Plots": "A `tune` subcommand for your LightningCLI script",
    "Analysing a finished study": "Any objective: the Study",
}
#: Studies whose blocks add trials by hand (the Study section's ask/tell), beyond the capped n_trials.
TOLD_BY_HAND = {"quadratic": 1}
CAPPED_TRIALS = 4
#: What a group may write next to examples/: defaults write under lightning_hpo_runs/ only; the rest
#: is what the README's commands name.
MAY_WRITE = {"examples", "lightning_hpo_runs", "lightning_logs", "best.yaml", "trials.csv", "plots"}


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    code: str
    not_run: str | None  # the reason, when marked <!-- not-run: reason -->
    section: str = ""  # the title of the nearest heading above it

    @property
    def excerpt_of(self) -> Path | None:
        """The repository file this block quotes, when its first line is a comment naming one."""
        first = self.code.split("\n", 1)[0]
        match = _EXCERPT.match(first)
        return REPO / match["path"] if match and (REPO / match["path"]).is_file() else None

    @property
    def runs(self) -> bool:
        return self.language in RUNNABLE and self.not_run is None and self.excerpt_of is None

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language})"


def readme_blocks(text: str) -> list[Block]:
    blocks, section, end = [], "", 0
    for match in _FENCE.finditer(text):
        for heading in _HEADING.finditer(text, end, match.start()):  # headings outside code blocks only
            section = heading["title"]
        end = match.end()
        preceding = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        marker = _MARKER.fullmatch(preceding)
        reason = None
        if marker:
            given = _REASON.fullmatch(marker["rest"])
            reason = given["reason"] if given else ""
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(line, match["language"], match["code"], reason, section))
    return blocks


def small_budget(text: str) -> str:
    def cap(match: re.Match[str]) -> str:
        value = min(int(match["value"]), _CAPS[match["key"]])
        return f"{match['key']}{match['sep']}{value}"

    return _BUDGET.sub(cap, text)


def run_groups(blocks: list[Block]) -> dict[str, list[Block]]:
    """The runnable blocks in groups that run independently, in README order: a section, with the
    sections that read from it (:data:`READS_FROM`), named by the section they read from."""
    groups: dict[str, list[Block]] = {}
    for block in blocks:
        if block.runs:
            groups.setdefault(_read_from(block.section), []).append(block)
    return groups


def _read_from(section: str) -> str:
    while section in READS_FROM:
        section = READS_FROM[section]
    return section


def processes(blocks: list[Block]) -> int:
    """About the processes a group starts: one per python block, one per command of a bash block."""
    commands = [line for b in blocks if b.language == "bash" for line in b.code.splitlines()]
    return sum(b.language == "python" for b in blocks) + sum(
        bool(c.strip()) and not c.startswith("#") for c in commands
    )


BLOCKS = readme_blocks(README.read_text())
GROUPS = run_groups(BLOCKS)


# -- what the README holds (fast) ---------------------------------------------------------


def test_every_block_runs_is_an_excerpt_or_says_why_not():
    for block in BLOCKS:
        if block.not_run is not None:
            assert block.not_run, f"{block}: `<!-- not-run -->` needs a reason: `<!-- not-run: why -->`"
            assert block.language in RUNNABLE, f"{block}: only python and bash blocks are run, so none to skip"
        else:
            assert block.language in RUNNABLE or block.excerpt_of, (
                f"{block}: a {block.language or 'plain'} block must quote a repository file, first line "
                "`# path/of/the/file`"
            )
    assert sum(block.runs for block in BLOCKS) >= 10


def test_every_runnable_block_runs_in_exactly_one_group():
    grouped = [block for blocks in GROUPS.values() for block in blocks]
    assert sorted(grouped, key=lambda b: b.line) == [block for block in BLOCKS if block.runs]
    assert len(GROUPS) >= 8, "the README runs in groups of sections that pytest-xdist workers share"


def test_sections_named_in_reads_from_exist_and_the_read_one_comes_first():
    """A renamed heading must not silently split a section from the one it reads."""
    first_line = {}
    for block in BLOCKS:
        if block.runs:
            first_line.setdefault(block.section, block.line)
    for reader, source in READS_FROM.items():
        assert reader in first_line and source in first_line, f"READS_FROM names no section with blocks: {reader!r}"
        assert first_line[source] < first_line[reader], f"{source!r} must come before {reader!r} in README.md"


def test_sections_and_groups_are_read_from_the_headings_outside_code():
    text = "# Top\n\n## A\n```bash\n# not a heading\necho a\n```\n```python\nx = 1\n```\n### B\n```bash\necho b\n```\n"
    blocks = readme_blocks(text)
    assert [b.section for b in blocks] == ["A", "A", "B"]
    assert {name: [b.line for b in group] for name, group in run_groups(blocks).items()} == {"A": [4, 8], "B": [12]}
    assert processes(blocks) == 3


def test_every_not_run_marker_sits_on_the_line_above_a_block():
    markers = _MARKER.findall(README.read_text())
    assert len(markers) == sum(block.not_run is not None for block in BLOCKS)


@pytest.mark.parametrize(
    "marker, reason",
    [("<!-- not-run: needs two nodes -->", "needs two nodes"), ("<!-- not-run -->", ""), ("<!-- not-run: -->", "")],
)
def test_markers_are_read_with_their_reason(marker, reason):
    (block,) = readme_blocks(f"Text.\n\n{marker}\n```bash\ntorchrun x.py\n```\n")
    assert block.not_run == reason and not block.runs


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.excerpt_of], ids=str)
def test_excerpts_match_their_files(block):
    quoted = block.code.split("\n", 1)[1]
    assert quoted in block.excerpt_of.read_text(), f"{block} no longer matches {block.excerpt_of.relative_to(REPO)}"


def test_paths_under_lightning_hpo_are_the_package_never_a_run_directory():
    """The default directory is lightning_hpo_runs/: a lightning_hpo/ folder would shadow the package."""
    for match in re.finditer(r"\blightning_hpo/(?P<rest>[^\s`)]+)", README.read_text()):
        assert (REPO / "lightning_hpo" / match["rest"]).exists(), f"`{match[0]}` in README.md is no package file"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("tuner.fit(n_trials=30)", "tuner.fit(n_trials=4)"),
        ('trainer_kwargs={"max_epochs": 15}', 'trainer_kwargs={"max_epochs": 2}'),
        ("x.py --n-trials 20 --max-epochs 1", "x.py --n-trials 4 --max-epochs 1"),
        ("--tune.n_trials 50", "--tune.n_trials 4"),
        ("n_trials: 30\n  max_epochs: 15", "n_trials: 4\n  max_epochs: 2"),
        ("n_trials=3, hidden=Int(16, 256)", "n_trials=3, hidden=Int(16, 256)"),
        ("n_jobs=4,", "n_jobs=2,"),
        ('add_argument("--max-epochs", type=int, default=15)', 'add_argument("--max-epochs", type=int, default=2)'),
    ],
)
def test_small_budget_changes_budgets_only(text, expected):
    assert small_budget(text) == expected


# -- running it (slow) --------------------------------------------------------------------


def fresh_directory(tmp_path: Path) -> Path:
    """A directory as a checkout is for the README: examples/ and nothing else, budgets made small."""
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    for source in [*(tmp_path / "examples").glob("*.yaml"), *(tmp_path / "examples").glob("*.py")]:
        source.write_text(small_budget(source.read_text()))
    return tmp_path


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> None:
    code = small_budget(block.code)
    if block.language == "python":
        script = cwd / f"readme_line_{block.line}.py"
        script.write_text(code)
        command = [sys.executable, script.name]
    else:
        command = ["bash", "-euo", "pipefail", "-c", code]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"{block} failed (exit {done.returncode}):\n{code}\n--- stdout ---\n{done.stdout[-2000:]}"
        f"\n--- stderr ---\n{done.stderr[-4000:]}"
    )


def finished_trials(cwd: Path) -> dict[str, int]:
    """Study name -> its COMPLETE and PRUNED trials, in the default storage; no trial may have failed."""
    from lightning_hpo.storage import DEFAULT_DB_NAME, DEFAULT_ROOT_DIR, open_storage
    from lightning_hpo.trial import TrialState

    storage = open_storage(cwd / DEFAULT_ROOT_DIR / DEFAULT_DB_NAME)
    try:
        counts = {}
        for study in storage.list_studies():
            trials = storage.get_trials(study.id)
            failed = [t for t in trials if t.state is TrialState.FAIL]
            assert not failed, f"study {study.name!r}: trial {failed[0].number} failed: {failed[0].error}"
            counts[study.name] = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        return counts
    finally:
        storage.close()


def _group_test(name: str, blocks: list[Block]) -> object:
    """One README group as a pytest parameter, marked with the processes it starts (conftest runs the
    longest first)."""
    return pytest.param(
        blocks, id=re.sub(r"\W+", "-", name).strip("-").lower(), marks=pytest.mark.longest(processes(blocks))
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)  # up to a dozen Lightning processes; shared CI machines are slow to start them
@pytest.mark.parametrize("blocks", [_group_test(name, blocks) for name, blocks in GROUPS.items()])
def test_readme_runs_as_written_from_a_fresh_directory_and_resumes_when_rerun(tmp_path, blocks):
    cwd = fresh_directory(tmp_path)
    bin_dir = str(Path(sys.executable).parent)  # python, lightning-hpo and torchrun as the venv has them
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1"}

    for block in blocks:
        run_block(block, cwd, env)
    first = finished_trials(cwd)
    for block in blocks:
        run_block(block, cwd, env)
    second = finished_trials(cwd)

    # Every study reached its (capped) n_trials, plus the trials its blocks tell by hand at each run.
    assert first == {name: CAPPED_TRIALS + TOLD_BY_HAND.get(name, 0) for name in first}, first
    expected = {name: n + TOLD_BY_HAND.get(name, 0) for name, n in first.items()}
    assert second == expected, "the second run must resume each study, not add trials"
    written = {p.name for p in cwd.iterdir() if not p.name.startswith("readme_line_")}
    assert written <= MAY_WRITE, f"the README's blocks wrote {sorted(written - MAY_WRITE)} next to examples/"
