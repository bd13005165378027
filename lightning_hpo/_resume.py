"""Trials that survive preemption: the resumable checkpoint of a running trial, and what stays on disk.

**The resumable checkpoint.** :class:`~lightning_hpo.callback.ResumableCheckpoint` writes Lightning's full state of the trial
(``trainer.save_checkpoint``: weights, optimizers, LR schedulers, loops, every callback's state, and
the RNG states it adds itself) to ``<trial_dir>/checkpoints/resume-step=<step>.ckpt``, at every
validation by default or at most every ``every_seconds``. Each file is written to a temporary name
and then renamed (``os.replace``, in the same directory), so a kill mid-write leaves the earlier
files intact. Lightning's own save is not enough: its fsspec transaction writes to a file in the
system's temporary directory and then moves it, which is a copy when that is another filesystem. The
newest two are kept: if the newest turns out unreadable (a truncated copy, a full disk), the trial
resumes from the one before, or restarts from zero with a warning.

**Off the training thread** (:class:`CheckpointWriter`): the training thread only collects the
state (Lightning's ``dump_checkpoint``) and copies its tensors to host memory; serializing, writing,
renaming and deleting the oldest file run in a background thread, one checkpoint at a time (the
next save waits for the previous write). The end of training, an exception and a stopping signal
wait for the write, so the trial's newest validation is on disk before it says "saved" or ends. A
SIGKILL during a write leaves the previous checkpoint: the training redone is then one validation
period plus what trained while the write ran.

**Stopping on a signal.** During training, SIGTERM (preemption), SIGUSR1 (SLURM's warning before the
time limit, ``--signal=SIGUSR1@90``) and the first Ctrl-C all take Lightning's SIGTERM path: the
trainer stops at the end of the current batch on every rank (Lightning broadcasts rank 0's flag
under DDP), this callback writes the checkpoint, and the trial is left resumable. Where Lightning's
``SLURMEnvironment(auto_requeue=True)`` handles SIGUSR1 (it saves its own checkpoint and requeues
the job), its handler runs first and this one then stops the trial. A second Ctrl-C stops at once;
the trial then resumes from its last periodic checkpoint.

**Resuming** is a retry of the interrupted trial (see :mod:`lightning_hpo._liveness`): a new trial
number with the same params that shares the interrupted trial's directory, continues from its newest
readable checkpoint, and stores again the intermediate values the checkpoint's reporter state holds.
A trial evaluated several times (cross-validation, repeats) has a directory and resumable
checkpoints per evaluation, and records its finished ones in :data:`RECORD_FILE`: its retry resumes
in the evaluation it was in (see :mod:`lightning_hpo._evaluations`).

**Disk policy** (:func:`discard_checkpoints`): ``keep_checkpoints`` is ``"all"``, ``"best"`` or an
int ``k``; see :class:`~lightning_hpo.Tuner`.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.pareto import best_trials
from lightning_hpo.trial import Trial, TrialState

if TYPE_CHECKING:
    from lightning_hpo.study import Study

__all__ = [
    "KeepCheckpoints",
    "DEFAULT_KEEP_CHECKPOINTS",
    "MAX_STALLED_INTERRUPTIONS",
    "checkpoint_dir",
    "resumable_files",
    "interrupted_error",
    "exit_code",
    "check_keep_checkpoints",
    "check_checkpoint_every",
    "resume_point",
    "newest_step",
    "discard_checkpoints",
    "remove_trial_checkpoints",
    "remove_resumable",
    "RECORD_FILE",
    "read_record",
    "subdirectories",
    "CheckpointWriter",
    "write_resumable",
    "temporary_resumable",
    "publish_resumable",
    "snapshot",
]

#: What stays on disk after a trial ends: "all", "best", or the number of best trials that keep theirs.
KeepCheckpoints = Union[str, int]
#: Disk stays bounded whatever ``n_trials`` is: only the study's 3 best trials keep a checkpoint.
DEFAULT_KEEP_CHECKPOINTS: KeepCheckpoints = 3
#: A trial interrupted this many times in a row without writing a new checkpoint is not resumed again.
MAX_STALLED_INTERRUPTIONS = 3
#: The file in the directory of a trial evaluated several times that records its plan and finished
#: evaluations (see :mod:`lightning_hpo._evaluations`), so that the retry of the interrupted trial skips them.
RECORD_FILE = "evaluations.json"
#: Resumable checkpoints kept per trial: the newest, and one to fall back on.
KEPT_RESUMABLE = 2
_RESUMABLE = re.compile(r"^resume-step=(\d+)\.ckpt$")

log = logging.getLogger(__name__)


def check_keep_checkpoints(value: Any) -> KeepCheckpoints:
    """``value`` if it is ``"all"``, ``"best"`` or an int >= 1 (also as text, from the command line)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ArgumentTypeError(
            f'`keep_checkpoints` must be "all", "best" or an int k >= 1, but got {value!r} ({type(value).__name__}).'
        )
    if (isinstance(value, str) and value not in ("all", "best")) or (isinstance(value, int) and value < 1):
        raise InvalidArgumentError(
            f'`keep_checkpoints` must be "all", "best" or an int k >= 1 (the k best trials keep theirs), '
            f"but got {value!r}."
        )
    return value


