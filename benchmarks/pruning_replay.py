"""Replay pruning decisions over recorded learning curves, for lightning_hpo's pruners and Optuna's.

Both benchmarks (``pruning_lcbench.py``, ``pruning_training.py``) record each configuration's full
learning curve once, then replay every pruner over the same curves in trial order: at each report
the pruner sees exactly what a live study would have stored (earlier trials as they ended, PRUNED
ones cut at their pruning step, plus the running trial's reports so far). Configurations come from
a sampler that ignores the history (Sobol), so a pruned run would have asked for the very same
configurations: the replay is what a sequential live run would do. ``pruning_training.py`` checks
that on real training (replay == live Tuner run).

A trial's value is its best reported value (what the Tuner stores); the best found is the best
value among COMPLETE trials, since a pruned trial's value belongs to a partly trained model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_hpo.pruners import Pruner
from lightning_hpo.trial import Trial, TrialState

#: One learning curve: ``(step, value)`` at each validation, in order.
Curve = Sequence[tuple[int, float]]


@dataclass(frozen=True)
class Outcome:
    """How a pruner treated a sequence of curves: reports each trial ran, and whether it completed."""

    reports: list[int]
    completed: list[bool]
    values: list[float]

    def spent(self, n: int | None = None) -> int:
        return sum(self.reports[:n])

    def best(self, mode: str, n: int | None = None) -> float:
        """The best value among the first ``n`` trials that completed (nan if none did)."""
        done = [v for v, c in zip(self.values[:n], self.completed[:n], strict=True) if c and math.isfinite(v)]
        if not done:
            return math.nan
        return min(done) if mode == "min" else max(done)

    def best_within(self, budget: int, mode: str) -> float:
        """The best completed value once ``budget`` reports are spent, trials taken in order."""
        spent, n = 0, 0
        for reports in self.reports:
            if spent + reports > budget:
                break
            spent, n = spent + reports, n + 1
        return self.best(mode, n)


def _best(values: Sequence[float], mode: str) -> float:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan
    return min(finite) if mode == "min" else max(finite)


def replay_ours(pruner: Pruner, curves: Sequence[Curve], mode: str) -> Outcome:
    """Run ``pruner`` over ``curves`` in order, as a sequential study with it would."""
    history: list[Trial] = []
    reports, completed, values = [], [], []
    for number, curve in enumerate(curves):
        seen: dict[int, float] = {}
        state = TrialState.COMPLETE
        for step, value in curve:
            seen[step] = value
            running = Trial(number, TrialState.RUNNING, {}, intermediate_values=dict(seen))
            if pruner.prune(running, [*history, running], directions=[mode]):
                state = TrialState.PRUNED
                break
        history.append(Trial(number, state, {}, intermediate_values=seen))
        reports.append(len(seen))
        completed.append(state is TrialState.COMPLETE)
        values.append(_best(list(seen.values()), mode))
    return Outcome(reports, completed, values)


def replay_optuna(
    make_pruner: Callable[[], Any], curves: Sequence[Curve], mode: str, *, epoch_steps: bool, study_name: str = "replay"
) -> Outcome:
    """Run an Optuna pruner over ``curves`` through a real in-memory Optuna study.

    With ``epoch_steps`` the step reported is the 0-based index of the validation, as Optuna's
    Lightning callback reports ``current_epoch``; otherwise the curve's own steps. Optuna's
    Hyperband draws brackets from a hash of ``study_name`` and the trial number.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name, direction="minimize" if mode == "min" else "maximize", pruner=make_pruner()
    )
    reports, completed, values = [], [], []
    for curve in curves:
        trial = study.ask()
        seen = []
        pruned = False
        for index, (step, value) in enumerate(curve):
            seen.append(value)
            trial.report(value, index if epoch_steps else step)
            if trial.should_prune():
                pruned = True
                break
        best = _best(seen, mode)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED) if pruned else study.tell(trial, best)
        reports.append(len(seen))
        completed.append(not pruned)
        values.append(best)
    return Outcome(reports, completed, values)


def write_section(name: str, text: str, path: Path | None = None, *, title: str = "# Pruning benchmarks\n") -> Path:
    """Replace the section ``name`` of ``path`` (PRUNING_RESULTS.md; between its markers) with
    ``text``, or append it; a new file starts with ``title``."""
    path = path or Path(__file__).with_name("PRUNING_RESULTS.md")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    current = path.read_text() if path.exists() else title
    if start in current:
        current = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, current, flags=re.S)
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current)
    return path
