"""The NeurIPS 2020 Black-Box Optimization Challenge's 108 local problems (``--tasks bayesmark``).

Nine scikit-learn models (decision tree, random forest, MLP with adam and with sgd, AdaBoost, kNN,
SVM, lasso and linear / logistic regression) on six bundled datasets (boston, breast, diabetes,
digits, iris, wine), each with two metrics (classification: log loss ``nll`` and ``acc``;
regression: ``mse`` and ``mae``), tuned by bayesmark's 5-fold cross-validated loss, as HEBO, the
challenge's winner, was ranked on. Neither the problems nor their spaces were chosen by this
project: they are bayesmark's, evaluated by bayesmark 0.0.8 itself in ``.venv-bayesmark``
(``benchmarks/bayesmark_worker.py``; it needs scikit-learn 1.1), whose five-point signatures match
the challenge's where the model draws nothing (``signature_errors``, ``benchmarks/README.md``).

Spaces: bayesmark's ``api_config`` of each model, copied below. Its ``logit`` reals (fractions such
as ``max_features``) are searched on their logit, the warp the challenge's own space applied, and
sent back through the sigmoid; ``bool`` is a categorical; every method meets the same space. The
models draw from numpy's global generator (no ``random_state``), so the objective is noisy: the
worker seeds it with the task's seed and the trial's number, and the value a method is told is the
value it is scored on (``true == observed``), as in the challenge. A model that fails (an MLP
with a large step diverges to nan) counts as the worst value of its run so far, and no better than
the baseline's ``clip``: the challenge told the optimizer inf and scored the trial at ``clip``.

``bayesmark_baseline.json`` holds, per problem, the challenge's random-search baseline for the
visible objective: ``best`` (the estimated optimum), ``clip`` (random search's median after one
evaluation), random search's mean best-so-far at each of 100 evaluations and the signature. The
challenge's score of a run after ``t`` evaluations is ``100 * (1 - clip((best_so_far - best) /
(clip - best), -1, 1))``, averaged over seeds and problems (``benchmarks/bayesmark_score.py``).
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.tasks.base import Evaluation, Objective, Task, register
from lightning_hpo.space import Categorical, Domain, Float, Int

__all__ = ["BAYESMARK_TASKS", "BAYESMARK_VENV", "baseline", "bayesmark_space", "from_search", "signature_errors"]

_REPOSITORY = Path(__file__).resolve().parents[2]
#: The worker's venv, relative to the repository root (``make bench-bayesmark``).
BAYESMARK_VENV = ".venv-bayesmark"
_BASELINE = _REPOSITORY / "benchmarks" / "bayesmark_baseline.json"

# bayesmark 0.0.8's sklearn_funcs.py, model -> api_config (classifier, regressor where it differs).
_KNN = {"n_neighbors": ("int", "linear", 1, 25), "p": ("int", "linear", 1, 4)}
_SVM = {
    "C": ("real", "log", 1.0, 1e3),
    "gamma": ("real", "log", 1e-4, 1e-3),
    "tol": ("real", "log", 1e-5, 1e-1),
}
_TREE = {
    "max_depth": ("int", "linear", 1, 15),
    "min_samples_split": ("real", "logit", 0.01, 0.99),
    "min_samples_leaf": ("real", "logit", 0.01, 0.49),
    "min_weight_fraction_leaf": ("real", "logit", 0.01, 0.49),
    "max_features": ("real", "logit", 0.01, 0.99),
    "min_impurity_decrease": ("real", "linear", 0.0, 0.5),
}
_MLP = {
    "hidden_layer_sizes": ("int", "linear", 50, 200),
    "alpha": ("real", "log", 1e-5, 1e1),
    "batch_size": ("int", "linear", 10, 250),
    "learning_rate_init": ("real", "log", 1e-5, 1e-1),
    "tol": ("real", "log", 1e-5, 1e-1),
    "validation_fraction": ("real", "logit", 0.1, 0.9),
}
_MLP_ADAM = {
    **_MLP,
    "beta_1": ("real", "logit", 0.5, 0.99),
    "beta_2": ("real", "logit", 0.9, 1.0 - 1e-6),
    "epsilon": ("real", "log", 1e-9, 1e-6),
}
_MLP_SGD = {**_MLP, "power_t": ("real", "logit", 0.1, 0.9), "momentum": ("real", "logit", 0.001, 0.999)}
_ADA = {"n_estimators": ("int", "linear", 10, 100), "learning_rate": ("real", "log", 1e-4, 1e1)}
_LOGISTIC = {"C": ("real", "log", 1e-2, 1e2), "intercept_scaling": ("real", "log", 1e-2, 1e2)}
_REGULARIZED = {
    "alpha": ("real", "log", 1e-2, 1e2),
    "fit_intercept": ("bool",),
    "normalize": ("bool",),
    "max_iter": ("int", "log", 10, 5000),
}
_CONFIGS: dict[str, tuple[dict[str, tuple], dict[str, tuple]]] = {
    "kNN": (_KNN, _KNN),
    "SVM": (_SVM, _SVM),
    "DT": (_TREE, _TREE),
    "RF": (_TREE, _TREE),
    "MLP-adam": (_MLP_ADAM, _MLP_ADAM),
    "MLP-sgd": (_MLP_SGD, _MLP_SGD),
    "ada": (_ADA, _ADA),
    "lasso": (_LOGISTIC, {**_REGULARIZED, "tol": ("real", "log", 1e-5, 1e-1), "positive": ("bool",)}),
    "linear": (_LOGISTIC, {**_REGULARIZED, "tol": ("real", "log", 1e-4, 1e-1)}),
}
_REGRESSION = ("boston", "diabetes")


@functools.cache
def baseline() -> dict[str, dict[str, Any]]:
    """problem -> its challenge baseline (``best``, ``clip``, ``random_mean``, ``signature``)."""
    return json.loads(_BASELINE.read_text())["problems"]


def _logit(x: float) -> float:
    return math.log(x / (1.0 - x))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def bayesmark_space(problem: str) -> dict[str, tuple]:
    """The problem's bayesmark ``api_config``, name -> (type, space, low, high) or ("bool",)."""
    model, dataset, _ = problem.split("_")
    classifier, regressor = _CONFIGS[model]
    return regressor if dataset in _REGRESSION else classifier


