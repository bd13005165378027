from __future__ import annotations

import json
import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_hpo import Categorical, Float, Int, SearchSpace
from lightning_hpo.exceptions import ArgumentTypeError, InvalidArgumentError
from lightning_hpo.samplers._gp_space import GPSpace


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: Float(1.0, 1.0), InvalidArgumentError, "`low < high` must hold, but got (low=1.0, high=1.0)"),
        (lambda: Float(2.0, 1.0), InvalidArgumentError, "`low < high` must hold"),
        (lambda: Float(0.0, 1.0, log=True), InvalidArgumentError, "`low > 0` must hold when log=True, but got low=0.0"),
        (lambda: Float(-1.0, 1.0, log=True), InvalidArgumentError, "`low > 0`"),
        (lambda: Float(float("nan"), 1.0), InvalidArgumentError, "`low` must be a finite float, but got nan"),
        (lambda: Float(0.0, float("inf")), InvalidArgumentError, "`high` must be a finite float"),
        (lambda: Float("0", 1.0), ArgumentTypeError, "`low` must be a real number, but got '0' (str)"),
        (lambda: Float(True, 2.0), ArgumentTypeError, "`low` must be a real number"),
        (lambda: Float(0.0, 1.0, log=1), ArgumentTypeError, "`log` must be True or False"),
        (lambda: Int(1, 1), InvalidArgumentError, "`low < high` must hold, but got (low=1, high=1)"),
        (lambda: Int(1.0, 3), ArgumentTypeError, "`low` must be an int, but got 1.0 (float)"),
        (lambda: Int(0, 10, step=0), InvalidArgumentError, "`step >= 1` must hold, but got step=0"),
        (
            lambda: Int(0, 10, step=3),
            InvalidArgumentError,
            "multiple of `step`, but got (low=0, high=10, step=3); use high=9",
        ),
        (lambda: Int(1, 10, log=True, step=3), InvalidArgumentError, "`step` must be 1 when log=True"),
        (lambda: Int(0, 10, log=True), InvalidArgumentError, "`low >= 1` must hold when log=True, but got low=0"),
        (lambda: Categorical([]), InvalidArgumentError, "at least one value"),
        (lambda: Categorical("abc"), ArgumentTypeError, "must be a list or tuple of values, but got 'abc'"),
        (
            lambda: Categorical(["a", "a"]),
            InvalidArgumentError,
            "choices must be distinct, but 'a' and 'a' compare equal",
        ),
        (lambda: Categorical([1, True]), InvalidArgumentError, "1 and True compare equal"),
        (lambda: Categorical([[1], [2]]), ArgumentTypeError, "every choice must be hashable, but got [1] (list)"),
        (lambda: Categorical([float("nan")]), InvalidArgumentError, "must equal itself"),
        (lambda: SearchSpace({}), InvalidArgumentError, "at least one parameter"),
        (lambda: SearchSpace({"x": (0, 1)}), ArgumentTypeError, "Parameter 'x': expected a Float, Int or Categorical"),
        (lambda: SearchSpace({"": Float(0, 1)}), InvalidArgumentError, "non-empty strings"),
        (lambda: SearchSpace([("x", Float(0, 1))]), ArgumentTypeError, "must be a mapping"),
    ],
)
def test_invalid_domains_say_rule_and_value(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


def test_numpy_and_tensor_bounds_and_choices_are_python_values():
    """``Int(1, np.max(sizes))`` and ``Categorical(np.logspace(...))`` build the domain they say."""
    import numpy as np

    assert Float(np.float32(0.5), np.float64(2.0), log=True) == Float(0.5, 2.0, log=True)
    assert Int(np.int64(1), torch.tensor(64), log=True) == Int(1, 64, log=True)
    assert Int(0, 10, step=np.int64(2)).to_json() == Int(0, 10, step=2).to_json()
    assert type(Int(np.int64(1), 8).low) is int
    assert Categorical(np.logspace(-3, -1, 3)).choices == (0.001, 0.01, 0.1)
    assert Categorical([np.int64(16), np.str_("a"), np.bool_(True)]).choices == (16, "a", True)
    with pytest.raises(ArgumentTypeError, match="`low` must be an int, but got 1.0"):
        Int(np.float64(1.0), 5)
    with pytest.raises(ArgumentTypeError, match="must be a real number"):
        Float(np.array([1.0]), 2.0)


def test_domains_are_immutable_hashable_and_pickle():
    for domain in (Float(1e-5, 1e-1, log=True), Int(0, 10, step=2), Categorical(["a", (1, 2), None])):
        with pytest.raises(AttributeError):
            domain.low = 3  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(domain)) == domain
        assert hash(pickle.loads(pickle.dumps(domain))) == hash(domain)
    assert Int(0, 10, step=2).step == 2 and Float(1.0, 2.0).log is False
    assert Categorical(["a", "b"]).choices == ("a", "b")


