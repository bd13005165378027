"""The dashboard in a real browser: Playwright driving Debian's Chromium (see .ci/chromium.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.conftest import Server, fill_study

pytestmark = [pytest.mark.browser, pytest.mark.slow]

INJECTION = "<img src=x onerror=alert(1)>"
REPO = Path(__file__).parents[2]
#: Set to 1 to refresh the README's screenshot (docs/dashboard.png) from this test.
UPDATE_SCREENSHOT_ENV = "LIGHTNING_HPO_UPDATE_SCREENSHOT"


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    yield opened
    context.close()
    assert errors == [], errors


def drawn(page: Any, selector: str) -> None:
    """The chart in ``selector`` has drawn marks: plotly's SVG paths or its WebGL canvas."""
    page.wait_for_selector(f"{selector} .main-svg", timeout=15_000)
    marks = page.locator(f"{selector} .main-svg path.point, {selector} .main-svg path.js-line, {selector} canvas")
    assert marks.count() > 0, selector


def test_the_study_page_draws_its_charts_and_table(server: Server, db_url: str, page: Any, tmp_path: Path) -> None:
    study = fill_study("digits_mlp", db_url)
    page.goto(f"{server.url}/study?name=digits_mlp")
    page.wait_for_selector("#trials tbody tr", timeout=60_000)  # a first load takes long on a busy machine
    assert page.locator("#trials tbody tr").count() == len(study.trials)
    for chart in ("#history", "#curves", "#slice-0"):
        drawn(page, chart)
    # Parallel coordinates draw with WebGL, which plotly replaces by a notice where it cannot run
    # (or where the page's Content-Security-Policy forbids the `new Function` its shaders need).
    page.wait_for_selector("#parcoords canvas.gl-canvas-context", timeout=15_000)
    assert page.locator("#parcoords .no-webgl").count() == 0
    page.wait_for_selector("#importance .main-svg", timeout=60_000)
    assert "pruned" in page.locator("#curves").inner_text()
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=False)
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    if os.environ.get(UPDATE_SCREENSHOT_ENV) == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        page.screenshot(path=str(REPO / "docs" / "dashboard.png"), type="png")

    page.select_option("#state-filter", "FAIL")
    assert page.locator("#trials tbody tr").count() == 1
    page.select_option("#state-filter", "")
    page.click("#trials th[data-key='v0']")
    first = page.locator("#trials tbody tr").first.get_attribute("data-number")
    assert int(first) == study.best_trial.number

    page.click("#trials tbody tr[data-number='5'] a")
    page.wait_for_selector("#error", timeout=15_000)
    assert "ValueError: <b>diverged</b>" in page.inner_text("#error")
    assert "lightning-hpo export" in page.inner_text("#facts")


def test_an_injected_study_name_shows_as_text(server: Server, db_url: str, page: Any) -> None:
    fill_study(INJECTION, db_url, n_trials=3)
    page.goto(server.url)
    link = page.locator("#studies a.study-link")
    link.wait_for(timeout=15_000)
    assert link.inner_text() == INJECTION
    assert page.locator("main img").count() == 0
    link.click()
    page.wait_for_selector("#trials tbody tr", timeout=60_000)  # a first load takes long on a busy machine
    assert page.inner_text("#title") == INJECTION
    assert page.locator("main img").count() == 0
    page.goto(f"{server.url}/trial?study={urllib.parse.quote(INJECTION, safe='')}&number=0")
    page.wait_for_selector("#facts", timeout=15_000)
    assert page.locator("#back").inner_text() == f"study {INJECTION}"
    assert page.locator("main img").count() == 0


