"""The resumable checkpoint's writing off the training thread: what is copied, and what a failed write does."""

from __future__ import annotations

import collections

import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.plugins import TorchCheckpointIO

from lightning_hpo._resume import CheckpointWriter, checkpoint_dir, resumable_files, snapshot
from lightning_hpo.callback import ResumableCheckpoint
from tests.lightning_models import LinearRegression, RegressionData


def test_a_snapshot_copies_tensors_and_containers_and_keeps_a_state_dicts_metadata():
    weights = torch.nn.Linear(2, 1).state_dict()  # an OrderedDict with `_metadata`, as Lightning collects it
    checkpoint = {"state_dict": weights, "loops": {"steps": [1, 2]}, "epoch": 3, "pair": (torch.zeros(1), "a")}
    copied = snapshot(checkpoint)
    before = weights["weight"].clone()
    weights["weight"].add_(1.0)  # training goes on while the copy is written
    checkpoint["loops"]["steps"].append(3)
    checkpoint["pair"][0].add_(1.0)
    assert torch.equal(copied["state_dict"]["weight"], before)
    assert type(copied["state_dict"]) is collections.OrderedDict
    assert copied["state_dict"]._metadata == weights._metadata
    assert copied["loops"] == {"steps": [1, 2]} and copied["epoch"] == 3
    assert copied["pair"][0].item() == 0.0 and copied["pair"][1] == "a"


def test_the_writer_keeps_the_newest_two_and_raises_a_failed_write_on_wait(tmp_path):
    writer = CheckpointWriter(tmp_path)
    for step in (10, 20, 30):
        writer.submit({"step": torch.tensor(step)}, step)
    writer.wait()
    assert [step for step, _ in resumable_files(tmp_path)] == [30, 20]
    assert torch.load(resumable_files(tmp_path)[0][1])["step"].item() == 30
    (tmp_path / "blocked").write_text("a file where the trial directory should be")
    blocked = CheckpointWriter(tmp_path / "blocked")
    blocked.submit({"step": 1}, 1)
    with pytest.raises(OSError):
        blocked.wait()
    blocked.wait()  # the error is raised once


class CountingCheckpointIO(TorchCheckpointIO):
    """A CheckpointIO plugin of the user's own: Lightning saves through it, on the training thread."""

    saved: list[str]

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        self.saved.append(str(path))
        super().save_checkpoint(checkpoint, path, storage_options)


@pytest.mark.parametrize("plugin", [None, "own"], ids=["background", "the plugin's own save"])
def test_a_training_leaves_its_newest_two_resumable_checkpoints_written_either_way(tmp_path, plugin):
    io = CountingCheckpointIO() if plugin else None
    if io:
        io.saved = []
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", devices=1, logger=False, default_root_dir=tmp_path / "lightning",
        enable_progress_bar=False, enable_model_summary=False, plugins=[io] if io else None,
        callbacks=[ResumableCheckpoint(tmp_path, number=0)],
    )  # fmt: skip
    pl.seed_everything(0)
    trainer.fit(LinearRegression(), RegressionData())
    # The training's end waited for the last write: every validation saved, the newest two kept, no temporary left.
    assert [step for step, _ in resumable_files(tmp_path)] == [24, 16]  # 8 steps an epoch
    assert sorted(p.name for p in checkpoint_dir(tmp_path).iterdir()) == ["resume-step=16.ckpt", "resume-step=24.ckpt"]
    newest = torch.load(resumable_files(tmp_path)[0][1], weights_only=False)
    assert newest["global_step"] == 24 and newest["epoch"] == 2
    assert torch.equal(newest["state_dict"]["net.0.weight"], trainer.lightning_module.state_dict()["net.0.weight"])
    if io:  # Lightning's save through the plugin, to the temporary name, then renamed
        resumable = [name for name in (path.rsplit("/", 1)[-1] for path in io.saved) if name.startswith(".resume")]
        assert resumable == [f".resume-step={s}.ckpt.tmp" for s in (8, 16, 24)]
