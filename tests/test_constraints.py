"""lstmkit.constraints: Keras 3's weight projections, names and configs."""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lstmkit import constraints  # noqa: E402
from lstmkit.constraints import Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm  # noqa: E402

ATOL = 1e-6


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _array(shape, seed=0, scale=1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _keras_out(keras, constraint, array) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(constraint(keras.ops.convert_to_tensor(array))))


def _ours(constraint, array) -> np.ndarray:
    return constraint(torch.from_numpy(array)).numpy()


# (our constraint, Keras class name, Keras constructor kwargs)
_CASES = [
    (MaxNorm(), "MaxNorm", {}),
    (MaxNorm(0.5, axis=1), "MaxNorm", {"max_value": 0.5, "axis": 1}),
    (MaxNorm(1.5, axis=-1), "MaxNorm", {"max_value": 1.5, "axis": -1}),
    (NonNeg(), "NonNeg", {}),
    (UnitNorm(), "UnitNorm", {}),
    (UnitNorm(axis=1), "UnitNorm", {"axis": 1}),
    (MinMaxNorm(), "MinMaxNorm", {}),
    (MinMaxNorm(0.5, 1.5), "MinMaxNorm", {"min_value": 0.5, "max_value": 1.5}),
    (
        MinMaxNorm(1.0, 2.0, rate=0.3, axis=1),
        "MinMaxNorm",
        {"min_value": 1.0, "max_value": 2.0, "rate": 0.3, "axis": 1},
    ),
]
CASES = [pytest.param(*case, id=repr(case[0])) for case in _CASES]
CONSTRAINTS = [pytest.param(case[0], id=repr(case[0])) for case in _CASES]
# the scales put the column/row norms below, inside and above the bounds above
SCALES = [(0, 0.05), (1, 0.3), (2, 1.0), (3, 4.0)]


@pytest.mark.keras
@pytest.mark.parametrize("shape", [(7, 5), (5, 7), (3, 16)])
@pytest.mark.parametrize("ours,name,kwargs", CASES)
def test_matches_keras(keras, ours, name, kwargs, shape):
    theirs = getattr(keras.constraints, name)(**kwargs)
    for seed, scale in SCALES:
        array = _array(shape, seed, scale)
        np.testing.assert_allclose(
            _ours(ours, array), _keras_out(keras, theirs, array), atol=ATOL, rtol=1e-6
        )


@pytest.mark.keras
@pytest.mark.parametrize(
    "ours,name,kwargs",
    [
        pytest.param(MaxNorm(1.0, [0, 1]), "MaxNorm", {"max_value": 1.0, "axis": [0, 1]}, id="max"),
        pytest.param(UnitNorm((0, 1)), "UnitNorm", {"axis": (0, 1)}, id="unit"),
        pytest.param(
            MinMaxNorm(0.5, 1.0, 0.5, [0, 1]),
            "MinMaxNorm",
            {"min_value": 0.5, "rate": 0.5, "axis": [0, 1]},
            id="min_max",
        ),
    ],
)
def test_matches_keras_on_conv_like_weights_with_several_axes(keras, ours, name, kwargs):
    """A (rows, cols, in, out) kernel with ``axis=[0, 1]``: norms over the spatial dims."""
    theirs = getattr(keras.constraints, name)(**kwargs)
    for seed, scale in SCALES:
        array = _array((3, 2, 4, 5), seed, scale)
        np.testing.assert_allclose(
            _ours(ours, array), _keras_out(keras, theirs, array), atol=ATOL, rtol=1e-6
        )


@pytest.mark.keras
@pytest.mark.parametrize("ours,name,kwargs", CASES)
def test_zero_columns_stay_zero_like_keras(keras, ours, name, kwargs):
    array = _array((4, 3), seed=5)
    array[:, 1] = 0.0
    array[2, :] = 0.0
    theirs = getattr(keras.constraints, name)(**kwargs)
    out = _ours(ours, array)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, _keras_out(keras, theirs, array), atol=ATOL)


