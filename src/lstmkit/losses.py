"""Losses by Keras alias, with Keras's reduction ("sum_over_batch_size").

A loss object maps ``(y_true, y_pred)`` to one value per sample (`per_sample`); calling it
averages those over the batch, optionally weighted by ``sample_weight`` (sum of weighted values
divided by the batch size, as Keras does). `check_targets` tells a user early when their labels
cannot fit the loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

EPSILON = 1e-7  # Keras's backend epsilon, used to clip probabilities


def _expand(weight: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return weight.reshape(weight.shape + (1,) * (values.dim() - weight.dim())).to(values.dtype)


def combined_weight(
    values: torch.Tensor, sample_weight: torch.Tensor | None, mask: torch.Tensor | None
) -> torch.Tensor | None:
    """Per-sample weights times the step mask, shaped to broadcast over ``values``."""
    weight = None if sample_weight is None else _expand(sample_weight, values)
    if mask is not None:
        weight = _expand(mask, values) if weight is None else weight * _expand(mask, values)
    return weight


class Loss:
    """Base class. Subclasses implement `per_sample`."""

    name = "loss"

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(
        self,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean over the batch of the (weighted) per-sample values.

        ``mask`` (batch, timesteps), the output mask of a sequence model, leaves padded steps
        out: as in Keras, the mean is then taken over the real steps only.
        """
        values = self.per_sample(y_true, y_pred)
        weight = combined_weight(values, sample_weight, mask)
        if weight is None:
            return values.sum() / values.numel()
        if mask is not None:
            weight = weight * (mask.numel() / mask.sum().clamp_min(1))
        return (values * weight).sum() / values.numel()

    def check_targets(self, y: torch.Tensor, output_shape: tuple) -> None:
        """Raise `ValueError` when targets ``y`` (all of them) cannot fit the model output."""
        y_shape = tuple(y.shape)
        if tuple(y_shape[1:]) != tuple(output_shape[1:]) and not (
            len(y_shape) == 1 and tuple(output_shape[1:]) == (1,)
        ):
            raise ValueError(
                f"{self.name} expects targets of shape {('N', *output_shape[1:])} to match the "
                f"model output; got {tuple(y_shape)}"
            )

    def get_config(self) -> dict[str, Any]:
        return {}


class _Crossentropy(Loss):
    """A cross-entropy on probabilities, or on logits with ``from_logits=True``."""

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits}


