"""Real training as a multi-fidelity task: the digits MLP and CNN, trained epoch by epoch on demand.

multi_fidelity.py's ``--family digits`` (tasks ``mlp`` and ``cnn``). A trial's curve is its validation
accuracy (points) after each of ``EPOCHS`` epochs of a real training of the LightningModule
(``examples/digits.py``'s ``DigitsClassifier``, ``pruning_training.py``'s ``DigitsCNN``): its
``configure_optimizers`` and ``training_step`` on the digits training split, its forward pass on
the validation split. A minimal loop steps them instead of a Trainer: a Trainer's fixed cost per
epoch would outweigh these small models' epochs and is the same for every method, and the study
side (ask, report per epoch, should_prune, tell) is the same as with the Tuner.

Every method gets the same curve for the same configuration (common random numbers): a
configuration's training is seeded from the configuration itself, with its own random state
carried across epochs, so a curve does not depend on which method asked for it or on what ran in
between. Curves are trained lazily (a pruned trial trains only the epochs it reports) and their
computed prefix is kept, so a configuration asked for again (a Sobol start two methods share, a
Hyperband promotion) replays what was trained and trains only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from benchmarks.pruning_training import MODELS, DigitsDataModule
from lightning_hpo import SearchSpace

#: Epochs of a full training (as pruning_training.py's curves).
EPOCHS = 20


def config_seed(model: str, config: dict[str, Any]) -> int:
    """A seed that names the configuration alone (stable across processes, unlike ``hash``)."""
    text = json.dumps([model, sorted(config.items())], default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") % (2**63)


class TrainingTask:
    """One model on digits: ``values`` trains it (or replays its kept prefix) up to the steps asked.

    The runners' task interface (see multi_fidelity.Task): steps are epochs, each costing one epoch;
    there is no reference from random configurations (each would be a real training), so regret is
    against the best any method found in the same run.
    """

    full = EPOCHS
    last_step = EPOCHS
    anchor_fidelities = (EPOCHS / 27, EPOCHS)

    def __init__(self, model: str) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}: choose one of {sorted(MODELS)}")
        # One thread: one benchmark process per core, and the same arithmetic (so the same curve) in each.
        torch.set_num_threads(1)
        self.name = model
        self.module_class, space = MODELS[model]
        self.space = SearchSpace(space)
        data = DigitsDataModule()
        data.setup()
        self.train_x, self.train_y = data.train_set.tensors
        self.val_x, self.val_y = data.val_set.tensors
        self.batch_size = data.batch_size
        self.curves: dict[int, list[float]] = {}

    @staticmethod
    def steps(prunes: bool) -> list[tuple[int, int]]:
        """Every epoch, one epoch each (a Lightning run validates after each)."""
        return [(epoch, 1) for epoch in range(1, EPOCHS + 1)]

    @staticmethod
    def anchor_step(fidelity: float) -> tuple[int, int]:
        """An anchor's job of ``fidelity`` epochs, a training from scratch: (step, cost)."""
        epochs = min(max(round(fidelity), 1), EPOCHS)
        return epochs, epochs

    def values(self, config: dict[str, Any], steps: list[tuple[int, int]]) -> Iterator[float]:
        """The validation accuracy at each of ``steps``, trained as they are read."""
        key = config_seed(self.name, config)
        curve = self.curves.setdefault(key, [])
        training: Iterator[float] | None = None
        for step, _ in steps:
            while len(curve) < step:
                if training is None:
                    training = self._train(config, key, skip=len(curve))
                curve.append(next(training))
            yield curve[step - 1]

    def reference(self, seed: int = 12345) -> tuple[float, bool]:
        """No random reference (see the class): the run's best found sets the regret."""
        return -math.inf, False

    def _train(self, config: dict[str, Any], seed: int, skip: int) -> Iterator[float]:
        """Train ``config`` from scratch, yielding the accuracy after each epoch past the first ``skip``."""
        outer = torch.random.get_rng_state()
        torch.manual_seed(seed)
        module = self.module_class(**config)
        optimizer = module.configure_optimizers()
        order = torch.Generator().manual_seed(seed)
        state = torch.random.get_rng_state()
        torch.random.set_rng_state(outer)
        for epoch in range(1, EPOCHS + 1):
            outer = torch.random.get_rng_state()
            torch.random.set_rng_state(state)  # dropout draws from the training's own stream
            accuracy = self._epoch(module, optimizer, order)
            state = torch.random.get_rng_state()
            torch.random.set_rng_state(outer)
            if epoch > skip:
                yield accuracy

    def _epoch(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, order: torch.Generator) -> float:
        module.train()
        permutation = torch.randperm(len(self.train_x), generator=order)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # training_step's self.log without a Trainer
            for index, start in enumerate(range(0, len(permutation), self.batch_size)):
                batch = permutation[start : start + self.batch_size]
                optimizer.zero_grad()
                loss = module.training_step((self.train_x[batch], self.train_y[batch]), index)
                loss.backward()
                optimizer.step()
        module.eval()
        with torch.no_grad():
            predicted = module(self.val_x).argmax(dim=1)
        return 100.0 * (predicted == self.val_y).float().mean().item()
