"""Keras 3 (torch backend) as the oracle for masking, go_backwards, stateful layers, dropout at
inference and regularizer losses, with the same weights (atol 1e-5)."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from lstmkit.layers import LSTM  # noqa: E402

pytestmark = pytest.mark.keras
B, T, D, H = 3, 6, 4, 5


def to_numpy(t):
    return keras.ops.convert_to_numpy(t) if not isinstance(t, torch.Tensor) else t.detach().numpy()


def pair(**kwargs):
    """A Keras LSTM and an lstmkit LSTM with the same config and the same random weights."""
    rng = np.random.default_rng(0)
    theirs = keras.layers.LSTM(H, **kwargs)
    theirs.build((B, T, D))
    theirs.set_weights(
        [rng.normal(scale=0.4, size=w.shape).astype("float32") for w in theirs.get_weights()]
    )
    ours = LSTM(H, **kwargs)
    ours.build((B, T, D))
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def inputs(seed=1):
    return np.random.default_rng(seed).normal(size=(B, T, D)).astype("float32")


def assert_same(theirs, ours):
    if isinstance(ours, tuple):
        assert len(theirs) == len(ours)
        for a, b in zip(theirs, ours, strict=True):
            np.testing.assert_allclose(to_numpy(b), to_numpy(a), atol=1e-5)
    else:
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), atol=1e-5)


MASKS = {
    "pre_padding": np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1]], bool),
    "post_padding": np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]], bool),
    "fully_masked_row": np.array([[1, 1, 1, 0, 0, 0], [0] * 6, [1] * 6], bool),
}


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masks_match_keras(mask, return_sequences, go_backwards):
    kwargs = dict(return_sequences=return_sequences, return_state=True, go_backwards=go_backwards)
    theirs, ours = pair(**kwargs)
    x, m = inputs(), MASKS[mask]
    assert_same(theirs(x, mask=m), ours(x, mask=m))


def test_zero_output_for_mask_matches_keras():
    theirs, ours = pair(return_sequences=True, zero_output_for_mask=True)
    x, m = inputs(), MASKS["post_padding"]
    assert_same(theirs(x, mask=m), ours(x, mask=m))


@pytest.mark.parametrize("return_sequences", [False, True])
def test_go_backwards_matches_keras(return_sequences):
    theirs, ours = pair(go_backwards=True, return_sequences=return_sequences)
    assert_same(theirs(inputs()), ours(inputs()))


def test_initial_state_with_mask_matches_keras():
    theirs, ours = pair(return_state=True)
    rng = np.random.default_rng(5)
    state = [rng.normal(size=(B, H)).astype("float32") for _ in range(2)]
    x, m = inputs(), MASKS["fully_masked_row"]
    assert_same(theirs(x, initial_state=state, mask=m), ours(x, initial_state=state, mask=m))


def test_stateful_matches_keras_over_batches_and_after_reset():
    theirs, ours = pair(stateful=True, return_sequences=True)
    for seed in (1, 2, 3):
        assert_same(theirs(inputs(seed)), ours(inputs(seed)))
    theirs.reset_states()
    ours.reset_states()
    assert_same(theirs(inputs(4)), ours(inputs(4)))


def test_dropout_and_recurrent_dropout_are_inactive_at_inference_like_keras():
    theirs, ours = pair(dropout=0.4, recurrent_dropout=0.4, return_sequences=True)
    assert_same(theirs(inputs(), training=False), ours(inputs(), training=False))
    assert_same(theirs(inputs()), ours(inputs()))  # default: inference in both


def test_stacked_layers_match_keras():
    rng = np.random.default_rng(3)
    theirs = keras.Sequential(
        [keras.Input((T, D)), keras.layers.LSTM(H, return_sequences=True), keras.layers.LSTM(2)]
    )
    theirs.set_weights(
        [rng.normal(scale=0.4, size=w.shape).astype("float32") for w in theirs.get_weights()]
    )
    from lstmkit.models import Sequential

    ours = Sequential([LSTM(H, return_sequences=True, input_shape=(T, D)), LSTM(2)])
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(
        ours.predict(inputs(), verbose=0), theirs.predict(inputs(), verbose=0), atol=1e-5
    )


def test_regularizer_losses_match_keras():
    kwargs = dict(
        kernel_regularizer=keras.regularizers.L2(0.01),
        recurrent_regularizer=keras.regularizers.L1(0.02),
        bias_regularizer=keras.regularizers.L1L2(0.01, 0.03),
        activity_regularizer=keras.regularizers.L2(0.05),
    )
    rng = np.random.default_rng(0)
    theirs = keras.layers.LSTM(H, **kwargs)
    theirs.build((B, T, D))
    theirs.set_weights([rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()])
    ours = LSTM(
        H,
        kernel_regularizer={"class_name": "l2", "config": {"l2": 0.01}},
        recurrent_regularizer={"class_name": "l1", "config": {"l1": 0.02}},
        bias_regularizer={"class_name": "l1_l2", "config": {"l1": 0.01, "l2": 0.03}},
        activity_regularizer={"class_name": "l2", "config": {"l2": 0.05}},
    )
    ours.build((B, T, D))
    ours.set_weights(theirs.get_weights())
    theirs(inputs())
    ours(inputs())
    expected = sum(float(to_numpy(v)) for v in theirs.losses)
    assert sum(v.item() for v in ours.losses) == pytest.approx(expected, rel=1e-5)


def test_streaming_one_step_at_a_time_matches_keras_and_the_whole_sequence():
    """``Input(batch_shape=...)`` + a stateful LSTM fed one step per predict_on_batch call."""
    from lstmkit.layers import LSTM as OurLSTM
    from lstmkit.layers import Dense, Input
    from lstmkit.models import Sequential

    theirs = keras.Sequential([
        keras.Input(batch_shape=(B, 1, D)),
        keras.layers.LSTM(H, stateful=True),
        keras.layers.Dense(2, activation="softmax"),
    ])  # fmt: skip
    rng = np.random.default_rng(5)
    theirs.set_weights(
        [rng.normal(scale=0.4, size=w.shape).astype("float32") for w in theirs.get_weights()]
    )
    streaming = [Input(batch_shape=(B, 1, D)), OurLSTM(H, stateful=True), Dense(2, "softmax")]
    ours = Sequential(streaming)
    ours.set_weights(theirs.get_weights())
    x = inputs()
    for t in range(T):
        step = x[:, t : t + 1]
        np.testing.assert_allclose(
            ours.predict_on_batch(step), to_numpy(theirs.predict_on_batch(step)), atol=1e-5
        )
    whole = Sequential([Input((T, D)), OurLSTM(H), Dense(2, "softmax")])
    whole.set_weights(theirs.get_weights())
    ours.layers[0].reset_states()
    for t in range(T):
        last = ours.predict_on_batch(x[:, t : t + 1])
    np.testing.assert_allclose(last, whole.predict(x, verbose=0), atol=1e-5)


def test_input_batch_shape_is_keras_batch_size_and_shape():
    from lstmkit.layers import Input

    assert Input(batch_shape=(4, 7, 3)).shape == Input((7, 3), batch_size=4).shape == (4, 7, 3)
    with pytest.raises(ValueError, match="either batch_shape, or shape"):
        Input((7, 3), batch_shape=(4, 7, 3))
    with pytest.raises(ValueError, match="needs its shape"):
        Input()
