"""lstmkit's core layers (Dense, Activation, Flatten, Dropout) against Keras 3 (torch backend)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

keras = pytest.importorskip("keras")

from lstmkit.layers import Activation, Dense, Dropout, Flatten  # noqa: E402

pytestmark = pytest.mark.keras

ATOL = 1e-5
RTOL = 1e-5

# every activation name lstmkit knows; Keras 3 resolves each of them too
ALL_ACTIVATIONS = [
    "linear",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "relu",
    "relu6",
    "elu",
    "selu",
    "gelu",
    "softplus",
    "softsign",
    "swish",
    "silu",
    "hard_silu",
    "hard_swish",
    "mish",
    "exponential",
    "softmax",
    "log_softmax",
]


def to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(x))


def assert_close(actual, expected):
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=RTOL)


def make_dense_pair(units, input_dim, seed=0, **config):
    rng = np.random.default_rng(seed)
    k_layer = keras.layers.Dense(units, **config)
    k_layer.build((None, input_dim))
    weights = [rng.uniform(-1.0, 1.0, (input_dim, units)).astype(np.float32)]
    if config.get("use_bias", True):
        weights.append(rng.normal(0.0, 1.0, (units,)).astype(np.float32))
    k_layer.set_weights(weights)
    layer = Dense(units, **config)
    layer.build((None, input_dim))
    k_weights = k_layer.get_weights()
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in k_weights]
    layer.set_weights(k_weights)
    return k_layer, layer


def random_input(shape, seed=1, scale=1.0):
    return (np.random.default_rng(seed).normal(0.0, scale, shape)).astype(np.float32)


@pytest.mark.parametrize("shape", [(4, 5), (3, 7, 5), (2, 3, 4, 5)], ids=["2d", "3d", "4d"])
@pytest.mark.parametrize("activation", [None, "linear", "relu", "softmax", "sigmoid", "tanh"])
def test_dense_matches_keras(activation, shape):
    k_layer, layer = make_dense_pair(6, shape[-1], activation=activation)
    x = random_input(shape)
    out = layer(x)
    assert isinstance(out, torch.Tensor)
    assert tuple(out.shape) == (*shape[:-1], 6)
    assert_close(out, k_layer(x))


@pytest.mark.parametrize("shape", [(4, 5), (3, 7, 5)], ids=["2d", "3d"])
@pytest.mark.parametrize("activation", [None, "relu", "softmax"])
def test_dense_without_bias_matches_keras(activation, shape):
    k_layer, layer = make_dense_pair(6, shape[-1], activation=activation, use_bias=False, seed=2)
    assert len(layer.get_weights()) == 1
    assert layer.count_params() == k_layer.count_params() == shape[-1] * 6
    x = random_input(shape, seed=3)
    assert_close(layer(x), k_layer(x))


def test_dense_softmax_acts_on_last_axis_of_3d_input():
    k_layer, layer = make_dense_pair(4, 3, activation="softmax", seed=4)
    x = random_input((2, 5, 3), seed=5)
    out = to_numpy(layer(x))
    np.testing.assert_allclose(out.sum(axis=-1), np.ones((2, 5)), atol=1e-6)
    assert_close(out, k_layer(x))


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_dense_every_activation_matches_keras(activation):
    k_layer, layer = make_dense_pair(5, 4, activation=activation, seed=6)
    x = random_input((3, 4), seed=7, scale=0.5)
    assert_close(layer(x), k_layer(x))


def test_dense_weights_shapes_order_and_count_match_keras():
    k_layer = keras.layers.Dense(7)
    k_layer.build((None, 3))
    layer = Dense(7)
    layer.build((None, 3))
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in k_layer.get_weights()]
    assert [w.shape for w in layer.get_weights()] == [(3, 7), (7,)]
    assert layer.count_params() == k_layer.count_params() == 28
    # default bias is zeros, as in Keras
    np.testing.assert_array_equal(layer.get_weights()[1], k_layer.get_weights()[1])


@pytest.mark.parametrize("shape", [(None, 5), (None, 7, 5), (None, None, 5), (None, 2, 3, 5)])
def test_dense_compute_output_shape_matches_keras(shape):
    assert tuple(Dense(6).compute_output_shape(shape)) == tuple(
        keras.layers.Dense(6).compute_output_shape(shape)
    )


def test_dense_lazy_build_on_first_call():
    layer = Dense(3)
    assert not layer.built
    out = layer(random_input((2, 4)))
    assert layer.built
    assert tuple(out.shape) == (2, 3)
    assert layer.get_weights()[0].shape == (4, 3)


# -- Activation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_activation_layer_matches_keras(activation):
    x = random_input((3, 4, 5), seed=8, scale=2.0)
    out = Activation(activation)(x)
    assert isinstance(out, torch.Tensor)
    assert_close(out, keras.layers.Activation(activation)(x))


def test_activation_layer_wide_range_matches_keras():
    """Saturating regions too (hard_sigmoid at +-3, softplus for large inputs, relu6 at 6)."""
    x = np.linspace(-25.0, 25.0, 101, dtype=np.float32).reshape(1, -1)
    for name in ["hard_sigmoid", "relu6", "softplus", "sigmoid", "tanh", "softsign", "elu", "selu"]:
        assert_close(Activation(name)(x), keras.layers.Activation(name)(x))


# -- Flatten ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 5), (3, 4, 5), (2, 3, 4, 5), (2, 1, 1, 1)])
def test_flatten_matches_keras(shape):
    x = random_input(shape, seed=9)
    out = Flatten()(x)
    assert isinstance(out, torch.Tensor)
    assert_close(out, keras.layers.Flatten()(x))


@pytest.mark.parametrize(
    "shape", [(None, 5), (None, 4, 5), (None, 2, 3, 4), (None, None, 5), (3, 4, 5), (None,)]
)
def test_flatten_compute_output_shape_matches_keras(shape):
    assert tuple(Flatten().compute_output_shape(shape)) == tuple(
        keras.layers.Flatten().compute_output_shape(shape)
    )


def test_flatten_keeps_row_major_order_like_keras():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(to_numpy(Flatten()(x)), x.reshape(2, 12))
    assert_close(Flatten()(x), keras.layers.Flatten()(x))


# -- Dropout ------------------------------------------------------------------------------------


def test_dropout_in_inference_mode_is_identity_like_keras():
    x = random_input((4, 6), seed=10)
    layer = Dropout(0.5)
    layer.eval()
    assert_close(layer(x), keras.layers.Dropout(0.5)(x, training=False))
    assert_close(layer(x), x)


def test_dropout_called_without_training_flag_is_identity_like_keras():
    """Keras runs a layer in inference mode unless told training=True (or inside fit)."""
    x = random_input((4, 6), seed=11)
    assert_close(keras.layers.Dropout(0.5)(x), x)  # the oracle
    assert_close(Dropout(0.5)(x), x)


def test_dropout_in_training_mode_zeros_and_rescales():
    x = np.ones((200, 50), np.float32)
    layer = Dropout(0.25)
    layer.train()
    out = to_numpy(layer(x))
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1.0 / 0.75, rtol=1e-6)
    assert 0.2 < 1.0 - kept.mean() < 0.3
