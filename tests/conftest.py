"""Shared fixtures: storages of every backend, and tiny real Lightning modules."""

from __future__ import annotations

import os
import resource
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings

POSTGRES_ENV = "LIGHTNING_HPO_TEST_POSTGRES_URL"
#: A file to append each test's cost to: ``LIGHTNING_HPO_TEST_CPU_LOG=cpu.tsv pytest ...`` (see below).
CPU_LOG_ENV = "LIGHTNING_HPO_TEST_CPU_LOG"

# One intra-op thread for torch, in the pytest-xdist workers and in every process a test starts (they
# inherit it): two workers on two cores that each spin torch's default thread pool train a tiny
# model several times slower than one thread does. Set before anything imports torch; a developer's
# own value wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# pytest-xdist's controller imports the module of each warning a worker reports, from one thread per
# worker: two workers reporting GPyTorch's numerical warnings at once then import linear_operator
# concurrently, which deadlocked a run (a circular import of a partly initialized module). Imported
# here, it is loaded once, in the controller's main thread, before any worker reports.
import linear_operator.utils.warnings  # noqa: E402, F401

# Property tests draw the same examples on every run (a suite that passes once passes again);
# HYPOTHESIS_PROFILE=explore draws fresh ones, to hunt for new failures locally.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first, then the other slow ones: with pytest-xdist workers that take two
    tests at a time (``make test``: ``-n 2 --maxschedchunk 2``) the long ones then run side by side
    early, rather than one of them alone at the end. ``longest(weight)`` orders the longest among
    themselves, heaviest first (the README's groups weigh the processes they start)."""

    def order(item: pytest.Item) -> tuple[bool, float, bool]:
        longest = item.get_closest_marker("longest")
        weight = longest.args[0] if longest is not None and longest.args else float("inf")
        return longest is None, -weight, item.get_closest_marker("slow") is None

    items.sort(key=order)


def _cpu_seconds() -> tuple[float, float]:
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """With ``LIGHTNING_HPO_TEST_CPU_LOG`` set: one line per test, ``nodeid, wall, own CPU, children's CPU``
    in seconds. CPU time is what a loaded 2-core CI machine runs out of (a Lightning process costs seconds
    just to import). The children's CPU is that of the child processes reaped during the test: those it
    started and waited for, and any an earlier test left that end (and are waited for) during this one."""
    path = os.environ.get(CPU_LOG_ENV)
    if not path:
        yield
        return
    (own, children), started = _cpu_seconds(), time.monotonic()
    yield
    own_after, children_after = _cpu_seconds()
    with open(path, "a") as log:
        log.write(
            f"{item.nodeid}\t{time.monotonic() - started:.1f}\t{own_after - own:.1f}\t{children_after - children:.1f}\n"
        )


@pytest.fixture(autouse=True)
def _run_in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test writes by default (./lightning_hpo/...) lands in the repository."""
    monkeypatch.chdir(tmp_path)


def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.fail(
            f"{POSTGRES_ENV} is not set, so the PostgreSQL tests cannot run. Run `make test` (it starts a server), "
            f"or `source .ci/postgres.sh` first; deselect them explicitly with -m 'not postgres'.",
            pytrace=False,
        )
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin_url = sa.engine.make_url(postgres_admin_url())
    name = f"hpo_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite-file", "sqlite-memory", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of each backend; the PostgreSQL one is a fresh database."""
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    if request.param == "sqlite-memory":
        return "sqlite://"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL several processes can share (no in-memory database)."""
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    return request.getfixturevalue("postgres_url")
