"""DEHB and SMAC3's multi-fidelity facade behind a line protocol, for benchmarks/multi_fidelity.py.

Both packages pin versions of numpy and friends that lightning_hpo's environment doesn't have, so
they live in a venv of their own (see benchmarks/README.md) and this script runs there as a
subprocess. It imports neither lightning_hpo nor the surrogate: the parent evaluates every
configuration, and so counts every epoch the same way for every method.

    python _mf_anchors.py METHOD SEED SPACE_JSON MIN_FIDELITY MAX_FIDELITY

SPACE_JSON is lightning_hpo's ``SearchSpace.to_json()``: floats, ints and categoricals, each
``when`` condition becoming a ConfigSpace condition (an inactive parameter is absent from the
configurations sent). Protocol, one JSON object per line: this script writes ``{"config": {...},
"fidelity": f}`` (train ``config`` from scratch at fidelity ``f``, the method's own choice between
the two bounds), the parent answers ``{"value": accuracy, "cost": c}`` (accuracy maximized; ``c``
what that training cost, in the fidelity's units, after the parent mapped ``f`` to a fidelity its
task has); the parent closes stdin once its budget is spent, which ends the loop.
"""

from __future__ import annotations

import json
import sys
import tempfile
from typing import Any


def config_space(space: dict[str, dict[str, Any]], seed: int) -> Any:
    """A ConfigurationSpace from ``SearchSpace.to_json()``; ``when`` on several parents is their conjunction."""
    from ConfigSpace import (
        AndConjunction,
        Categorical,
        ConfigurationSpace,
        EqualsCondition,
        Float,
        InCondition,
        Integer,
    )

    cs = ConfigurationSpace(seed=seed)
    for name, p in space.items():
        if p["type"] == "categorical":
            cs.add(Categorical(name, p["choices"]))
        elif p["type"] == "int":
            if p.get("step", 1) != 1:
                raise ValueError(f"{name}: an Int with step {p['step']} has no ConfigSpace counterpart here")
            cs.add(Integer(name, (p["low"], p["high"]), log=p["log"]))
        else:
            cs.add(Float(name, (p["low"], p["high"]), log=p["log"]))
    for name, p in space.items():
        conditions = [
            EqualsCondition(cs[name], cs[parent], values[0])
            if len(values) == 1
            else InCondition(cs[name], cs[parent], values)
            for parent, values in p.get("when", {}).items()
        ]
        if conditions:
            cs.add(conditions[0] if len(conditions) == 1 else AndConjunction(*conditions))
    return cs


def exchange(config: dict[str, Any], fidelity: float) -> dict[str, float] | None:
    """Send one evaluation to the parent; its answer (value and cost), or None once the parent stops answering."""
    print(json.dumps({"config": config, "fidelity": fidelity}), flush=True)
    line = sys.stdin.readline()
    return json.loads(line) if line.strip() else None


def run_dehb(cs: Any, seed: int, min_fidelity: float, max_fidelity: float, workdir: str) -> None:
    from dehb import DEHB

    dehb = DEHB(
        cs=cs,
        min_fidelity=min_fidelity,
        max_fidelity=max_fidelity,
        eta=3,
        n_workers=1,
        seed=seed,
        output_path=workdir,
        log_level="ERROR",
    )
    while True:
        job = dehb.ask()
        config = dict(job["config"]) if not isinstance(job["config"], dict) else job["config"]
        if not hasattr(job["config"], "keys"):
            config = dict(dehb.vector_to_configspace(job["config"]))
        answer = exchange(jsonable(config), float(job["fidelity"]))
        if answer is None:
            return
        dehb.tell(job, {"fitness": -answer["value"], "cost": answer["cost"]})


def run_smac(cs: Any, seed: int, min_fidelity: float, max_fidelity: float, workdir: str) -> None:
    from smac import MultiFidelityFacade, Scenario
    from smac.runhistory.dataclasses import TrialValue

    scenario = Scenario(
        cs,
        deterministic=True,
        n_trials=100_000,
        min_budget=min_fidelity,
        max_budget=max_fidelity,
        seed=seed,
        output_directory=workdir,
    )
    intensifier = MultiFidelityFacade.get_intensifier(scenario, eta=3)
    smac = MultiFidelityFacade(
        scenario, target_function=lambda config, seed, budget: 0.0, intensifier=intensifier, overwrite=True
    )
    while True:
        info = smac.ask()
        answer = exchange(jsonable(dict(info.config)), float(info.budget))
        if answer is None:
            return
        smac.tell(info, TrialValue(cost=-answer["value"]))


def jsonable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v.item() if hasattr(v, "item") else v for k, v in config.items()}


def main() -> None:
    import logging

    logging.disable(logging.WARNING)
    method, seed, space, min_fidelity, max_fidelity = sys.argv[1:6]
    cs = config_space(json.loads(space), int(seed))
    run = {"dehb": run_dehb, "smac": run_smac}[method]
    with tempfile.TemporaryDirectory() as workdir:
        try:
            run(cs, int(seed), float(min_fidelity), float(max_fidelity), workdir)
        except BrokenPipeError:
            pass


if __name__ == "__main__":
    main()