def test_axis_0_constrains_each_units_incoming_weights():
    """Kernels are (input_dim, units): axis=0 norms are one per unit (column)."""
    w = torch.randn(6, 4) * 3
    assert torch.allclose(UnitNorm()(w).norm(dim=0), torch.ones(4), atol=1e-5)
    assert (MaxNorm(0.5)(w).norm(dim=0) <= 0.5 + 1e-6).all()
    norms = MinMaxNorm(1.0, 2.0)(w * 0.01).norm(dim=0)
    assert torch.allclose(norms, torch.ones(4), atol=1e-5)
    small = torch.full((6, 4), 0.01)
    assert torch.allclose(MaxNorm()(small), small, atol=1e-7)


@pytest.mark.parametrize("constraint", [*CONSTRAINTS, pytest.param(Constraint(), id="base")])
def test_pure_returns_a_new_tensor(constraint):
    w = torch.randn(5, 4) * 3
    before = w.clone()
    out = constraint(w)
    assert torch.equal(w, before)
    assert out.shape == w.shape and out.dtype == w.dtype
    assert out.data_ptr() != w.data_ptr()
    out.add_(1.0)
    assert torch.equal(w, before)


def test_base_constraint_changes_nothing():
    w = torch.randn(3, 2)
    assert torch.equal(Constraint()(w), w)


@pytest.mark.keras
@pytest.mark.parametrize(
    "name",
    [
        "max_norm",
        "non_neg",
        "unit_norm",
        "min_max_norm",
        "MaxNorm",
        "NonNeg",
        "UnitNorm",
        "MinMaxNorm",
    ],
)
def test_names_give_keras_defaults(keras, name):
    ours, theirs = constraints.get(name), keras.constraints.get(name)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.get_config() == theirs.get_config()
    array = _array((6, 4), seed=6, scale=2.0)
    np.testing.assert_allclose(_ours(ours, array), _keras_out(keras, theirs, array), atol=ATOL)


@pytest.mark.keras
@pytest.mark.parametrize("ours,name,kwargs", CASES)
def test_reads_keras_serialized_configs(keras, ours, name, kwargs):
    config = keras.constraints.serialize(getattr(keras.constraints, name)(**kwargs))
    assert constraints.get(config) == ours


@pytest.mark.parametrize("constraint", CONSTRAINTS)
def test_serialize_round_trips(constraint):
    config = constraints.serialize(constraint)
    assert config["class_name"] == constraint.keras_name
    assert constraints.get(config) == constraint
    assert constraints.get(json.loads(json.dumps(config))) == constraint


def test_serialize_uses_keras_names():
    assert constraints.serialize(MaxNorm(3, axis=1)) == {
        "class_name": "max_norm",
        "config": {"max_value": 3, "axis": 1},
    }
    assert constraints.serialize(NonNeg()) == {"class_name": "non_neg", "config": {}}
    assert constraints.serialize(UnitNorm())["class_name"] == "unit_norm"
    assert constraints.serialize(MinMaxNorm())["class_name"] == "min_max_norm"


def test_get_passes_none_and_instances_through():
    assert constraints.get(None) is None
    constraint = MaxNorm(3)
    assert constraints.get(constraint) is constraint


@pytest.mark.parametrize("identifier", ["max", "maxnorm", "", {"class_name": "nope"}, {}, 2])
def test_unknown_identifier_lists_known_names(identifier):
    with pytest.raises(ValueError, match="min_max_norm"):
        constraints.get(identifier)


@pytest.mark.parametrize(
    "make,arg",
    [
        (lambda: MaxNorm(-1.0), "max_value"),
        (lambda: MaxNorm(float("nan")), "max_value"),
        (lambda: MaxNorm("2"), "max_value"),
        (lambda: MaxNorm(axis=0.5), "axis"),
        (lambda: UnitNorm(axis="rows"), "axis"),
        (lambda: UnitNorm(axis=[]), "axis"),
        (lambda: MinMaxNorm(min_value=-0.1), "min_value"),
        (lambda: MinMaxNorm(min_value=2.0, max_value=1.0), "min_value"),
        (lambda: MinMaxNorm(rate=-0.5), "rate"),
        (lambda: MinMaxNorm(rate=float("inf")), "rate"),
        (lambda: constraints.get({"class_name": "max_norm", "config": {"max_value": -2}}), "max"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()
