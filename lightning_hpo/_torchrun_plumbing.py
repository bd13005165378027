"""What the :class:`~lightning_hpo.distributed.TrialCoordinator` stands on: a channel of control messages
through the torchrun job's key-value store, and the training process group that a failing rank aborts.

:class:`Channel` posts and reads pickled messages in the store, where a wait can be bounded and
tried again (see :mod:`lightning_hpo.distributed` for why control messages never travel on the
training group). :class:`TrainingGroup` is the default process group DDP trains on: it notes the
sockets its creation opened, so that :meth:`TrainingGroup.abort` can release peers blocked in a
collective (gloo has no abort that works while DDP holds the group), and it is re-created after a
failed trial. :class:`FailureWatch` is the thread that aborts this rank's group once another rank
posts a failure. Apart from the coordinator's protocol (who sends what, when the ranks agree)
because these are its transport: they know nothing of studies or trials.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

__all__ = ["Channel", "TrainingGroup", "FailureWatch", "torchrun_store", "PROCESS_GROUP_TIMEOUT"]

# The coordinator's logger: its transport's warnings are part of its story.
log = logging.getLogger("lightning_hpo.distributed")

#: Timeout of the training process groups the coordinator creates (Lightning's default).
PROCESS_GROUP_TIMEOUT = timedelta(minutes=30)
# Seconds between looks at the store: for the other ranks' failure during a trial, and (backing off
# up to the second value) for the leader's next command.
_WATCH_INTERVAL = 0.2
_COMMAND_POLL = (0.01, 0.5)


class Channel:
    """Pickled messages under one prefix of a store (thread-safe: the TCPStore client locks)."""

    def __init__(self, store: Any, prefix: str) -> None:
        import torch.distributed as dist

        self._store = dist.PrefixStore(prefix, store)

    def post(self, key: str, value: Any) -> None:
        self._store.set(key, pickle.dumps(value))

    def claim(self, key: str, value: Any) -> bool:
        """Post ``value`` unless the key already holds one; whether this call's value is the one kept."""
        payload = pickle.dumps(value)
        return bytes(self._store.compare_set(key, "", payload)) == payload

    def has(self, key: str) -> bool:
        return bool(self._store.check([key]))

    def read(self, key: str) -> Any:
        return pickle.loads(self._store.get(key))

    def wait(self, keys: Sequence[str], timeout: timedelta) -> None:
        """Block until every key exists; ``DistStoreError`` after ``timeout``."""
        self._store.wait(list(keys), timeout)

    def poll(self, key: str) -> Any:
        """Wait, without a bound, for ``key`` and return its value.

        Used only where the wait may legitimately last for hours (the leader waiting for other
        workers' trials); a leader that dies ends the whole job through torchrun instead.
        """
        interval = _COMMAND_POLL[0]
        while not self.has(key):
            time.sleep(interval)
            interval = min(interval * 2, _COMMAND_POLL[1])
        return self.read(key)


