"""Ask/tell bridge to optimizers that live in their own virtual environment (HEBO, SMAC3).

HEBO pins an old numpy and SMAC3 its own ConfigSpace, so each is installed in a venv of its own
(``make bench-anchors``) and driven from the suite's process through this script, which imports
only the standard library and the optimizer: the task, its data and its timing stay in the main
venv. Protocol, one JSON object per line:

    main -> bridge  {"library": "hebo" | "smac", "space": [...], "seed": int, "budget": int}
    bridge -> main  {"params": {name: value}, "seconds": time of the suggestion}   (budget times)
    main -> bridge  {"value": float}                                                (after each)

Space entries: ``{"name", "kind": "float" | "int" | "cat", "low", "high", "log", "size"}``; an
int with a step is sent as its index ``0..size-1``, a categorical as an index into its choices (the
main process maps both back to the task's values).
"""

from __future__ import annotations

import atexit
import json
import random
import shutil
import sys
import tempfile
import time
from typing import Any


def _hebo(space: list[dict[str, Any]], seed: int, budget: int) -> tuple[Any, Any]:
    import numpy as np
    import torch
    from hebo.design_space.design_space import DesignSpace
    from hebo.optimizers.hebo import HEBO

    np.random.seed(seed)
    torch.manual_seed(seed)
    random.seed(seed)
    entries = []
    for p in space:
        if p["kind"] == "float":
            entries.append({"name": p["name"], "type": "pow" if p["log"] else "num", "lb": p["low"], "ub": p["high"]})
        elif p["kind"] == "int":
            kind = "pow_int" if p["log"] else "int"
            entries.append({"name": p["name"], "type": kind, "lb": p["low"], "ub": p["high"]})
        else:
            entries.append({"name": p["name"], "type": "cat", "categories": [str(i) for i in range(p["size"])]})
    optimizer = HEBO(DesignSpace().parse(entries), scramble_seed=seed)

    def ask() -> tuple[dict[str, Any], Any]:
        frame = optimizer.suggest(n_suggestions=1)
        return {k: _plain(v) for k, v in frame.iloc[0].to_dict().items()}, frame

    def tell(handle: Any, value: float) -> None:
        optimizer.observe(handle, np.array([[value]]))

    return ask, tell


def _smac(space: list[dict[str, Any]], seed: int, budget: int) -> tuple[Any, Any]:
    from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer
    from smac import BlackBoxFacade, Scenario
    from smac.runhistory.dataclasses import TrialValue

    configspace = ConfigurationSpace(seed=seed)
    for p in space:
        if p["kind"] == "float":
            configspace.add(Float(p["name"], (p["low"], p["high"]), log=p["log"]))
        elif p["kind"] == "int":
            configspace.add(Integer(p["name"], (p["low"], p["high"]), log=p["log"]))
        else:
            configspace.add(Categorical(p["name"], [str(i) for i in range(p["size"])]))
    # SMAC3 insists on writing its run history; nothing reads it, so it goes when the bridge exits.
    output = tempfile.mkdtemp(prefix="smac")
    atexit.register(shutil.rmtree, output, ignore_errors=True)
    scenario = Scenario(configspace, deterministic=True, n_trials=budget, seed=seed, output_directory=output)
    facade = BlackBoxFacade(scenario, lambda config, seed=0: 0.0, overwrite=True, logging_level=40)

    def ask() -> tuple[dict[str, Any], Any]:
        info = facade.ask()
        return {k: _plain(v) for k, v in dict(info.config).items()}, info

    def tell(handle: Any, value: float) -> None:
        facade.tell(handle, TrialValue(cost=value))

    return ask, tell


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, for JSON."""
    return value.item() if hasattr(value, "item") else value


def main() -> int:
    request = json.loads(sys.stdin.readline())
    make = {"hebo": _hebo, "smac": _smac}[request["library"]]
    # The libraries log to stdout: keep it for the protocol alone.
    protocol, sys.stdout = sys.stdout, sys.stderr
    ask, tell = make(request["space"], request["seed"], request["budget"])
    for _ in range(request["budget"]):
        start = time.perf_counter()
        params, handle = ask()
        seconds = time.perf_counter() - start
        protocol.write(json.dumps({"params": params, "seconds": seconds}) + "\n")
        protocol.flush()
        line = sys.stdin.readline()
        if not line:
            return 1  # the main process stopped
        tell(handle, float(json.loads(line)["value"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
