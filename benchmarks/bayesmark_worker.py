"""Evaluates the NeurIPS 2020 Black-Box Optimization Challenge's local problems with ``bayesmark``.

Runs in ``.venv-bayesmark`` (``make bench-bayesmark``): bayesmark 0.0.8 needs scikit-learn 1.1
(``load_boston``, ``normalize=`` of Lasso and Ridge) and numpy 1.23, which the project's venv has
long left. The suite's process (``benchmarks/tasks/bayesmark.py``) keeps the optimizers and sends
each configuration here. Protocol, one JSON object per line:

    main -> worker  {"problem": "DT_breast_nll", "params": {name: value}, "seed": int}
    worker -> main  {"visible": cross-validated loss, "generalization": held-out loss, "seconds": float}
                 or {"failed": "...", "seconds": float}   (the model failed: an MLP diverged to nan)
    main -> worker  {"signature": "DT_breast_nll"}
    worker -> main  {"values": [five losses at bayesmark's signature points]}
    worker -> main  {"error": "..."}                       (a request that cannot be answered)

``params`` are in bayesmark's own units (the suite undoes its logit warp first); their names must
be the problem's ``api_config``'s, every value within its range. bayesmark's models take no
``random_state``, so each evaluation draws from numpy's global generator, seeded with ``seed``
first: a run is reproducible, and every method meets the same draws at the same trial number.
"""

from __future__ import annotations

import json
import random
import sys
import time
import warnings
from typing import Any

#: Rounding slack of a value sent back from the suite's warp (``sigmoid(logit(x))``).
_RANGE_TOLERANCE = 1e-9


def _problem(name: str, cache: dict[str, Any]) -> Any:
    from bayesmark.sklearn_funcs import SklearnModel

    if name not in cache:
        model, dataset, metric = name.split("_")
        cache[name] = SklearnModel(model, dataset, metric)
    return cache[name]


def _check_params(name: str, config: dict[str, dict[str, Any]], params: dict[str, Any]) -> None:
    if set(params) != set(config):
        raise ValueError(f"{name} takes {sorted(config)}, but got {sorted(params)}")
    for key, spec in config.items():
        if spec["type"] in ("real", "int"):
            low, high = spec["range"]
            slack = _RANGE_TOLERANCE * max(1.0, abs(low), abs(high))
            if not low - slack <= params[key] <= high + slack:
                raise ValueError(f"{name}: {key} = {params[key]!r} is outside {spec['range']}")


def answer(request: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    if "signature" in request:
        from bayesmark.signatures import get_func_signature

        problem = _problem(request["signature"], cache)
        _, values = get_func_signature(problem.evaluate, problem.get_api_config())
        return {"values": [float(v) for v in values]}
    problem = _problem(request["problem"], cache)
    config = problem.get_api_config()
    params = dict(request["params"])
    _check_params(request["problem"], config, params)
    for key, spec in config.items():
        if spec["type"] == "int":
            params[key] = int(round(params[key]))
        elif spec["type"] == "bool":
            params[key] = bool(params[key])
        else:
            params[key] = min(max(float(params[key]), spec["range"][0]), spec["range"][1])
    np.random.seed(request["seed"])
    random.seed(request["seed"])
    start = time.perf_counter()
    try:
        visible, generalization = problem.evaluate(params)
    except Exception as error:  # noqa: BLE001 - the model's own failure (an MLP diverging to nan), not the request's
        return {"failed": f"{type(error).__name__}: {error}", "seconds": time.perf_counter() - start}
    return {"visible": float(visible), "generalization": float(generalization), "seconds": time.perf_counter() - start}


def main() -> int:
    # scikit-learn 1.1's deprecations (load_boston, normalize=) would flood the suite's log.
    warnings.simplefilter("ignore")
    protocol, sys.stdout = sys.stdout, sys.stderr  # the libraries' prints stay off the protocol
    cache: dict[str, Any] = {}
    for line in sys.stdin:
        try:
            reply = answer(json.loads(line), cache)
        except Exception as error:  # noqa: BLE001 - any failure goes back to the suite, which raises it
            reply = {"error": f"{type(error).__name__}: {error}"}
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
