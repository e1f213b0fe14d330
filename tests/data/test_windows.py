"""Sliding windows and timeseries_dataset_from_array against brute-force references."""

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit.data import (
    WindowDataset,
    sliding_windows,
    timeseries_dataset_from_array,
)
from lstmkit.layers import LSTM, Dense, Input
from lstmkit.models import Sequential

RNG = np.random.default_rng(0)


def brute_windows(data, length, stride, rate):
    out = []
    start = 0
    while start + (length - 1) * rate < len(data):
        out.append(np.stack([data[start + k * rate] for k in range(length)]))
        start += stride
    return np.stack(out)


def keras_reference(data, targets, length, stride, rate, start_index=None, end_index=None):
    """The windows/targets Keras documents: window i starts at p = i * stride inside
    data[start:end], holds p, p + rate, ... and has target targets[start + p]."""
    start = start_index or 0
    end = len(data) if end_index is None else end_index
    positions = end - start - (length - 1) * rate
    if targets is not None:
        positions = min(positions, len(targets))
    xs, ys = [], []
    for p in range(0, positions, stride):
        xs.append(np.stack([data[start + p + k * rate] for k in range(length)]))
        if targets is not None:
            ys.append(targets[start + p])
    return np.stack(xs), (None if targets is None else np.stack(ys))


@pytest.mark.parametrize("shape", [(50,), (50, 3), (40, 2, 2)])
@pytest.mark.parametrize(("length", "stride", "rate"), [(1, 1, 1), (5, 1, 1), (5, 3, 2), (7, 4, 3)])
def test_sliding_windows_equal_brute_force(shape, length, stride, rate):
    data = RNG.normal(size=shape)
    windows = sliding_windows(data, length, stride, rate)
    np.testing.assert_array_equal(windows, brute_windows(data, length, stride, rate))


def test_sliding_windows_are_views_not_copies():
    data = np.arange(1000.0).reshape(500, 2)
    windows = sliding_windows(data, 64, stride=2, sampling_rate=3)
    assert np.shares_memory(windows, data)
    assert windows.base is not None and not windows.flags.writeable


def test_sliding_windows_of_a_dataframe_and_a_tensor():
    frame = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) * 2})
    expected = brute_windows(frame.to_numpy(), 4, 2, 1)
    np.testing.assert_array_equal(sliding_windows(frame, 4, 2), expected)
    np.testing.assert_array_equal(sliding_windows(torch.tensor(frame.to_numpy()), 4, 2), expected)


def test_sliding_windows_reject_windows_longer_than_data():
    with pytest.raises(ValueError, match="covers 10 steps .* only 9"):
        sliding_windows(np.zeros(9), 4, sampling_rate=3)
    with pytest.raises(ValueError, match="sequence_length must be a positive integer"):
        sliding_windows(np.zeros(9), 0)


@pytest.mark.parametrize(
    ("length", "horizon", "stride", "rate"), [(6, 1, 1, 1), (6, 4, 2, 1), (4, 3, 1, 2)]
)
def test_window_dataset_pairs_windows_with_the_steps_after(length, horizon, stride, rate):
    inputs = RNG.normal(size=(60, 3))
    targets = RNG.normal(size=(60, 2))
    ds = WindowDataset(inputs, targets, length, horizon, stride, rate)
    span = (length - 1) * rate + 1
    starts = list(range(0, 60 - span - horizon + 1, stride))
    assert len(ds) == len(starts)
    for i, s in enumerate(starts):
        x, y = ds[i]
        np.testing.assert_array_equal(x, inputs[s : s + span : rate])
        np.testing.assert_array_equal(y, targets[s + span : s + span + horizon])
    x_all, y_all = ds.arrays()
    np.testing.assert_array_equal(x_all[-1], ds[len(ds) - 1][0])
    xb, yb = ds.batch([0, 2])
    assert xb.dtype == torch.float32 and tuple(xb.shape) == (2, length, 3)
    assert tuple(yb.shape) == (2, horizon, 2)


def test_window_dataset_targets_never_enter_their_inputs():
    """Mark every step with its own index: a target's index is always after every input's."""
    steps = np.arange(40.0)
    ds = WindowDataset(steps, steps, sequence_length=5, horizon=3)
    for i in range(len(ds)):
        x, y = ds[i]
        assert y.min() > x.max()
        assert y.min() == x.max() + 1  # and no step is skipped


