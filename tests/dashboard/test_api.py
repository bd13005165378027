"""The dashboard's JSON API and security rules, against a real server and real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lightning_hpo import Study
from lightning_hpo.storage import open_storage
from tests.dashboard.conftest import SPACE, Server, fill_study, free_port

INJECTION = "<img src=x onerror=alert(1)>"


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    try:
        return status, json.loads(body), body
    except ValueError:
        return status, None, body


def study_url(server: Server, name: str, since: int = 0) -> str:
    return f"{server.url}/api/study?name={urllib.parse.quote(name, safe='')}&since={since}"


def poll_until_changed(server: Server, name: str, since: int) -> tuple[dict[str, Any], bytes]:
    """Poll as the page does, every 0.2 s, until trials come; the server reads in the background."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, data, body = get(study_url(server, name, since))
        if data["trials"]:
            return data, body
        time.sleep(0.2)
    raise AssertionError(f"No change of study {name!r} after version {since} arrived within 10 s.")


def test_studies_page_lists_counts_by_state_and_the_best_value(server: Server, db_url: str) -> None:
    study = fill_study(INJECTION, db_url)
    status, data, _ = get(f"{server.url}/api/studies")
    assert status == 200
    (summary,) = data["studies"]
    assert summary["name"] == INJECTION
    counts = {s: sum(t.state.value == s for t in study.trials) for s in summary["states"]}
    assert summary["states"] == counts and counts["FAIL"] == 1 and counts["RUNNING"] == 1 and counts["PRUNED"] >= 1
    assert summary["best_values"] == [study.best_trial.value]
    assert summary["best_number"] == study.best_trial.number
    assert summary["last_activity"] is not None


def test_a_live_update_sends_only_new_and_changed_trials(server: Server, db_url: str) -> None:
    study = fill_study("live", db_url)
    status, first, _ = get(study_url(server, "live"))
    assert status == 200 and first["reset"] and len(first["trials"]) == len(study.trials)
    version = first["version"]
    _, quiet, _ = get(study_url(server, "live", version))
    assert quiet["trials"] == [] and quiet["version"] == version and not quiet["reset"]

    running = next(t for t in study.trials if t.state.value == "RUNNING")
    study.report(running, 1, 2.5)  # a running trial's curve grows
    added = study.ask()
    update, body = poll_until_changed(server, "live", version)
    assert [t["number"] for t in update["trials"]] == [running.number, added.number]
    assert update["curves"] == [[[0, 3.0], [1, 2.5]], []]  # curves[i] is trials[i]'s
    assert update["version"] > version
    assert len(body) < len(get(study_url(server, "live"))[2]) / 3


def test_a_server_restart_is_a_reset(server: Server, db_url: str) -> None:
    fill_study("s", db_url, n_trials=3)
    _, data, _ = get(study_url(server, "s", since=10**6))
    assert data["reset"] and len(data["trials"]) == 4


def test_trial_detail_has_error_paths_and_commands(server: Server, db_url: str) -> None:
    study = fill_study("a/b %2F..", db_url)
    query = urllib.parse.quote("a/b %2F..", safe="")
    status, trial, _ = get(f"{server.url}/api/trial?study={query}&number=5")
    assert status == 200
    assert trial["state"] == "FAIL" and "ValueError: <b>diverged</b>" in trial["error"]
    assert trial["note"] == "ValueError: <b>diverged</b>"
    assert trial["export_command"].startswith(f"lightning-hpo export --storage {db_url} --study 'a/b %2F..' --trial 5")
    assert trial["retrain_command"] is None  # a plain-function study stores no fit config
    assert trial["params"] == dict(study.trials[5].params)
    assert get(f"{server.url}/api/trial?study={query}&number=99")[0] == 404
    status, error, _ = get(f"{server.url}/api/trial?study={query}&number=x")
    assert status == 400 and "`number` must be a whole number, but got 'x'" in error["error"]


def test_a_trial_run_by_tune_shows_the_command_that_retrains_it(server: Server, db_url: str) -> None:
    from lightning_hpo.export import CONFIG_ATTR, LAUNCHER_ATTR, SCRIPT_ATTR

    study = fill_study("cli", db_url, n_trials=1)
    attrs = {CONFIG_ATTR: "model:\n  lr: 0.01\n", SCRIPT_ATTR: "train.py", LAUNCHER_ATTR: "torchrun --nproc_per_node=2"}
    study.storage.update_trial(study.trials[0].id, attrs=attrs)
    _, trial, _ = get(f"{server.url}/api/trial?study=cli&number=0")
    assert trial["retrain_command"] == "torchrun --nproc_per_node=2 train.py fit --config trial_0.yaml"
    assert trial["has_config"]


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "%2e%2e", "..", ""])
def test_odd_names_are_just_names(server: Server, db_url: str, name: str) -> None:
    fill_study("real", db_url, n_trials=1)
    status, data, _ = get(study_url(server, name))
    assert status == 404 and "No study named" in data["error"]


