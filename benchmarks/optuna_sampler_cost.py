"""What OptunaSampler adds to a suggestion of Optuna's own TPE, history held equal.

For each seed, a history of random trials on Hartmann6's space (6 floats) is given both to Optuna's
TPE in its own study (``study.ask``) and to ``OptunaSampler(TPESampler).sample`` (the rebuild of the
in-memory study from our trials, then the same ask); the two are timed alternately at each history
size, in this process, so machine load falls on both alike. The difference is the adapter's cost.
The Study around a sampler (storage read and write) is not included: it is the same for every
sampler (``benchmarks/TUNER_OVERHEAD.md``).

    python benchmarks/optuna_sampler_cost.py [--seeds 3] [--histories 50,200] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    import optuna
    from optuna.distributions import FloatDistribution

    from lightning_hpo import Float, NopPruner, RandomSampler, Study
    from lightning_hpo.samplers.optuna import OptunaSampler

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--histories", default="50,200")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {f"x{i}": Float(0.0, 1.0) for i in range(6)}
    distributions = {name: FloatDistribution(0.0, 1.0) for name in space}

    print(f"{'history':>8} {'Optuna TPE ask':>16} {'through OptunaSampler':>22} {'adapter adds':>13} {'ratio':>6}")
    for history in map(int, args.histories.split(",")):
        own_times, adapter_times = [], []
        for seed in range(args.seeds):
            study = Study(
                "h", search_space=space, storage=":memory:", sampler=RandomSampler(seed=seed), pruner=NopPruner()
            )
            study.optimize(lambda p: float(np.sum(np.square(list(p.values())))), n_trials=history)
            trials = study.trials
            own = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
            own.add_trials(
                [optuna.trial.create_trial(params=t.params, distributions=distributions, value=t.value) for t in trials]
            )
            adapter = OptunaSampler(optuna.samplers.TPESampler(seed=seed))
            for _ in range(args.repeats):
                start = time.perf_counter()
                asked = own.ask(distributions)
                own_times.append(time.perf_counter() - start)
                own.tell(asked, state=optuna.trial.TrialState.FAIL)  # keeps the history as it is
                start = time.perf_counter()
                adapter.sample(study.space, trials, number=history, directions=["min"])
                adapter_times.append(time.perf_counter() - start)
        own_ms, adapter_ms = 1e3 * statistics.median(own_times), 1e3 * statistics.median(adapter_times)
        print(
            f"{history:>8} {own_ms:>13.1f} ms {adapter_ms:>19.1f} ms {adapter_ms - own_ms:>10.1f} ms "
            f"{adapter_ms / own_ms:>5.2f}x"
        )


if __name__ == "__main__":
    main()