def search_space(problem: str) -> dict[str, Domain]:
    """The space every method searches: bayesmark's, its logit reals on their logit."""
    space: dict[str, Domain] = {}
    for name, spec in bayesmark_space(problem).items():
        if spec[0] == "bool":
            space[name] = Categorical([False, True])
            continue
        kind, scale, low, high = spec
        if kind == "int":
            space[name] = Int(low, high, log=scale == "log")
        elif scale == "logit":
            space[name] = Float(_logit(low), _logit(high))
        else:
            space[name] = Float(low, high, log=scale == "log")
    return space


def from_search(problem: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration of :func:`search_space` in bayesmark's units (logit reals through the sigmoid)."""
    values = {}
    for name, spec in bayesmark_space(problem).items():
        value = params[name]
        values[name] = _sigmoid(value) if spec[:2] == ("real", "logit") else value
    return values


class _Worker:
    """``benchmarks/bayesmark_worker.py`` in its venv, started on first use and kept for the process."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            self._process = None
            raise RuntimeError(
                f"The bayesmark worker stopped (exit code {process.wait(timeout=60)}); its log is above."
            )
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"The bayesmark worker could not answer {request}: {reply['error']}")
        return reply

    def _start(self) -> subprocess.Popen[str]:
        if self._process is None:
            python = _REPOSITORY / BAYESMARK_VENV / "bin" / "python"
            if not (_REPOSITORY / BAYESMARK_VENV / ".installed").is_file():
                raise FileNotFoundError(
                    f"The bayesmark tasks are evaluated in {python.parent.parent}, which is not installed: "
                    "run `make bench-bayesmark` (or `make .venv-bayesmark/.installed`)."
                )
            worker = _REPOSITORY / "benchmarks" / "bayesmark_worker.py"
            # One thread, as every run of the suite (`--threads 1`); stderr is the suite's own.
            threads = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            environment = {**os.environ, **threads}
            self._process = subprocess.Popen(
                [str(python), str(worker)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment
            )
            atexit.register(self.close)
        return self._process

    def close(self) -> None:
        if self._process is not None and self._process.stdin is not None:
            self._process.stdin.close()
            self._process.wait(timeout=60)
            self._process = None


_WORKER = _Worker()


def signature_errors(problem: str) -> list[float]:
    """Relative differences between the worker's signature of ``problem`` and the challenge's.

    Near zero where the model draws nothing (Lasso, Ridge, SVR, kNN on most datasets); the others
    draw unseeded, as they did in the challenge, so theirs differ from run to run there too.
    """
    values = _WORKER.ask({"signature": problem})["values"]
    return [abs(a - b) / max(abs(b), 1e-12) for a, b in zip(values, baseline()[problem]["signature"])]


def _objective(problem: str, seed: int) -> Objective:
    values: list[float] = []

    def objective(params: Mapping[str, Any]) -> Evaluation:
        # A seed per (task seed, trial): the same draws for every method at the same trial.
        draws = (seed * 1_000_003 + len(values)) % 2**32
        reply = _WORKER.ask({"problem": problem, "params": from_search(problem, params), "seed": draws})
        # A model that failed (an MLP diverged to nan) counts as the worst value of the run so far, and
        # no better than the baseline's clip: the challenge told the optimizer inf and scored it at clip.
        value = reply["visible"] if "failed" not in reply else max([baseline()[problem]["clip"], *values])
        values.append(value)
        return Evaluation(observed=value, true=value)

    return objective


def _register(problem: str) -> str:
    name = f"bm_{problem}"
    model, dataset, metric = problem.split("_")

    @register(name)
    def build() -> Task:
        best = baseline()[problem]["best"]
        return Task(
            name=name,
            summary=f"bayesmark {model} on {dataset}, 5-fold CV {metric} (NeurIPS 2020 BBO challenge)",
            space=search_space(problem),
            make_objective=lambda seed: _objective(problem, seed),
            reference=lambda: best,
            reference_source="the challenge's estimated optimum",
        )

    return name


#: The challenge's 108 local problems, by name ``bm_<model>_<dataset>_<metric>``.
BAYESMARK_TASKS = tuple(_register(problem) for problem in baseline())
