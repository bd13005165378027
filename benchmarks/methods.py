"""The optimizers compared, each driven through its own library's usual interface at its
library's default settings, on the same task space, budget and seed.

* lightning_hpo samplers run through ``lightning_hpo.Study(..., storage=":memory:")`` ask/tell, so
  the measured time per suggestion is the real code path (storage read, sampler, storage write).
* Optuna samplers run through ``optuna.Study.ask(distributions)`` / ``tell``: the suggestion is
  made inside ``ask``.
* Hyperopt has no ask/tell: its TPE runs in ``fmin``, and the time per suggestion is the time
  between the end of one objective call and the start of the next (its whole per-trial overhead).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import math
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.tasks import Objective, Task
from lightning_hpo.space import Categorical, Domain, Float, Int, SearchSpace

__all__ = ["Trace", "Method", "METHODS", "resolve_methods", "OURS", "STAND_IN"]


@dataclass
class Trace:
    """What one run of one method on one task recorded, trial by trial."""

    params: list[dict[str, Any]] = field(default_factory=list)
    observed: list[float] = field(default_factory=list)
    true: list[float] = field(default_factory=list)
    suggest_seconds: list[float] = field(default_factory=list)
    objective_seconds: float = 0.0

    def evaluate(self, objective: Objective, params: Mapping[str, Any], suggest_seconds: float) -> float:
        start = time.perf_counter()
        evaluation = objective(params)
        self.objective_seconds += time.perf_counter() - start
        self.params.append(dict(params))
        self.observed.append(evaluation.observed)
        self.true.append(evaluation.true)
        self.suggest_seconds.append(suggest_seconds)
        return evaluation.observed


Runner = Callable[[Task, Objective, int, int], Trace]  # (task, objective, budget, seed) -> trace


@dataclass(frozen=True)
class Method:
    """An optimizer of the comparison.

    Attributes:
        name: its name on the command line and in the cache.
        label: its name in tables and plots.
        modules: the modules it needs; it is unavailable when one is missing.
        run: ``(task, objective, budget, seed) -> Trace``.
        source: for lightning_hpo methods, the package folders whose code decides the suggestions;
            their contents go into the fingerprint, so editing them invalidates cached runs.
        missing: a further check, returning why the method cannot run, or ``None``.
        version: for libraries outside this venv, their version for the fingerprint.
    """

    name: str
    label: str
    modules: tuple[str, ...]
    run: Runner
    source: tuple[str, ...] = ()
    missing: Callable[[], str | None] | None = None
    version: Callable[[], str] | None = None

    def unavailable(self) -> str | None:
        """Why this method cannot run here, or ``None``."""
        for module in self.modules:
            if importlib.util.find_spec(module) is None:
                return f"module {module!r} is not installed (pip install -e '.[benchmarks]')"
        return self.missing() if self.missing is not None else None

    def fingerprint(self) -> str:
        """Versions of the libraries, plus a hash of lightning_hpo's deciding code: a cached run
        with another fingerprint was made by other code and is run again."""
        parts = [self.version()] if self.version is not None else []
        for module in self.modules:
            parts.append(f"{module}=={getattr(importlib.import_module(module), '__version__', '?')}")
        if self.source:
            import lightning_hpo

            parts.append(f"code:{code_digest(Path(lightning_hpo.__file__).parent, self.source)}")
        return " ".join(parts)


@functools.cache
def code_digest(root: Path, source: tuple[str, ...]) -> str:
    """A hash of the ``.py`` files under ``source`` (folders or files relative to ``root``), read
    once per process. A benchmark process runs the code it imported when it started, so an edit
    made while it runs must not relabel its later runs as the edited code's: read afresh at each
    record, a long run's cache came to hold old code's runs under the new code's hash."""
    digest = hashlib.sha256()
    for folder in source:
        for path in sorted((root / folder).rglob("*.py")) if (root / folder).is_dir() else [root / folder]:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# -- lightning_hpo --------------------------------------------------------------------------------


def _lightning_hpo_gp() -> type | None:
    try:
        from lightning_hpo import GPSampler
    except ImportError:
        return None
    return GPSampler


def _gp_missing() -> str | None:
    return None if _lightning_hpo_gp() is not None else "lightning_hpo has no GPSampler yet"