def _match_rank(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    return y_true.to(y_pred.dtype)


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def per_sample(self, y_true, y_pred):
        return (y_pred - _match_rank(y_true, y_pred)).square().mean(-1)


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def per_sample(self, y_true, y_pred):
        return (y_pred - _match_rank(y_true, y_pred)).abs().mean(-1)


class MeanAbsolutePercentageError(Loss):
    name = "mean_absolute_percentage_error"

    def per_sample(self, y_true, y_pred):
        y_true = _match_rank(y_true, y_pred)
        return 100.0 * ((y_true - y_pred).abs() / y_true.abs().clamp_min(EPSILON)).mean(-1)


class Huber(Loss):
    name = "huber"

    def __init__(self, delta: float = 1.0):
        self.delta = float(delta)

    def per_sample(self, y_true, y_pred):
        y_true = _match_rank(y_true, y_pred)
        return F.huber_loss(y_pred, y_true, reduction="none", delta=self.delta).mean(-1)

    def get_config(self):
        return {"delta": self.delta}


class CategoricalCrossentropy(_Crossentropy):
    """Cross-entropy against one-hot (or soft) targets of shape (N, ..., classes)."""

    name = "categorical_crossentropy"

    def per_sample(self, y_true, y_pred):
        y_true = y_true.to(y_pred.dtype)
        if self.from_logits:
            return -(y_true * torch.log_softmax(y_pred, dim=-1)).sum(-1)
        probs = y_pred / y_pred.sum(-1, keepdim=True)
        return -(y_true * probs.clamp(EPSILON, 1 - EPSILON).log()).sum(-1)

    def check_targets(self, y, output_shape):
        y_shape = tuple(y.shape)
        if y_shape[1:] != tuple(output_shape[1:]):
            hint = (
                " Integer labels need sparse_categorical_crossentropy, or one-hot encode them "
                "with lstmkit.utils.to_categorical."
                if len(y_shape) == len(output_shape) - 1
                else ""
            )
            raise ValueError(
                f"categorical_crossentropy expects one-hot targets of shape "
                f"{('N', *output_shape[1:])}; got {tuple(y_shape)}.{hint}"
            )


class SparseCategoricalCrossentropy(_Crossentropy):
    """Cross-entropy against integer class labels of shape (N, ...) or (N, ..., 1)."""

    name = "sparse_categorical_crossentropy"

    def per_sample(self, y_true, y_pred):
        labels = y_true.long()
        if labels.dim() == y_pred.dim():
            labels = labels.squeeze(-1)
        if self.from_logits:
            log_probs = torch.log_softmax(y_pred, dim=-1)
        else:
            probs = y_pred / y_pred.sum(-1, keepdim=True)
            log_probs = probs.clamp(EPSILON, 1 - EPSILON).log()
        return -log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)

    def check_targets(self, y, output_shape):
        label_shape, classes = tuple(y.shape[1:]), output_shape[-1]
        if label_shape not in (tuple(output_shape[1:-1]), (*output_shape[1:-1], 1)):
            hint = (
                " (one-hot targets need categorical_crossentropy)"
                if label_shape == tuple(output_shape[1:])
                else ""
            )
            raise ValueError(
                f"sparse_categorical_crossentropy expects integer labels of shape "
                f"{('N', *output_shape[1:-1])}; got {tuple(y.shape)}{hint}"
            )
        if y.numel() and (y.is_floating_point() and bool((y != y.round()).any())):
            raise ValueError("sparse_categorical_crossentropy expects integer class labels")
        if y.numel() and bool(((y < 0) | (y >= classes)).any()):
            raise ValueError(
                f"sparse_categorical_crossentropy expects labels in [0, {classes}) for a model "
                f"with {classes} outputs; got labels from {y.min().item()} to {y.max().item()}"
            )


class BinaryCrossentropy(_Crossentropy):
    """Cross-entropy of independent 0/1 targets, averaged over the last axis."""

    name = "binary_crossentropy"

    def per_sample(self, y_true, y_pred):
        y_true = _match_rank(y_true, y_pred)
        if self.from_logits:
            return F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none").mean(-1)
        p = y_pred.clamp(EPSILON, 1 - EPSILON)
        return -(y_true * p.log() + (1 - y_true) * (1 - p).log()).mean(-1)

    def check_targets(self, y, output_shape):
        super().check_targets(y, output_shape)
        if y.numel() and bool(((y < 0) | (y > 1)).any()):
            raise ValueError(
                "binary_crossentropy expects targets in [0, 1]; "
                f"got values from {y.min().item()} to {y.max().item()}"
            )


_ALIASES: dict[str, type[Loss]] = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "huber": Huber,
    "huber_loss": Huber,
}


def get(identifier: str | Loss) -> Loss:
    """A loss object from a Keras alias (``"categorical_crossentropy"``, ``"mse"`` ...)."""
    if isinstance(identifier, Loss):
        return identifier
    if not isinstance(identifier, str) or identifier.lower() not in _ALIASES:
        raise ValueError(f"Unknown loss {identifier!r}; expected one of {sorted(_ALIASES)}")
    return _ALIASES[identifier.lower()]()


def serialize(loss: Loss) -> dict[str, Any]:
    return {"class_name": loss.name, "config": loss.get_config()}


def deserialize(config: dict[str, Any]) -> Loss:
    return _ALIASES[config["class_name"]](**config.get("config", {}))
