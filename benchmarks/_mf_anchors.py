"""DEHB and SMAC3's multi-fidelity facade behind a line protocol, for benchmarks/multi_fidelity.py.

Both packages pin versions of numpy and friends that lightning_hpo's environment doesn't have, so
they live in a venv of their own (see benchmarks/README.md) and this script runs there as a
subprocess. It imports neither lightning_hpo nor the surrogate: the parent evaluates every
configuration, and so counts every epoch the same way for every method.

    python _mf_anchors.py METHOD SEED SPACE_JSON MIN_EPOCHS MAX_EPOCHS

Protocol, one JSON object per line: this script writes ``{"config": {...}, "epochs": n}`` (train
``config`` from scratch for ``n`` epochs), the parent answers ``{"value": accuracy}`` (maximized);
the parent closes stdin once its budget is spent, which ends the loop.
"""

from __future__ import annotations

import json
import sys
import tempfile
from typing import Any


def config_space(space: list[dict[str, Any]], seed: int) -> Any:
    from ConfigSpace import ConfigurationSpace, Float, Integer

    cs = ConfigurationSpace(seed=seed)
    for p in space:
        kind = Integer if p["type"] == "int" else Float
        cs.add(kind(p["name"], (p["low"], p["high"]), log=p["log"]))
    return cs


def exchange(config: dict[str, Any], epochs: int) -> float | None:
    """Send one evaluation to the parent; its accuracy, or None once the parent stops answering."""
    print(json.dumps({"config": config, "epochs": epochs}), flush=True)
    line = sys.stdin.readline()
    return json.loads(line)["value"] if line.strip() else None


def run_dehb(cs: Any, seed: int, min_epochs: float, max_epochs: float, workdir: str) -> None:
    from dehb import DEHB

    dehb = DEHB(
        cs=cs,
        min_fidelity=min_epochs,
        max_fidelity=max_epochs,
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
        value = exchange(jsonable(config), round(job["fidelity"]))
        if value is None:
            return
        dehb.tell(job, {"fitness": -value, "cost": round(job["fidelity"])})


def run_smac(cs: Any, seed: int, min_epochs: float, max_epochs: float, workdir: str) -> None:
    from smac import MultiFidelityFacade, Scenario
    from smac.runhistory.dataclasses import TrialValue

    scenario = Scenario(
        cs,
        deterministic=True,
        n_trials=100_000,
        min_budget=min_epochs,
        max_budget=max_epochs,
        seed=seed,
        output_directory=workdir,
    )
    intensifier = MultiFidelityFacade.get_intensifier(scenario, eta=3)
    smac = MultiFidelityFacade(
        scenario, target_function=lambda config, seed, budget: 0.0, intensifier=intensifier, overwrite=True
    )
    while True:
        info = smac.ask()
        value = exchange(jsonable(dict(info.config)), round(info.budget))
        if value is None:
            return
        smac.tell(info, TrialValue(cost=-value))


def jsonable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v.item() if hasattr(v, "item") else v for k, v in config.items()}


def main() -> None:
    import logging

    logging.disable(logging.WARNING)
    method, seed, space, min_epochs, max_epochs = sys.argv[1:6]
    cs = config_space(json.loads(space), int(seed))
    run = {"dehb": run_dehb, "smac": run_smac}[method]
    with tempfile.TemporaryDirectory() as workdir:
        try:
            run(cs, int(seed), float(min_epochs), float(max_epochs), workdir)
        except BrokenPipeError:
            pass


if __name__ == "__main__":
    main()
