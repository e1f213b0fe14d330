"""lstmkit.regularizers: Keras 3's weight penalties, names and configs."""

import json
import math
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lstmkit import regularizers  # noqa: E402
from lstmkit.regularizers import L1, L1L2, L2, OrthogonalRegularizer, Regularizer  # noqa: E402

ATOL = 1e-6


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _array(shape, seed=0, scale=1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _keras_value(keras, reg, array) -> float:
    return float(keras.ops.convert_to_numpy(reg(keras.ops.convert_to_tensor(array))))


def _ours(reg, array) -> float:
    return float(reg(torch.from_numpy(array)))


# (our regularizer, Keras class name, Keras constructor kwargs)
_CASES = [
    (L1(), "L1", {}),
    (L1(0.3), "L1", {"l1": 0.3}),
    (L2(), "L2", {}),
    (L2(0.2), "L2", {"l2": 0.2}),
    (L1L2(), "L1L2", {}),
    (L1L2(l1=0.05), "L1L2", {"l1": 0.05}),
    (L1L2(l2=0.07), "L1L2", {"l2": 0.07}),
    (L1L2(0.01, 0.02), "L1L2", {"l1": 0.01, "l2": 0.02}),
    (OrthogonalRegularizer(), "OrthogonalRegularizer", {}),
    (
        OrthogonalRegularizer(0.4, "columns"),
        "OrthogonalRegularizer",
        {"factor": 0.4, "mode": "columns"},
    ),
]
CASES = [pytest.param(*case, id=repr(case[0])) for case in _CASES]
ELEMENTWISE = CASES[:8]
REGS = [pytest.param(case[0], id=repr(case[0])) for case in _CASES]
SHAPES = [(7, 5), (5, 7), (2, 2), (8, 32)]


@pytest.mark.keras
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ours,name,kwargs", CASES)
def test_matches_keras(keras, ours, name, kwargs, shape):
    theirs = getattr(keras.regularizers, name)(**kwargs)
    for seed, scale in [(0, 1.0), (1, 0.1), (2, 3.0)]:
        array = _array(shape, seed, scale)
        np.testing.assert_allclose(
            _ours(ours, array), _keras_value(keras, theirs, array), atol=ATOL, rtol=1e-6
        )


@pytest.mark.keras
@pytest.mark.parametrize("ours,name,kwargs", ELEMENTWISE)
def test_elementwise_penalties_match_keras_on_any_rank(keras, ours, name, kwargs):
    theirs = getattr(keras.regularizers, name)(**kwargs)
    for shape in [(6,), (3, 4, 5)]:
        array = _array(shape, seed=3)
        np.testing.assert_allclose(
            _ours(ours, array), _keras_value(keras, theirs, array), atol=ATOL, rtol=1e-6
        )


@pytest.mark.keras
@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_zero_vector_matches_keras(keras, mode):
    """A zero row/column is normalised against Keras's 1e-7 floor, not divided by zero."""
    array = _array((5, 4), seed=4)
    array[1, :] = 0.0
    array[:, 2] = 0.0
    theirs = keras.regularizers.OrthogonalRegularizer(0.5, mode)
    value = _ours(OrthogonalRegularizer(0.5, mode), array)
    assert math.isfinite(value)
    np.testing.assert_allclose(value, _keras_value(keras, theirs, array), atol=ATOL)


def test_orthogonal_is_zero_for_orthogonal_rows_and_the_factor_for_parallel_ones():
    assert float(OrthogonalRegularizer(0.3)(torch.eye(4))) == pytest.approx(0.0, abs=1e-7)
    same = torch.ones(3, 5)  # every pair of rows has cosine 1: the penalty is the factor
    assert float(OrthogonalRegularizer(0.3)(same)) == pytest.approx(0.3, rel=1e-6)
    assert float(OrthogonalRegularizer(0.3, "columns")(same.t())) == pytest.approx(0.3, rel=1e-6)
    assert float(OrthogonalRegularizer(0.3, "columns")(same)) == pytest.approx(0.3, rel=1e-6)


def test_formulas_by_hand():
    x = torch.tensor([[1.0, -2.0], [3.0, -4.0]])
    assert float(L1(0.5)(x)) == pytest.approx(5.0)
    assert float(L2(0.5)(x)) == pytest.approx(15.0)
    assert float(L1L2(0.5, 0.5)(x)) == pytest.approx(20.0)
    assert float(L1L2()(x)) == 0.0
    assert float(Regularizer()(x)) == 0.0


@pytest.mark.parametrize("reg", REGS)
def test_scalar_in_the_weights_dtype_and_differentiable(reg):
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    penalty = reg(w)
    assert penalty.shape == () and penalty.dtype == torch.float64
    if penalty.requires_grad:
        penalty.backward()
        assert w.grad is not None and torch.isfinite(w.grad).all()


@pytest.mark.keras
@pytest.mark.parametrize(
    "name", ["l1", "l2", "orthogonal_regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer"]
)
def test_names_give_keras_defaults(keras, name):
    ours, theirs = regularizers.get(name), keras.regularizers.get(name)
    assert type(ours).__name__ == type(theirs).__name__
    config, keras_config = ours.get_config(), theirs.get_config()
    assert config.keys() == keras_config.keys()
    for key, value in keras_config.items():  # Keras keeps some factors as float32
        assert config[key] == (
            pytest.approx(value, rel=1e-6) if isinstance(value, float) else value
        )
    array = _array((6, 4), seed=5)
    np.testing.assert_allclose(_ours(ours, array), _keras_value(keras, theirs, array), atol=ATOL)


def test_l1_l2_name_gives_the_documented_defaults():
    """Keras documents ``"l1_l2"`` as l1=0.01, l2=0.01 (Keras 3's own `get` rejects that name)."""
    assert regularizers.get("l1_l2") == L1L2(0.01, 0.01)
    assert regularizers.get("L1L2") == L1L2()  # the class name keeps the class defaults
    assert regularizers.get("l1") == L1(0.01)
    assert regularizers.get("l2") == L2(0.01)
    assert regularizers.get("orthogonal_regularizer") == OrthogonalRegularizer(0.01, "rows")


@pytest.mark.keras
def test_l1_l2_name_matches_keras_l1l2_with_documented_defaults(keras):
    array = _array((6, 4), seed=6)
    theirs = keras.regularizers.L1L2(l1=0.01, l2=0.01)
    np.testing.assert_allclose(
        _ours(regularizers.get("l1_l2"), array), _keras_value(keras, theirs, array), atol=ATOL
    )


@pytest.mark.keras
@pytest.mark.parametrize("ours,name,kwargs", CASES)
def test_reads_keras_serialized_configs(keras, ours, name, kwargs):
    config = keras.regularizers.serialize(getattr(keras.regularizers, name)(**kwargs))
    restored = regularizers.get(config)
    assert type(restored) is type(ours)
    array = _array((5, 3), seed=7)
    np.testing.assert_allclose(_ours(restored, array), _ours(ours, array), atol=ATOL)


@pytest.mark.parametrize("reg", [*REGS, pytest.param(regularizers.get("l1_l2"), id="l1_l2")])
def test_serialize_round_trips(reg):
    config = regularizers.serialize(reg)
    assert config["class_name"] == reg.keras_name
    assert regularizers.get(config) == reg
    assert regularizers.get(json.loads(json.dumps(config))) == reg


def test_serialize_uses_keras_names():
    assert regularizers.serialize(L1L2(0.1, 0.2)) == {
        "class_name": "l1_l2",
        "config": {"l1": 0.1, "l2": 0.2},
    }
    assert regularizers.serialize(OrthogonalRegularizer())["class_name"] == "orthogonal_regularizer"


def test_get_passes_none_and_instances_through():
    assert regularizers.get(None) is None
    reg = L2(0.3)
    assert regularizers.get(reg) is reg


@pytest.mark.parametrize("identifier", ["l3", "L1_L2", "", {"class_name": "nope"}, {}, 0.01])
def test_unknown_identifier_lists_known_names(identifier):
    with pytest.raises(ValueError, match="orthogonal_regularizer"):
        regularizers.get(identifier)


@pytest.mark.parametrize(
    "make,arg",
    [
        (lambda: L1(-0.1), "l1"),
        (lambda: L2(-1), "l2"),
        (lambda: L1L2(l1=-0.1), "l1"),
        (lambda: L1L2(l2=float("nan")), "l2"),
        (lambda: L1(float("inf")), "l1"),
        (lambda: L2("0.1"), "l2"),
        (lambda: OrthogonalRegularizer(-0.01), "factor"),
        (lambda: OrthogonalRegularizer(mode="diagonal"), "mode"),
        (lambda: regularizers.get({"class_name": "l1", "config": {"l1": -1.0}}), "l1"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


def test_orthogonal_needs_a_matrix_with_two_vectors():
    with pytest.raises(ValueError, match="2D"):
        OrthogonalRegularizer()(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="at least 2 rows"):
        OrthogonalRegularizer()(torch.ones(1, 4))
    with pytest.raises(ValueError, match="at least 2 columns"):
        OrthogonalRegularizer(mode="columns")(torch.ones(4, 1))


def test_none_factors_mean_the_keras_defaults():
    assert L1(None) == L1(0.01)
    assert L2(None) == L2(0.01)
    assert L1L2(None, None) == L1L2(0.0, 0.0)
