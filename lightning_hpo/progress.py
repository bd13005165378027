"""The live progress display of a study: trials finished, running, pruned and failed, best so far,
and what each running trial reported last.

Cheap by design: the whole study is read from storage when a trial of this process starts or
finishes; in between, a daemon thread reads only the RUNNING trials every ``refresh_interval``
seconds (one small query), so the latest step and value of every running trial, this worker's
and the others', stay current while a long trial trains. Only the process of global rank 0
displays anything.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lightning_hpo._constraints import infeasibility_note
from lightning_hpo._text import count_of
from lightning_hpo.distributed import is_global_zero
from lightning_hpo.pareto import best_trials
from lightning_hpo.trial import PRUNED_STEP, Trial, TrialState

if TYPE_CHECKING:
    from lightning_hpo.stopping import StopDecision
    from lightning_hpo.study import Study

__all__ = ["StudyProgress", "format_params", "format_value", "format_values", "REFRESH_INTERVAL"]

#: Seconds between two reads of the running trials while the display is on.
REFRESH_INTERVAL = 2.0
#: Columns of the display in a log file or a pipe (no terminal, no COLUMNS): wide enough to crop nothing.
PIPED_WIDTH = 10_000
#: Running trials listed at most; the rest are counted.
_MAX_RUNNING_ROWS = 8
#: Trials of a Pareto front listed at most; the rest are counted.
_MAX_FRONT_ROWS = 8


def format_value(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def format_values(values: Sequence[float] | None, labels: Sequence[str]) -> str:
    """``val_loss=0.12 n_params=4100`` with one label per value; ``label=v1, v2`` otherwise."""
    if not values:
        return f"{labels[0] if len(labels) == 1 else 'values'}=-"
    if len(labels) == len(values):
        return " ".join(f"{label}={format_value(v)}" for label, v in zip(labels, values))
    return f"{labels[0]}={', '.join(format_value(v) for v in values)}"


def format_params(params: dict[str, Any]) -> str:
    return " ".join(
        f"{name}={format_value(v)}" if isinstance(v, float) else f"{name}={v!r}" for name, v in params.items()
    )


class StudyProgress:
    """A rich live display plus one printed line per finished trial (readable in logs too).

    Counts cover the whole study, every worker included, as storage holds it. Use it as a context
    manager around the trial loop, and pass it to the loop as an observer
    (:class:`~lightning_hpo._loop.TrialObserver`): it is told of each trial this process starts
    and finishes.

    Args:
        study: the study to follow; ``None`` (on the ranks of a torchrun job that don't open the
            study) disables the display.
        n_trials: the target number of finished trials, if any.
        enabled: ``False`` makes every method a no-op (also on ranks other than 0).
        label: the name of the value (the Tuner passes the monitored metric), or of each value
            of a multi-objective study (the monitored metrics).
        refresh_interval: seconds between reads of the running trials.
    """

    def __init__(
        self,
        study: Study | None,
        *,
        n_trials: int | None,
        enabled: bool = True,
        label: str | Sequence[str] | None = None,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self._study = study
        self._n_trials = n_trials
        self._enabled = enabled and study is not None and is_global_zero()
        self._labels = [label or "value"] if label is None or isinstance(label, str) else list(label)
        self._refresh_interval = refresh_interval
        self._started_at = time.monotonic()
        # Replaced whole, never mutated, so the render and refresh threads can share them.
        self._trials: list[Trial] = []
        self._running: list[Trial] = []
        self._printed: set[int] = set()  # numbers of the finished trials shown (or finished before the start)
        self._live: Any = None
        self._console: Any = None
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def __enter__(self) -> StudyProgress:
        if not self._enabled:
            return self
        from rich.console import Console
        from rich.live import Live

        self._console = Console(stderr=True)
        if not self._console.is_terminal:
            # In a log file or a pipe, one line per trial however long, so that grep finds whole trials,
            # and the summary whole too, where rich would crop it at 80 columns (COLUMNS still sets a width).
            self._console.soft_wrap = True
            if not os.environ.get("COLUMNS", "").isdigit():
                self._console.width = PIPED_WIDTH
        self._console.print(
            f"[bold]lightning_hpo[/bold] study [cyan]{self._study.name}[/cyan] in {self._study.storage.display_url}"
        )
        self._read_all()
        self._printed = {t.number for t in self._trials if t.state.is_finished}
        self._live = Live(console=self._console, get_renderable=self.render, refresh_per_second=2, transient=False)
        self._live.start()
        self._refresher = threading.Thread(target=self._refresh_running, name="lightning_hpo-progress", daemon=True)
        self._refresher.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is None:
            return
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join()
        self._read_all()
        self._live.refresh()
        self._live.stop()
        self._console.print()

    def started(self, trial: Trial) -> None:
        if self._live is None:
            return
        # The study changed by this trial (finished() reads it all, once per trial; the refresher reads
        # the running trials of the other workers in between).
        self._trials = [*(t for t in self._trials if t.number != trial.number), trial]
        self._running = [*(t for t in self._running if t.number != trial.number), trial]
        self._live.refresh()

    def finished(self, trial: Trial) -> None:
        if self._live is None:
            return
        self._printed.add(trial.number)
        self._console.print(self._trial_line(trial))
        self._read_all()
        self._live.refresh()

    def stopped(self, decision: StopDecision) -> bool:
        """Show why a stopper ended the study (see :mod:`lightning_hpo.stopping`); whether it was shown."""
        if self._live is None:
            return False
        self._console.print(f"[bold]study stopped:[/bold] {decision.reason}")
        return True

    def catch_up(self) -> None:
        """Show the trials that other processes finished since the display last looked.

        For a process that runs no trials itself but watches its workers (``Tuner(n_jobs=k)``).
        """
        if self._live is None:
            return
        for trial in self._study.trials:
            if trial.state.is_finished and trial.number not in self._printed:
                self.finished(trial)

    def _read_all(self) -> None:
        trials = self._study.trials
        self._trials = trials
        self._running = [t for t in trials if t.state is TrialState.RUNNING]

    def _refresh_running(self) -> None:
        while not self._stop.wait(self._refresh_interval):
            try:
                self._running = self._study.get_trials([TrialState.RUNNING])
            except Exception as error:  # noqa: BLE001 - a missed refresh must never stop the study
                logging.getLogger(__name__).debug("lightning_hpo: progress refresh failed: %s", error)

    def _trial_line(self, trial: Trial) -> str:
        from rich.markup import escape

        head = f"trial {trial.number:>3} "
        if trial.state is TrialState.COMPLETE:
            line = f"[green]{head}COMPLETE[/green] {format_values(trial.values, self._labels)}"
        elif trial.state is TrialState.PRUNED:
            step = trial.attrs.get(PRUNED_STEP, trial.last_step)
            kept = "best" if len(self._study.directions) == 1 else "last"
            line = f"[yellow]{head}PRUNED[/yellow] at step {step}, {kept} {format_values(trial.values, self._labels)}"
        else:
            kind = f" ({trial.fail_kind})" if trial.fail_kind else ""
            line = f"[red]{head}FAIL[/red]{kind}"
        duration = f" in {trial.duration:.1f}s" if trial.duration is not None else ""
        line = f"{line}{duration}  [dim]{escape(format_params(dict(trial.params)))}[/dim]"
        if trial.state is TrialState.FAIL:
            # The reason last, after a label, so it never reads as part of the duration or the params.
            reason = (trial.error or "").strip().splitlines()[-1:] or ["no error recorded"]
            line = f"{line}  [red]error:[/red] {escape(reason[0])}"
        elif infeasibility_note(trial):
            line = f"{line}  [magenta]{escape(infeasibility_note(trial))}[/magenta]"
        return line

    def render(self) -> Any:
        """The display as a rich renderable (what the live view shows now)."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        trials, running = self._trials, self._running
        counts = {state: sum(t.state is state for t in trials) for state in TrialState}
        finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        elapsed = time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - self._started_at))
        grid = Table.grid(padding=(0, 1))
        total = self._n_trials
        bar = ProgressBar(total=float(total or max(finished, 1)), completed=float(finished), width=30)
        grid.add_row(
            bar, Text(f"{finished}/{total if total else '?'} trials finished   elapsed {elapsed}", style="bold")
        )
        infeasible = sum(t.state is TrialState.COMPLETE and not t.feasible for t in trials)
        counts_line = Text(
            f"complete {counts[TrialState.COMPLETE]}"
            + (f" ({infeasible} infeasible)" if infeasible else "")
            + f"   pruned {counts[TrialState.PRUNED]}   failed {counts[TrialState.FAIL]}   running {len(running)}"
        )
        parts: list[Any] = [grid, counts_line, *self._best_lines(trials)]
        if running:
            parts.append(self._running_table(running))
        return Group(*parts)

    def _best_lines(self, trials: list[Trial]) -> list[Any]:
        from rich.text import Text

        directions = self._study.directions
        front = best_trials(trials, directions)
        if not front:
            return []
        if len(directions) == 1:
            best = front[0]
            return [
                Text.assemble(
                    ("best ", "bold"),
                    (format_values(best.values, self._labels), "bold green"),
                    f" (trial {best.number})  {format_params(dict(best.params))}",
                )
            ]
        lines = [Text.assemble(("Pareto front ", "bold"), (count_of(len(front), "trial"), "bold green"))]
        for trial in front[:_MAX_FRONT_ROWS]:
            lines.append(
                Text(
                    f"  trial {trial.number}: {format_values(trial.values, self._labels)}  {format_params(dict(trial.params))}"
                )
            )
        if len(front) > _MAX_FRONT_ROWS:
            lines.append(Text(f"  and {len(front) - _MAX_FRONT_ROWS} more"))
        return lines

    def _running_table(self, running: list[Trial]) -> Any:
        from rich.table import Table

        table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold cyan")
        for column in ("running trial", "step", f"last {', '.join(self._labels)}", "for"):
            table.add_column(column, justify="right")
        now = datetime.now(timezone.utc)
        for trial in running[:_MAX_RUNNING_ROWS]:
            step = trial.last_step
            seconds = (now - trial.datetime_start).total_seconds() if trial.datetime_start is not None else None
            table.add_row(
                str(trial.number),
                "-" if step is None else str(step),
                "-" if step is None else ", ".join(format_value(v) for v in trial.intermediate_vectors[step]),
                "-" if seconds is None else f"{seconds:.0f}s",
            )
        if len(running) > _MAX_RUNNING_ROWS:
            table.add_row(f"+{len(running) - _MAX_RUNNING_ROWS} more", "", "", "")
        return table
