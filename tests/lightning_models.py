"""Tiny real Lightning modules for tests, written the way Lightning's documentation writes them."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


def regression_data(n: int = 128, seed: int = 0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(n, 1, generator=generator)
    return TensorDataset(x, y)


class RegressionData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 16) -> None:
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage: str | None = None) -> None:
        self.train_set = regression_data(128, seed=0)
        self.val_set = regression_data(64, seed=1)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=32)


class LinearRegression(pl.LightningModule):
    """Learns y = x w; a larger ``lr`` (up to ~0.1) trains faster, so the best trials are predictable."""

    def __init__(self, lr: float = 0.01, hidden: int = 8, activation: str = "relu") -> None:
        super().__init__()
        self.save_hyperparameters()
        act = nn.ReLU() if activation == "relu" else nn.Tanh()
        self.net = nn.Sequential(nn.Linear(4, hidden), act, nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", F.mse_loss(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class SizedRegression(LinearRegression):
    """Also logs its size, ``n_params``: a second objective that trades off against the loss."""

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        self.log("n_params", float(sum(p.numel() for p in self.parameters())))


class ScriptedModule(pl.LightningModule):
    """Logs ``val_loss = losses[i]`` at its i-th validation: callbacks see exactly the given curve."""

    def __init__(self, losses: list[float], metric: str = "val_loss", fail_at: int | None = None) -> None:
        super().__init__()
        self.losses = losses
        self.metric = metric
        self.fail_at = fail_at
        self.layer = nn.Linear(1, 1)
        self.validations = 0

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        if self.fail_at is not None and self.global_step == self.fail_at:
            raise RuntimeError(f"scripted failure at step {self.global_step}")
        return self.layer(batch[0]).sum()

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.log(self.metric, 99.0)
            return
        self.log(self.metric, float(self.losses[min(self.validations, len(self.losses) - 1)]))
        self.validations += 1

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=2)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.ones(2, 1)), batch_size=2)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)