def check_checkpoint_every(value: Any) -> float | None:
    """``value`` if it is ``None`` (every validation) or a number of seconds > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidArgumentError(
            "`checkpoint_every` must be None (write the resumable checkpoint at every validation) or a number of "
            f"seconds > 0 (at most that often), but got {value!r}."
        )
    return float(value)


def checkpoint_dir(trial_dir: str | os.PathLike[str]) -> Path:
    return Path(trial_dir) / "checkpoints"


def resumable_files(trial_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``(step, path)`` of the trial's resumable checkpoints, newest first."""
    directory = checkpoint_dir(trial_dir)
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(int(m.group(1)), directory / name) for name in names if (m := _RESUMABLE.match(name))]
    return sorted(found, reverse=True)


def newest_step(trial_dir: str | os.PathLike[str]) -> int | None:
    """The step of the newest resumable checkpoint in ``trial_dir`` (from its name: nothing is read).

    The directory of a trial evaluated several times has none of its own: its step is then the
    trial's, over its finished evaluations and the one under way (see :mod:`lightning_hpo._evaluations`).
    """
    files = resumable_files(trial_dir)
    if files:
        return files[0][0]
    return _newest_evaluated_step(trial_dir)


def _newest_evaluated_step(trial_dir: str | os.PathLike[str]) -> int | None:
    """The fold-major step a trial evaluated several times reached: its finished evaluations' steps
    (as recorded) and the newest resumable checkpoint of the one under way; ``None`` without either."""
    record = read_record(trial_dir)
    done = {evaluation["name"] for evaluation in record["finished"]} if record else set()
    under_way = [
        resumable_files(d)[0][0] for d in subdirectories(trial_dir) if d.name not in done and resumable_files(d)
    ]
    if not done and not under_way:
        return None
    steps_per_evaluation = int(record["steps_per_evaluation"]) if record else 0
    return len(done) * steps_per_evaluation + max(under_way, default=0)


