"""One-file saving: round trips, optimizer state, refusal to overwrite, no code execution."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lstmkit.layers import LSTM, Dense, Dropout
from lstmkit.models import Model, Sequential, load_model
from lstmkit.optimizers import Adam
from lstmkit.utils import set_random_seed


def data(n=48, t=6, i=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, i)).astype("float32")
    y = np.eye(classes, dtype="float32")[rng.integers(0, classes, n)]
    return x, y


def trained_model(x, y):
    set_random_seed(1)
    model = Sequential(
        [
            LSTM(8, return_sequences=True, input_shape=x.shape[1:]),
            LSTM(5, recurrent_activation="hard_sigmoid"),
            Dropout(0.1),
            Dense(y.shape[1], activation="softmax"),
        ]
    )
    model.compile(
        optimizer=Adam(learning_rate=0.01), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model


def test_save_load_gives_identical_predictions_and_config(tmp_path):
    x, y = data()
    model = trained_model(x, y)
    path = tmp_path / "model.lstmkit"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.get_config() == model.get_config()
    assert [w.shape for w in loaded.get_weights()] == [w.shape for w in model.get_weights()]
    assert loaded.optimizer.learning_rate == pytest.approx(0.01)
    assert loaded.metric_names == ["accuracy"]


def test_training_resumes_exactly_after_reload(tmp_path):
    """Optimizer state travels with the file: continuing after a reload equals not stopping."""
    x, y = data()
    model = trained_model(x, y)
    path = tmp_path / "model.lstmkit"
    model.save(path)
    loaded = load_model(path)
    for m in (model, loaded):
        set_random_seed(7)
        m.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_save_never_overwrites_silently(tmp_path):
    x, y = data()
    model = trained_model(x, y)
    path = tmp_path / "model.lstmkit"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(path)
    assert path.read_bytes() == b"precious"
    model.save(path, overwrite=True)
    np.testing.assert_array_equal(
        load_model(path).predict(x, verbose=0), model.predict(x, verbose=0)
    )
    assert [p.name for p in tmp_path.iterdir()] == ["model.lstmkit"]  # no temporary files left


def test_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path):
    class Unsavable(Model):
        def __init__(self):
            super().__init__()
            self.dense = Dense(2)

        def forward(self, x):
            return self.dense(x)

    path = tmp_path / "model.lstmkit"
    path.write_bytes(b"old")
    with pytest.raises(NotImplementedError, match="save_weights"):
        Unsavable().save(path, overwrite=True)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.lstmkit"]


def test_weights_round_trip(tmp_path):
    x, y = data()
    model = trained_model(x, y)
    model.save_weights(tmp_path / "w.safetensors")
    fresh = Sequential(
        [
            LSTM(8, return_sequences=True, input_shape=x.shape[1:]),
            LSTM(5, recurrent_activation="hard_sigmoid"),
            Dropout(0.1),
            Dense(3, activation="softmax"),
        ]
    )
    fresh.load_weights(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    wrong = Sequential([LSTM(4, input_shape=x.shape[1:]), Dense(3)])
    with pytest.raises(ValueError, match="holds weights"):
        wrong.load_weights(tmp_path / "w.safetensors")


def test_loading_rejects_foreign_files_and_unknown_classes(tmp_path):
    junk = tmp_path / "junk.lstmkit"
    junk.write_bytes(b"\x80\x04K\x01.")  # a pickle: never unpickled
    with pytest.raises(ValueError, match="not an lstmkit model file"):
        load_model(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"a": torch.zeros(1)}, str(plain))
    with pytest.raises(ValueError, match="not a saved lstmkit model"):
        load_model(plain)
    evil = tmp_path / "evil.lstmkit"
    meta = {
        "format_version": 1,
        "model": {
            "class_name": "Sequential",
            "config": {"name": "s", "layers": [{"class_name": "os.system", "config": {}}]},
        },
    }
    save_file({"weights/x": torch.zeros(1)}, str(evil), metadata={"lstmkit": json.dumps(meta)})
    with pytest.raises(ValueError, match="Unknown layer class 'os.system'"):
        load_model(evil)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.lstmkit")
