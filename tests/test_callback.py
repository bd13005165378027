"""The TrialReporter callback in real Lightning training of tiny scripted modules."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest

from lightning_hpo import Float, NopPruner, Pruner, Study, TrialReporter, TrialState
from lightning_hpo.exceptions import LightningHPOError, MetricNotFoundError
from lightning_hpo.storage import SQLStorage
from tests.lightning_models import ScriptedModule


class PruneFromStep(Pruner):
    """Test double: prunes once the trial reports at or after ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, trial, trials, *, directions):
        return trial.last_step is not None and trial.last_step >= self.step


def fit(module, study, trial, monitor="val_loss", **trainer_kwargs):
    reporter = TrialReporter(study, trial, monitor)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[reporter],
        **trainer_kwargs,
    )
    trainer.fit(module)
    return reporter, trainer


def new_study(pruner=None, storage="sqlite://") -> Study:
    return Study("cb", search_space={"x": Float(0.0, 1.0)}, storage=storage, pruner=pruner or NopPruner(), seed=0)


def test_reports_every_validation_at_the_global_step_and_skips_the_sanity_check():
    study = new_study()
    trial = study.ask()
    reporter, _ = fit(ScriptedModule([0.5, 0.25, 0.125]), study, trial, max_epochs=3)
    assert reporter.reported == [(4, 0.5), (8, 0.25), (12, 0.125)]  # 4 batches per epoch; 99.0 never stored
    assert study.trials[0].intermediate_values == {4: 0.5, 8: 0.25, 12: 0.125}
    assert reporter.pruned_step is None


def test_several_validations_per_epoch():
    study = new_study()
    trial = study.ask()
    reporter, _ = fit(ScriptedModule([0.9, 0.8, 0.7, 0.6]), study, trial, max_epochs=2, val_check_interval=0.5)
    assert [step for step, _ in reporter.reported] == [2, 4, 6, 8]


def test_pruning_stops_training_at_that_validation():
    study = new_study(PruneFromStep(8))
    trial = study.ask()
    reporter, trainer = fit(ScriptedModule([0.5] * 10), study, trial, max_epochs=10)
    assert reporter.pruned_step == 8
    assert trainer.global_step == 8 and trainer.current_epoch == 2
    assert sorted(study.trials[0].intermediate_values) == [4, 8]


def test_pruning_mid_epoch_stops_mid_epoch():
    study = new_study(PruneFromStep(2))
    trial = study.ask()
    reporter, trainer = fit(ScriptedModule([0.5] * 10), study, trial, max_epochs=5, val_check_interval=0.5)
    assert reporter.pruned_step == 2 and trainer.global_step == 2


class WithSize(ScriptedModule):
    """Also logs ``size``, the second objective, at every validation."""

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.log("size", 10.0 * self.validations)


def test_several_monitors_report_one_value_each_in_order():
    study = Study(
        "mo", search_space={"x": Float(0.0, 1.0)}, mode=["min", "min"], storage="sqlite://", pruner=NopPruner()
    )
    trial = study.ask()
    reporter, _ = fit(WithSize([0.5, 0.25]), study, trial, monitor=["val_loss", "size"], max_epochs=2)
    assert reporter.reported == [(4, (0.5, 10.0)), (8, (0.25, 20.0))]
    assert study.trials[0].intermediate_vectors == {4: (0.5, 10.0), 8: (0.25, 20.0)}
    with pytest.raises(MetricNotFoundError, match=r"monitors 'n_params'.*Logged metrics: \['size', 'val_loss'\]"):
        fit(WithSize([0.5]), study, study.ask(), monitor=["val_loss", "n_params"], max_epochs=1)


def test_missing_metric_lists_the_logged_ones():
    study = new_study()
    trial = study.ask()
    with pytest.raises(MetricNotFoundError, match=r"monitors 'val_acc'.*Logged metrics: \['val_loss'\]"):
        fit(ScriptedModule([0.5]), study, trial, monitor="val_acc", max_epochs=1)


def test_a_storage_error_on_rank_zero_fails_the_trial_loudly():
    study = new_study()
    trial = study.ask()
    study.tell(trial, 1.0)  # reporting to a finished trial must fail, not pass silently
    # One process: the message names no rank.
    with pytest.raises(LightningHPOError, match="Reporting step 4 of the trial failed: TrialStateError"):
        fit(ScriptedModule([0.5]), study, trial, max_epochs=1)


DDP_SCRIPT = """
import atexit
import os
import sys
import lightning.pytorch as pl
import torch
from lightning_hpo import Float, Pruner, Study, TrialReporter
sys.path.insert(0, sys.argv[2])
from tests.lightning_models import ScriptedModule

# A gloo group still alive at interpreter exit can abort the process
# ("terminate called without an active exception", pytorch/pytorch#179291).
atexit.register(lambda: torch.distributed.is_initialized() and torch.distributed.destroy_process_group())


class PruneFromStep(Pruner):
    def prune(self, trial, trials, *, directions):
        return trial.last_step >= 4


class RankDependent(ScriptedModule):
    # Each rank logs different values without sync_dist: the reporter must store the means.
    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            return
        self.log("val_loss", 1.0 + self.global_rank)
        self.log("size", 10.0 * (1 + self.global_rank))


# Both ranks (torchrun) run one study and one DDP training for each: "val_loss", "val_loss,size". The
# study lives on rank 0, as the Tuner keeps it; the reporter broadcasts its decisions to the other rank.
for monitors in sys.argv[3:]:
    monitor = monitors.split(",")
    study = trial = None
    if int(os.environ["RANK"]) == 0:
        study = Study(monitors, search_space={"x": Float(0.0, 1.0)}, storage=sys.argv[1], pruner=PruneFromStep(),
                      seed=0, mode=["min"] * len(monitor))
        trial = study.ask()
    reporter = TrialReporter(study, trial, monitor[0] if len(monitor) == 1 else monitor)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=5, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[reporter])
    trainer.fit(RankDependent([0.0]))
"""

#: Monitors of each DDP training -> the vectors its trial stores: one torchrun runs both in the same two
#: ranks (a process that starts torch and Lightning costs more than the training; ddp_spawn would start
#: two more for each training).
DDP_VECTORS = {"val_loss": {2: (1.5,), 4: (1.5,)}, "val_loss,size": {2: (1.5, 15.0), 4: (1.5, 15.0)}}


@pytest.mark.slow
def test_ddp_reports_the_mean_over_ranks_once_and_all_ranks_stop_together(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    url = f"sqlite:///{tmp_path / 'ddp.db'}"
    script = tmp_path / "ddp_script.py"
    script.write_text(DDP_SCRIPT)
    repo = str(Path(__file__).resolve().parents[1])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*torchrun, str(script), url, repo, *DDP_VECTORS], capture_output=True, text=True, timeout=540
    )  # both trainings, on slow shared machines too (pytest stops a test at 600 s)
    assert done.returncode == 0, done.stderr[-3000:]
    storage = SQLStorage(url)
    for monitors, vectors in DDP_VECTORS.items():
        (trial,) = storage.get_trials(storage.get_study(monitors).id)  # read as stored, without reaping
        # 8 samples / 2 ranks / batch 2 = 2 steps per epoch: reports at 2 and 4, pruned at 4, mean of 1 and 2.
        assert trial.intermediate_values == {2: 1.5, 4: 1.5}, monitors
        assert trial.intermediate_vectors == vectors, monitors
        assert trial.state is TrialState.RUNNING  # the reporter only reports; the Tuner tells
