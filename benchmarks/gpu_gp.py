"""GPU check of the GPSampler (run by benchmarks/gpu_check.sh): the CUDA path works, is used, and
how fast it is against the CPU on the same machine (Hartmann6, 60 trials, then a mixed space and two
objectives with device="auto")."""

import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, ".")
warnings.simplefilter("ignore")
from botorch.test_functions import Hartmann  # noqa: E402

from lightning_hpo import Categorical, Float, GPSampler, Int, NopPruner, Study  # noqa: E402

if not torch.cuda.is_available():
    sys.exit("no CUDA device: this check needs a GPU")
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
hartmann = Hartmann(dim=6)
space = {f"x{i}": Float(0.0, 1.0) for i in range(6)}


def objective(p):
    return float(hartmann(torch.tensor([[p[f"x{i}"] for i in range(6)]], dtype=torch.float64)))


for device in ("cuda", "cpu"):
    sampler = GPSampler(seed=0, device=device)
    study = Study(f"h6-{device}", search_space=space, storage=":memory:", sampler=sampler, pruner=NopPruner())
    times = []
    torch.cuda.reset_peak_memory_stats()
    for _ in range(60):
        start = time.perf_counter()
        trial = study.ask()
        times.append(time.perf_counter() - start)
        study.tell(trial, objective(trial.params))
    best = min(t.value for t in study.trials[:50])
    print(
        f"{device}: regret@50 {best + 3.32237:.2e}, median ms/suggestion at 50-59: "
        f"{statistics.median(times[50:]) * 1e3:.0f}, peak cuda MiB {torch.cuda.max_memory_allocated() / 2**20:.1f}"
    )

mixed = {
    "lr": Float(1e-4, 1e-1, log=True),
    "layers": Int(1, 6),
    "units": Int(8, 4096, log=True),
    "opt": Categorical(["adam", "sgd", "rmsprop"]),
}
study = Study("mixed", search_space=mixed, storage=":memory:", sampler=GPSampler(seed=0), pruner=NopPruner())
study.optimize(lambda p: (p["layers"] - 3) ** 2 + (p["opt"] != "adam") + abs(p["lr"] - 0.01), n_trials=20)
print("auto/mixed on cuda: best", study.best_trial.value, study.best_trial.params)
study = Study(
    "pareto",
    search_space={"x": Float(0, 1), "y": Float(0, 1)},
    mode=["min", "min"],
    storage=":memory:",
    sampler=GPSampler(seed=0),
    pruner=NopPruner(),
)
study.optimize(lambda p: (p["x"] ** 2 + p["y"], (1 - p["x"]) ** 2 + p["y"]), n_trials=14)
print("two objectives on cuda: last params", study.trials[-1].params)
