"""The YAHPO surrogates of benchmarks/tasks/yahpo.py: the same values as yahpo-gym itself, and the
held-out pool's draw, tasks and runner group.

``data/yahpo_gym_outputs.json`` holds what ``yahpo_gym.BenchmarkSet(scenario).objective_function``
(yahpo-gym 1.0.2, in a venv of its own: it pins numpy<2 and ConfigSpace 0.6.1) returned for
ConfigSpace samples of three pool instances of each scenario, at full fidelity.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.tasks import POOL2_TASKS, POOL_TASKS, TASK_BUILDERS, build_task, yahpo
from lightning_hpo import SearchSpace

REFERENCE_OUTPUTS = Path(__file__).parent / "data" / "yahpo_gym_outputs.json"


@pytest.fixture(autouse=True)
def _needs_data() -> None:
    if not all((yahpo.data_dir() / name / "model.onnx").is_file() for name in yahpo.SCENARIOS):
        pytest.skip(f"no YAHPO data at {yahpo.data_dir()}")  # the data cannot ship in the repository


@pytest.mark.parametrize("key", sorted(json.loads(REFERENCE_OUTPUTS.read_text())))
def test_surrogate_values_are_yahpo_gyms(key: str) -> None:
    scenario_name, instance = key.split("|")
    reference = json.loads(REFERENCE_OUTPUTS.read_text())[key]
    scenario = yahpo.SCENARIOS[scenario_name]
    model = yahpo.YahpoSurrogate(yahpo.data_dir(), scenario, instance)
    losses = model.losses(reference["configs"])
    np.testing.assert_array_equal(losses, scenario.loss(np.array(reference["outputs"], dtype=np.float64)))


def test_pool_is_the_seeded_draw_and_every_task_is_registered() -> None:
    assert yahpo.draw_pool(yahpo.data_dir()) == yahpo.POOL_INSTANCES
    assert yahpo.INSTANCE not in yahpo.POOL_INSTANCES[yahpo.SCENARIO]  # the default suite's task is not held out
    assert len(POOL_TASKS) == sum(yahpo.POOL_SIZES.values()) == 40
    assert set(POOL_TASKS) <= set(TASK_BUILDERS)


def test_second_pool_is_its_seeded_draw_from_the_instances_the_first_left() -> None:
    drawn = yahpo.draw_pool(yahpo.data_dir(), yahpo.POOL2_SIZES, yahpo.POOL2_DRAW_SEED, yahpo.POOL_INSTANCES)
    assert drawn == yahpo.POOL2_INSTANCES
    for scenario, instances in yahpo.POOL2_INSTANCES.items():
        assert not set(instances) & set(yahpo.POOL_INSTANCES.get(scenario, ()))
    assert yahpo.INSTANCE not in yahpo.POOL2_INSTANCES[yahpo.SCENARIO]
    assert len(POOL2_TASKS) == len(set(POOL2_TASKS)) == 40
    assert set(POOL2_TASKS) <= set(TASK_BUILDERS) and not set(POOL2_TASKS) & set(POOL_TASKS)


@pytest.mark.parametrize(
    "name",
    [
        "pool_rpart_3",
        "pool_xgboost_50",
        "pool_lcbench_146212",
        "pool_glmnet_1067",
        "pool2_xgboost_12",
        "pool2_lcbench_3945",
    ],
)
def test_pool_task_is_deterministic_and_its_reference_beats_random_search(name: str) -> None:
    task = build_task(name)
    space = SearchSpace(task.space)
    points = np.random.default_rng(0).random((200, len(space))).tolist()
    first, again = task.make_objective(0), task.make_objective(1)
    values = [first(space.decode(p)) for p in points]
    assert all(v.observed == v.true == again(space.decode(p)).true for v, p in zip(values, points, strict=True))
    losses = np.array([v.true for v in values])
    assert 0.0 <= losses.min() < np.median(losses) <= 1.0
    model = yahpo.YahpoSurrogate(yahpo.data_dir(), yahpo.SCENARIOS[_scenario(name)], name.rsplit("_", 1)[1])
    assert yahpo.dense_search(model, 500) <= losses.min()


def _scenario(task_name: str) -> str:
    short = task_name.split("_")[1]
    return next(name for name in yahpo.SCENARIOS if name.endswith(short))


def test_pool_group_runs_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.__main__ import main

    assert main(["--list"]) == 0
    printed = capsys.readouterr().out
    assert f"(--tasks pool): {', '.join(POOL_TASKS)}" in printed
    assert f"(--tasks pool2): {', '.join(POOL2_TASKS)}" in printed
    results = tmp_path / "POOL.md"
    code = main(
        ["--tasks", "pool_glmnet_1067", "--samplers", "lhpo_random", "--seeds", "2", "--budget", "4"]
        + ["--no-timing", "--out", str(tmp_path / "out"), "--results", str(results)]
    )
    assert code == 0 and "pool_glmnet_1067" in results.read_text()