class TrainingGroup:
    """The default process group that DDP trains on, re-created after a trial that failed.

    During a trial, :meth:`abort` (from any thread) makes every collective of the group fail at
    once but leaves it registered: code that finds no group (Lightning's DDP set-up) would create
    one of its own and wait for ranks that never come. After the ranks agreed that the trial failed,
    :meth:`reset` drops the group, and the next trial creates a fresh one under a new key prefix of
    the store, so that no stale address is read. The group remembers the sockets its creation
    opened (gloo connects every pair of ranks at once), so that :meth:`abort` can shut them down.
    """

    def __init__(self, store: Any, prefix: str, *, rank: int, size: int) -> None:
        import torch.distributed as dist

        self._store = store
        self._prefix = prefix
        self._rank = rank
        self._size = size
        self._generation = 0
        self._sockets: dict[int, str] = {}
        self._failed = False  # this trial failed on some rank: a group created now is aborted at once
        self._lock = threading.Lock()
        self._found_one = dist.is_initialized()  # e.g. a Trainer.fit of the user's before the study

    def ensure(self) -> None:
        """Create the group if there is none (at the start, or after a failed trial)."""
        import torch
        import torch.distributed as dist

        if dist.is_initialized():
            return
        # The same choice on every rank: NCCL when each process of a node can have a GPU of its own.
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        use_nccl = dist.is_nccl_available() and torch.cuda.is_available() and per_node <= torch.cuda.device_count()
        if use_nccl:
            # On a failure, abort the communicators and raise in the main thread, instead of the
            # default of tearing the process (and with it the torchrun job) down.
            os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "2")
        before = _open_sockets()
        dist.init_process_group(
            # NCCL for CUDA tensors; gloo for CPU tensors and Python objects (broadcast_object_list
            # picks the CPU backend of a mixed group).
            "cpu:gloo,cuda:nccl" if use_nccl else "gloo",
            store=dist.PrefixStore(f"{self._prefix}group/{self._generation}/", self._store),
            rank=self._rank,
            world_size=self._size,
            timeout=PROCESS_GROUP_TIMEOUT,
        )
        with self._lock:
            self._sockets = {fd: name for fd, name in _open_sockets().items() if before.get(fd) != name}
            if self._failed:  # another rank failed while this one was still creating the group
                self._abort_now()
        if use_nccl:
            # Create the NCCL communicator now, before any user code can fail (an abort cannot
            # interrupt a communicator still being set up), and after the gloo sockets were noted:
            # NCCL's own are released by its abort.
            local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(local)
            dist.all_reduce(torch.zeros(1, device=local))

    def abort(self) -> None:
        """From any thread: make the group's collectives fail now, here and (through the sockets) at the peers."""
        with self._lock:
            self._failed = True
            self._abort_now()

    def _abort_now(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            return
        try:
            dist.group.WORLD.abort()  # type: ignore[union-attr]
        except Exception as error:  # noqa: BLE001 - the sockets below are shut down either way
            log.warning("lightning_hpo: aborting the process group failed: %s", error)
        _shut_down_sockets(self._sockets)
        self._sockets = {}

    def reset(self) -> None:
        """After a failed trial (every rank agreed): drop the group; the next trial creates a fresh one."""
        import torch.distributed as dist
        from torch.distributed.distributed_c10d import _abort_process_group

        with self._lock:
            if dist.is_initialized():
                try:
                    _abort_process_group()
                except Exception as error:  # noqa: BLE001 - dropped either way
                    log.warning("lightning_hpo: dropping the process group failed: %s", error)
                    if dist.is_initialized():
                        dist.destroy_process_group()
            self._sockets = {}
            self._failed = False
            self._generation += 1
            _restart_group_names()

    def close(self) -> None:
        """Leave torch.distributed as the session found it (a group we created is destroyed cleanly)."""
        import torch.distributed as dist

        if not self._found_one and dist.is_initialized():
            dist.destroy_process_group()


def _restart_group_names() -> None:
    """Name the next group as every other rank will. Torch names each new group by a per-process count, and
    the ranks meet under store keys that hold the name to create it; only dropping a created group restarts
    the count. A rank whose creation of the group failed (a peer that failed at once shut the connections
    down half-way) has no group to drop, yet used up a name: its next group would then wait under other
    keys than the other ranks' one, every rank until the process group timeout."""
    from torch.distributed import distributed_c10d

    if hasattr(distributed_c10d, "_world"):
        distributed_c10d._world.group_count = 0


class FailureWatch:
    """While a trial trains, a thread that aborts this rank's group as soon as another rank fails."""

    def __init__(self, channel: Channel, key: str, group: TrainingGroup) -> None:
        self._channel = channel
        self._key = key
        self._group = group
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lightning_hpo-failure-watch", daemon=True)

    def __enter__(self) -> FailureWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(_WATCH_INTERVAL):
            try:
                if self._channel.has(self._key):
                    self._group.abort()
                    return
            except Exception as error:  # noqa: BLE001 - a store that went away ends the job anyway
                log.warning("lightning_hpo: watching the other ranks failed: %s", error)
                return


def _open_sockets() -> dict[int, str]:
    """This process's open sockets, ``fd -> "socket:[inode]"`` (empty where there is no /proc)."""
    sockets = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{name}")
                if target.startswith("socket:"):
                    sockets[int(name)] = target
    return sockets


def _shut_down_sockets(sockets: dict[int, str]) -> None:
    """Shut down (not close: their owner still holds the descriptors) the connections of these sockets.

    Pending reads and writes on them fail at once, here and at the other end. A descriptor that no
    longer names the same socket was closed and reused since, and is left alone.
    """
    for fd, name in sockets.items():
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}") != name:
                continue
            duplicate = socket.socket(fileno=os.dup(fd))
            try:
                # A listening socket has no connection, and gloo's accept loop dies if it is shut down.
                if not duplicate.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    duplicate.shutdown(socket.SHUT_RDWR)
            finally:
                duplicate.close()


def torchrun_store(rank: int, size: int) -> Any:
    """The key-value store of this torchrun job (the default group's, when one exists already)."""
    import torch.distributed as dist
    from torch.distributed.distributed_c10d import _get_default_store

    if dist.is_initialized():
        # Its rank 0 may host the store itself (no torchrun agent): a second server on the same port would fail.
        return _get_default_store()
    store, _, _ = next(dist.rendezvous("env://", rank, size, timeout=PROCESS_GROUP_TIMEOUT))
    return store