def _lightning_hpo_runner(make_sampler: Callable[[int], Any]) -> Runner:
    def run(task: Task, objective: Objective, budget: int, seed: int) -> Trace:
        from lightning_hpo import NopPruner, Study

        study = Study(
            f"{task.name}-seed{seed}",
            search_space=task.space,
            mode="min",
            storage=":memory:",
            sampler=make_sampler(seed),
            pruner=NopPruner(),
        )
        trace = Trace()
        try:
            for _ in range(budget):
                start = time.perf_counter()
                trial = study.ask()
                suggest_seconds = time.perf_counter() - start
                study.tell(trial, trace.evaluate(objective, trial.params, suggest_seconds))
        finally:
            study.storage.close()
        return trace

    return run


def _gp_sampler(seed: int) -> Any:
    sampler_cls = _lightning_hpo_gp()
    assert sampler_cls is not None, "checked by Method.unavailable"
    return sampler_cls(seed=seed, **_GP_OPTIONS)


#: Extra keyword arguments of lightning_hpo's GPSampler (the command line's --device).
_GP_OPTIONS: dict[str, Any] = {}


def set_gp_device(device: str | None) -> None:
    _GP_OPTIONS.pop("device", None)
    if device is not None:
        _GP_OPTIONS["device"] = device


def _sobol_sampler(seed: int) -> Any:
    from lightning_hpo import SobolSampler

    return SobolSampler(seed=seed)


def _random_sampler(seed: int) -> Any:
    from lightning_hpo import RandomSampler

    return RandomSampler(seed=seed)


def _optuna_tpe_through_adapter(seed: int) -> Any:
    """Optuna's TPE at its defaults, driving a lightning_hpo Study through OptunaSampler."""
    import optuna

    from lightning_hpo import OptunaSampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSampler(optuna.samplers.TPESampler(seed=seed))


# -- Optuna ---------------------------------------------------------------------------------------


