"""Sliding windows over time series, as strided views: nothing is copied until a batch is taken.

`sliding_windows` returns a read-only NumPy view of shape ``(windows, sequence_length,
*features)``; `WindowDataset` pairs input windows with the ``horizon`` steps that follow them
(a `torch.utils.data.Dataset`); `timeseries_dataset_from_array` follows the signature and
window/target semantics of ``keras.utils.timeseries_dataset_from_array`` and yields batches
of torch tensors that `Model.fit` accepts as an iterable of ``(x, y)`` batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view


def _as_array(data: Any, name: str) -> np.ndarray:
    """A NumPy view of arrays, tensors and pandas objects (no copy where the source allows)."""
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    elif hasattr(data, "to_numpy"):
        data = data.to_numpy()
    array = np.asarray(data)
    if array.ndim == 0:
        raise ValueError(f"{name} must have a time axis (axis 0); got a scalar")
    return array


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def window_span(sequence_length: int, sampling_rate: int = 1) -> int:
    """Number of raw time steps one window covers: ``(sequence_length - 1) * sampling_rate + 1``."""
    return (sequence_length - 1) * sampling_rate + 1


def sliding_windows(
    data: Any, sequence_length: int, stride: int = 1, sampling_rate: int = 1
) -> np.ndarray:
    """All windows of ``data`` along axis 0, as a strided view (no copy).

    Window ``i`` holds steps ``i*stride, i*stride + sampling_rate, ...`` (``sequence_length``
    of them). Windows that would run past the end are dropped.

    Args:
        data: array-like (NumPy, torch, pandas) with time on axis 0.
        sequence_length: steps per window.
        stride: steps between the starts of consecutive windows.
        sampling_rate: steps between consecutive elements inside a window.

    Returns:
        A read-only view of shape ``(num_windows, sequence_length, *data.shape[1:])``.
    """
    array = _as_array(data, "data")
    sequence_length = _positive_int("sequence_length", sequence_length)
    stride = _positive_int("stride", stride)
    sampling_rate = _positive_int("sampling_rate", sampling_rate)
    span = window_span(sequence_length, sampling_rate)
    if span > len(array):
        raise ValueError(
            f"a window covers {span} steps (sequence_length={sequence_length}, "
            f"sampling_rate={sampling_rate}) but data has only {len(array)}"
        )
    view = sliding_window_view(array, span, axis=0)  # (n - span + 1, *features, span)
    view = np.moveaxis(view, -1, 1)  # (n - span + 1, span, *features)
    return view[::stride, ::sampling_rate]


class WindowDataset(torch.utils.data.Dataset):
    """Input windows and the ``horizon`` steps after each one, for sequence-to-horizon models.

    Sample ``i`` is ``(x, y)`` with ``x = inputs[s : s + span : sampling_rate]`` (``span`` from
    `window_span`) and ``y = targets[s + span : s + span + horizon]``, where ``s = i * stride``:
    ``y`` starts right after the last input step, so a target never enters its own input.
    The windows are strided views of ``inputs``/``targets``; a sample is copied only when
    taken, and `batch` gathers several into one float32 tensor pair. Works with a
    `torch.utils.data.DataLoader`.

    Args:
        inputs: (time, ...) array-like; the model's input at each step.
        targets: (time, ...) array-like aligned with ``inputs``; ``None`` yields inputs only.
        sequence_length: input steps per sample (the lookback).
        horizon: target steps per sample.
        stride: steps between sample starts.
        sampling_rate: steps between input elements (targets are the consecutive steps after).
    """

    def __init__(
        self,
        inputs: Any,
        targets: Any,
        sequence_length: int,
        horizon: int = 1,
        stride: int = 1,
        sampling_rate: int = 1,
    ):
        self.inputs = _as_array(inputs, "inputs")
        self.targets = None if targets is None else _as_array(targets, "targets")
        self.sequence_length = _positive_int("sequence_length", sequence_length)
        self.horizon = _positive_int("horizon", horizon)
        self.stride = _positive_int("stride", stride)
        self.sampling_rate = _positive_int("sampling_rate", sampling_rate)
        n = len(self.inputs)
        if self.targets is not None and len(self.targets) != n:
            raise ValueError(
                f"inputs and targets must have the same length; got {n} and {len(self.targets)}"
            )
        self.span = window_span(self.sequence_length, self.sampling_rate)
        needed = self.span + (self.horizon if self.targets is not None else 0)
        if needed > n:
            raise ValueError(
                f"a sample needs {needed} steps (sequence_length={self.sequence_length}, "
                f"sampling_rate={self.sampling_rate}, horizon={self.horizon}) "
                f"but the series has only {n}"
            )
        self._x = sliding_windows(self.inputs, self.sequence_length, 1, self.sampling_rate)
        self._y = None
        if self.targets is not None:
            self._y = sliding_windows(self.targets[self.span :], self.horizon)
        self.starts = np.arange(0, n - needed + 1, self.stride)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Sample ``i`` as writable copies (what a `torch.utils.data.DataLoader` collates)."""
        s = self.starts[i]
        return (
            np.array(self._x[s])
            if self._y is None
            else (np.array(self._x[s]), np.array(self._y[s]))
        )

    def arrays(self, index: Any = slice(None)) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Samples ``index`` (a slice, integers) gathered into new ``(k, ...)`` arrays."""
        starts = np.atleast_1d(self.starts[index])
        x = np.ascontiguousarray(self._x[starts])
        return x if self._y is None else (x, np.ascontiguousarray(self._y[starts]))

    def batch(self, index: Any) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Samples ``index`` as float32 tensors (one gather, one copy)."""
        parts = self.arrays(index)
        if isinstance(parts, tuple):
            return tuple(torch.from_numpy(p.astype(np.float32, copy=False)) for p in parts)
        return torch.from_numpy(parts.astype(np.float32, copy=False))


