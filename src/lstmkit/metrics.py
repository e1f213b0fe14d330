"""Metrics by Keras name, accumulated on the device so that training never waits for them.

A metric keeps a running weighted sum and weight on the model's device; `result()` is the only
place that copies to the host. ``"accuracy"`` is resolved from the shapes of targets and
predictions exactly as Keras does: one output unit means binary accuracy, targets with one axis
fewer (or a last axis of 1) than the predictions mean sparse categorical accuracy, otherwise
categorical accuracy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lstmkit import losses

PerSample = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _labels(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    labels = y_true.long()
    return labels.squeeze(-1) if labels.dim() == y_pred.dim() else labels


def categorical_accuracy(y_true, y_pred):
    return (y_true.argmax(-1) == y_pred.argmax(-1)).float()


def sparse_categorical_accuracy(y_true, y_pred):
    return (_labels(y_true, y_pred) == y_pred.argmax(-1)).float()


def binary_accuracy(y_true, y_pred, threshold: float = 0.5):
    y_true = losses._match_rank(y_true, y_pred)
    return ((y_pred > threshold).to(y_true.dtype) == y_true).float().mean(-1)


_PER_SAMPLE: dict[str, PerSample] = {
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "binary_accuracy": binary_accuracy,
    "mean_absolute_error": losses.MeanAbsoluteError().per_sample,
    "mean_squared_error": losses.MeanSquaredError().per_sample,
    "mean_absolute_percentage_error": losses.MeanAbsolutePercentageError().per_sample,
    "categorical_crossentropy": losses.CategoricalCrossentropy().per_sample,
    "sparse_categorical_crossentropy": losses.SparseCategoricalCrossentropy().per_sample,
    "binary_crossentropy": losses.BinaryCrossentropy().per_sample,
}
_ALIASES = {
    "mae": "mean_absolute_error",
    "mse": "mean_squared_error",
    "mape": "mean_absolute_percentage_error",
}
_ACCURACY = ("accuracy", "acc")
_ROOT = ("root_mean_squared_error", "rmse")


class Mean:
    """Weighted running mean of per-sample values, kept on the device."""

    def __init__(self, name: str, fn: PerSample | None = None):
        self.name, self.fn = name, fn
        self.reset_state()

    def reset_state(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.weight: torch.Tensor | float = 0.0

    def update(
        self,
        values: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> None:
        """Add per-sample ``values``, weighted by ``sample_weight`` and the step ``mask``."""
        values = values.detach().float()
        weight = losses.combined_weight(values, sample_weight, mask)
        if weight is None:
            self.total = self.total + values.sum()
            self.weight = self.weight + values.numel()
            return
        weight = weight.expand_as(values)
        self.total = self.total + (values * weight).sum()
        self.weight = self.weight + weight.sum()

    def update_scalar(self, value: torch.Tensor, count: int) -> None:
        """Add one batch mean ``value`` that stands for ``count`` samples."""
        self.total = self.total + value.detach().float() * count
        self.weight = self.weight + count

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        self.update(self.fn(y_true, y_pred), sample_weight, mask)

    def value(self) -> torch.Tensor | float:
        """The current result, still on the device (no synchronisation)."""
        if not isinstance(self.total, torch.Tensor):
            return 0.0  # nothing seen yet, as Keras reports an empty mean
        return self.total / self.weight

    def result(self) -> float:
        return float(self.value())


class RootMeanSquaredError(Mean):
    """Square root of the mean squared error over all samples seen."""

    def __init__(self, name: str = "root_mean_squared_error"):
        super().__init__(name, losses.MeanSquaredError().per_sample)

    def value(self):
        v = super().value()
        return v.sqrt() if isinstance(v, torch.Tensor) else v**0.5


def check(identifier: str) -> None:
    """Raise `ValueError` for a metric name lstmkit does not know."""
    if not isinstance(identifier, str):
        raise ValueError(f"metrics must be given by name; got {identifier!r}")
    name = identifier.lower()
    if name not in _ACCURACY + _ROOT and _ALIASES.get(name, name) not in _PER_SAMPLE:
        known = sorted({*_PER_SAMPLE, *_ALIASES, *_ACCURACY, *_ROOT})
        raise ValueError(f"Unknown metric {identifier!r}; expected one of {known}")


def get(identifier: str, y_shape: tuple[int, ...], pred_shape: tuple[int, ...]) -> Mean:
    """A fresh metric for ``identifier``, resolving ``"accuracy"`` from the shapes as Keras does.

    The metric keeps the name the user gave (``"accuracy"``, ``"mae"``) for the logs.
    """
    check(identifier)
    name = identifier.lower()
    if name in _ROOT:
        return RootMeanSquaredError(identifier)
    if name in _ACCURACY:
        is_binary = pred_shape[-1] == 1
        is_sparse = len(y_shape) < len(pred_shape) or (y_shape[-1] == 1 and pred_shape[-1] > 1)
        if is_binary:
            name = "binary_accuracy"
        elif is_sparse:
            name = "sparse_categorical_accuracy"
        else:
            name = "categorical_accuracy"
    return Mean(identifier, _PER_SAMPLE[_ALIASES.get(name, name)])
