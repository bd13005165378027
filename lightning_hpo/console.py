"""The ``lightning-hpo`` console script: look at studies from the shell.

    lightning-hpo studies --storage sqlite:///lightning_hpo/studies.db
    lightning-hpo trials  --storage sqlite:///lightning_hpo/studies.db --study digits_mlp

Kept light: ``lightning-hpo --help`` imports neither torch nor Lightning.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lightning_hpo.exceptions import LightningHPOError, StorageError
from lightning_hpo.space import SearchSpace
from lightning_hpo.storage import DEFAULT_DB_NAME, Storage, open_storage
from lightning_hpo.trial import Trial, TrialState

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["main"]

DEFAULT_STORAGE = str(Path("lightning_hpo") / DEFAULT_DB_NAME)


def _open_existing(url: str) -> Storage:
    """Open a storage for reading; a SQLite file that does not exist is an error, not a new database."""
    path = None
    if "://" not in url and url != ":memory:":
        path = Path(url)
    elif url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
    if path is not None and not path.exists():
        raise StorageError(f"There is no database at {str(path)!r}; pass --storage with the URL or file of your study.")
    return open_storage(url)


def _best(trials: Sequence[Trial], directions: Sequence[str]) -> Trial | None:
    completed = [t for t in trials if t.state is TrialState.COMPLETE and t.values]
    if not completed or len(directions) != 1:
        return None
    sign = 1.0 if directions[0] == "min" else -1.0
    return min(completed, key=lambda t: (sign * t.values[0], t.number))


def _value_text(trial: Trial) -> str:
    from lightning_hpo.progress import format_value

    return ", ".join(format_value(v) for v in trial.values) if trial.values else "-"


def _console() -> Console:
    """Tables keep their width when piped to a file, where rich would squeeze them to 80 columns."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def _cmd_studies(args: argparse.Namespace) -> int:
    from rich.table import Table

    storage = _open_existing(args.storage)
    table = Table(title=f"Studies in {storage.display_url}")
    for column in ("study", "mode", "trials", "complete", "pruned", "failed", "running", "best", "created (UTC)"):
        table.add_column(column, justify="right" if column not in ("study", "mode") else "left")
    for study in storage.list_studies():
        trials = storage.get_trials(study.id)
        count = {state: sum(t.state is state for t in trials) for state in TrialState}
        best = _best(trials, study.directions)
        table.add_row(
            study.name,
            "/".join(study.directions),
            str(len(trials)),
            str(count[TrialState.COMPLETE]),
            str(count[TrialState.PRUNED]),
            str(count[TrialState.FAIL]),
            str(count[TrialState.RUNNING]),
            _value_text(best) if best else "-",
            study.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    _console().print(table)
    return 0


def _cmd_trials(args: argparse.Namespace) -> int:
    from rich.table import Table

    from lightning_hpo.progress import format_value

    storage = _open_existing(args.storage)
    study = storage.get_study(args.study)
    space = SearchSpace.from_json(study.space)
    trials = storage.get_trials(study.id, None if args.state is None else [TrialState(args.state)])
    table = Table(title=f"Trials of {study.name!r} ({'/'.join(study.directions)}) in {storage.display_url}")
    for column in ("#", "state", "value", *space.names, "steps", "seconds", "note"):
        table.add_column(column, justify="right" if column not in ("state", "note") else "left")
    styles = {TrialState.COMPLETE: "green", TrialState.PRUNED: "yellow", TrialState.FAIL: "red", TrialState.RUNNING: "cyan"}
    for trial in trials:
        params = space.from_stored(trial.params)
        note = ""
        if trial.state is TrialState.FAIL and trial.error:
            note = trial.error.strip().splitlines()[-1][:80]
        elif trial.state is TrialState.PRUNED:
            note = f"pruned at step {trial.attrs.get('pruned_step', trial.last_step)}"
        table.add_row(
            str(trial.number),
            f"[{styles[trial.state]}]{trial.state}[/]",
            _value_text(trial),
            *(format_value(params[n]) if isinstance(params.get(n), float) else str(params.get(n, "-")) for n in space.names),
            str(len(trial.intermediate_values)),
            f"{trial.duration:.1f}" if trial.duration is not None else "-",
            note,
        )
    _console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-hpo", description="Inspect lightning_hpo studies.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, needs_study: bool) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--storage",
            default=DEFAULT_STORAGE,
            help=f"database URL or SQLite file (default: {DEFAULT_STORAGE})",
        )
        if needs_study:
            sub.add_argument("--study", required=True, help="the study's name")
        return sub

    add("studies", "List the studies in a storage, with trial counts and best values.", False).set_defaults(
        run=_cmd_studies
    )
    trials = add("trials", "List the trials of a study.", True)
    trials.add_argument("--state", choices=[s.value for s in TrialState], help="only trials in this state")
    trials.set_defaults(run=_cmd_trials)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except LightningHPOError as error:
        print(f"lightning-hpo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