def read_record(trial_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The :data:`RECORD_FILE` of a trial evaluated several times, or ``None`` if there is none (yet)."""
    try:
        return json.loads((Path(trial_dir) / RECORD_FILE).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def subdirectories(directory: str | os.PathLike[str]) -> list[Path]:
    """The directories in ``directory`` (none if it does not exist), by name: a trial's evaluations'."""
    try:
        return sorted(path for path in Path(directory).iterdir() if path.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def resume_point(trial_dir: str | os.PathLike[str], number: int) -> tuple[Path | None, int | None]:
    """The newest readable resumable checkpoint of the trial in ``trial_dir`` and its step; ``(None, None)`` if none.

    An unreadable file (truncated, corrupt) is skipped with a warning and deleted (it would
    otherwise stay the newest), so the trial falls back to an earlier one, or restarts from zero.
    Every rank of a torchrun job reads the same files and so makes the same choice.
    """
    import torch

    skipped = []
    for step, path in resumable_files(trial_dir):
        try:
            # mmap: the tensors are not read, yet a truncated file fails here (its zip directory is gone).
            state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
            if not (isinstance(state, dict) and "loops" in state and "state_dict" in state):
                raise ValueError("not a Lightning training checkpoint")
        except Exception as error:  # noqa: BLE001 - whatever is wrong with the file, the trial goes on without it
            skipped.append(f"{path.name} ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})")
            path.unlink(missing_ok=True)
            continue
        if skipped:
            log.warning("lightning_hpo: trial %d skips unreadable checkpoints %s", number, ", ".join(skipped))
        return path, step
    if skipped:
        log.warning(
            "lightning_hpo: trial %d has no readable checkpoint (%s); it restarts from step 0.",
            number,
            ", ".join(skipped),
        )
    return None, None


class CheckpointWriter:
    """Writes the resumable checkpoints of one trial directory, one at a time, in a background thread.

    :meth:`submit` returns at once (after waiting for the previous write); :meth:`wait` returns once
    the last submitted checkpoint is on disk, and raises the error of a write that failed.
    """

    def __init__(self, trial_dir: str | os.PathLike[str]) -> None:
        self.trial_dir = Path(trial_dir)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, checkpoint: dict[str, Any], step: int) -> None:
        """Write ``checkpoint`` (which nothing may change any more: see :func:`snapshot`) as ``step``'s."""
        self.wait()
        # Not a daemon: an interpreter that exits mid-write finishes it first.
        self._thread = threading.Thread(
            target=self._write, args=(checkpoint, step), name="lightning_hpo-checkpoint", daemon=False
        )
        self._thread.start()

    def wait(self) -> None:
        """Block until the last submitted checkpoint is written; raise what its write raised, if anything."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _write(self, checkpoint: dict[str, Any], step: int) -> None:
        try:
            write_resumable(checkpoint, self.trial_dir, step)
        except BaseException as error:  # noqa: BLE001 - raised on the training thread by `wait`
            self._error = error


def write_resumable(checkpoint: dict[str, Any], trial_dir: Path, step: int) -> None:
    """Write ``checkpoint`` atomically as the trial's resumable checkpoint at ``step``; drop all but the newest two."""
    import torch

    temporary = temporary_resumable(trial_dir, step)
    temporary.parent.mkdir(parents=True, exist_ok=True)
    with open(temporary, "wb") as file:
        torch.save(checkpoint, file)
    publish_resumable(trial_dir, step)


def temporary_resumable(trial_dir: str | os.PathLike[str], step: int) -> Path:
    """Where the resumable checkpoint at ``step`` is written before :func:`publish_resumable` renames it."""
    return checkpoint_dir(trial_dir) / f".resume-step={step}.ckpt.tmp"


def publish_resumable(trial_dir: str | os.PathLike[str], step: int) -> None:
    """Rename the written temporary file of ``step`` to its final name (atomically); drop all but the newest two."""
    os.replace(temporary_resumable(trial_dir, step), checkpoint_dir(trial_dir) / f"resume-step={step}.ckpt")
    for _, old in resumable_files(trial_dir)[KEPT_RESUMABLE:]:
        old.unlink(missing_ok=True)


#: Types of the values a checkpoint holds that cannot change after it was collected: shared, not copied.
_IMMUTABLE = frozenset({str, bytes, int, float, complex, bool, type(None)})


def snapshot(value: Any) -> Any:
    """A copy of ``value`` (a collected checkpoint) that training can no longer change: tensors copied
    to host memory, dicts, lists and tuples rebuilt (keeping their type and attributes), other mutable
    objects deep-copied (or shared, if they cannot be)."""
    import torch

    with torch.no_grad():  # copies of tensors that require grad: no autograd history
        return _snapshot(value, torch.Tensor)


def _snapshot(value: Any, tensor: type) -> Any:
    kind = type(value)  # the common cases first, by exact type: this runs at every validation
    if kind in _IMMUTABLE:
        return value
    if kind is dict:
        return {key: _snapshot(item, tensor) for key, item in value.items()}
    if isinstance(value, tensor):
        return value.clone() if value.is_cpu else value.to("cpu")
    if kind is list:
        return [_snapshot(item, tensor) for item in value]
    if kind is tuple:
        return tuple(_snapshot(item, tensor) for item in value)
    if isinstance(value, dict):  # e.g. a state dict's OrderedDict, with its `_metadata`
        copied = copy.copy(value)
        for key, item in value.items():
            copied[key] = _snapshot(item, tensor)
        return copied
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return kind(*(_snapshot(item, tensor) for item in value))
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - what cannot be copied is written as it is then
        return value


def interrupted_error(number: int, signal_name: str, step: int) -> tuple[str, str]:
    """The stored error of a trial stopped by a signal, and the one line printed as the process exits."""
    by = "the user (Ctrl-C)" if signal_name == "SIGINT" else signal_name
    return (
        f"Interrupted by {by}; saved at step {step}: the next run of the study resumes it.",
        f"lightning_hpo: trial {number} saved at step {step}; rerun to resume.",
    )


def exit_code(signal_name: str) -> int:
    """128 + the signal number: how a shell reports a process ended by that signal."""
    return 128 + int(getattr(signal, signal_name, signal.SIGTERM))


# -- the disk policy ---------------------------------------------------------------------


def discard_checkpoints(study: Study, trial: Trial, trial_dir: Path, keep: KeepCheckpoints) -> None:
    """Remove what ``keep`` says the finished ``trial`` (and, for an int, the study's other trials) no longer keeps.

    ``"all"`` removes nothing. Otherwise the trial's resumable checkpoints go (it will not resume),
    PRUNED and FAIL trials lose their checkpoints, and with an int ``k`` every COMPLETE trial
    outside the study's ``k`` best loses its best checkpoint too.
    """
    if keep == "all":
        return
    remove_resumable(trial_dir)
    if trial.state is not TrialState.COMPLETE:
        _remove(trial.checkpoint_path)
        _remove_all(checkpoint_dir(trial_dir), "*.ckpt")
    if isinstance(keep, int) and trial.state is TrialState.COMPLETE:
        for dropped in _ranked(study)[keep:]:
            _remove(dropped.checkpoint_path)


def remove_trial_checkpoints(trial_dir: Path) -> None:
    """Remove every checkpoint in ``trial_dir`` (a trial that failed, or restarts there from zero)."""
    _remove_all(checkpoint_dir(trial_dir), "*.ckpt")
    remove_resumable(trial_dir)


def remove_resumable(trial_dir: Path) -> None:
    """Remove what resumes the trial in ``trial_dir`` (it ended), keeping its best checkpoint."""
    for _, path in resumable_files(trial_dir):
        path.unlink(missing_ok=True)
    _remove_all(trial_dir, "hpc_ckpt_*.ckpt")  # Lightning's SLURM requeue checkpoints
    _remove_all(checkpoint_dir(trial_dir), ".resume-step=*.ckpt.tmp")


def _remove_all(directory: Path, pattern: str) -> None:
    for path in directory.glob(pattern):
        path.unlink(missing_ok=True)


def _remove(path: str | None) -> None:
    if path:
        Path(path).unlink(missing_ok=True)


def _ranked(study: Study) -> Sequence[Trial]:
    """The study's COMPLETE trials, best first: feasible ones (see :attr:`Trial.feasible`) before the
    others, then by value, or with several objectives the Pareto set first."""
    complete = [t for t in study.get_trials([TrialState.COMPLETE]) if t.values is not None]
    sign = 1.0 if study.directions[0] == "min" else -1.0
    front = {t.number for t in best_trials(complete, study.directions)} if len(study.directions) > 1 else set()
    return sorted(
        complete,
        key=lambda t: (not t.feasible, t.number not in front, sign * t.values[0], t.number),  # type: ignore[index]
    )
