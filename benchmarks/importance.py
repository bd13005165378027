"""Hyperparameter importance: lightning_hpo's GP Sobol indices against Optuna's fANOVA and PED-ANOVA.

On objectives whose variance decomposition is known exactly (additive terms, parameters drawn
uniformly in their encoding), all three methods see the same random-search trials; the table shows
each method's time and its largest error against the true variance shares, in the same run.

    python benchmarks/importance.py                  # 100 and 300 trials, 6 parameters, 5 seeds
    python benchmarks/importance.py --trials 100 --seeds 3

Needs the ``benchmarks`` extra (optuna, scikit-learn).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from lightning_hpo import Categorical, Float, Int, RandomSampler, Study, importance

SPACE = {
    "lr": Float(1e-5, 1e-1, log=True),
    "optimizer": Categorical(["adam", "sgd", "rmsprop"]),
    "layers": Int(1, 4),
    "momentum": Float(0.0, 1.0),
    "dropout": Float(0.0, 0.5),
    "activation": Categorical(["relu", "tanh"]),
}
# Variance of each additive term over the space as sampled (log10(lr) + 3 uniform on [-2, 2];
# sgd one time in 3; layers uniform on 1..4; momentum uniform on [0, 1]); dropout and activation: none.
TERM_VARIANCE = {
    "lr": 16 / 5 - (4 / 3) ** 2,
    "optimizer": 0.8**2 * 2 / 9,
    "layers": 0.3**2 * 15 / 12,
    "momentum": 0.5**2 / 12,
    "dropout": 0.0,
    "activation": 0.0,
}
TRUTH = {name: v / sum(TERM_VARIANCE.values()) for name, v in TERM_VARIANCE.items()}


def objective(params: dict, rng: np.random.Generator) -> float:
    return (
        (math.log10(params["lr"]) + 3) ** 2
        + 0.8 * (params["optimizer"] == "sgd")
        + 0.3 * params["layers"]
        + 0.5 * params["momentum"]
        + 0.01 * rng.standard_normal()
    )


def make_study(n_trials: int, seed: int) -> Study:
    rng = np.random.default_rng(seed)
    study = Study(f"importance-{seed}", search_space=SPACE, storage=":memory:", sampler=RandomSampler(seed=seed))
    study.optimize(lambda p: objective(p, rng), n_trials=n_trials)
    return study


def to_optuna(study: Study):
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    distributions = {}
    for name, domain in study.space.items():
        if isinstance(domain, Categorical):
            distributions[name] = CategoricalDistribution(list(domain.choices))
        elif isinstance(domain, Int):
            distributions[name] = IntDistribution(domain.low, domain.high, log=domain.log, step=domain.step)
        else:
            distributions[name] = FloatDistribution(domain.low, domain.high, log=domain.log)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    converted = optuna.create_study()
    converted.add_trials(
        [
            optuna.trial.create_trial(params=dict(t.params), distributions=distributions, value=t.value)
            for t in study.trials
        ]
    )
    return converted


def methods(seed: int) -> dict:
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator, get_param_importances

    return {
        "lightning_hpo (GP Sobol)": lambda study, _: importance(study, seed=seed),
        "optuna fANOVA": lambda _, optuna_study: get_param_importances(
            optuna_study, evaluator=FanovaImportanceEvaluator(seed=seed)
        ),
        "optuna PED-ANOVA": lambda _, optuna_study: get_param_importances(
            optuna_study, evaluator=PedAnovaImportanceEvaluator()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", default="100,300", help="comma-separated trial counts (default 100,300)")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    importance(make_study(8, 0))  # load torch and BoTorch before any timing
    print(f"true shares: {', '.join(f'{k}={v:.3f}' for k, v in TRUTH.items())}\n")
    print(f"{'trials':>6}  {'method':<26}{'seconds (median)':>18}{'max |error|':>13}{'top-4 order right':>19}")
    for n_trials in (int(n) for n in args.trials.split(",")):
        results: dict[str, list[tuple[float, float, bool]]] = {}
        for seed in range(args.seeds):
            study = make_study(n_trials, seed)
            optuna_study = to_optuna(study)
            for name, method in methods(seed).items():
                start = time.perf_counter()
                scores = method(study, optuna_study)
                seconds = time.perf_counter() - start
                error = max(abs(scores.get(k, 0.0) - v) for k, v in TRUTH.items())
                order_right = list(scores)[:4] == list(TRUTH)[:4]
                results.setdefault(name, []).append((seconds, error, order_right))
        for name, rows in results.items():
            seconds = statistics.median(r[0] for r in rows)
            error = statistics.median(r[1] for r in rows)
            right = sum(r[2] for r in rows)
            print(f"{n_trials:>6}  {name:<26}{seconds:>18.3f}{error:>13.3f}{f'{right}/{len(rows)}':>19}")


if __name__ == "__main__":
    main()
