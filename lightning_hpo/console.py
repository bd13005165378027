"""The ``lightning-hpo`` console script: look at studies from the shell.

    lightning-hpo studies --storage lightning_hpo_runs/studies.db
    lightning-hpo trials  --storage lightning_hpo_runs/studies.db --study digits_mlp
    lightning-hpo best    --storage lightning_hpo_runs/studies.db --study digits_mlp
    lightning-hpo export  --storage lightning_hpo_runs/studies.db --study digits_mlp --output best.yaml
    lightning-hpo export  --storage lightning_hpo_runs/studies.db --study digits_mlp --format csv --out trials.csv
    lightning-hpo plot    --storage lightning_hpo_runs/studies.db --study digits_mlp --out plots/
    lightning-hpo dashboard --storage lightning_hpo_runs/studies.db   (a live web view; extra [dashboard])

``--study`` may be left out when the storage holds one study. Kept light: ``lightning-hpo --help``
imports neither torch nor Lightning.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_hpo import __version__
from lightning_hpo._constraints import infeasibility_note
from lightning_hpo._text import count_of
from lightning_hpo.exceptions import LightningHPOError, StorageError, StudyNotFoundError
from lightning_hpo.progress import format_value
from lightning_hpo.snapshot import StudySnapshot
from lightning_hpo.storage import DEFAULT_DB_NAME, DEFAULT_ROOT_DIR, Storage, StudyRecord, open_storage
from lightning_hpo.trial import ENQUEUED, PRUNED_STEP, RETRY_OF, WARM_START_FROM, Trial, TrialState

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["main"]

#: ``--storage`` when none is given: the default storage of the Tuner, the Study and ``tune``.
DEFAULT_STORAGE = str(Path(DEFAULT_ROOT_DIR) / DEFAULT_DB_NAME)


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


def _study(storage: Storage, name: str | None) -> StudyRecord:
    """The study called ``name``, or the only study of the storage when ``name`` is None."""
    if name is not None:
        return storage.get_study(name)  # its error lists the studies that exist
    studies = storage.list_studies()
    if len(studies) == 1:
        return studies[0]
    if not studies:
        raise StudyNotFoundError(f"{storage.display_url} holds no studies.")
    names = ", ".join(repr(s.name) for s in studies)
    raise StudyNotFoundError(
        f"{storage.display_url} holds {len(studies)} studies, so pass --study NAME; they are: {names}."
    )


def _snapshot(storage: Storage, name: str | None) -> StudySnapshot:
    """The trials of the study called ``name`` (or of the only study), parameters decoded."""
    return StudySnapshot.load(storage, _study(storage, name).name)


def _value_text(trial: Trial) -> str:
    return ", ".join(format_value(v) for v in trial.values) if trial.values else "-"


def _param_text(value: Any) -> str:
    return format_value(value) if isinstance(value, float) else str(value)


def _best_text(snapshot: StudySnapshot) -> str:
    """The best value, or the size of the Pareto front of a study with several objectives."""
    if len(snapshot.directions) > 1:
        front = snapshot.best_trials
        return f"{count_of(len(front), 'trial')} on the Pareto front" if front else "-"
    best = snapshot.best_trial
    return _value_text(best) if best is not None else "-"


def _outcome_note(trial: Trial) -> str:
    """Why a trial ended as it did: a failure's exception line, a pruned trial's step; else ``""``."""
    if trial.state is TrialState.FAIL and trial.error:
        kind = f"({trial.fail_kind}) " if trial.fail_kind not in (None, "error") else ""  # an exception says itself
        return kind + trial.error.strip().splitlines()[-1][:80]
    if trial.state is TrialState.PRUNED:
        return f"pruned at step {trial.attrs.get(PRUNED_STEP, trial.last_step)}"
    return infeasibility_note(trial)


def _origin_note(trial: Trial) -> str:
    """Where a trial came from when the sampler did not suggest it: enqueued, imported, or a retry; else ``""``."""
    if ENQUEUED in trial.attrs:
        return "enqueued"
    if WARM_START_FROM in trial.attrs:
        return f"imported from {trial.attrs[WARM_START_FROM]}"
    if RETRY_OF in trial.attrs:
        return f"retry of {trial.attrs[RETRY_OF]}"
    return ""


def _logs_text(trial: Trial) -> str:
    """Where a trial's logs are (relative to the working directory when inside it) and its tracker runs."""
    from lightning_hpo.export import logs_of, tracker_runs_of

    logs = logs_of(trial)
    if logs is not None and Path(logs).is_relative_to(Path.cwd()):
        logs = os.path.relpath(logs)
    return "\n".join([logs or "-", *tracker_runs_of(trial)])


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
        snapshot = StudySnapshot.load(storage, study.name)
        count = {state: sum(t.state is state for t in snapshot.trials) for state in TrialState}
        table.add_row(
            study.name,
            "/".join(study.directions),
            str(len(snapshot.trials)),
            str(count[TrialState.COMPLETE]),
            str(count[TrialState.PRUNED]),
            str(count[TrialState.FAIL]),
            str(count[TrialState.RUNNING]),
            _best_text(snapshot),
            study.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    _console().print(table)
    return 0


def _cmd_trials(args: argparse.Namespace) -> int:
    from rich.table import Table

    storage = _open_existing(args.storage)
    snapshot = _snapshot(storage, args.study)
    names = snapshot.space.names
    trials = [t for t in snapshot.trials if args.state is None or t.state is TrialState(args.state)]
    table = Table(title=f"Trials of {snapshot.name!r} ({'/'.join(snapshot.directions)}) in {storage.display_url}")
    for column in ("#", "state", "value", *names, "last step", "seconds", "note", "logs"):
        table.add_column(column, justify="right" if column not in ("state", "note", "logs") else "left")
    styles = {
        TrialState.COMPLETE: "green",
        TrialState.PRUNED: "yellow",
        TrialState.FAIL: "red",
        TrialState.RUNNING: "cyan",
    }
    for trial in trials:
        table.add_row(
            str(trial.number),
            f"[{styles[trial.state]}]{trial.state}[/]",
            _value_text(trial),
            *(_param_text(trial.params[n]) if n in trial.params else "-" for n in names),
            str(trial.last_step) if trial.last_step is not None else "-",
            f"{trial.duration:.1f}" if trial.duration is not None else "-",
            "; ".join(note for note in (_origin_note(trial), _outcome_note(trial)) if note),
            _logs_text(trial),
        )
    _console().print(table)
    return 0


def _chosen_trial(snapshot: StudySnapshot, number: int | None = None) -> Trial:
    """Trial ``number`` of the study, or its best COMPLETE trial."""
    if number is not None:
        for trial in snapshot.trials:
            if trial.number == number:
                return trial
        raise LightningHPOError(
            f"Study {snapshot.name!r} has no trial {number} (it has {count_of(len(snapshot.trials), 'trial')}, from 0)."
        )
    if len(snapshot.directions) != 1:
        raise LightningHPOError(
            f"Study {snapshot.name!r} has {len(snapshot.directions)} objectives, so no single best trial; "
            "`lightning-hpo best` shows its Pareto front, and `export --trial N` exports one trial."
        )
    best = snapshot.best_trial
    if best is None:
        feasible = " that satisfies its constraints" if any(not t.feasible for t in snapshot.trials) else ""
        raise LightningHPOError(
            f"Study {snapshot.name!r} has no COMPLETE trial{feasible} yet, so it has no best trial."
        )
    return best


def _cmd_best(args: argparse.Namespace) -> int:
    from rich.table import Table

    from lightning_hpo.export import CONFIG_ATTR, logs_of, tracker_runs_of

    storage = _open_existing(args.storage)
    snapshot = _snapshot(storage, args.study)
    export = f"lightning-hpo export --storage {shlex.quote(args.storage)} --study {shlex.quote(snapshot.name)}"
    if len(snapshot.directions) > 1:
        return _print_pareto_front(snapshot, storage.display_url, export)
    trial = _chosen_trial(snapshot)
    table = Table(
        title=f"Best trial of {snapshot.name!r} ({snapshot.directions[0]}) in {storage.display_url}", show_header=False
    )
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("trial", str(trial.number))
    table.add_row("value", _value_text(trial))
    for name, value in trial.params.items():
        table.add_row(name, format_value(value) if isinstance(value, float) else repr(value))
    if trial.metrics:  # what its outcome constraints were checked on
        table.add_row("metrics", ", ".join(f"{n}={_param_text(v)}" for n, v in sorted(trial.metrics.items())))
    table.add_row("seconds", f"{trial.duration:.1f}" if trial.duration is not None else "-")
    table.add_row("checkpoint", trial.checkpoint_path or "-")
    table.add_row("logs", logs_of(trial) or "-")
    for run in tracker_runs_of(trial):
        table.add_row("tracker run", run)
    console = _console()
    console.print(table)
    if trial.attrs.get(CONFIG_ATTR) is not None:
        console.print(f"Its full fit config is stored: {export} --output best.yaml", soft_wrap=True)
    return 0


def _print_pareto_front(snapshot: StudySnapshot, display_url: str, export: str) -> int:
    """The trials no other trial beats in every objective: a multi-objective study's best trials."""
    from rich.table import Table

    front = snapshot.best_trials
    if not front:
        raise LightningHPOError(f"Study {snapshot.name!r} has no COMPLETE trial yet, so it has no Pareto front.")
    table = Table(
        title=f"Pareto front of {snapshot.name!r} ({'/'.join(snapshot.directions)}) in {display_url}: "
        f"{count_of(len(front), 'trial')}"
    )
    objectives = [snapshot.objective_label(i) for i in range(len(snapshot.directions))]
    for column in ("#", *objectives, *snapshot.space.names):
        table.add_column(column, justify="right")
    for trial in front:
        table.add_row(
            str(trial.number),
            *(format_value(v) for v in trial.values),
            *(_param_text(trial.params[n]) if n in trial.params else "-" for n in snapshot.space.names),
        )
    console = _console()
    console.print(table)
    console.print(f"Export one: {export} --trial N", soft_wrap=True)
    return 0


#: What ``--format`` an ``--output`` file's suffix implies.
_FORMAT_OF_SUFFIX = {".json": "json", ".csv": "csv", ".yaml": "yaml", ".yml": "yaml"}


def _cmd_export(args: argparse.Namespace) -> int:
    fmt = args.format or _FORMAT_OF_SUFFIX.get(Path(args.output or "").suffix.lower())
    if args.all or fmt == "csv":
        return _export_table(args, fmt or "csv")
    return _export_trial(args, fmt or "yaml")


def _export_table(args: argparse.Namespace, fmt: str) -> int:
    """Every trial of the study, one row each: ``--all``, or ``--format csv`` (CSV is only ever the table)."""
    from lightning_hpo.table import TrialTable

    one_trial = [
        flag
        for flag, given in (("--trial", args.trial is not None), ("--params", args.params), ("--force", args.force))
        if given
    ]
    if one_trial:
        raise LightningHPOError(
            f"The table of every trial (--all or --format csv) takes no {' / '.join(one_trial)}, which choose what "
            "to export of one trial: drop them, or leave out --all to export one trial as YAML or JSON."
        )
    if fmt not in ("csv", "json"):
        raise LightningHPOError(
            f"The table of every trial (--all) is written as CSV or JSON, not {fmt.upper()}: "
            "pass --format csv or --format json."
        )
    snapshot = _snapshot(_open_existing(args.storage), args.study)
    table = TrialTable.of(snapshot)
    if fmt == "csv":
        buffer = io.StringIO()
        table.to_csv(buffer)
        text = buffer.getvalue()
    else:
        text = table.to_json()
    if _write_output(args.output, text):
        rows = count_of(len(table.rows), "trial")
        print(f"Wrote {args.output} ({rows} of study {snapshot.name!r}, one row each, {fmt.upper()}).")
    return 0


def _export_trial(args: argparse.Namespace, fmt: str) -> int:
    """One trial (the best, or ``--trial N``): its full fit config when stored, else its parameters."""
    from lightning_hpo.export import describe, export_trial, retrain_command

    storage = _open_existing(args.storage)
    snapshot = _snapshot(storage, args.study)
    trial = _chosen_trial(snapshot, args.trial)
    unfinished = ""
    if trial.state is not TrialState.COMPLETE:
        note = _outcome_note(trial)
        unfinished = f"did not complete ({trial.state}{': ' + note if note else ''})"
        if not args.force:
            raise LightningHPOError(
                f"Trial {trial.number} of study {snapshot.name!r} {unfinished}, so it has no result to export. "
                "Pass --force to export its parameters anyway."
            )
        print(
            f"lightning-hpo: warning: trial {trial.number} of study {snapshot.name!r} {unfinished}; "
            "exporting its parameters anyway (--force).",
            file=sys.stderr,
        )
    what = "Best trial" if args.trial is None else "Trial"
    to_file = args.output not in (None, "-")
    command = retrain_command(trial, args.output if to_file else "<this file>") if not args.params else None
    header = (
        f"{what}: {describe(trial, snapshot.name)}"
        + (f"; it {unfinished}" if unfinished else "")
        + "."
        + (f"\nRetrain it: {command}" if command else "")
    )
    text = export_trial(trial, fmt, params_only=args.params, header=header)
    if _write_output(args.output, text):
        print(f"Wrote {args.output} ({describe(trial, snapshot.name)}).")
        if command:
            print(f"Retrain it with: {command}")
    return 0


def _write_output(output: str | None, text: str) -> bool:
    """Write ``text`` to the file ``output`` and return True, or to standard output (no ``output``, or ``-``).

    The file is written whole under a temporary name, then renamed over ``output``: an interrupted
    export never leaves half a file, nor destroys the one it replaces.
    """
    if output in (None, "-"):
        sys.stdout.write(text)
        return False
    path = Path(output)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8", newline="")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise LightningHPOError(f"Cannot write {output!r}: {error.strerror or error}.") from None
    return True


def _cmd_plot(args: argparse.Namespace) -> int:
    from lightning_hpo.plots import save_plots

    storage = _open_existing(args.storage)
    snapshot = _snapshot(storage, args.study)
    written, skipped = save_plots(snapshot, args.out, objective=args.objective)
    for path in written:
        print(path)
    for file_name, reason in skipped.items():
        print(f"skipped {file_name}: {reason}", file=sys.stderr)
    return 0 if written else 1


def _cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        from lightning_hpo.dashboard import serve
    except ImportError as error:
        raise LightningHPOError(
            f"The dashboard needs the `dashboard` extra ({error}); install it with: "
            "pip install 'lightning-hpo[dashboard]'"
        ) from None
    serve(_open_existing(args.storage), host=args.host, port=args.port, token=args.token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-hpo", description="Inspect lightning_hpo studies.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, needs_study: bool) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--storage",
            default=DEFAULT_STORAGE,
            help=f"database URL or SQLite file (default: {DEFAULT_STORAGE})",
        )
        if needs_study:
            sub.add_argument("--study", help="the study's name (default: the only study of the storage)")
        return sub

    add("studies", "List the studies in a storage, with trial counts and best values.", False).set_defaults(
        run=_cmd_studies
    )
    trials = add("trials", "List the trials of a study.", True)
    trials.add_argument("--state", choices=[s.value for s in TrialState], help="only trials in this state")
    trials.set_defaults(run=_cmd_trials)
    add(
        "best",
        "Show the best trial of a study: value, parameters, checkpoint and logs; for a study with several "
        "objectives, its Pareto front (the trials no other trial beats in every objective).",
        True,
    ).set_defaults(run=_cmd_best)
    export = add(
        "export",
        "Write one trial (the best by default) as its full fit config (studies run by `train.py tune`) or its "
        "parameters, in YAML or JSON; or, with --all or --format csv, every trial of the study as a table (one row "
        "per trial: number, state, value(s), params_<name>, start, end, duration_s, last_step, n_reports, error, "
        "log_dir, checkpoint).",
        True,
    )
    export.add_argument(
        "--output",
        "--out",
        "-o",
        help="file to write, replaced whole once written; `-` or none: standard output",
    )
    export.add_argument(
        "--format",
        choices=["yaml", "json", "csv"],
        help="default: from the --output suffix (.json, .csv, .yaml), else yaml for one trial and csv for --all; "
        "csv always writes the table of every trial",
    )
    export.add_argument(
        "--all",
        action="store_true",
        help="every trial as a table (CSV, or a JSON array of rows with --format json) instead of one trial",
    )
    export.add_argument(
        "--params", action="store_true", help="export the parameters only, even when a config is stored"
    )
    export.add_argument(
        "--trial",
        type=int,
        help="export this trial number instead of the best; a trial that did not complete (FAIL, PRUNED, "
        "RUNNING) has no result, so it is refused with an error (exit status 2) unless --force",
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="export a --trial that did not complete anyway, with a warning on standard error",
    )
    export.set_defaults(run=_cmd_export)
    plot = add(
        "plot",
        "Write a study's plots as PNG files: optimization history, learning curves, parallel coordinates, "
        "importance, slices, and the Pareto front of a multi-objective study.",
        True,
    )
    plot.add_argument("--out", required=True, help="directory to write the PNG files to (created if missing)")
    plot.add_argument(
        "--objective", type=int, default=0, help="objective to plot in a multi-objective study (default: 0)"
    )
    plot.set_defaults(run=_cmd_plot)
    dashboard = add(
        "dashboard",
        "Serve a live, read-only web view of the studies in a storage (needs the `dashboard` extra).",
        False,
    )
    dashboard.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only; see SECURITY.md)"
    )
    dashboard.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    dashboard.add_argument("--token", help="require this secret: open the printed URL, which carries it")
    dashboard.set_defaults(run=_cmd_dashboard)
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
