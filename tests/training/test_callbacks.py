"""Keras-compatible callbacks, driven by hand against a fake model that follows the fit contract."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from lstmkit.callbacks import (
    CallbackList,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from lstmkit.callbacks.base import LazyLogs
from lstmkit.callbacks.monitor import maximises


class FakeOptimizer:
    def __init__(self, learning_rate: float):
        self.learning_rate = learning_rate


class FakeModel:
    """Weights are updated in place and `get_weights` hands out the live arrays (no copy)."""

    def __init__(self, learning_rate: float = 1.0):
        self.stop_training = False
        self.weights = [np.zeros(3), np.zeros((2, 2))]
        self.optimizer = FakeOptimizer(learning_rate)

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        for live, new in zip(self.weights, weights, strict=True):
            live[...] = new

    def train_epoch(self, epoch: int) -> None:
        for w in self.weights:
            w[...] = epoch

    def save(self, path, overwrite=True):
        Path(path).write_text("model")

    def save_weights(self, path, overwrite=True):
        Path(path).write_text("weights")


def fit(callbacks, values, monitor="val_loss", model=None, batches=0):
    """Run epochs through a `CallbackList`; epoch ``i`` logs ``{monitor: values[i]}``.

    Returns the model and the epoch logs of the epochs that ran.
    """
    model = model or FakeModel()
    cbs = CallbackList(callbacks, model, {"epochs": len(values), "steps": batches, "verbose": 0})
    history = []
    cbs.on_train_begin()
    for epoch, value in enumerate(values):
        cbs.on_epoch_begin(epoch)
        for batch in range(batches):
            cbs.on_train_batch_begin(batch)
            cbs.on_train_batch_end(batch, {"loss": value})
        model.train_epoch(epoch)
        logs = {monitor: value}
        cbs.on_epoch_end(epoch, logs)
        history.append(logs)
        if model.stop_training:
            break
    cbs.on_train_end()
    return model, history


# --- monitor helper -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("monitor", "mode", "expected"),
    [
        ("val_loss", "auto", False),
        ("mae", "auto", False),
        ("accuracy", "auto", True),
        ("val_acc", "auto", True),
        ("val_auc", "auto", True),
        ("val_loss", "max", True),
        ("val_accuracy", "min", False),
    ],
)
def test_direction_of_monitored_quantity(monitor, mode, expected):
    assert maximises(monitor, mode) is expected


@pytest.mark.parametrize(
    "make",
    [
        lambda: EarlyStopping(mode="lowest"),
        lambda: ModelCheckpoint("m.keras", mode="lowest"),
        lambda: ReduceLROnPlateau(mode="lowest"),
    ],
)
def test_unknown_mode_raises_naming_the_argument(make):
    with pytest.raises(ValueError, match="mode='lowest'"):
        make()


# --- EarlyStopping --------------------------------------------------------------------------


def test_early_stopping_stops_after_patience_and_restores_best_weights():
    es = EarlyStopping(patience=3, restore_best_weights=True)
    model, history = fit([es], [1.0, 0.9, 0.95, 0.95, 0.95, 0.5, 0.4])
    assert len(history) == 5  # best at epoch 1, then 3 epochs without improvement
    assert es.stopped_epoch == 4 and es.best_epoch == 1 and es.best == 0.9
    for w in model.get_weights():
        np.testing.assert_array_equal(w, 1.0)


def test_early_stopping_keeps_last_weights_without_restore():
    model, history = fit([EarlyStopping(patience=1)], [1.0, 2.0, 3.0])
    assert len(history) == 2
    np.testing.assert_array_equal(model.get_weights()[0], 1.0)


def test_early_stopping_patience_zero_stops_at_first_non_improvement():
    _, history = fit([EarlyStopping()], [1.0, 0.5, 0.6, 0.1])
    assert len(history) == 3


def test_early_stopping_min_delta():
    values = [1.0, 0.995, 0.99, 0.98]
    _, history = fit([EarlyStopping(patience=2, min_delta=0.02)], values)
    assert len(history) == 3
    _, history = fit([EarlyStopping(patience=2, min_delta=-0.02)], values)  # sign is ignored
    assert len(history) == 3
    _, history = fit([EarlyStopping(patience=2)], values)
    assert len(history) == 4


def test_early_stopping_baseline():
    values = [0.8, 0.7, 0.75, 0.75, 0.75]
    # Improvements that do not beat the baseline do not reset the patience counter.
    _, history = fit([EarlyStopping(patience=2, baseline=0.5)], values)
    assert len(history) == 3
    _, history = fit([EarlyStopping(patience=2)], values)
    assert len(history) == 4
    _, history = fit([EarlyStopping(patience=2, baseline=0.9)], values)
    assert len(history) == 4


def test_early_stopping_max_mode_for_accuracy():
    es = EarlyStopping(monitor="val_accuracy", patience=2, restore_best_weights=True)
    model, history = fit([es], [0.5, 0.6, 0.55, 0.58, 0.9], monitor="val_accuracy")
    assert len(history) == 4
    assert es.best == 0.6
    np.testing.assert_array_equal(model.get_weights()[1], 1.0)


def test_early_stopping_start_from_epoch():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    _, history = fit([EarlyStopping(start_from_epoch=3)], values)
    assert len(history) == 5  # epoch 3 is the first monitored one, epoch 4 does not improve
    _, history = fit([EarlyStopping()], values)
    assert len(history) == 2


def test_early_stopping_warns_when_monitor_missing():
    with pytest.warns(UserWarning, match="val_loss"):
        _, history = fit([EarlyStopping()], [1.0, 2.0, 3.0], monitor="loss")
    assert len(history) == 3


def test_early_stopping_verbose(capsys):
    fit([EarlyStopping(verbose=1, restore_best_weights=True)], [1.0, 2.0])
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out and "best epoch 1" in out
    fit([EarlyStopping()], [1.0, 2.0])
    assert capsys.readouterr().out == ""


# --- ModelCheckpoint ------------------------------------------------------------------------


def test_checkpoint_save_best_only_formats_filenames(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.2f}.keras"), save_best_only=True)
    fit([cb], [0.5, 0.6, 0.4, 0.45])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-01-0.50.keras", "m-03-0.40.keras"]
    assert (tmp_path / "m-03-0.40.keras").read_text() == "model"


def test_checkpoint_saves_every_epoch_by_default(tmp_path):
    fit([ModelCheckpoint(tmp_path / "{epoch}.weights.h5", save_weights_only=True)], [3, 2, 1, 0])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"{e}.weights.h5" for e in range(1, 5)]
    assert (tmp_path / "1.weights.h5").read_text() == "weights"


def test_checkpoint_initial_value_threshold_and_max_mode(tmp_path):
    path = tmp_path / "best.keras"
    cb = ModelCheckpoint(path, save_best_only=True, initial_value_threshold=0.45)
    fit([cb], [0.5, 0.47])
    assert not path.exists()
    fit([cb], [0.4])
    assert path.exists() and cb.best == 0.4

    cb = ModelCheckpoint(
        tmp_path / "acc-{epoch}.keras", monitor="val_accuracy", save_best_only=True
    )
    fit([cb], [0.5, 0.4, 0.7], monitor="val_accuracy")
    assert sorted(p.name for p in tmp_path.glob("acc-*")) == ["acc-1.keras", "acc-3.keras"]


def test_checkpoint_save_freq_in_batches_reads_logs_only_when_named(tmp_path):
    cb = ModelCheckpoint(tmp_path / "b-{epoch}-{batch}.keras", save_freq=2)
    fit([cb], [1.0, 1.0], batches=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "b-1-2.keras",
        "b-2-1.keras",
        "b-2-3.keras",
    ]

    computed = []
    cb = ModelCheckpoint(tmp_path / "lazy-{batch}.keras", save_freq=1)
    cb.set_model(FakeModel())
    cb.on_epoch_begin(0)
    cb.on_train_batch_end(0, LazyLogs(lambda: computed.append(1) or {"loss": 1.0}))
    assert (tmp_path / "lazy-1.keras").exists() and computed == []


def test_checkpoint_creates_directories_and_reports_bad_names(tmp_path):
    fit([ModelCheckpoint(tmp_path / "a" / "b" / "{epoch}.keras")], [1.0])
    assert (tmp_path / "a" / "b" / "1.keras").exists()
    with pytest.raises(KeyError, match="val_acc"):
        fit([ModelCheckpoint(tmp_path / "{val_acc}.keras")], [1.0])


def test_checkpoint_missing_monitor_warns_and_saves(tmp_path):
    with pytest.warns(UserWarning, match="val_loss"):
        fit([ModelCheckpoint(tmp_path / "m.keras", save_best_only=True)], [1.0], monitor="loss")
    assert (tmp_path / "m.keras").exists()


@pytest.mark.parametrize("freq", ["batch", 0, 1.5, True])
def test_checkpoint_rejects_bad_save_freq(freq):
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint("m.keras", save_freq=freq)


# --- ReduceLROnPlateau ----------------------------------------------------------------------


def learning_rates(history):
    return [logs["learning_rate"] for logs in history]


def test_reduce_lr_after_patience():
    cb = ReduceLROnPlateau(factor=0.5, patience=2)
    model, history = fit([cb], [1.0] * 6)
    assert learning_rates(history) == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
    assert model.optimizer.learning_rate == 0.25


def test_reduce_lr_not_while_improving():
    model, _ = fit([ReduceLROnPlateau(patience=1)], [1.0, 0.9, 0.8, 0.7])
    assert model.optimizer.learning_rate == 1.0


def test_reduce_lr_min_delta():
    model, _ = fit([ReduceLROnPlateau(patience=1, min_delta=0.2)], [1.0, 0.9, 0.8])
    assert model.optimizer.learning_rate == pytest.approx(0.01)


def test_reduce_lr_cooldown():
    _, history = fit([ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)], [1.0] * 7)
    assert learning_rates(history) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    _, history = fit([ReduceLROnPlateau(factor=0.5, patience=1)], [1.0] * 4)
    assert learning_rates(history) == [1.0, 1.0, 0.5, 0.25]


def test_reduce_lr_respects_min_lr():
    model, history = fit([ReduceLROnPlateau(patience=0, min_lr=0.05)], [1.0] * 5)
    assert learning_rates(history) == pytest.approx([1.0, 1.0, 0.1, 0.05, 0.05])
    assert model.optimizer.learning_rate == 0.05


def test_reduce_lr_max_mode_and_bad_factor():
    model, _ = fit(
        [ReduceLROnPlateau(monitor="val_accuracy", patience=1)], [0.5, 0.6, 0.7], "val_accuracy"
    )
    assert model.optimizer.learning_rate == 1.0
    with pytest.raises(ValueError, match="factor=1.5"):
        ReduceLROnPlateau(factor=1.5)


# --- CSVLogger ------------------------------------------------------------------------------


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def train_with_csv(logger, epochs):
    model = FakeModel()
    cbs = CallbackList([logger], model, {})
    cbs.on_train_begin()
    for epoch in range(epochs):
        cbs.on_epoch_end(epoch, {"loss": 0.5, "val_loss": 0.25 * epoch, "accuracy": 0.75})
    cbs.on_train_end()


def test_csv_logger_writes_header_rows_and_flushes(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.0, "accuracy": 0.75})
    assert read_rows(path) == [
        ["epoch", "accuracy", "loss", "val_loss"],
        ["0", "0.75", "0.5", "0.0"],
    ]
    logger.on_train_end()
    assert logger.csv_file.closed


def test_csv_logger_append_and_overwrite(tmp_path):
    path = tmp_path / "log.csv"
    train_with_csv(CSVLogger(path), 2)
    train_with_csv(CSVLogger(path, append=True), 2)
    rows = read_rows(path)
    assert rows[0] == ["epoch", "accuracy", "loss", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "0", "1"]
    assert rows[2][3] == "0.25"
    train_with_csv(CSVLogger(path), 1)
    assert len(read_rows(path)) == 2


def test_csv_logger_separator_and_missing_validation(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path, separator=";")
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.5})
    logger.on_train_end()
    assert path.read_text().splitlines() == ["epoch;loss;val_loss", "0;0.5;NA"]


# --- TerminateOnNaN, LearningRateScheduler, LambdaCallback ----------------------------------


@pytest.mark.parametrize(("loss", "stops"), [(0.5, False), (math.nan, True), (math.inf, True)])
def test_terminate_on_nan(loss, stops):
    model = FakeModel()
    cbs = CallbackList([TerminateOnNaN()], model, {})
    cbs.on_train_batch_end(3, LazyLogs(lambda: {"loss": loss}))
    assert model.stop_training is stops


def test_terminate_on_nan_raise_error_and_missing_loss():
    cb = TerminateOnNaN(raise_error=True)
    cb.set_model(FakeModel())
    cb.on_train_batch_end(0, {"accuracy": math.nan})
    with pytest.raises(RuntimeError, match="batch 2"):
        cb.on_train_batch_end(2, {"loss": math.nan})


def test_learning_rate_scheduler(capsys):
    def schedule(epoch, lr):
        return lr if epoch == 0 else lr * 0.5

    model, history = fit([LearningRateScheduler(schedule, verbose=1)], [1.0, 1.0, 1.0])
    assert learning_rates(history) == [1.0, 0.5, 0.25]
    assert model.optimizer.learning_rate == 0.25
    assert "Epoch 3: LearningRateScheduler setting learning rate to 0.25" in capsys.readouterr().out
    with pytest.raises(ValueError, match="schedule"):
        fit([LearningRateScheduler(lambda epoch, lr: "fast")], [1.0])


def test_lambda_callback_forwards_every_hook():
    calls = []
    cb = LambdaCallback(
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, logs["val_loss"])),
        on_train_begin=lambda logs: calls.append(("train_begin",)),
        on_train_end=lambda logs: calls.append(("train_end",)),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, logs["loss"])),
    )
    fit([cb], [0.5], batches=1)
    assert calls == [
        ("train_begin",),
        ("epoch_begin", 0),
        ("batch_begin", 0),
        ("batch_end", 0, 0.5),
        ("epoch_end", 0, 0.5),
        ("train_end",),
    ]


def test_lambda_callback_with_some_hooks_only():
    ends = []
    fit(
        [LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(epoch))], [1.0, 1.0], batches=2
    )
    assert ends == [0, 1]