def test_a_trial_added_by_another_process_appears_live(server: Server, db_url: str, page: Any) -> None:
    fill_study("live", db_url, n_trials=4)
    page.goto(f"{server.url}/study?name=live")
    page.wait_for_selector("#trials tbody tr", timeout=60_000)  # a first load takes long on a busy machine
    before = page.locator("#trials tbody tr").count()
    running = page.locator("#trials tbody tr[data-number='4'] td[data-key='steps']").inner_text()
    script = (
        "from lightning_hpo import Study\n"
        "from tests.dashboard.conftest import SPACE\n"
        f"study = Study('live', search_space=SPACE, storage={db_url!r}, seed=1)\n"
        "study.report(4, 1, 2.0)\n"
        "study.report(4, 2, 1.5)\n"
        "study.report(study.ask(), 0, 4.0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)
    page.wait_for_selector(f"#trials tbody tr:nth-child({before + 1})", timeout=5_000)
    assert page.locator("#trials tbody tr[data-number='5'] td").nth(1).inner_text() == "RUNNING"
    page.wait_for_function(
        "document.querySelector(\"#trials tbody tr[data-number='4'] td[data-key='steps']\").textContent === '3'",
        timeout=5_000,
    )
    assert running == "1"


def test_a_study_with_two_objectives_draws_its_pareto_front_and_charts_either_objective(
    server: Server, db_url: str, page: Any
) -> None:
    from lightning_hpo import Float, RandomSampler, Study

    # Random points: the page is under test, not a multi-objective GP suggestion.
    sampler = RandomSampler(seed=0)
    study = Study("two", search_space={"x": Float(0.0, 1.0)}, mode=["min", "max"], storage=db_url, sampler=sampler)
    for _ in range(6):
        trial = study.ask()
        x = trial.params["x"]
        study.report(trial, 0, (x + 1.0, 5.0 - x))  # curves per objective: step 0 is (x + 1, 5 - x)
        study.tell(trial, (x, (1.0 - x) ** 2 + 0.1))
    page.goto(f"{server.url}/study?name=two")
    drawn(page, "#pareto")
    assert page.locator("#pareto .main-svg path.point").count() == len(study.trials)
    assert "trials on the Pareto front" in page.inner_text("#summary")
    drawn(page, "#history")
    assert "objective 0 (min)" in page.inner_text("#history")
    page.select_option("#objective", "1")
    page.wait_for_function("document.querySelector('#history').innerText.includes('objective 1 (max)')", timeout=10_000)
    for chart in ("#curves", "#slice-0"):
        assert "objective 1 (max)" in page.inner_text(chart), chart
    # The charts' points are objective 1's: the best so far of a maximized objective only grows.
    ys = page.evaluate("document.getElementById('history').data[0].y")
    assert sorted(ys) == sorted(t.values[1] for t in study.trials)
    curve = page.evaluate("document.getElementById('curves').data[0].y.filter((y) => y !== null)")
    assert sorted(curve) == sorted(5.0 - t.params["x"] for t in study.trials)
    page.wait_for_function(
        "document.querySelector('#importance').innerText.includes('objective 1 (max)')", timeout=60_000
    )
    assert page.locator("#pareto .main-svg path.point").count() == len(study.trials)


def test_a_trial_shows_where_it_came_from(server: Server, db_url: str, page: Any) -> None:
    from lightning_hpo.export import TRACKER_RUNS_ATTR

    source = fill_study("source", db_url, n_trials=3)
    study = fill_study("target", db_url, n_trials=2)
    study.enqueue({"lr": 0.01})
    enqueued = study.ask()
    study.tell(enqueued, 1.0)
    imported = study.add_trials_from(source)[0]
    stored = study.space.to_stored(enqueued.params)
    retry = study.storage.create_trial(study._study_id, worker="test:1", params=stored, retry_of=0)
    runs = ["mlflow: https://mlflow.example.org/#/experiments/1/runs/abc", f"wandb: javascript:alert(1) {INJECTION}"]
    study.storage.update_trial(enqueued.id, attrs={TRACKER_RUNS_ATTR: runs})

    page.goto(f"{server.url}/study?name=target")
    page.wait_for_selector(f"#trials tbody tr[data-number='{retry.number}']", timeout=60_000)
    origin = {
        n: page.inner_text(f"#trials tr[data-number='{n}'] td[data-key='origin']") for n in range(retry.number + 1)
    }
    assert origin[enqueued.number] == "enqueued, 2 tracker runs"
    assert origin[imported.number].startswith("imported from source#")
    assert origin[retry.number] == "retry of 0"
    assert origin[0] == ""

    page.goto(f"{server.url}/trial?study=target&number={enqueued.number}")
    page.wait_for_selector("#tracker-runs", timeout=15_000)
    assert "enqueued by Study.enqueue (given: lr)" in page.inner_text("#origin")
    links = page.locator("#tracker-runs a")
    assert links.count() == 1 and links.get_attribute("href") == runs[0].split(": ", 1)[1]
    assert runs[1] in page.inner_text("#tracker-runs") and page.locator("main img").count() == 0
    page.goto(f"{server.url}/trial?study=target&number={retry.number}")
    page.click("#retry-of")
    page.wait_for_selector("#facts", timeout=15_000)
    assert page.url.endswith("number=0") and page.inner_text("h1") == "Trial 0"
    page.goto(f"{server.url}/trial?study=target&number={imported.number}")
    page.click("#imported-from")
    page.wait_for_selector("#facts", timeout=15_000)
    assert "study=source" in page.url and page.inner_text("#back") == "study source"
