"""Fixtures of the dashboard tests: real studies in real databases, and a real uvicorn server."""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning_hpo import Categorical, Float, Int, MedianPruner, Study, TrialState
from lightning_hpo.storage import Storage, open_storage

CHROMIUM_ENV = "LIGHTNING_HPO_TEST_CHROMIUM"
SPACE = {"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 4), "optimizer": Categorical(["adam", "sgd"])}


def fill_study(name: str, storage: str, *, n_trials: int = 12, seed: int = 0) -> Study:
    """A study with learning curves, pruned trials, one failure and one trial still RUNNING."""
    study = Study(name, search_space=SPACE, storage=storage, seed=seed, pruner=MedianPruner(n_startup_trials=3))
    for i in range(n_trials):
        trial = study.ask()
        p = trial.params
        final = (math.log10(p["lr"]) + 2.5) ** 2 + 0.1 * p["layers"] + (0.3 if p["optimizer"] == "sgd" else 0.0)
        if i == 5:
            study.tell(
                trial, state=TrialState.FAIL, error="Traceback (most recent call last):\nValueError: <b>diverged</b>"
            )
            continue
        for step in range(8):
            study.report(trial, step, final + 2.0 / (step + 1))
            if study.should_prune(trial):
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, final)
    running = study.ask()
    study.report(running, 0, 3.0)
    return study


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """The dashboard app served by uvicorn in a thread on 127.0.0.1, on a free port.

    Started on entry, or with ``lazily=True`` at the first use of :attr:`url`: a test that writes its
    study first then meets a server whose start-up read sees the whole study, as a user who starts the
    dashboard on an existing database does, instead of one that read it half-written.
    """

    def __init__(self, storage: Storage, token: str | None = None, *, lazily: bool = False) -> None:
        import uvicorn

        from lightning_hpo.dashboard import create_app

        self.port = free_port()
        self._url = f"http://127.0.0.1:{self.port}"
        self._lazily = lazily
        config = uvicorn.Config(create_app(storage, token=token), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        if self._thread.ident is None:  # never started
            self._start()
        return self._url

    def _start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"The dashboard server did not start on {self._url} within 20 s.")
            time.sleep(0.05)

    def __enter__(self) -> Server:
        if not self._lazily:
            self._start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


@pytest.fixture
def server(db_url: str) -> Iterator[Server]:
    storage = open_storage(db_url)
    with Server(storage, lazily=True) as running:
        yield running
    storage.close()


@pytest.fixture
def chromium_path() -> str:
    path = os.environ.get(CHROMIUM_ENV)
    if not path or not Path(path).exists():
        pytest.fail(
            f"{CHROMIUM_ENV} is {path!r}, so the browser tests cannot run. Run `make test` (it installs Chromium), "
            "or `source .ci/chromium.sh` first; deselect them explicitly with -m 'not browser'.",
            pytrace=False,
        )
    return path


@pytest.fixture
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        yield launched
        launched.close()
