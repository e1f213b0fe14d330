"""Turn what a user passes to `fit` (arrays, tensors, an iterable of batches) into batches.

Arrays are validated once (lengths, NaN), copied to the model's device once, and sliced per
batch after one permutation per epoch, so an epoch costs one gather and no host traffic.
Iterables (a `torch.utils.data.DataLoader`, a generator of ``(x, y)`` tuples) are moved to
the device batch by batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from lstmkit.layers.layer import as_tensor

Batch = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]  # x, y, sample_weight


def _check_finite(name: str, t: torch.Tensor) -> None:
    """Raise `ValueError` naming the first sample of ``t`` with a NaN or infinity."""
    if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
        bad = (~torch.isfinite(t)).reshape(t.shape[0], -1).any(dim=1).nonzero()[0].item()
        raise ValueError(
            f"{name} contains NaN or infinite values (first at sample {bad}); "
            "expected finite numbers"
        )


class ArrayData:
    """In-memory samples: ``x`` (N, ...), optional ``y`` (N, ...) and ``sample_weight`` (N,)."""

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        device: torch.device | str = "cpu",
        name: str = "x",
    ):
        y_name = name.replace("x", "y", 1)
        x = as_tensor(x)
        if x.dim() == 0:
            raise ValueError(f"{name} must have a batch axis; got a scalar")
        n = x.shape[0]
        _check_finite(name, x)
        if y is not None:
            y = as_tensor(y)
            if y.dim() == 0 or y.shape[0] != n:
                raise ValueError(
                    f"{name} and {y_name} must have the same number of samples; got {name} with "
                    f"{n} and {y_name} with {'no batch axis' if y.dim() == 0 else y.shape[0]}"
                )
            _check_finite(y_name, y)
        if sample_weight is not None:
            sample_weight = as_tensor(sample_weight).float()
            if tuple(sample_weight.shape) != (n,):
                raise ValueError(
                    f"sample_weight must have shape ({n},) to match {name}; "
                    f"got {tuple(sample_weight.shape)}"
                )
            _check_finite("sample_weight", sample_weight)
        self.x = x.to(device)
        self.y = None if y is None else y.to(device)
        self.sample_weight = None if sample_weight is None else sample_weight.to(device)

    def __len__(self) -> int:
        return self.x.shape[0]

    def steps(self, batch_size: int) -> int:
        return math.ceil(len(self) / batch_size)

    def split(self, fraction: float) -> tuple[ArrayData, ArrayData]:
        """Keras's ``validation_split``: the last ``fraction`` of samples, before shuffling."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"validation_split must be in (0, 1); got {fraction!r}")
        cut = int(len(self) * (1.0 - fraction))
        if cut == 0 or cut == len(self):
            raise ValueError(
                f"validation_split={fraction} leaves an empty set with {len(self)} samples"
            )
        return self._subset(slice(0, cut)), self._subset(slice(cut, None))

    def _subset(self, index: slice | torch.Tensor) -> ArrayData:
        part = ArrayData.__new__(ArrayData)
        part.x = self.x[index]
        part.y = None if self.y is None else self.y[index]
        part.sample_weight = None if self.sample_weight is None else self.sample_weight[index]
        return part

    def batches(self, batch_size: int, shuffle: bool = False) -> Iterator[Batch]:
        data = self._subset(torch.randperm(len(self), device=self.x.device)) if shuffle else self
        for start in range(0, len(self), batch_size):
            end = start + batch_size
            yield (
                data.x[start:end],
                None if data.y is None else data.y[start:end],
                None if data.sample_weight is None else data.sample_weight[start:end],
            )


class IterableData:
    """Batches from an iterable of ``x``, ``(x, y)`` or ``(x, y, sample_weight)``."""

    def __init__(self, source: Iterable[Any], device: torch.device | str = "cpu"):
        self.source, self.device = source, device

    def steps(self, batch_size: int) -> int | None:
        try:
            return len(self.source)  # type: ignore[arg-type]
        except TypeError:
            return None

    def batches(self, batch_size: int, shuffle: bool = False) -> Iterator[Batch]:
        non_blocking = torch.device(self.device).type == "cuda"
        for step, item in enumerate(self.source):
            parts = list(item) if isinstance(item, (tuple, list)) else [item]
            if not 1 <= len(parts) <= 3:
                raise ValueError(
                    f"each batch must be x, (x, y) or (x, y, sample_weight); got {len(parts)} parts"
                )
            parts += [None] * (3 - len(parts))
            x, y, sw = (None if p is None else as_tensor(p) for p in parts)
            if x.device.type == "cpu":  # checked before the copy: no device sync per batch
                _check_finite(f"x (batch {step})", x)
            x, y, sw = (
                None if t is None else t.to(self.device, non_blocking=non_blocking)
                for t in (x, y, sw)
            )
            yield x, y, None if sw is None else sw.float()


def is_iterable_source(x: Any) -> bool:
    """True for a DataLoader/generator/list of batches, False for array-likes."""
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return False
    if isinstance(x, (list, tuple)):
        return False  # nested lists are array-likes, as in Keras
    return isinstance(x, Iterable)


def class_weights_to_sample_weights(
    y: torch.Tensor, class_weight: dict[int, float]
) -> torch.Tensor:
    """Per-sample weights from Keras's ``class_weight`` mapping (class index -> weight)."""
    if y.dim() > 2:
        raise ValueError(f"class_weight needs targets of rank 1 or 2; got shape {tuple(y.shape)}")
    one_hot = y.dim() == 2 and y.shape[-1] > 1
    labels = y.argmax(-1) if one_hot else y.reshape(-1).round().long()
    table = torch.ones(int(max(max(class_weight) + 1, int(labels.max()) + 1)), device=y.device)
    for cls, weight in class_weight.items():
        table[int(cls)] = float(weight)
    return table[labels]