def test_window_dataset_in_a_dataloader_feeds_fit():
    series = np.sin(np.arange(120) / 6)
    ds = WindowDataset(series[:, None], series, sequence_length=12, horizon=3)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True)
    x, y = next(iter(loader))
    assert tuple(x.shape) == (16, 12, 1) and tuple(y.shape) == (16, 3)
    model = Sequential([Input((12, 1)), LSTM(4), Dense(3)])
    model.compile(loss="mse", optimizer="adam", device="cpu")
    assert len(model.fit(loader, epochs=2, verbose=0).history["loss"]) == 2


def test_window_dataset_errors():
    with pytest.raises(ValueError, match="same length"):
        WindowDataset(np.zeros(10), np.zeros(9), 3)
    with pytest.raises(ValueError, match="needs 12 steps .* only 10"):
        WindowDataset(np.zeros(10), np.zeros(10), 8, horizon=4)


@pytest.mark.parametrize(
    ("length", "stride", "rate", "start", "end"),
    [(10, 3, 2, None, None), (5, 1, 1, None, None), (4, 2, 1, 7, None), (3, 1, 2, 5, 60)],
)
def test_timeseries_dataset_matches_keras_semantics(length, stride, rate, start, end):
    data = RNG.normal(size=(99, 2))
    targets = RNG.normal(size=99)
    ds = timeseries_dataset_from_array(
        data, targets, length, stride, rate, batch_size=7, start_index=start, end_index=end
    )
    batches = list(ds)
    assert len(batches) == len(ds)
    x = torch.cat([b[0] for b in batches]).numpy()
    y = torch.cat([b[1] for b in batches]).numpy()
    ref_x, ref_y = keras_reference(data, targets, length, stride, rate, start, end)
    np.testing.assert_array_equal(x, ref_x)
    np.testing.assert_array_equal(y, ref_y)


def test_timeseries_dataset_documented_examples():
    # Keras example 1: indices 0..98, length 10, rate 2, stride 3.
    ds = timeseries_dataset_from_array(np.arange(99), None, 10, sequence_stride=3, sampling_rate=2)
    x = torch.cat(list(ds)).numpy()
    np.testing.assert_array_equal(x[0], np.arange(0, 20, 2))
    np.testing.assert_array_equal(x[1], np.arange(3, 23, 2))
    np.testing.assert_array_equal(x[-1], np.arange(78, 98, 2))
    # Keras example 2: predict the step after each window.
    data = np.arange(100.0)
    ds = timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10)
    inputs, targets = next(iter(ds))
    np.testing.assert_array_equal(inputs[0].numpy(), data[:10])
    assert targets[0].item() == data[10]
    assert len(torch.cat([b[1] for b in ds])) == 81


def test_timeseries_dataset_shuffle_is_seeded_and_complete():
    data = np.arange(50.0)
    a = [
        b[1]
        for b in timeseries_dataset_from_array(data, data, 5, batch_size=8, shuffle=True, seed=3)
    ]
    b = [
        b[1]
        for b in timeseries_dataset_from_array(data, data, 5, batch_size=8, shuffle=True, seed=3)
    ]
    ordered = torch.cat([b[1] for b in timeseries_dataset_from_array(data, data, 5, batch_size=8)])
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    shuffled = torch.cat(a)
    assert not torch.equal(shuffled, ordered)
    assert torch.equal(shuffled.sort().values, ordered)


def test_timeseries_dataset_unbatched_and_without_targets():
    ds = timeseries_dataset_from_array(np.arange(12.0), None, 4, batch_size=None)
    samples = list(ds)
    assert len(samples) == len(ds) == 9
    assert tuple(samples[0].shape) == (4,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_index": 20}, "start_index must be lower"),
        ({"end_index": 3, "start_index": 5}, "end_index .* must be higher"),
        ({"sampling_rate": 0}, "sampling_rate must be a positive integer"),
        ({"sequence_stride": 20}, "sequence_stride .* must be lower"),
        ({"sequence_length": 30}, "covers 30 steps"),
    ],
)
def test_timeseries_dataset_errors(kwargs, message):
    args = {"sequence_length": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        timeseries_dataset_from_array(np.zeros(20), None, **args)


def test_model_fit_accepts_the_dataset():
    data = np.sin(np.arange(200) / 5).astype(np.float32)[:, None]
    ds = timeseries_dataset_from_array(data[:-8], data[8:], sequence_length=8, batch_size=32)
    model = Sequential([Input((8, 1)), LSTM(4), Dense(1)])
    model.compile(loss="mse", optimizer="adam", device="cpu")
    history = model.fit(ds, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