SPACE = SearchSpace(
    {
        "lr": Float(1e-5, 1e-1, log=True),
        "momentum": Float(0.0, 0.99),
        "layers": Int(1, 4),
        "hidden": Int(8, 1024, log=True),
        "batch": Int(16, 256, step=16),
        "opt": Categorical(["adam", "sgd", None, (1, 2)]),
    }
)


@pytest.mark.parametrize(
    "params",
    [
        {"lr": 1e-5, "momentum": 0.0, "layers": 1, "hidden": 8, "batch": 16, "opt": "adam"},
        {"lr": 1e-1, "momentum": 0.99, "layers": 4, "hidden": 1024, "batch": 256, "opt": (1, 2)},
        {"lr": 3e-4, "momentum": 0.5, "layers": 2, "hidden": 100, "batch": 128, "opt": None},
    ],
)
def test_encode_decode_round_trip_including_edges(params):
    point = SPACE.encode(params)
    assert all(0.0 <= u <= 1.0 for u in point)
    decoded = SPACE.decode(point)
    for name in ("layers", "hidden", "batch", "opt"):
        assert decoded[name] == params[name]
    for name in ("lr", "momentum"):
        assert math.isclose(decoded[name], params[name], rel_tol=1e-12, abs_tol=1e-15)
    assert SPACE.decode([0.0] * len(SPACE))["lr"] == 1e-5  # edges exact
    assert SPACE.decode([1.0] * len(SPACE))["lr"] == 1e-1


def test_columns_are_in_sorted_name_order():
    assert SPACE.names == ("batch", "hidden", "layers", "lr", "momentum", "opt")


def test_ints_and_categoricals_get_equal_shares_of_the_cube():
    counts = {v: 0 for v in range(1, 5)}
    choices = {c: 0 for c in ("a", "b", "c")}
    for i in range(1200):
        u = (i + 0.5) / 1200
        counts[Int(1, 4).decode(u)] += 1
        choices[Categorical(["a", "b", "c"]).decode(u)] += 1
    assert set(counts.values()) == {300}
    assert set(choices.values()) == {400}


def test_log_int_covers_every_value_and_clips_out_of_cube_points():
    domain = Int(1, 1000, log=True)
    assert {domain.decode(k / 10000) for k in range(10001)} >= {1, 2, 3, 999, 1000}
    assert domain.decode(-0.5) == 1 and domain.decode(1.7) == 1000
    with pytest.raises(InvalidArgumentError):
        domain.decode(float("nan"))


def test_stored_form_keeps_choices_by_index_and_comes_back():
    stored = SPACE.to_stored({"lr": 1e-3, "momentum": 0.1, "layers": 2, "hidden": 64, "batch": 32, "opt": (1, 2)})
    assert stored["opt"] == 3
    assert SPACE.from_stored(stored)["opt"] == (1, 2)


def test_check_params_names_missing_unknown_and_out_of_domain():
    with pytest.raises(InvalidArgumentError, match=r"missing=\['x'\] and unknown=\['y'\]"):
        SearchSpace({"x": Float(0, 1)}).check_params({"y": 0.5})
    with pytest.raises(InvalidArgumentError, match=r"Parameter 'x': 2 is not in Int\(0, 1\)"):
        SearchSpace({"x": Int(0, 1)}).check_params({"x": 2})
    with pytest.raises(InvalidArgumentError, match="is not in Int"):
        SearchSpace({"x": Int(0, 4, step=2)}).check_params({"x": 1})


