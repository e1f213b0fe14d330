"""A mask that reaches the model output leaves padded steps out of the loss and the metrics,
as Keras 3 does (Keras on the torch backend is the oracle, same weights)."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from lstmkit.layers import LSTM, Dense, Masking  # noqa: E402
from lstmkit.models import Sequential  # noqa: E402

pytestmark = pytest.mark.keras


def test_padded_steps_do_not_count_in_loss_or_metrics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 3)).astype("float32")
    x[0, 3:] = 0.0  # post-padded
    x[1, :2] = 0.0  # pre-padded
    y = rng.normal(size=(4, 5, 1)).astype("float32")
    theirs = keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.Masking(0.0),
            keras.layers.LSTM(4, return_sequences=True),
            keras.layers.Dense(1),
        ]
    )
    theirs.compile(loss="mse", metrics=["mae"])
    ours = Sequential([Masking(0.0, input_shape=(5, 3)), LSTM(4, return_sequences=True), Dense(1)])
    ours.compile(loss="mse", metrics=["mae"])
    ours.set_weights(theirs.get_weights())
    expected = theirs.evaluate(x, y, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, verbose=0, return_dict=True)
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert got["mae"] == pytest.approx(expected["mae"], rel=1e-5)
    # and the padded targets really are ignored: changing them changes nothing
    y[0, 3:] = 100.0
    assert ours.evaluate(x, y, verbose=0, return_dict=True)["loss"] == pytest.approx(got["loss"])
