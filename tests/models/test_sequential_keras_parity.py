"""lstmkit's Sequential against keras.Sequential (torch backend): params, shapes, outputs."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

keras = pytest.importorskip("keras")

from lstmkit.layers import LSTM, Dense, Dropout, Flatten, Input  # noqa: E402
from lstmkit.models import Sequential  # noqa: E402

pytestmark = pytest.mark.keras

ATOL = 1e-5
RTOL = 1e-5


def to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(x))


def random_weights_like(weights, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-scale, scale, w.shape).astype(np.float32) for w in weights]


def random_input(shape, seed=1):
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(np.float32)


# -- (a) the seed model: LSTM(128, input_shape=(T, D)) -> Dense(10, softmax) ----------------------


def seed_models(T, D, use_add=False):
    if use_add:
        model = Sequential()
        model.add(LSTM(units=128, input_shape=(T, D)))
        model.add(Dense(units=10, activation="softmax"))
    else:
        model = Sequential([LSTM(128, input_shape=(T, D)), Dense(10, activation="softmax")])
    k_model = keras.Sequential(
        [keras.Input((T, D)), keras.layers.LSTM(128), keras.layers.Dense(10, activation="softmax")]
    )
    return model, k_model


@pytest.mark.parametrize("use_add", [False, True], ids=["list", "add"])
@pytest.mark.parametrize("T,D", [(28, 28), (10, 3), (1, 1)])
def test_seed_model_param_counts_match_keras(T, D, use_add):
    model, k_model = seed_models(T, D, use_add)
    assert model.built
    assert model.count_params() == k_model.count_params()
    assert model.count_params() == 4 * 128 * (D + 128 + 1) + 128 * 10 + 10
    assert len(model.layers) == len(k_model.layers) == 2
    for layer, k_layer in zip(model.layers, k_model.layers, strict=True):
        assert layer.count_params() == k_layer.count_params()
        assert [w.shape for w in layer.get_weights()] == [w.shape for w in k_layer.get_weights()]
    assert [w.shape for w in model.get_weights()] == [w.shape for w in k_model.get_weights()]


@pytest.mark.parametrize("T,D", [(28, 28), (10, 3)])
def test_seed_model_output_shapes_match_keras(T, D):
    model, k_model = seed_models(T, D)
    shapes = [tuple(s) for s in model.layer_output_shapes()]
    assert shapes == [(None, 128), (None, 10)]
    assert shapes == [tuple(layer.output.shape) for layer in k_model.layers]
    assert shapes == [
        tuple(k_layer.compute_output_shape(shape))
        for k_layer, shape in zip(k_model.layers, [(None, T, D), (None, 128)], strict=True)
    ]
    assert tuple(model.output_shape) == tuple(k_model.output_shape)
    assert tuple(model.input_shape) == tuple(k_model.input_shape) == (None, T, D)


def test_seed_model_with_input_layer_matches_keras():
    model = Sequential([Input((6, 4)), LSTM(128), Dense(10, activation="softmax")])
    _, k_model = seed_models(6, 4)
    assert model.built
    assert model.count_params() == k_model.count_params()
    assert len(model.layers) == 2  # the Input is not a layer, as in Keras
    assert [tuple(s) for s in model.layer_output_shapes()] == [
        tuple(layer.output.shape) for layer in k_model.layers
    ]


def test_seed_model_predictions_match_keras():
    T, D = 5, 3
    model, k_model = seed_models(T, D)
    k_model.set_weights(random_weights_like(k_model.get_weights(), seed=2))
    model.set_weights(k_model.get_weights())
    x = random_input((4, T, D), seed=3)
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, to_numpy(k_model.predict(x, verbose=0)), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(out.sum(axis=-1), np.ones(4), atol=1e-5)


# -- (b) stacked LSTMs with copied weights give the same predictions -------------------------------


def stacked_models(T, D, with_dropout=False):
    middle = [Dropout(0.5)] if with_dropout else []
    k_middle = [keras.layers.Dropout(0.5)] if with_dropout else []
    model = Sequential(
        [LSTM(16, return_sequences=True, input_shape=(T, D)), *middle, LSTM(8), Dense(3)]
    )
    k_model = keras.Sequential(
        [
            keras.Input((T, D)),
            keras.layers.LSTM(16, return_sequences=True),
            *k_middle,
            keras.layers.LSTM(8),
            keras.layers.Dense(3),
        ]
    )
    return model, k_model


@pytest.mark.parametrize("with_dropout", [False, True], ids=["plain", "dropout"])
def test_stacked_lstm_predict_matches_keras_layer_by_layer(with_dropout):
    T, D, B = 6, 4, 5
    model, k_model = stacked_models(T, D, with_dropout)
    assert [layer.count_params() for layer in model.layers] == [
        layer.count_params() for layer in k_model.layers
    ]
    for seed, (layer, k_layer) in enumerate(zip(model.layers, k_model.layers, strict=True)):
        k_layer.set_weights(random_weights_like(k_layer.get_weights(), seed=10 + seed))
        layer.set_weights(k_layer.get_weights())
    x = random_input((B, T, D), seed=4)
    expected = to_numpy(k_model.predict(x, verbose=0))
    out = model.predict(x, verbose=0)
    assert isinstance(out, np.ndarray)
    assert out.shape == expected.shape == (B, 3)
    np.testing.assert_allclose(out, expected, atol=ATOL, rtol=RTOL)
    # predict in several batches gives the same
    np.testing.assert_allclose(
        model.predict(x, batch_size=2, verbose=0), expected, atol=ATOL, rtol=RTOL
    )


def test_stacked_lstm_output_shapes_match_keras():
    model, k_model = stacked_models(6, 4)
    assert [tuple(s) for s in model.layer_output_shapes()] == [
        tuple(layer.output.shape) for layer in k_model.layers
    ]
    assert [tuple(s) for s in model.layer_output_shapes()] == [(None, 6, 16), (None, 8), (None, 3)]


def test_flatten_after_sequences_matches_keras():
    T, D, B = 4, 3, 2
    model = Sequential([LSTM(5, return_sequences=True, input_shape=(T, D)), Flatten(), Dense(2)])
    k_model = keras.Sequential(
        [
            keras.Input((T, D)),
            keras.layers.LSTM(5, return_sequences=True),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    assert [tuple(s) for s in model.layer_output_shapes()] == [
        tuple(layer.output.shape) for layer in k_model.layers
    ]
    assert model.count_params() == k_model.count_params()
    k_model.set_weights(random_weights_like(k_model.get_weights(), seed=5))
    model.set_weights(k_model.get_weights())
    x = random_input((B, T, D), seed=6)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), to_numpy(k_model.predict(x, verbose=0)), atol=ATOL, rtol=RTOL
    )


# -- (c) whole-model weight lists are in the same order --------------------------------------------


def test_model_set_weights_from_keras_model_directly():
    T, D, B = 6, 4, 3
    model, k_model = stacked_models(T, D)
    k_model.set_weights(random_weights_like(k_model.get_weights(), seed=7))
    k_weights = k_model.get_weights()
    assert [w.shape for w in model.get_weights()] == [w.shape for w in k_weights]
    model.set_weights(k_weights)
    for mine, theirs in zip(model.get_weights(), k_weights, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    # and the layers hold them in Keras's per-layer order
    offset = 0
    for layer, k_layer in zip(model.layers, k_model.layers, strict=True):
        n = len(k_layer.get_weights())
        for mine, theirs in zip(layer.get_weights(), k_weights[offset : offset + n], strict=True):
            np.testing.assert_array_equal(mine, theirs)
        offset += n
    x = random_input((B, T, D), seed=8)
    np.testing.assert_allclose(
        to_numpy(model(torch.from_numpy(x))), to_numpy(k_model(x)), atol=ATOL, rtol=RTOL
    )


def test_keras_model_set_weights_from_lstmkit_model():
    T, D, B = 6, 4, 3
    torch.manual_seed(0)
    model, k_model = stacked_models(T, D)
    k_model.set_weights(model.get_weights())
    x = random_input((B, T, D), seed=9)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), to_numpy(k_model.predict(x, verbose=0)), atol=ATOL, rtol=RTOL
    )


def test_model_set_weights_rejects_a_wrong_list():
    model, k_model = stacked_models(6, 4)
    weights = k_model.get_weights()
    with pytest.raises(ValueError):
        model.set_weights(weights[:-1])
    with pytest.raises(ValueError):
        model.set_weights([*weights[:-1], np.zeros((4,), np.float32)])


def test_lazily_built_model_has_keras_weight_shapes():
    T, D = 6, 4
    model = Sequential([LSTM(16, return_sequences=True), LSTM(8), Dense(3)])
    assert not model.built
    _, k_model = stacked_models(T, D)
    model.predict(random_input((2, T, D)), verbose=0)
    assert [w.shape for w in model.get_weights()] == [w.shape for w in k_model.get_weights()]
    assert model.count_params() == k_model.count_params()


# -- (d) summary --------------------------------------------------------------------------------


def keras_summary_text(k_model):
    lines = []
    k_model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    return "\n".join(lines)


def test_summary_matches_keras_summary():
    T, D = 28, 28
    model = Sequential(
        [LSTM(128, input_shape=(T, D), name="lstm_a"), Dense(10, activation="softmax", name="out")],
        name="seed",
    )
    k_model = keras.Sequential(
        [
            keras.Input((T, D)),
            keras.layers.LSTM(128, name="lstm_a"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ],
        name="seed",
    )
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    k_text = keras_summary_text(k_model)
    total = k_model.count_params()
    for needle in [
        '"seed"',
        "lstm_a (LSTM)",
        "out (Dense)",
        "(None, 128)",
        "(None, 10)",
        f"{model.layers[0].count_params():,}",
        f"{model.layers[1].count_params():,}",
        f"Total params: {total:,}",
        f"Trainable params: {total:,}",
        "Non-trainable params: 0",
    ]:
        assert needle in k_text  # the oracle says the same
        assert needle in text, f"{needle!r} missing from lstmkit's summary:\n{text}"


def test_summary_prints_to_stdout(capsys):
    model, k_model = stacked_models(6, 4)
    result = model.summary()
    assert result is None
    text = capsys.readouterr().out
    for layer in model.layers:
        assert f"{layer.name} ({type(layer).__name__})" in text
    for shape in ["(None, 6, 16)", "(None, 8)", "(None, 3)"]:
        assert shape in text
    assert f"Total params: {k_model.count_params():,}" in text


def test_summary_of_trainable_false_layer_matches_keras():
    model, k_model = stacked_models(6, 4)
    model.layers[0].trainable = False
    k_model.layers[0].trainable = False
    frozen = k_model.layers[0].count_params()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    k_text = keras_summary_text(k_model)
    for needle in [
        f"Total params: {k_model.count_params():,}",
        f"Trainable params: {k_model.count_params() - frozen:,}",
        f"Non-trainable params: {frozen:,}",
    ]:
        assert needle in k_text
        assert needle in text
