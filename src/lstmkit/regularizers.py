"""Weight regularizers by Keras name: ``reg(weight) -> scalar tensor`` added to the training loss.

Each regularizer is a small object with the penalty formula of its Keras 3 namesake, computed
in the weight's dtype and on its device, and a ``get_config()`` that round-trips through `get`.
"""

from __future__ import annotations

import math

import torch

from lstmkit.named import Named, registry, resolve, serialize

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "get", "serialize"]

_EPSILON = 1e-7  # Keras's backend epsilon: the smallest norm `OrthogonalRegularizer` divides by


def _factor(value: float | None, name: str, default: float) -> float:
    """A penalty factor as Keras validates it: a finite, non-negative number (None: default)."""
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite, non-negative number; got {name}={value!r}")
    return float(value)


class Regularizer(Named):
    """Base class: subclasses implement ``__call__(weight)``; as in Keras, the base adds nothing."""

    keras_name = "regularizer"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), dtype=x.dtype, device=x.device)


class L1(Regularizer):
    """Keras's L1: ``l1 * sum(|x|)``."""

    keras_name = "l1"

    def __init__(self, l1: float = 0.01):
        self.l1 = _factor(l1, "l1", 0.01)

    def __call__(self, x):
        return self.l1 * x.abs().sum()


class L2(Regularizer):
    """Keras's L2: ``l2 * sum(x ** 2)``."""

    keras_name = "l2"

    def __init__(self, l2: float = 0.01):
        self.l2 = _factor(l2, "l2", 0.01)

    def __call__(self, x):
        return self.l2 * x.square().sum()


class L1L2(Regularizer):
    """Keras's L1L2: ``l1 * sum(|x|) + l2 * sum(x ** 2)``, a zero term skipped.

    The class defaults to no penalty (as Keras's does); the string ``"l1_l2"`` gives
    ``l1=0.01, l2=0.01``, the defaults Keras documents for it.
    """

    keras_name = "l1_l2"

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _factor(l1, "l1", 0.0)
        self.l2 = _factor(l2, "l2", 0.0)

    def __call__(self, x):
        penalty = torch.zeros((), dtype=x.dtype, device=x.device)
        if self.l1:
            penalty = penalty + self.l1 * x.abs().sum()
        if self.l2:
            penalty = penalty + self.l2 * x.square().sum()
        return penalty


class OrthogonalRegularizer(Regularizer):
    """Keras's OrthogonalRegularizer for a 2D weight.

    The rows (``mode="rows"``) or columns (``mode="columns"``) are L2-normalised (a norm below
    1e-7 counts as 1e-7); the penalty is ``factor`` times the mean absolute dot product over the
    distinct pairs. Keras returns NaN for a single row/column (no pairs); this raises instead.
    """

    keras_name = "orthogonal_regularizer"

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        self.factor = _factor(factor, "factor", 0.01)
        if mode not in ("rows", "columns"):
            raise ValueError(f"mode must be 'rows' or 'columns'; got mode={mode!r}")
        self.mode = mode

    def __call__(self, x):
        if x.dim() != 2:
            raise ValueError(f"OrthogonalRegularizer needs a 2D weight; got shape {tuple(x.shape)}")
        vectors = x if self.mode == "rows" else x.t()
        size = vectors.shape[0]
        if size < 2:
            raise ValueError(
                f"OrthogonalRegularizer(mode={self.mode!r}) needs at least 2 {self.mode}; "
                f"got shape {tuple(x.shape)}"
            )
        inv_norm = vectors.square().sum(dim=1, keepdim=True).rsqrt().clamp(max=1.0 / _EPSILON)
        unit = vectors * inv_norm
        off_diagonal = (unit @ unit.t()) * (1.0 - torch.eye(size, dtype=x.dtype, device=x.device))
        num_pairs = size * (size - 1) / 2
        return self.factor * 0.5 * off_diagonal.abs().sum() / num_pairs


_CLASSES: tuple[type[Regularizer], ...] = (L1, L2, L1L2, OrthogonalRegularizer)
# Keras names and class names (the form Keras's own `serialize` writes)
_BY_NAME = registry(*_CLASSES)
# a bare name builds the class with its defaults, except where Keras documents other ones
_NAME_DEFAULTS: dict[str, dict[str, float]] = {"l1_l2": {"l1": 0.01, "l2": 0.01}}


def get(identifier: str | dict | Regularizer | None) -> Regularizer | None:
    """A regularizer from None (none), a Keras name, a ``{"class_name", "config"}`` dict or an
    instance."""
    return (
        None if identifier is None else resolve("regularizer", identifier, _BY_NAME, _NAME_DEFAULTS)
    )
