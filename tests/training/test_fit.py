"""compile / fit / evaluate / predict with real (tiny) LSTM models on tiny synthetic data.

Keras-parity checks are marked ``keras`` and compare against Keras 3's own loss and metric
functions (torch backend) applied to the very same numpy ``y_true`` / ``y_pred`` arrays.
"""

from __future__ import annotations

import csv
import math
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lstmkit import losses as lk_losses  # noqa: E402
from lstmkit import optimizers as lk_optimizers  # noqa: E402
from lstmkit.callbacks import (  # noqa: E402
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from lstmkit.layers import LSTM, Dense, Dropout  # noqa: E402
from lstmkit.models import Sequential, load_model  # noqa: E402
from lstmkit.optimizers import Adam  # noqa: E402
from lstmkit.utils import set_random_seed  # noqa: E402

T, F = 6, 2  # timesteps, features
EPS = 1e-7  # Keras's backend epsilon


# -- data and models ----------------------------------------------------------------------
def sign_task(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learnable: class 1 iff the sum of feature 0 over time is positive (one-hot, 2 classes)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, F)).astype("float32")
    labels = (x[:, :, 0].sum(axis=1) > 0).astype("int64")
    return x, np.eye(2, dtype="float32")[labels]


def random_classes(n: int, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, F)).astype("float32")
    labels = rng.integers(0, classes, n)
    labels[:classes] = np.arange(classes)  # every class present
    return x, labels


def one_hot(labels: np.ndarray, classes: int = 3) -> np.ndarray:
    return np.eye(classes, dtype="float32")[labels]


def regression(n: int, outputs: int = 1, scale: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, F)).astype("float32")
    y = scale * np.stack([x[:, :, k % F].mean(axis=1) for k in range(outputs)], axis=1)
    return x, y.astype("float32")


def make_model(
    out: int = 3,
    activation: str | None = "softmax",
    units: int = 8,
    seed: int = 0,
    dropout: float | None = None,
) -> Sequential:
    set_random_seed(seed)
    layers = [LSTM(units, input_shape=(T, F))]
    if dropout is not None:
        layers.append(Dropout(dropout))
    layers.append(Dense(out, activation=activation))
    return Sequential(layers)


def classifier(seed: int = 0, metrics=("accuracy",), lr: float = 1e-2, **kwargs) -> Sequential:
    model = make_model(seed=seed, **kwargs)
    model.compile(
        optimizer=Adam(learning_rate=lr),
        loss="categorical_crossentropy",
        metrics=list(metrics) if metrics is not None else None,
    )
    return model