class TimeseriesDataset:
    """Re-iterable batches of windows (one pass per epoch), from `timeseries_dataset_from_array`.

    Yields ``(x, y)`` tensor batches, or ``x`` alone without targets; with ``batch_size=None``
    single samples. ``len()`` is the number of batches. With ``shuffle`` each pass draws a new
    order from a generator seeded once with ``seed``.
    """

    def __init__(
        self,
        windows: np.ndarray,
        targets: np.ndarray | None,
        batch_size: int | None,
        shuffle: bool,
        seed: int | None,
    ):
        self.windows, self.targets = windows, targets
        self.batch_size, self.shuffle = batch_size, shuffle
        self._rng = np.random.default_rng(seed)

    @property
    def num_samples(self) -> int:
        return len(self.windows)

    def __len__(self) -> int:
        if self.batch_size is None:
            return self.num_samples
        return math.ceil(self.num_samples / self.batch_size)

    def _take(self, index: Any) -> Any:
        x = torch.from_numpy(np.array(self.windows[index]))  # the one copy: this batch
        if self.targets is None:
            return x
        return x, torch.from_numpy(np.array(self.targets[index]))

    def __iter__(self) -> Iterator[Any]:
        order = np.arange(self.num_samples)
        if self.shuffle:
            self._rng.shuffle(order)
        if self.batch_size is None:
            for i in order:
                yield self._take(i)
            return
        for start in range(0, self.num_samples, self.batch_size):
            yield self._take(order[start : start + self.batch_size])


def _check_index(name: str, value: int | None, n: int) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0
    ):
        raise ValueError(f"{name} must be None or a non-negative integer; got {value!r}")
    if value is not None and value >= n:
        raise ValueError(f"{name} must be lower than the length of the data ({n}); got {value}")


def timeseries_dataset_from_array(
    data: Any,
    targets: Any,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
) -> TimeseriesDataset:
    """Batches of sliding windows over ``data``, as ``keras.utils.timeseries_dataset_from_array``.

    Within ``data[start_index:end_index]``, window ``i`` starts at ``p = i * sequence_stride``
    and holds steps ``p, p + sampling_rate, ...`` (``sequence_length`` of them); its target is
    ``targets[start_index + p]`` -- ``targets[i]`` belongs to the window *starting* at ``i``, so
    to predict the step after a window pass ``targets = data[sequence_length:]``. The number of
    windows is capped by ``len(targets)``, as in Keras.

    Differences from Keras: batches are torch tensors (not a ``tf.data.Dataset``), windows are
    gathered from a strided view per batch, and shuffling permutes all windows each pass rather
    than through a finite buffer.

    Args:
        data: (time, ...) array-like.
        targets: array-like indexed like ``data``, or ``None`` to yield inputs only.
        sequence_length: steps per window.
        sequence_stride: steps between window starts.
        sampling_rate: steps between elements of a window.
        batch_size: windows per batch; ``None`` yields single samples.
        shuffle: draw windows in random order (a new order each pass).
        seed: seed of the shuffling generator.
        start_index, end_index: use only ``data[start_index:end_index]``.

    Returns:
        A `TimeseriesDataset`: iterable of ``(x, y)`` batches, re-iterable for each epoch.
    """
    array = _as_array(data, "data")
    n = len(array)
    sequence_length = _positive_int("sequence_length", sequence_length)
    sequence_stride = _positive_int("sequence_stride", sequence_stride)
    sampling_rate = _positive_int("sampling_rate", sampling_rate)
    if batch_size is not None:
        batch_size = _positive_int("batch_size", batch_size)
    _check_index("start_index", start_index, n)
    _check_index("end_index", end_index, n)
    start = start_index or 0
    end = n if end_index is None else end_index
    if end <= start:
        raise ValueError(f"end_index ({end}) must be higher than start_index ({start})")
    if sampling_rate >= n:
        raise ValueError(f"sampling_rate ({sampling_rate}) must be lower than len(data) ({n})")
    if sequence_stride >= n:
        raise ValueError(f"sequence_stride ({sequence_stride}) must be lower than len(data) ({n})")
    span = window_span(sequence_length, sampling_rate)
    if span > end - start:
        raise ValueError(
            f"a window covers {span} steps but data[{start}:{end}] has only {end - start}"
        )
    windows = sliding_windows(array[start:end], sequence_length, sequence_stride, sampling_rate)
    target_array = None
    if targets is not None:
        target_array = _as_array(targets, "targets")
        count = min(len(windows), math.ceil(len(target_array) / sequence_stride))
        windows = windows[:count]
        target_array = target_array[start:][::sequence_stride][:count]
        if len(target_array) < count:
            raise ValueError(
                f"targets are too short: from start_index {start} they cover "
                f"{len(target_array)} windows; expected {count}"
            )
    return TimeseriesDataset(windows, target_array, batch_size, shuffle, seed)
