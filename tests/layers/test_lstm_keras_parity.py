"""lstmkit's LSTM against Keras 3's LSTM (torch backend) with the same weights and inputs."""

import math
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

keras = pytest.importorskip("keras")

from lstmkit.layers import LSTM  # noqa: E402

pytestmark = pytest.mark.keras

ATOL = 1e-5
RTOL = 1e-5


def to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(x))


def random_weights(rng, input_dim, units, use_bias=True, scale=0.5):
    """Non-default weights: uniform kernels and a normal (non-trivial) bias."""
    weights = [
        rng.uniform(-scale, scale, (input_dim, 4 * units)).astype(np.float32),
        rng.uniform(-scale, scale, (units, 4 * units)).astype(np.float32),
    ]
    if use_bias:
        weights.append(rng.normal(0.0, scale, (4 * units,)).astype(np.float32))
    return weights


def make_pair(units, input_shape, seed=0, scale=0.5, **config):
    """A Keras LSTM with random weights and an lstmkit LSTM holding a copy of them."""
    rng = np.random.default_rng(seed)
    k_layer = keras.layers.LSTM(units, **config)
    k_layer.build(input_shape)
    k_layer.set_weights(
        random_weights(rng, input_shape[-1], units, config.get("use_bias", True), scale)
    )
    layer = LSTM(units, **config)
    layer.build(input_shape)
    k_weights = k_layer.get_weights()
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in k_weights]
    layer.set_weights(k_weights)
    for mine, theirs in zip(layer.get_weights(), k_weights, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    return k_layer, layer


def random_input(batch, steps, features, seed=1):
    return np.random.default_rng(seed).normal(0.0, 1.0, (batch, steps, features)).astype(np.float32)


def assert_close(actual, expected):
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_output_matches_keras(return_sequences):
    B, T, D, H = 3, 7, 5, 6
    k_layer, layer = make_pair(H, (None, T, D), return_sequences=return_sequences)
    x = random_input(B, T, D)
    out = layer(x)
    assert isinstance(out, torch.Tensor)
    assert tuple(out.shape) == ((B, T, H) if return_sequences else (B, H))
    assert_close(out, k_layer(x))


@pytest.mark.parametrize("return_sequences", [False, True])
def test_return_state_matches_keras(return_sequences):
    B, T, D, H = 3, 7, 5, 6
    k_layer, layer = make_pair(
        H, (None, T, D), return_sequences=return_sequences, return_state=True, seed=2
    )
    x = random_input(B, T, D, seed=3)
    result = layer(x)
    assert isinstance(result, tuple) and len(result) == 3
    expected = k_layer(x)
    assert len(expected) == 3
    for mine, theirs in zip(result, expected, strict=True):
        assert_close(mine, theirs)
    # the final h is the last output
    out, h, _ = result
    assert_close(out[:, -1] if return_sequences else out, h)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_initial_state_matches_keras(return_sequences):
    B, T, D, H = 3, 7, 5, 6
    k_layer, layer = make_pair(
        H, (None, T, D), return_sequences=return_sequences, return_state=True, seed=4
    )
    x = random_input(B, T, D, seed=5)
    rng = np.random.default_rng(6)
    h0 = rng.normal(0.0, 1.0, (B, H)).astype(np.float32)
    c0 = rng.normal(0.0, 1.0, (B, H)).astype(np.float32)
    result = layer(x, initial_state=[h0, c0])
    expected = k_layer(x, initial_state=[h0, c0])
    for mine, theirs in zip(result, expected, strict=True):
        assert_close(mine, theirs)
    # the initial state matters: starting from zeros gives something else
    zero_start = to_numpy(layer(x)[0])
    assert not np.allclose(zero_start, to_numpy(result[0]), atol=1e-3)


def test_initial_state_as_tensors_matches_keras():
    B, T, D, H = 2, 4, 3, 5
    k_layer, layer = make_pair(H, (None, T, D), seed=7)
    x = random_input(B, T, D, seed=8)
    rng = np.random.default_rng(9)
    h0 = rng.normal(size=(B, H)).astype(np.float32)
    c0 = rng.normal(size=(B, H)).astype(np.float32)
    out = layer(torch.from_numpy(x), initial_state=[torch.from_numpy(h0), torch.from_numpy(c0)])
    assert_close(out, k_layer(x, initial_state=[h0, c0]))


@pytest.mark.parametrize("return_sequences", [False, True])
def test_no_bias_matches_keras(return_sequences):
    B, T, D, H = 3, 7, 5, 6
    k_layer, layer = make_pair(
        H, (None, T, D), use_bias=False, return_sequences=return_sequences, seed=10
    )
    assert len(layer.get_weights()) == 2
    assert layer.count_params() == k_layer.count_params() == 4 * H * (D + H)
    x = random_input(B, T, D, seed=11)
    assert_close(layer(x), k_layer(x))


@pytest.mark.parametrize("recurrent_activation", ["sigmoid", "hard_sigmoid", "tanh"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear", "softsign"])
def test_activation_pairs_match_keras(activation, recurrent_activation):
    B, T, D, H = 3, 7, 5, 6
    k_layer, layer = make_pair(
        H,
        (None, T, D),
        activation=activation,
        recurrent_activation=recurrent_activation,
        return_sequences=True,
        return_state=True,
        seed=12,
        scale=0.4,
    )
    x = random_input(B, T, D, seed=13)
    for mine, theirs in zip(layer(x), k_layer(x), strict=True):
        assert_close(mine, theirs)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_single_timestep_matches_keras(return_sequences):
    B, T, D, H = 3, 1, 5, 6
    k_layer, layer = make_pair(
        H, (None, T, D), return_sequences=return_sequences, return_state=True, seed=14
    )
    x = random_input(B, T, D, seed=15)
    result = layer(x)
    assert tuple(result[0].shape) == ((B, 1, H) if return_sequences else (B, H))
    for mine, theirs in zip(result, k_layer(x), strict=True):
        assert_close(mine, theirs)


def test_batch_of_one_and_lazy_build_match_keras():
    """Built on the first call (no explicit build), batch 1, odd sizes."""
    T, D, H = 7, 5, 6
    rng = np.random.default_rng(16)
    k_layer = keras.layers.LSTM(H, return_sequences=True)
    k_layer.build((None, T, D))
    k_layer.set_weights(random_weights(rng, D, H))
    layer = LSTM(H, return_sequences=True)
    x = random_input(1, T, D, seed=17)
    layer(x)  # builds lazily with the default initializers
    layer.set_weights(k_layer.get_weights())
    assert_close(layer(x), k_layer(x))


def test_default_weights_run_identically_in_keras():
    """The other direction: lstmkit's default-initialised weights loaded into Keras."""
    B, T, D, H = 3, 7, 5, 6
    torch.manual_seed(0)
    layer = LSTM(H, return_sequences=True)
    layer.build((None, T, D))
    k_layer = keras.layers.LSTM(H, return_sequences=True)
    k_layer.build((None, T, D))
    k_layer.set_weights(layer.get_weights())
    x = random_input(B, T, D, seed=18)
    assert_close(layer(x), k_layer(x))


def test_get_weights_order_and_shapes_match_keras():
    D, H = 5, 6
    k_layer = keras.layers.LSTM(H)
    k_layer.build((None, 7, D))
    layer = LSTM(H)
    layer.build((None, 7, D))
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in k_layer.get_weights()]
    assert [w.shape for w in layer.get_weights()] == [(D, 4 * H), (H, 4 * H), (4 * H,)]
    assert layer.count_params() == k_layer.count_params()
    assert all(w.dtype == np.float32 for w in layer.get_weights())


# -- default initialisation, checked against the same properties of Keras's own weights ----------


def _check_default_init(kernel, recurrent_kernel, bias, input_dim, units):
    H = units
    assert kernel.shape == (input_dim, 4 * H)
    assert recurrent_kernel.shape == (H, 4 * H)
    assert bias.shape == (4 * H,)
    # unit_forget_bias: zeros everywhere except ones in the forget block [H:2H]
    expected_bias = np.zeros(4 * H, np.float32)
    expected_bias[H : 2 * H] = 1.0
    np.testing.assert_array_equal(bias, expected_bias)
    # orthogonal (H, 4H): the rows are orthonormal
    np.testing.assert_allclose(recurrent_kernel @ recurrent_kernel.T, np.eye(H), atol=1e-5)
    # glorot_uniform on (D, 4H): uniform in [-limit, limit], limit = sqrt(6 / (fan_in + fan_out))
    limit = math.sqrt(6.0 / (input_dim + 4 * H))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit
    # the variance of U(-limit, limit) is limit^2 / 3; over n draws the sample mean's spread
    # is limit / sqrt(3n), the sample deviation's about sqrt(0.2 / n) of itself: within five
    # spreads (a 10% bound failed about once in a hundred runs at n = 120)
    n = kernel.size
    np.testing.assert_allclose(kernel.std(), limit / math.sqrt(3.0), rtol=5 * math.sqrt(0.2 / n))
    assert abs(kernel.mean()) < 5 * limit / math.sqrt(3 * n)


@pytest.mark.parametrize("input_dim,units", [(64, 32), (5, 6), (40, 3)])
def test_default_initialisation_matches_keras_semantics(input_dim, units):
    k_layer = keras.layers.LSTM(units)
    k_layer.build((None, 4, input_dim))
    _check_default_init(*k_layer.get_weights(), input_dim, units)  # the oracle itself

    layer = LSTM(units)
    layer.build((None, 4, input_dim))
    _check_default_init(*layer.get_weights(), input_dim, units)


def test_unit_forget_bias_false_gives_zero_bias_like_keras():
    H = 6
    k_layer = keras.layers.LSTM(H, unit_forget_bias=False)
    k_layer.build((None, 3, 4))
    layer = LSTM(H, unit_forget_bias=False)
    layer.build((None, 3, 4))
    np.testing.assert_array_equal(layer.get_weights()[2], k_layer.get_weights()[2])
    np.testing.assert_array_equal(layer.get_weights()[2], np.zeros(4 * H, np.float32))


def test_unit_forget_bias_with_other_bias_initializer_like_keras():
    """Keras: bias = concat(init(H), ones(H), init(2H)); the forget block is exactly ones."""
    H = 4
    k_layer = keras.layers.LSTM(H, bias_initializer="ones")
    k_layer.build((None, 3, 2))
    layer = LSTM(H, bias_initializer="ones")
    layer.build((None, 3, 2))
    np.testing.assert_array_equal(layer.get_weights()[2], k_layer.get_weights()[2])
    k_layer = keras.layers.LSTM(H, bias_initializer="zeros", unit_forget_bias=True)
    k_layer.build((None, 3, 2))
    np.testing.assert_array_equal(k_layer.get_weights()[2][H : 2 * H], np.ones(H, np.float32))


def test_default_initialisation_is_random():
    layer_a, layer_b = LSTM(6), LSTM(6)
    layer_a.build((None, 3, 5))
    layer_b.build((None, 3, 5))
    assert not np.array_equal(layer_a.get_weights()[0], layer_b.get_weights()[0])
    assert not np.array_equal(layer_a.get_weights()[1], layer_b.get_weights()[1])


def test_compute_output_shape_matches_keras():
    for config in (
        {},
        {"return_sequences": True},
        {"return_state": True},
        {"return_sequences": True, "return_state": True},
    ):
        k_layer = keras.layers.LSTM(6, **config)
        layer = LSTM(6, **config)
        shape = (None, 7, 5)
        expected = k_layer.compute_output_shape(shape)
        actual = layer.compute_output_shape(shape)
        if config.get("return_state"):
            assert [tuple(s) for s in actual] == [tuple(s) for s in expected]
        else:
            assert tuple(actual) == tuple(expected)
