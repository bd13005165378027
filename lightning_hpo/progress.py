"""The live progress display of a study: trials finished, running, pruned and failed, best so far."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lightning_hpo.trial import Trial, TrialState

if TYPE_CHECKING:
    from lightning_hpo.study import Study

__all__ = ["StudyProgress", "format_params", "format_value"]


def format_value(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{name}={format_value(v)}" if isinstance(v, float) else f"{name}={v!r}" for name, v in params.items())


class StudyProgress:
    """A rich live display plus one printed line per finished trial (readable in logs too).

    Counts cover the whole study, every worker included, as storage holds it.
    """

    def __init__(self, study: Study, *, n_trials: int | None, enabled: bool = True, label: str | None = None) -> None:
        self._study = study
        self._n_trials = n_trials
        self._enabled = enabled
        self._label = label or "value"
        self._started_at = time.monotonic()
        self._trials: list[Trial] = []
        self._live: Any = None
        self._console: Any = None

    def __enter__(self) -> StudyProgress:
        if not self._enabled:
            return self
        from rich.console import Console
        from rich.live import Live

        self._console = Console(stderr=True)
        self._console.print(
            f"[bold]lightning_hpo[/bold] study [cyan]{self._study.name}[/cyan] in {self._study.storage.display_url}"
        )
        self._trials = self._study.trials
        self._live = Live(self._render(), console=self._console, refresh_per_second=2, transient=False)
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._trials = self._study.trials
            self._live.update(self._render())
            self._live.stop()
            self._console.print()

    def started(self, trial: Trial) -> None:
        if self._live is None:
            return
        self._trials = self._study.trials
        self._live.update(self._render())

    def finished(self, trial: Trial) -> None:
        if self._live is None:
            return
        self._console.print(self._trial_line(trial))
        self._trials = self._study.trials
        self._live.update(self._render())

    def _trial_line(self, trial: Trial) -> str:
        head = f"trial {trial.number:>3} "
        if trial.state is TrialState.COMPLETE:
            values = ", ".join(format_value(v) for v in trial.values or ())
            line = f"[green]{head}COMPLETE[/green] {self._label}={values}"
        elif trial.state is TrialState.PRUNED:
            step = trial.attrs.get("pruned_step", trial.last_step)
            line = f"[yellow]{head}PRUNED[/yellow] at step {step}, best {self._label}={format_value(trial.value)}"
        else:
            last_line = (trial.error or "").strip().splitlines()[-1:] or [""]
            line = f"[red]{head}FAIL[/red] {last_line[0]}"
        duration = f" in {trial.duration:.1f}s" if trial.duration is not None else ""
        return f"{line}{duration}  [dim]{format_params(dict(trial.params))}[/dim]"

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        counts = {state: sum(t.state is state for t in self._trials) for state in TrialState}
        finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        elapsed = time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - self._started_at))
        grid = Table.grid(padding=(0, 1))
        total = self._n_trials
        bar = ProgressBar(total=float(total or max(finished, 1)), completed=float(finished), width=30)
        grid.add_row(bar, Text(f"{finished}/{total if total else '?'} trials finished   elapsed {elapsed}", style="bold"))
        counts_line = Text(
            f"complete {counts[TrialState.COMPLETE]}   pruned {counts[TrialState.PRUNED]}   "
            f"failed {counts[TrialState.FAIL]}   running {counts[TrialState.RUNNING]}"
        )
        parts: list[Any] = [grid, counts_line]
        best = self._best()
        if best is not None:
            parts.append(
                Text.assemble(
                    ("best ", "bold"),
                    (f"{self._label}={format_value(best.value)}", "bold green"),
                    f" (trial {best.number})  {format_params(dict(best.params))}",
                )
            )
        return Group(*parts)

    def _best(self) -> Trial | None:
        if len(self._study.directions) != 1:
            return None
        minimize = self._study.directions[0] == "min"
        completed = [t for t in self._trials if t.state is TrialState.COMPLETE and t.value is not None]
        if not completed:
            return None
        return min(completed, key=lambda t: (t.value if minimize else -t.value, t.number))