@pytest.mark.parametrize("path", ["/static/../pyproject.toml", "/static/%2e%2e/app.py", "/static/..%2fapp.py"])
def test_static_files_stay_in_their_folder(server: Server, path: str) -> None:
    status, _, body = get(server.url + path)
    assert status == 404 and b"import" not in body


def test_no_route_writes(server: Server, db_url: str) -> None:
    fill_study("s", db_url, n_trials=1)
    for path in ("/api/studies", "/api/study?name=s", "/api/trial?study=s&number=0", "/study?name=s"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert get(server.url + path, method=method)[0] == 405, (method, path)


def test_pages_are_static_shells_with_a_strict_content_security_policy(server: Server) -> None:
    status, _, body = get(f"{server.url}/study?name={urllib.parse.quote(INJECTION)}")
    assert status == 200 and b"<img" not in body and b"onerror" not in body
    with urllib.request.urlopen(f"{server.url}/", timeout=10) as response:
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        assert response.headers["x-content-type-options"] == "nosniff"
    status, _, body = get(f"{server.url}/static/plotly.min.js")
    assert status == 200 and len(body) > 1_000_000  # the bundle of the installed plotly package, no CDN


def test_other_host_names_are_refused(server: Server) -> None:
    assert get(f"{server.url}/api/studies", headers={"Host": "attacker.example"})[0] == 400


def test_a_token_is_required_when_set(db_url: str) -> None:
    storage = open_storage(db_url)
    fill_study("s", db_url, n_trials=1)
    with Server(storage, token="s3cret-token") as server:
        assert get(f"{server.url}/api/studies")[0] == 401
        assert get(f"{server.url}/api/studies?token=wrong")[0] == 401
        assert get(f"{server.url}/api/studies", headers={"Authorization": "Bearer s3cret-token"})[0] == 200
        with urllib.request.urlopen(f"{server.url}/?token=s3cret-token", timeout=10) as response:
            cookie = response.headers["set-cookie"].split(";")[0]
        assert get(f"{server.url}/api/studies", headers={"Cookie": cookie})[0] == 200


@pytest.mark.parametrize("token", ["short", "has space in it", "semi;colon=cookie"])
def test_a_token_must_be_url_and_cookie_safe(db_url: str, token: str) -> None:
    from lightning_hpo.dashboard import create_app
    from lightning_hpo.exceptions import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="`token` must be at least 8 characters"):
        create_app(open_storage(db_url), token=token)


def test_importance_uses_the_importance_function(server: Server, db_url: str) -> None:
    from lightning_hpo import importance

    study = fill_study("imp", db_url)
    status, data, _ = get(f"{server.url}/api/importance?name=imp")
    assert status == 200
    assert data["scores"] == pytest.approx(importance(study))
    Study("empty", search_space=SPACE, storage=db_url)
    status, data, _ = get(f"{server.url}/api/importance?name=empty")
    assert status == 400 and "at least" in data["error"]


@pytest.mark.postgres
def test_the_feed_reads_postgresql(postgres_url: str) -> None:
    storage = open_storage(postgres_url)
    study = fill_study("pg", postgres_url, n_trials=4)
    with Server(storage) as server:
        _, first, _ = get(study_url(server, "pg"))
        assert [t["number"] for t in first["trials"]] == [t.number for t in study.trials]
        study.ask()
        update, _ = poll_until_changed(server, "pg", first["version"])
        assert [t["number"] for t in update["trials"]] == [len(first["trials"])]
    storage.close()


def test_the_subcommand_warns_when_bound_beyond_this_machine(db_url: str, tmp_path: Path) -> None:
    fill_study("s", db_url, n_trials=1)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    command = [sys.executable, "-m", "lightning_hpo.console", "dashboard", "--storage", db_url]
    process = subprocess.Popen(
        [*command, "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()  # printed once the app is built, before serving
        assert line.startswith(f"lightning-hpo dashboard of {db_url}: http://0.0.0.0:{port}/")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert "warning: bound to 0.0.0.0" in stderr and "pass --token" in stderr


def test_the_subcommand_refuses_a_missing_database(tmp_path: Path) -> None:
    from lightning_hpo.console import main

    assert main(["dashboard", "--storage", str(tmp_path / "nothing.db")]) == 2


def test_a_missing_extra_says_what_to_install(tmp_path: Path, db_url: str) -> None:
    fill_study("s", db_url, n_trials=1)
    # A Python where uvicorn cannot be imported, as without the `dashboard` extra.
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from lightning_hpo.console import main\n"
        f"sys.exit(main(['dashboard', '--storage', {db_url!r}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "pip install 'lightning-hpo[dashboard]'" in done.stderr


def test_importing_the_package_does_not_import_the_dashboard() -> None:
    code = "import sys, lightning_hpo, lightning_hpo.console; print('starlette' in sys.modules, 'lightning_hpo.dashboard' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stderr