def test_json_round_trip_and_fingerprint():
    stored = json.loads(json.dumps(SPACE.to_json()))
    assert json.dumps(stored, sort_keys=True) == SPACE.fingerprint()
    again = SearchSpace.from_json(stored)
    assert again["opt"].choices[3] == "(1, 2)"  # a non-JSON choice comes back as its repr, for display
    assert again["lr"] == SPACE["lr"] and again["batch"] == SPACE["batch"]
    assert SearchSpace({"x": Float(0, 1)}) == {"x": Float(0, 1)}
    assert SearchSpace({"x": Float(0, 1)}).fingerprint() != SearchSpace({"x": Float(0, 2)}).fingerprint()


@st.composite
def domains(draw):
    kind = draw(st.sampled_from(["float", "logfloat", "int", "logint", "stepint", "cat"]))
    if kind == "float":
        low = draw(st.floats(-1e6, 1e6))
        return Float(low, low + draw(st.floats(1e-6, 1e6)))
    if kind == "logfloat":
        low = draw(st.floats(1e-8, 1e3))
        return Float(low, low * draw(st.floats(1.001, 1e6)), log=True)
    if kind == "int":
        low = draw(st.integers(-(10**6), 10**6))
        return Int(low, low + draw(st.integers(1, 10**6)))
    if kind == "logint":
        low = draw(st.integers(1, 10**4))
        return Int(low, low + draw(st.integers(1, 10**6)), log=True)
    if kind == "stepint":
        low, step = draw(st.integers(-1000, 1000)), draw(st.integers(1, 50))
        return Int(low, low + step * draw(st.integers(1, 100)), step=step)
    return Categorical(
        draw(
            st.lists(st.one_of(st.text(max_size=5), st.integers()), min_size=1, max_size=8, unique_by=repr).filter(
                lambda cs: all(a != b for i, a in enumerate(cs) for b in cs[i + 1 :])
            )
        )
    )


@settings(max_examples=400, deadline=None)
@given(domain=domains(), u=st.floats(0.0, 1.0))
def test_decode_is_total_and_encode_inverts_it(domain, u):
    value = domain.decode(u)
    assert domain.contains(value)
    again = domain.decode(domain.encode(value))
    if isinstance(domain, Float):
        assert math.isclose(again, value, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, abs(domain.high - domain.low)))
    else:
        assert again == value


@st.composite
def conditional_spaces(draw):
    """A space of 1-7 parameters where each may depend on earlier Categorical or Int ones (chains included)."""
    names = [f"p{i}" for i in range(draw(st.integers(1, 7)))]
    domains_by_name = {}
    for name in names:
        domain = draw(domains())
        parents = [p for p in domains_by_name if not isinstance(domains_by_name[p], Float)]
        chosen = draw(st.lists(st.sampled_from(parents), max_size=2, unique=True)) if parents else []
        when = {}
        for parent in chosen:
            parent_domain = domains_by_name[parent]
            values = (
                parent_domain.choices
                if isinstance(parent_domain, Categorical)
                else [parent_domain.low, parent_domain.high]
            )
            when[parent] = draw(st.lists(st.sampled_from(list(values)), min_size=1, max_size=3, unique_by=repr))
        domains_by_name[name] = domain.with_when(when or None)
    return SearchSpace(domains_by_name)


@settings(max_examples=120, deadline=None)
@given(space=conditional_spaces(), data=st.data())
def test_conditional_decode_gives_exactly_the_active_parameters(space, data):
    point = data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(space), max_size=len(space)))
    params = space.decode(point)
    space.check_params(params)  # exactly the active names, every value in its domain
    assert space.is_complete(params)
    for name, domain in space.items():
        parents_hold = all(
            p in params and space[p].to_stored(params[p]) in {space[p].to_stored(v) for v in vs}
            for p, vs in domain.when.items()
        )
        assert (name in params) == parents_hold
    encoded = space.encode(params)
    assert [math.isnan(u) for u in encoded] == [name not in params for name in space]
    assert space.decode([0.5 if math.isnan(u) else u for u in encoded]).keys() == params.keys()
    assert space.from_stored(space.to_stored(params)).keys() == params.keys()
    assert SearchSpace.from_json(json.loads(json.dumps(space.to_json()))).fingerprint() == space.fingerprint()
    # The GP's view agrees on which columns are active (grid and choice indices of the parents).
    gp_space = GPSpace(space)
    X = gp_space.from_unit(torch.tensor([encoded], dtype=torch.float64))
    assert gp_space.active_mask(X)[0].tolist() == [name in params for name in space]
    assert not X.isnan().any()
