"""Bad inputs to compile / fit / evaluate / predict and to the layers raise clear errors.

Each error must say what was expected, so the user can fix the call without reading the source.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lstmkit.layers import LSTM, Dense
from lstmkit.models import Sequential
from lstmkit.utils import set_random_seed

N, T, F, C = 20, 6, 2, 3


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, T, F)).astype("float32")


@pytest.fixture
def labels() -> np.ndarray:
    return np.arange(N) % C


@pytest.fixture
def y(labels) -> np.ndarray:
    return np.eye(C, dtype="float32")[labels]


def make_model(out: int = C, activation: str | None = "softmax", built: bool = True) -> Sequential:
    set_random_seed(0)
    lstm = LSTM(4, input_shape=(T, F)) if built else LSTM(4)
    return Sequential([lstm, Dense(out, activation=activation)])


def compiled(loss: str = "categorical_crossentropy", **kwargs) -> Sequential:
    model = make_model(**kwargs)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


# -- input shapes -------------------------------------------------------------------------
@pytest.mark.parametrize("built", [True, False], ids=["built", "unbuilt"])
def test_2d_x_into_lstm_model(built, x, y):
    model = make_model(built=built)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, timesteps, "):
        model.fit(x[:, :, 0], y, verbose=0)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, timesteps, "):
        model.predict(x[:, :, 0], verbose=0)


def test_wrong_feature_size(x, y):
    model = compiled()
    wide = np.zeros((N, T, F + 2), dtype="float32")
    with pytest.raises(ValueError, match=rf"expects input of shape \(batch, timesteps, {F}\)"):
        model.fit(wide, y, verbose=0)
    with pytest.raises(ValueError, match=rf"\(batch, timesteps, {F}\)"):
        model.evaluate(wide, y, verbose=0)
    with pytest.raises(ValueError, match=rf"\(batch, timesteps, {F}\)"):
        model.predict(wide, verbose=0)


def test_x_y_length_mismatch(x, y):
    model = compiled()
    with pytest.raises(ValueError, match=r"same number of samples.*20.*19"):
        model.fit(x, y[:-1], verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        model.evaluate(x, y[:-1], verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        model.train_on_batch(x, y[:-1])
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit(x, y, validation_data=(x, y[:5]), verbose=0)


def test_empty_x(x, y):
    with pytest.raises(ValueError, match="at least one sample"):
        compiled().fit(x[:0], y[:0], verbose=0)


# -- non-finite values --------------------------------------------------------------------
def test_nan_in_x_names_the_sample(x, y):
    x[7, 3, 1] = np.nan
    model = compiled()
    with pytest.raises(ValueError, match=r"x contains NaN.*sample 7"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"x contains NaN.*sample 7"):
        model.evaluate(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"sample 7"):
        model.predict(x, verbose=0)


def test_inf_in_x_names_the_sample(x, y):
    x[4, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"infinite.*sample 4"):
        compiled().fit(x, y, verbose=0)


def test_nan_in_y(x, y):
    y[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"y contains NaN.*sample 2"):
        compiled().fit(x, y, verbose=0)


def test_nan_in_validation_data(x, y):
    x_val = x[:6].copy()
    x_val[2, 1, 0] = np.nan
    model = compiled()
    with pytest.raises(ValueError, match=r"x_val contains NaN.*sample 2"):
        model.fit(x, y, validation_data=(x_val, y[:6]), verbose=0)
    before = model.get_weights()
    loader = DataLoader(
        TensorDataset(torch.from_numpy(x_val), torch.from_numpy(y[:6])), batch_size=6
    )
    with pytest.raises(ValueError, match=r"NaN"):
        model.fit(x, y, validation_data=loader, verbose=0)
    # checked before training starts: no weight was updated
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_nan_in_dataloader_names_the_right_sample(x, y):
    # the NaN is in dataset sample 5 = batch 1, row 1 (batch size 4): "sample 1" alone would
    # send the user to the wrong sample, so the message must name the sample or the batch.
    x[5, 0, 0] = np.nan
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=4)
    with pytest.raises(ValueError, match=r"NaN") as info:
        compiled().fit(loader, verbose=0)
    message = str(info.value)
    assert "sample 5" in message or "batch 1" in message, message


def test_nan_in_sample_weight(x, y):
    # x and y are checked for NaN; a NaN weight would silently turn the loss into NaN.
    weights = np.ones(N, dtype="float32")
    weights[3] = np.nan
    with pytest.raises(ValueError, match=r"sample_weight.*(NaN|finite)"):
        compiled().fit(x, y, sample_weight=weights, verbose=0)


# -- compile arguments --------------------------------------------------------------------
def test_unknown_loss_alias():
    with pytest.raises(ValueError, match=r"Unknown loss 'crossentropy'.*categorical_crossentropy"):
        make_model().compile(optimizer="adam", loss="crossentropy")


def test_missing_loss():
    with pytest.raises(ValueError, match="needs a loss"):
        make_model().compile(optimizer="adam")


def test_unknown_optimizer_alias():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamax'.*'adam'"):
        make_model().compile(optimizer="adamax", loss="mse")


def test_unknown_metric_alias():
    with pytest.raises(ValueError, match=r"Unknown metric 'f1'.*'accuracy'"):
        make_model().compile(optimizer="adam", loss="mse", metrics=["f1"])


def test_metrics_as_plain_string():
    with pytest.raises(ValueError, match=r"list of names.*\['accuracy'\]"):
        make_model().compile(optimizer="adam", loss="mse", metrics="accuracy")


def test_fit_before_compile(x, y):
    model = make_model()
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y, verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        model.evaluate(x, y, verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        model.train_on_batch(x, y)


# -- targets vs. loss ---------------------------------------------------------------------
def test_integer_labels_with_categorical_crossentropy(x, labels):
    model = compiled("categorical_crossentropy")
    hint = r"one-hot.*sparse_categorical_crossentropy.*to_categorical"
    with pytest.raises(ValueError, match=hint):
        model.fit(x, labels, verbose=0)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.evaluate(x, labels, verbose=0)


def test_integer_validation_labels_with_categorical_crossentropy(x, y, labels):
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        compiled().fit(x, y, validation_data=(x, labels), verbose=0)


def test_one_hot_labels_with_sparse_categorical_crossentropy(x, y):
    with pytest.raises(ValueError, match=r"integer labels.*one-hot targets need categorical_cross"):
        compiled("sparse_categorical_crossentropy").fit(x, y, verbose=0)


@pytest.mark.parametrize("shift", [1, -1], ids=["too_large", "negative"])
def test_sparse_labels_out_of_range(x, labels, shift):
    with pytest.raises(ValueError, match=rf"labels in \[0, {C}\)"):
        compiled("sparse_categorical_crossentropy").fit(x, labels + shift, verbose=0)


def test_fractional_sparse_labels(x, labels):
    with pytest.raises(ValueError, match="integer class labels"):
        compiled("sparse_categorical_crossentropy").fit(x, labels + 0.5, verbose=0)


@pytest.mark.parametrize("targets", [[0.0, 2.0], [-1.0, 0.0]], ids=["above_one", "negative"])
def test_binary_crossentropy_targets_outside_0_1(x, targets):
    model = make_model(out=1, activation="sigmoid")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    y = np.resize(np.array(targets, dtype="float32"), N)
    with pytest.raises(ValueError, match=r"binary_crossentropy expects targets in \[0, 1\]"):
        model.fit(x, y, verbose=0)


def test_regression_targets_of_wrong_width(x, y):
    model = make_model(out=2, activation=None)
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=r"expects targets of shape \('N', 2\)"):
        model.fit(x, y, verbose=0)


# -- fit arguments ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(N - 1,), (N, 1), (N, 2)])
def test_wrong_shape_sample_weight(x, y, shape):
    model = compiled()
    with pytest.raises(ValueError, match=rf"sample_weight must have shape \({N},\)"):
        model.fit(x, y, sample_weight=np.ones(shape, dtype="float32"), verbose=0)
    with pytest.raises(ValueError, match=rf"sample_weight must have shape \({N},\)"):
        model.evaluate(x, y, sample_weight=np.ones(shape, dtype="float32"), verbose=0)


@pytest.mark.parametrize("split", [1.0, 1.5, -0.2])
def test_validation_split_outside_0_1(x, y, split):
    with pytest.raises(ValueError, match=r"validation_split must be in \(0, 1\)"):
        compiled().fit(x, y, validation_split=split, verbose=0)


def test_validation_split_with_a_dataloader(x, y):
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=4)
    with pytest.raises(ValueError, match="validation_split needs array inputs"):
        compiled().fit(loader, validation_split=0.2, verbose=0)


def test_dataloader_with_separate_y(x, y):
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=4)
    with pytest.raises(ValueError, match="y and sample_weight must be None"):
        compiled().fit(loader, y, verbose=0)


def test_malformed_validation_data(x, y):
    with pytest.raises(ValueError, match=r"\(x_val, y_val\)"):
        compiled().fit(x, y, validation_data=(x,), verbose=0)


@pytest.mark.parametrize("batch_size", [-1, 2.5, "8"])
def test_bad_batch_size(x, y, batch_size):
    model = compiled()
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.fit(x, y, batch_size=batch_size, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.evaluate(x, y, batch_size=batch_size, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.predict(x, batch_size=batch_size, verbose=0)


def test_numpy_integer_batch_size_is_accepted(x, y):
    # a NumPy integer is a positive integer (Keras accepts it); it must not be rejected
    history = compiled().fit(x, y, batch_size=np.int64(8), epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1


@pytest.mark.parametrize("verbose", [3, -1, "loud"])
def test_bad_verbose(x, y, verbose):
    model = compiled()
    with pytest.raises(ValueError, match=r"verbose must be 0, 1, 2 or 'auto'"):
        model.fit(x, y, verbose=verbose)
    with pytest.raises(ValueError, match=r"verbose must be 0, 1, 2 or 'auto'"):
        model.evaluate(x, y, verbose=verbose)
    with pytest.raises(ValueError, match=r"verbose must be 0, 1, 2 or 'auto'"):
        model.predict(x, verbose=verbose)


def test_validation_freq_zero(x, y):
    # must be a clear ValueError naming validation_freq, not "integer modulo by zero"
    with pytest.raises(ValueError, match="validation_freq"):
        compiled().fit(x, y, validation_split=0.2, validation_freq=0, verbose=0)


# -- layers -------------------------------------------------------------------------------
@pytest.mark.parametrize("units", [0, -3, 2.5, True])
def test_dense_bad_units(units):
    with pytest.raises(ValueError, match="units must be a positive integer"):
        Dense(units=units)


@pytest.mark.parametrize("units", [-1, 0, 1.5])
def test_lstm_bad_units(units):
    with pytest.raises(ValueError, match="units must be a positive integer"):
        LSTM(units=units)


def test_unknown_activation_names():
    with pytest.raises(ValueError, match=r"Unknown activation 'relux'.*'relu'"):
        Dense(3, activation="relux")
    with pytest.raises(ValueError, match=r"Unknown activation 'tanhh'.*'tanh'"):
        LSTM(3, activation="tanhh")
    with pytest.raises(ValueError, match=r"Unknown activation 'sigmod'.*'sigmoid'"):
        LSTM(3, recurrent_activation="sigmod")


def test_set_weights_wrong_count():
    model = make_model()
    weights = model.get_weights()
    with pytest.raises(ValueError, match=rf"has {len(weights)} weights; got {len(weights) - 1}"):
        model.set_weights(weights[:-1])
    with pytest.raises(ValueError, match=r"expects 3 weight arrays; got 2"):
        model.layers[0].set_weights(weights[:2])


def test_set_weights_wrong_shapes():
    model = make_model()
    weights = model.get_weights()
    bad = [weights[0].T, *weights[1:]]
    want, got = re.escape(str(weights[0].shape)), re.escape(str(bad[0].shape))
    with pytest.raises(ValueError, match=rf"weight 0 .*shape {want}.*shape {got}"):
        model.set_weights(bad)
    with pytest.raises(ValueError, match=rf"shape {want}.*shape {got}"):
        model.layers[0].set_weights(bad[:3])
    # nothing was written by the failed calls
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_initial_state_of_wrong_shape():
    layer = LSTM(4)
    inputs = torch.zeros(3, 5, 2)
    with pytest.raises(ValueError, match=r"h0 must have shape \(3, 4\); got \(3, 5\)"):
        layer(inputs, initial_state=[torch.zeros(3, 5), torch.zeros(3, 4)])
    with pytest.raises(ValueError, match=r"c0 must have shape \(3, 4\); got \(2, 4\)"):
        layer(inputs, initial_state=[torch.zeros(3, 4), torch.zeros(2, 4)])
    with pytest.raises(ValueError, match=r"initial_state must be \[h0, c0\]"):
        layer(inputs, initial_state=[torch.zeros(3, 4)])