def manual_cce(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Keras's categorical cross-entropy per sample on probabilities (clipped, renormalised)."""
    p = probs / probs.sum(axis=-1, keepdims=True)
    p = np.clip(p.astype("float64"), EPS, 1 - EPS)
    return -(y_true * np.log(p)).sum(axis=-1)


def assert_weights_equal(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)


class Recorder(Callback):
    """Counts hooks and remembers what fit handed to them."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs_begun: list[int] = []
        self.batch_logs: list[dict[str, float]] = []
        self.batches: list[int] = []
        self.test_hooks: list[str] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs_begun.append(epoch)

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)
        self.batch_logs.append(dict(logs or {}))

    def on_test_begin(self, logs=None):
        self.test_hooks.append("begin")

    def on_test_batch_end(self, batch, logs=None):
        self.test_hooks.append("batch")

    def on_test_end(self, logs=None):
        self.test_hooks.append("end")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def knp(keras, value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(value))


# -- the seed program -----------------------------------------------------------------------
def test_seed_program_learns_sign_task():
    x, y = sign_task(160)
    x_train, y_train, x_val, y_val = x[:128], y[:128], x[128:], y[128:]
    model = make_model(out=2)
    model.compile(
        optimizer=Adam(learning_rate=1e-2), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    epochs = 12
    history = model.fit(
        x_train, y_train, batch_size=16, epochs=epochs, verbose=0, validation_data=(x_val, y_val)
    )
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key, values in history.history.items():
        assert len(values) == epochs, key
        assert all(isinstance(v, float) and math.isfinite(v) for v in values), key
    assert history.epoch == list(range(epochs))
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert history.history["accuracy"][-1] >= 0.85  # chance is ~0.5
    assert history.history["val_accuracy"][-1] >= 0.8
    # the last val logs are an evaluation of the final weights on the validation data
    val = model.evaluate(x_val, y_val, batch_size=16, verbose=0, return_dict=True)
    assert val["loss"] == pytest.approx(history.history["val_loss"][-1], abs=1e-5)
    assert val["accuracy"] == pytest.approx(history.history["val_accuracy"][-1], abs=1e-6)


def test_validation_split_takes_last_samples_before_shuffling():
    x, labels = random_classes(40)
    # make the last 10 samples unlike the others: large inputs, all of class 2
    x[30:] *= 4.0
    labels[30:] = 2
    y = one_hot(labels)
    model = classifier()
    recorder = Recorder()
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        validation_split=0.25,
        shuffle=True,
        verbose=0,
        callbacks=[recorder],
    )
    assert recorder.params["steps"] == math.ceil(30 / 8)
    assert recorder.batches == [0, 1, 2, 3] * 2
    last = model.evaluate(x[30:], y[30:], batch_size=8, verbose=0, return_dict=True)
    assert history.history["val_loss"][-1] == pytest.approx(last["loss"], abs=1e-5)
    assert history.history["val_accuracy"][-1] == pytest.approx(last["accuracy"], abs=1e-6)
    first = model.evaluate(x[:10], y[:10], batch_size=8, verbose=0, return_dict=True)
    assert abs(first["loss"] - last["loss"]) > 1e-3


def test_validation_split_rounds_like_keras():
    # Keras: split_at = floor(N * (1 - validation_split)); 10 * 0.75 = 7.5 -> 7 train, 3 val
    x, labels = random_classes(10)
    y = one_hot(labels)
    model = classifier()
    recorder = Recorder()
    history = model.fit(
        x,
        y,
        batch_size=1,
        epochs=1,
        validation_split=0.25,
        shuffle=False,
        verbose=0,
        callbacks=[recorder],
    )
    assert len(recorder.batches) == 7
    val_loss = model.evaluate(x[7:], y[7:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(val_loss[0], abs=1e-5)


# -- evaluate -----------------------------------------------------------------------------
def test_evaluate_return_forms_and_manual_cross_entropy():
    x, labels = random_classes(37)
    y = one_hot(labels)
    model = classifier()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    result = model.evaluate(x, y, batch_size=8, verbose=0)
    assert isinstance(result, list) and len(result) == 2
    loss, acc = result
    probs = model.predict(x, batch_size=8, verbose=0)
    assert loss == pytest.approx(manual_cce(y, probs).mean(), abs=1e-5)
    assert acc == pytest.approx((probs.argmax(-1) == labels).mean(), abs=1e-6)
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert isinstance(logs, dict) and set(logs) == {"loss", "accuracy"}
    assert logs["loss"] == pytest.approx(loss, abs=1e-6)
    assert logs["accuracy"] == pytest.approx(acc, abs=1e-6)

    bare = classifier(metrics=None)
    scalar = bare.evaluate(x, y, batch_size=8, verbose=0)
    assert isinstance(scalar, float)
    assert scalar == pytest.approx(manual_cce(y, bare.predict(x, verbose=0)).mean(), abs=1e-5)
    assert bare.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss"}


# -- sample_weight / class_weight ---------------------------------------------------------
def test_zero_sample_weight_on_half_uses_sum_over_batch_size():
    x, labels = random_classes(20)
    y = one_hot(labels)
    w = np.tile(np.array([1.0, 0.0], dtype="float32"), 10)  # zero weight on every other sample
    model = classifier()
    per_sample = manual_cce(y, model.predict(x, verbose=0))
    loss, acc = model.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0)
    expected = (w * per_sample).sum() / len(x)  # Keras "sum_over_batch_size"
    assert loss == pytest.approx(expected, abs=1e-5)
    assert abs(loss - (w * per_sample).sum() / w.sum()) > 1e-3  # not the weighted mean
    # metrics are weighted means, as Keras's MeanMetricWrapper
    hits = (model.predict(x, verbose=0).argmax(-1) == labels).astype("float64")
    assert acc == pytest.approx((w * hits).sum() / w.sum(), abs=1e-6)


@pytest.mark.keras
def test_sample_weighted_loss_matches_keras_loss_object(keras):
    x, labels = random_classes(20)
    y = one_hot(labels)
    w = np.tile(np.array([1.0, 0.0], dtype="float32"), 10)
    model = classifier(metrics=None)
    probs = model.predict(x, verbose=0)
    expected = float(knp(keras, keras.losses.CategoricalCrossentropy()(y, probs, sample_weight=w)))
    assert model.evaluate(x, y, sample_weight=w, batch_size=len(x), verbose=0) == pytest.approx(
        expected, abs=1e-5
    )


@pytest.mark.parametrize("sparse", [False, True], ids=["one_hot", "sparse"])
def test_class_weight_equals_equivalent_sample_weight(sparse):
    x, labels = random_classes(24)
    class_weight = {0: 1.0, 1: 2.5, 2: 0.25}
    sample_weight = np.array([class_weight[int(k)] for k in labels], dtype="float32")
    y = labels if sparse else one_hot(labels)
    loss = "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"

    def run(**kwargs):
        model = make_model(seed=3)
        model.compile(optimizer=Adam(learning_rate=1e-2), loss=loss)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, **kwargs)
        return model.get_weights()

    with_class = run(class_weight=class_weight)
    with_sample = run(sample_weight=sample_weight)
    unweighted = run()
    for a, b in zip(with_class, with_sample, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert any(not np.allclose(a, b) for a, b in zip(with_class, unweighted, strict=True))


# -- epochs and steps ---------------------------------------------------------------------
def test_initial_epoch_runs_remaining_epochs_with_right_indices():
    x, labels = random_classes(16)
    model = classifier()
    recorder = Recorder()
    history = model.fit(
        x, one_hot(labels), batch_size=8, epochs=5, initial_epoch=2, verbose=0, callbacks=[recorder]
    )
    assert history.epoch == [2, 3, 4]
    assert recorder.epochs_begun == [2, 3, 4]
    assert len(history.history["loss"]) == 3


def test_steps_per_epoch_limits_steps():
    x, labels = random_classes(64)
    model = classifier()
    recorder = Recorder()
    before = model.get_weights()
    model.fit(
        x,
        one_hot(labels),
        batch_size=8,
        epochs=2,
        steps_per_epoch=3,
        verbose=0,
        callbacks=[recorder],
    )
    assert recorder.params["steps"] == 3
    assert recorder.batches == [0, 1, 2, 0, 1, 2]
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


# -- determinism --------------------------------------------------------------------------
@pytest.mark.parametrize("shuffle", [False, True])
def test_same_seed_gives_same_weights_and_predictions(shuffle):
    x, labels = random_classes(40)
    y = one_hot(labels)

    def run(seed):
        model = classifier(seed=seed, dropout=0.2)  # dropout and shuffling draw random numbers
        model.fit(x, y, batch_size=8, epochs=2, shuffle=shuffle, verbose=0)
        return model.get_weights(), model.predict(x, verbose=0)

    w1, p1 = run(7)
    w2, p2 = run(7)
    assert_weights_equal(w1, w2)
    np.testing.assert_array_equal(p1, p2)
    w3, _ = run(8)
    assert any(not np.array_equal(a, b) for a, b in zip(w1, w3, strict=True))


# -- input types --------------------------------------------------------------------------
def test_torch_tensors_and_dataloader_train_like_numpy():
    x, labels = random_classes(36)
    y = one_hot(labels)

    def run(*args, **kwargs):
        model = classifier(seed=5)
        history = model.fit(*args, epochs=2, shuffle=False, verbose=0, **kwargs)
        return model, history

    ref, ref_hist = run(x, y, batch_size=8)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    tens, tens_hist = run(xt, yt, batch_size=8)
    loader = DataLoader(TensorDataset(xt, yt), batch_size=8, shuffle=False)
    dl, dl_hist = run(loader)
    for other, other_hist in ((tens, tens_hist), (dl, dl_hist)):
        for a, b in zip(ref.get_weights(), other.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(other_hist.history["loss"], ref_hist.history["loss"], rtol=1e-6)
    expected = ref.evaluate(x, y, batch_size=8, verbose=0)
    np.testing.assert_allclose(ref.evaluate(loader, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(ref.evaluate(xt, yt, batch_size=8, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(ref.predict(xt, verbose=0), ref.predict(x, verbose=0), rtol=1e-6)


def test_dataloader_as_validation_data_matches_arrays():
    x, labels = random_classes(36)
    y = one_hot(labels)
    val_loader = DataLoader(
        TensorDataset(torch.from_numpy(x[24:]), torch.from_numpy(y[24:])), batch_size=8
    )
    a = classifier(seed=2).fit(
        x[:24],
        y[:24],
        batch_size=8,
        epochs=2,
        shuffle=False,
        verbose=0,
        validation_data=(x[24:], y[24:]),
    )
    b = classifier(seed=2).fit(
        x[:24], y[:24], batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=val_loader
    )
    np.testing.assert_allclose(a.history["val_loss"], b.history["val_loss"], rtol=1e-6)
    np.testing.assert_allclose(a.history["val_accuracy"], b.history["val_accuracy"])


def test_float64_torch_tensors_train_like_float64_numpy():
    # NumPy float64 is cast to float32 (as Keras does); a float64 torch tensor should be too.
    x, labels = random_classes(16)
    y = one_hot(labels)
    ref = classifier(seed=4)
    ref.fit(
        x.astype("float64"), y.astype("float64"), batch_size=8, epochs=1, shuffle=False, verbose=0
    )
    model = classifier(seed=4)
    model.fit(
        torch.from_numpy(x).double(),
        torch.from_numpy(y).double(),
        batch_size=8,
        epochs=1,
        shuffle=False,
        verbose=0,
    )
    for a, b in zip(ref.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# -- predict and single batches -----------------------------------------------------------
def test_predict_returns_numpy_of_shape_n_by_classes():
    x, _ = random_classes(37)
    model = classifier()
    probs = model.predict(x, batch_size=8, verbose=0)
    assert isinstance(probs, np.ndarray)
    assert probs.shape == (37, 3)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.predict_on_batch(x), probs, rtol=1e-5, atol=1e-6)


def test_train_on_batch_test_on_batch_and_return_dict():
    x, labels = random_classes(16)
    y = one_hot(labels)
    model = classifier(lr=2e-2)
    first = model.train_on_batch(x, y)
    assert isinstance(first, list) and len(first) == 2
    losses = [first[0]] + [model.train_on_batch(x, y)[0] for _ in range(25)]
    assert losses[-1] < losses[0]
    assert all(math.isfinite(v) for v in losses)

    as_dict = model.train_on_batch(x, y, return_dict=True)
    assert set(as_dict) == {"loss", "accuracy"}

    before = model.get_weights()
    tested = model.test_on_batch(x, y)
    assert_weights_equal(before, model.get_weights())  # no update
    evaluated = model.evaluate(x, y, batch_size=len(x), verbose=0)
    np.testing.assert_allclose(tested, evaluated, rtol=1e-6)
    tested_dict = model.test_on_batch(x, y, return_dict=True)
    assert tested_dict["loss"] == pytest.approx(evaluated[0], abs=1e-6)
    assert tested_dict["accuracy"] == pytest.approx(evaluated[1], abs=1e-6)

    bare = classifier(metrics=None)
    assert isinstance(bare.train_on_batch(x, y), float)
    assert isinstance(bare.test_on_batch(x, y), float)


# -- losses and metrics against Keras -----------------------------------------------------
def loss_case(name: str):
    """(model, loss identifier, x, y_true) for one of `LOSS_CASES`."""
    n = 24
    if name in ("mse", "mae", "huber"):
        x, y = regression(n, outputs=2, scale=3.0)  # scale: some Huber errors beyond delta
        return make_model(out=2, activation=None), name, x, y
    x, labels = random_classes(n, classes=2 if name.startswith("binary") else 3)
    if name == "binary_crossentropy":
        return make_model(out=1, activation="sigmoid"), name, x, labels.astype("float32")
    if name == "binary_crossentropy_logits":
        loss = lk_losses.BinaryCrossentropy(from_logits=True)
        return make_model(out=1, activation=None), loss, x, labels.astype("float32")
    if name == "sparse_categorical_crossentropy":
        return make_model(), name, x, labels
    if name == "sparse_categorical_crossentropy_logits":
        loss = lk_losses.SparseCategoricalCrossentropy(from_logits=True)
        return make_model(activation=None), loss, x, labels
    if name == "categorical_crossentropy":
        return make_model(), name, x, one_hot(labels)
    if name == "categorical_crossentropy_logits":
        loss = lk_losses.CategoricalCrossentropy(from_logits=True)
        return make_model(activation=None), loss, x, one_hot(labels)
    raise AssertionError(name)


LOSS_CASES = [
    "mse",
    "mae",
    "huber",
    "binary_crossentropy",
    "binary_crossentropy_logits",
    "sparse_categorical_crossentropy",
    "sparse_categorical_crossentropy_logits",
    "categorical_crossentropy",
    "categorical_crossentropy_logits",
]


def keras_per_sample(keras, case: str, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    if case.startswith("binary"):
        y_true = y_true.reshape(-1, 1)
    if case.endswith("_logits"):
        fn = getattr(keras.losses, case.removesuffix("_logits"))
        return knp(keras, fn(y_true, y_pred, from_logits=True))
    return knp(keras, keras.losses.get(case)(y_true, y_pred))


@pytest.mark.parametrize("case", LOSS_CASES)
def test_each_loss_trains_a_step(case):
    model, loss, x, y = loss_case(case)
    model.compile(optimizer=Adam(learning_rate=1e-2), loss=loss)
    before = model.get_weights()
    value = model.train_on_batch(x, y)
    assert math.isfinite(value)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])


@pytest.mark.keras
@pytest.mark.parametrize("case", LOSS_CASES)
def test_evaluate_loss_matches_keras_loss_function(keras, case):
    model, loss, x, y = loss_case(case)
    model.compile(optimizer=Adam(learning_rate=1e-2), loss=loss)
    model.train_on_batch(x, y)
    y_pred = model.predict(x, verbose=0)
    expected = keras_per_sample(keras, case, y, y_pred).mean()
    assert model.evaluate(x, y, batch_size=7, verbose=0) == pytest.approx(expected, abs=1e-5)


def test_accuracy_resolves_to_sparse_with_integer_labels():
    x, labels = random_classes(30)
    model = make_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, labels, batch_size=8, epochs=1, verbose=0)
    logs = model.evaluate(x, labels, batch_size=8, verbose=0, return_dict=True)
    probs = model.predict(x, verbose=0)
    assert set(logs) == {"loss", "accuracy"}
    assert logs["accuracy"] == pytest.approx((probs.argmax(-1) == labels).mean(), abs=1e-6)
    # labels of shape (N, 1) are sparse too
    logs_2d = model.evaluate(x, labels[:, None], batch_size=8, verbose=0, return_dict=True)
    assert logs_2d["accuracy"] == pytest.approx(logs["accuracy"], abs=1e-6)
    assert logs_2d["loss"] == pytest.approx(logs["loss"], abs=1e-6)


def test_accuracy_resolves_to_binary_with_one_sigmoid_unit():
    x, labels = random_classes(30, classes=2)
    model = make_model(out=1, activation="sigmoid")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    acc = model.evaluate(x, labels.astype("float32"), batch_size=8, verbose=0)[1]
    probs = model.predict(x, verbose=0)[:, 0]
    assert acc == pytest.approx(((probs > 0.5) == labels).mean(), abs=1e-6)


@pytest.mark.keras
def test_regression_metrics_match_keras_metrics(keras):
    x, y = regression(29, outputs=2, scale=2.0)
    model = make_model(out=2, activation=None)
    model.compile(optimizer="adam", loss="mse", metrics=["mae", "mse", "rmse"])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "mae", "mse", "rmse"}
    y_pred = model.predict(x, verbose=0)
    for key, metric in (
        ("mae", keras.metrics.MeanAbsoluteError()),
        ("mse", keras.metrics.MeanSquaredError()),
        ("rmse", keras.metrics.RootMeanSquaredError()),
    ):
        metric.update_state(y, y_pred)
        assert logs[key] == pytest.approx(float(knp(keras, metric.result())), abs=1e-5), key
    assert logs["mse"] == pytest.approx(logs["loss"], abs=1e-5)


# -- optimizers ---------------------------------------------------------------------------
OPTIMIZER_OBJECTS = {
    "Adam_object": lambda: lk_optimizers.Adam(learning_rate=1e-2),
    "SGD_object": lambda: lk_optimizers.SGD(learning_rate=0.1, momentum=0.9),
    "RMSprop_object": lambda: lk_optimizers.RMSprop(learning_rate=1e-2),
}


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop", "nadam", *OPTIMIZER_OBJECTS])
def test_optimizers_reduce_the_loss(name):
    x, y = regression(32, outputs=1, scale=2.0)
    model = make_model(out=1, activation=None, units=4)
    optimizer = OPTIMIZER_OBJECTS[name]() if name in OPTIMIZER_OBJECTS else name
    model.compile(optimizer=optimizer, loss="mse")
    if isinstance(optimizer, str):
        assert model.optimizer.keras_name == name
    else:
        assert model.optimizer is optimizer
    before = model.evaluate(x, y, batch_size=32, verbose=0)
    history = model.fit(x, y, batch_size=32, epochs=10, shuffle=False, verbose=0)
    after = model.evaluate(x, y, batch_size=32, verbose=0)
    assert after < before
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_setting_learning_rate_updates_torch_param_groups():
    x, labels = random_classes(16)
    model = classifier(lr=1e-2)
    model.optimizer.learning_rate = 0.02  # before the torch optimizer exists
    model.fit(x, one_hot(labels), batch_size=8, epochs=1, verbose=0)
    groups = model.optimizer.torch_optimizer.param_groups
    assert all(g["lr"] == pytest.approx(0.02) for g in groups)
    model.optimizer.learning_rate = 0.123
    assert model.optimizer.learning_rate == pytest.approx(0.123)
    assert all(g["lr"] == pytest.approx(0.123) for g in groups)


# -- callbacks with a real model ----------------------------------------------------------
def test_early_stopping_stops_and_restores_best_weights():
    x, labels = random_classes(24)
    model = classifier()
    snapshots: list[list[np.ndarray]] = []
    recorder = LambdaCallback(
        on_epoch_end=lambda _epoch, _logs: snapshots.append(model.get_weights())
    )
    # min_delta is so large that no epoch after the first counts as an improvement
    stopper = EarlyStopping(monitor="loss", min_delta=1e3, patience=2, restore_best_weights=True)
    history = model.fit(
        x, one_hot(labels), batch_size=8, epochs=20, verbose=0, callbacks=[recorder, stopper]
    )
    assert history.epoch == [0, 1, 2]
    assert stopper.stopped_epoch == 2
    assert stopper.best_epoch == 0
    assert_weights_equal(model.get_weights(), snapshots[0])
    assert any(not np.array_equal(a, b) for a, b in zip(snapshots[0], snapshots[-1], strict=True))


def test_model_checkpoint_save_best_only_writes_loadable_model(tmp_path):
    x, labels = random_classes(40)
    y = one_hot(labels)
    x_val, y_val = x[30:], y[30:]
    model = classifier(lr=5e-2)
    path = tmp_path / "best.lstmkit"
    checkpoint = ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    history = model.fit(
        x[:30],
        y[:30],
        batch_size=8,
        epochs=6,
        verbose=0,
        validation_data=(x_val, y_val),
        callbacks=[checkpoint],
    )
    assert path.is_file()
    best = min(history.history["val_loss"])
    assert checkpoint.best == pytest.approx(best)
    loaded = load_model(path)
    assert loaded.metric_names == ["accuracy"]
    loss, _ = loaded.evaluate(x_val, y_val, batch_size=8, verbose=0)
    assert loss == pytest.approx(best, abs=1e-5)


def reduce_lr_fit(epochs: int = 4):
    x, labels = random_classes(16)
    model = classifier(lr=1e-2)
    reducer = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e3)
    history = model.fit(
        x, one_hot(labels), batch_size=8, epochs=epochs, verbose=0, callbacks=[reducer]
    )
    return model, history


def test_reduce_lr_on_plateau_lowers_the_learning_rate():
    model, _ = reduce_lr_fit()
    # epoch 0 sets the best; epochs 1, 2, 3 each halve the rate (patience 1)
    assert model.optimizer.learning_rate == pytest.approx(1e-2 / 8)
    for group in model.optimizer.torch_optimizer.param_groups:
        assert group["lr"] == pytest.approx(1e-2 / 8)


def test_reduce_lr_on_plateau_learning_rate_reaches_history():
    # Keras appends History after the user's callbacks, so the "learning_rate" that
    # ReduceLROnPlateau adds to the epoch logs is recorded in history.history. Keras logs the
    # rate the epoch ran with, before that epoch's reduction.
    _, history = reduce_lr_fit()
    assert history.history.get("learning_rate") == pytest.approx([1e-2, 1e-2, 5e-3, 2.5e-3])


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, labels = random_classes(24)
    y = one_hot(labels)
    path = tmp_path / "log.csv"
    history = classifier().fit(
        x[:16],
        y[:16],
        batch_size=8,
        epochs=3,
        verbose=0,
        validation_data=(x[16:], y[16:]),
        callbacks=[CSVLogger(path)],
    )
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose([float(r[key]) for r in rows], history.history[key], rtol=1e-6)


def test_custom_callback_sees_batch_logs_with_loss():
    x, labels = random_classes(24)
    recorder = Recorder()
    classifier().fit(x, one_hot(labels), batch_size=8, epochs=2, verbose=0, callbacks=[recorder])
    assert recorder.batches == [0, 1, 2] * 2
    assert recorder.params["epochs"] == 2 and recorder.params["steps"] == 3
    for logs in recorder.batch_logs:
        assert "loss" in logs and "accuracy" in logs
        assert isinstance(logs["loss"], float) and math.isfinite(logs["loss"])


def test_callbacks_see_test_hooks_during_validation():
    # Keras runs validation through evaluate() with the fit callbacks, so on_test_begin,
    # on_test_batch_end and on_test_end fire once per validation run.
    x, labels = random_classes(24)
    y = one_hot(labels)
    recorder = Recorder()
    classifier().fit(
        x[:16],
        y[:16],
        batch_size=8,
        epochs=2,
        verbose=0,
        validation_data=(x[16:], y[16:]),
        callbacks=[recorder],
    )
    assert recorder.test_hooks == ["begin", "batch", "end"] * 2


def test_evaluate_calls_test_hooks():
    x, labels = random_classes(24)
    recorder = Recorder()
    classifier().evaluate(x, one_hot(labels), batch_size=8, verbose=0, callbacks=[recorder])
    assert recorder.test_hooks == ["begin", "batch", "batch", "batch", "end"]


def test_stop_training_in_callback_stops_after_that_batch():
    x, labels = random_classes(48)

    class StopAtBatchOne(Recorder):
        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            if batch == 1:
                self.model.stop_training = True

    recorder = StopAtBatchOne()
    model = classifier()
    history = model.fit(x, one_hot(labels), batch_size=8, epochs=5, verbose=0, callbacks=[recorder])
    assert recorder.batches == [0, 1]
    assert history.epoch == [0]
    # a later fit trains normally again
    history = model.fit(x, one_hot(labels), batch_size=8, epochs=2, verbose=0)
    assert history.epoch == [0, 1]


# -- verbosity ----------------------------------------------------------------------------
def test_verbose_0_prints_nothing(capsys):
    x, labels = random_classes(24)
    y = one_hot(labels)
    model = classifier()
    model.fit(x[:16], y[:16], batch_size=8, epochs=2, verbose=0, validation_data=(x[16:], y[16:]))
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_verbose_2_prints_one_line_per_epoch(capsys):
    x, labels = random_classes(24)
    y = one_hot(labels)
    classifier().fit(
        x[:16], y[:16], batch_size=8, epochs=3, verbose=2, validation_data=(x[16:], y[16:])
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if "loss:" in line]
    assert len(lines) == 3
    assert all("val_loss:" in line and "accuracy:" in line for line in lines)


def test_global_clipnorm_bounds_the_step():
    """SGD with lr 1: the whole update is the clipped gradient, so its norm is the clip."""
    from lstmkit.layers import LSTM, Dense
    from lstmkit.models import Sequential
    from lstmkit.optimizers import SGD

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32") * 100
    model = Sequential([LSTM(4, input_shape=(5, 3)), Dense(1)])
    model.compile(SGD(learning_rate=1.0, global_clipnorm=1e-3), "mse", device="cpu")
    before = model.get_weights()
    model.train_on_batch(x, y)
    after = model.get_weights()
    step = np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(after, before, strict=True)))
    assert step == pytest.approx(1e-3, rel=1e-3)


def test_stateful_model_fits_and_evaluates_from_its_carried_states():
    """fit and evaluate probe the output shape with one batch of the fixed size, and leave the
    carried states as they were: evaluation of two batches from given states ends where two
    calls of the model from those states end."""
    from lstmkit.layers import Input

    set_random_seed(0)
    x, y = sign_task(8)
    model = Sequential([Input(batch_shape=(4, T, F)), LSTM(3, stateful=True), Dense(2)])
    model.compile(loss="mse", optimizer="adam")
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    lstm = model.layers[0]
    h, c = torch.randn(4, 3), torch.randn(4, 3)
    lstm.reset_states([h, c])
    model.evaluate(x, y, batch_size=4, verbose=0)
    after_evaluate = [s.clone() for s in lstm.states]
    lstm.reset_states([h, c])
    with torch.no_grad():
        model(torch.as_tensor(x[:4]))
        model(torch.as_tensor(x[4:]))
    for a, b in zip(after_evaluate, lstm.states, strict=True):
        torch.testing.assert_close(a, b)
