"""The resumable checkpoint's writing off the training thread: what is copied, and what a failed write does."""

from __future__ import annotations

import collections

import pytest
import torch

from lightning_hpo._resume import CheckpointWriter, resumable_files, snapshot


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
