"""The digits MLP of ``examples/digits.py`` trained by a plain torch loop, for benchmarks that run
hundreds of short trainings (constraints, conditional spaces): Lightning's fixed cost per trial
would be most of such a run.

The data is the example's 70/15/15 split (seed 0); every configuration trains from the same seed,
on one thread, so its value is a function of its parameters alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

#: The value of a run whose validation loss was never finite: worse than chance (log 10 = 2.3).
DIVERGED_LOSS = 5.0


@functools.cache
def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and validation inputs and labels, split as ``examples/digits.py``'s datamodule."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_train, n_val = int(0.7 * len(x)), int(0.15 * len(x))
    train, val = order[:n_train], order[n_train : n_train + n_val]
    return x[train], y[train], x[val], y[val]


def mlp(widths: Sequence[int], dropout: float) -> nn.Sequential:
    """64 inputs, a ReLU layer per width (dropout after the first, as the example), 10 outputs."""
    layers: list[nn.Module] = []
    inputs = 64
    for i, width in enumerate(widths):
        layers += [nn.Linear(inputs, width), nn.ReLU()]
        if i == 0:
            layers.append(nn.Dropout(dropout))
        inputs = width
    return nn.Sequential(*layers, nn.Linear(inputs, 10))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def best_validation_loss(
    model: nn.Module,
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    *,
    batch_size: int,
    epochs: int,
) -> float:
    """Train ``model`` (seeded by the caller) and return its best validation loss over ``epochs``,
    as lightning_hpo's Tuner takes a trial's value; :data:`DIVERGED_LOSS` when none was finite."""
    x_train, y_train, x_val, y_val = digits_split()
    loss = nn.functional.cross_entropy
    optimizer = make_optimizer(model.parameters())
    best = math.inf
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(x_train)).split(batch_size):
            optimizer.zero_grad()
            loss(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            value = float(loss(model(x_val), y_val))
        if math.isfinite(value):
            best = min(best, value)
    return best if math.isfinite(best) else DIVERGED_LOSS