def optuna_distributions(space: Mapping[str, Domain]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    distributions: dict[str, Any] = {}
    for name, domain in space.items():
        if isinstance(domain, Float):
            distributions[name] = FloatDistribution(domain.low, domain.high, log=domain.log)
        elif isinstance(domain, Int):
            distributions[name] = IntDistribution(domain.low, domain.high, log=domain.log, step=domain.step)
        else:
            distributions[name] = CategoricalDistribution(domain.choices)
    return distributions


def suggest_define_by_run(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """An Optuna trial's parameters define-by-run: parents first, each asked for only where it is active."""
    params: dict[str, Any] = {}
    for name in space.parents_first:
        if name in space.active_names(params):
            params[name] = _suggest_one(trial, name, space[name])
    return params


def _suggest_one(trial: Any, name: str, domain: Domain) -> Any:
    if isinstance(domain, Float):
        return trial.suggest_float(name, domain.low, domain.high, log=domain.log)
    if isinstance(domain, Int):
        return trial.suggest_int(name, domain.low, domain.high, log=domain.log, step=domain.step)
    return trial.suggest_categorical(name, list(domain.choices))


def _optuna_runner(make_sampler: Callable[[int], Any]) -> Runner:
    def run(task: Task, objective: Objective, budget: int, seed: int) -> Trace:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        distributions = optuna_distributions(task.space)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(direction="minimize", sampler=make_sampler(seed))
            trace = Trace()
            for _ in range(budget):
                start = time.perf_counter()
                trial = study.ask(distributions)
                suggest_seconds = time.perf_counter() - start
                study.tell(trial, trace.evaluate(objective, trial.params, suggest_seconds))
        return trace

    return run


def _optuna_sampler(name: str) -> Callable[[int], Any]:
    def make(seed: int) -> Any:
        import optuna

        return getattr(optuna.samplers, name)(seed=seed)

    return make


# -- Hyperopt -------------------------------------------------------------------------------------


def hyperopt_space(space: Mapping[str, Domain]) -> dict[str, Any]:
    from hyperopt import hp
    from hyperopt.pyll import scope

    expressions: dict[str, Any] = {}
    for name, domain in space.items():
        if isinstance(domain, Float):
            if domain.log:
                expressions[name] = hp.loguniform(name, math.log(domain.low), math.log(domain.high))
            else:
                expressions[name] = hp.uniform(name, domain.low, domain.high)
        elif isinstance(domain, Int):
            if domain.log:
                expressions[name] = scope.int(hp.qloguniform(name, math.log(domain.low), math.log(domain.high), 1))
            else:
                expressions[name] = domain.low + domain.step * hp.uniformint(name, 0, domain.size - 1)
        else:
            expressions[name] = hp.choice(name, list(domain.choices))
    return expressions


def _into_domain(space: Mapping[str, Domain], params: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperopt's quantized draws as the space's types, clipped to the bounds (its rounding of a
    log-uniform draw can step one past them)."""
    fixed = dict(params)
    for name, domain in space.items():
        if isinstance(domain, Int):
            fixed[name] = min(max(int(round(params[name])), domain.low), domain.high)
        elif isinstance(domain, Float):
            fixed[name] = min(max(float(params[name]), domain.low), domain.high)
    return fixed


def run_hyperopt(
    expression: Any,
    to_params: Callable[[Any], dict[str, Any]],
    objective: Objective,
    algorithm: str,
    budget: int,
    seed: int,
) -> Trace:
    """``hyperopt.fmin`` with ``algorithm`` (``"tpe"``, ``"rand"``) over ``expression``, whose draws
    ``to_params`` turns into the task's params; the trace of the run."""
    import hyperopt
    import numpy as np

    trace = Trace()
    last_end = time.perf_counter()

    def fn(drawn: Any) -> float:
        nonlocal last_end
        suggest_seconds = time.perf_counter() - last_end
        value = trace.evaluate(objective, to_params(drawn), suggest_seconds)
        last_end = time.perf_counter()
        return value

    hyperopt.fmin(
        fn,
        expression,
        algo=getattr(hyperopt, algorithm).suggest,
        max_evals=budget,
        trials=hyperopt.Trials(),
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
        verbose=False,
    )
    return trace


def _hyperopt_runner(algorithm: str) -> Runner:
    def run(task: Task, objective: Objective, budget: int, seed: int) -> Trace:
        return run_hyperopt(
            hyperopt_space(task.space), lambda p: _into_domain(task.space, p), objective, algorithm, budget, seed
        )

    return run


# -- optimizers in their own venv: HEBO, SMAC3 (benchmarks/anchor_bridge.py) ---------------------

#: The venv of each bridged library, relative to the repository root (``make bench-anchors``).
ANCHOR_VENVS = {"hebo": ".venv-hebo", "smac": ".venv-smac"}
_REPOSITORY = Path(__file__).resolve().parents[1]


def _anchor_python(library: str) -> Path:
    return _REPOSITORY / ANCHOR_VENVS[library] / "bin" / "python"


def _anchor_missing(library: str) -> Callable[[], str | None]:
    def missing() -> str | None:
        marker = _REPOSITORY / ANCHOR_VENVS[library] / ".installed"
        if not marker.is_file():
            return f"its venv is not installed: {marker} is missing (make bench-anchors installs it)"
        return None

    return missing


def _anchor_space(space: Mapping[str, Domain]) -> list[dict[str, Any]]:
    """The space as the bridge reads it (its docstring): ints with a step and categoricals as indices."""
    entries: list[dict[str, Any]] = []
    for name, domain in space.items():
        if isinstance(domain, Float):
            entries.append({"name": name, "kind": "float", "low": domain.low, "high": domain.high, "log": domain.log})
        elif isinstance(domain, Int):
            low, high = (domain.low, domain.high) if domain.step == 1 else (0, domain.size - 1)
            entries.append({"name": name, "kind": "int", "low": low, "high": high, "log": domain.log})
        else:
            entries.append({"name": name, "kind": "cat", "size": len(domain.choices)})
    return entries


def _from_anchor(space: Mapping[str, Domain], drawn: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, domain in space.items():
        value = drawn[name]
        if isinstance(domain, Categorical):
            params[name] = domain.choices[int(value)]
        elif isinstance(domain, Int):
            index = int(round(float(value)))
            params[name] = index if domain.step == 1 else domain.low + domain.step * index
            params[name] = min(max(params[name], domain.low), domain.high)
        else:
            params[name] = min(max(float(value), domain.low), domain.high)
    return params


def _anchor_runner(library: str) -> Runner:
    def run(task: Task, objective: Objective, budget: int, seed: int) -> Trace:
        request = {"library": library, "space": _anchor_space(task.space), "seed": seed, "budget": budget}
        errors = tempfile.TemporaryFile("w+")  # the library's log, shown if the bridge stops
        bridge = subprocess.Popen(
            [str(_anchor_python(library)), str(Path(__file__).with_name("anchor_bridge.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        assert bridge.stdin is not None and bridge.stdout is not None
        trace = Trace()
        try:
            bridge.stdin.write(json.dumps(request) + "\n")
            bridge.stdin.flush()
            for _ in range(budget):
                line = bridge.stdout.readline()
                if not line:
                    bridge.wait(timeout=60)
                    errors.seek(0)
                    log = errors.read()[-3000:]
                    raise RuntimeError(f"The {library} bridge stopped after {len(trace.observed)} trials:\n{log}")
                suggestion = json.loads(line)
                value = trace.evaluate(objective, _from_anchor(task.space, suggestion["params"]), suggestion["seconds"])
                bridge.stdin.write(json.dumps({"value": value}) + "\n")
                bridge.stdin.flush()
        finally:
            bridge.stdin.close()
            bridge.wait(timeout=60)
            errors.close()
        return trace

    return run


def _anchor_fingerprint(library: str) -> Callable[[], str]:
    def fingerprint() -> str:
        command = [str(_anchor_python(library)), "-c", f"import importlib.metadata as m; print(m.version({library!r}))"]
        return f"{library}=={subprocess.run(command, capture_output=True, text=True).stdout.strip()}"

    return fingerprint


def _anchor_method(library: str, label: str) -> Method:
    return Method(
        library,
        label,
        (),
        _anchor_runner(library),
        missing=_anchor_missing(library),
        version=_anchor_fingerprint(library),
    )


# -- the registry ---------------------------------------------------------------------------------

# What a lightning_hpo method's suggestions depend on: the study, its checks and trial sources, the space.
_LHPO_SOURCE = (
    "samplers",
    "study.py",
    "_study_checks.py",
    "_trial_params.py",
    "space.py",
    "_domains.py",
    "storage",
)

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("lhpo_gp", "lightning_hpo GP", (), _lightning_hpo_runner(_gp_sampler), _LHPO_SOURCE, _gp_missing),
        Method("lhpo_sobol", "lightning_hpo Sobol", (), _lightning_hpo_runner(_sobol_sampler), _LHPO_SOURCE),
        Method("lhpo_random", "random (lightning_hpo)", (), _lightning_hpo_runner(_random_sampler), _LHPO_SOURCE),
        Method(
            "lhpo_optuna_tpe",
            "Optuna TPE through OptunaSampler",
            ("optuna",),
            _lightning_hpo_runner(_optuna_tpe_through_adapter),
            _LHPO_SOURCE,
        ),
        Method("optuna_gp", "Optuna GP", ("optuna", "greenlet"), _optuna_runner(_optuna_sampler("GPSampler"))),
        Method("optuna_tpe", "Optuna TPE", ("optuna",), _optuna_runner(_optuna_sampler("TPESampler"))),
        Method("optuna_random", "random (Optuna)", ("optuna",), _optuna_runner(_optuna_sampler("RandomSampler"))),
        Method("hyperopt_tpe", "Hyperopt TPE", ("hyperopt",), _hyperopt_runner("tpe")),
        Method("hyperopt_random", "random (Hyperopt)", ("hyperopt",), _hyperopt_runner("rand")),
        _anchor_method("hebo", "HEBO"),
        _anchor_method("smac", "SMAC3 BlackBoxFacade"),
    )
}

#: The method standing for "ours": lightning_hpo's GPSampler.
OURS = "lhpo_gp"
#: What stands in for it while lightning_hpo has no GPSampler.
STAND_IN = "lhpo_sobol"
#: The default comparison; "ours" is OURS, or STAND_IN when OURS is unavailable.
DEFAULT_METHODS = ("ours", "optuna_gp", "optuna_tpe", "lhpo_optuna_tpe", "hyperopt_tpe", "lhpo_random")


def resolve_methods(names: list[str]) -> list[Method]:
    """Methods by name; ``"ours"`` is lightning_hpo's GPSampler, or the Sobol stand-in without it."""
    methods = []
    for name in names:
        if name == "ours":
            name = OURS if METHODS[OURS].unavailable() is None else STAND_IN
        if name not in METHODS:
            raise KeyError(f"Unknown method {name!r}; the methods are: ours, {', '.join(METHODS)}.")
        if METHODS[name] not in methods:
            methods.append(METHODS[name])
    return methods
