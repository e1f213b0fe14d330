"""Weight constraints by Keras name: ``constraint(weight) -> projected weight``.

Each constraint is a small object with the projection of its Keras 3 namesake, applied after an
optimizer step; it is pure (returns a new tensor, leaves its input alone) and has a
``get_config()`` that round-trips through `get`. Weights are in Keras layout ((input_dim, units)
for kernels), so ``axis=0`` constrains each unit's incoming weights, as in Keras.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from lstmkit.named import Named, registry, resolve, serialize

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "get", "serialize"]

_EPSILON = 1e-7  # Keras's backend epsilon, added to the norms before dividing by them

Axis = int | Sequence[int]


def _non_negative(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number; got {name}={value!r}")
    return value


def _axis(axis: Axis) -> Axis:
    ok = isinstance(axis, int) or (
        isinstance(axis, Sequence) and len(axis) > 0 and all(isinstance(a, int) for a in axis)
    )
    if isinstance(axis, bool) or not ok:
        raise ValueError(f"axis must be an int or a sequence of ints; got axis={axis!r}")
    return axis


def _norms(weight: torch.Tensor, axis: Axis) -> torch.Tensor:
    """L2 norms over ``axis``, kept as size-1 dims so they broadcast against ``weight``."""
    dim = axis if isinstance(axis, int) else tuple(axis)
    return weight.square().sum(dim=dim, keepdim=True).sqrt()


class Constraint(Named):
    """Base class: subclasses implement ``__call__(weight)``; as in Keras, the base changes
    nothing (it returns a copy)."""

    keras_name = "constraint"

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.clone()


class MaxNorm(Constraint):
    """Keras's MaxNorm: ``w * clip(norm, 0, max_value) / (1e-7 + norm)``, norms over ``axis``."""

    keras_name = "max_norm"

    def __init__(self, max_value: float = 2, axis: Axis = 0):
        self.max_value = _non_negative(max_value, "max_value")
        self.axis = _axis(axis)

    def __call__(self, weight):
        norms = _norms(weight, self.axis)
        return weight * (norms.clamp(0, self.max_value) / (_EPSILON + norms))


class NonNeg(Constraint):
    """Keras's NonNeg: ``max(w, 0)``."""

    keras_name = "non_neg"

    def __call__(self, weight):
        return weight.clamp_min(0)


class UnitNorm(Constraint):
    """Keras's UnitNorm: ``w / (1e-7 + norm)``, norms over ``axis``."""

    keras_name = "unit_norm"

    def __init__(self, axis: Axis = 0):
        self.axis = _axis(axis)

    def __call__(self, weight):
        return weight / (_EPSILON + _norms(weight, self.axis))


class MinMaxNorm(Constraint):
    """Keras's MinMaxNorm: rescale each norm (over ``axis``) to
    ``rate * clip(norm, min_value, max_value) + (1 - rate) * norm``; ``rate=1`` enforces the
    bounds strictly, a smaller rate moves towards them gradually."""

    keras_name = "min_max_norm"

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Axis = 0
    ):
        self.min_value = _non_negative(min_value, "min_value")
        self.max_value = _non_negative(max_value, "max_value")
        if min_value > max_value:
            raise ValueError(
                f"min_value must not exceed max_value; got min_value={min_value!r}, "
                f"max_value={max_value!r}"
            )
        self.rate = _non_negative(rate, "rate")
        if not math.isfinite(rate):
            raise ValueError(f"rate must be finite; got rate={rate!r}")
        self.axis = _axis(axis)

    def __call__(self, weight):
        norms = _norms(weight, self.axis)
        desired = self.rate * norms.clamp(self.min_value, self.max_value) + (1 - self.rate) * norms
        return weight * (desired / (_EPSILON + norms))


_CLASSES: tuple[type[Constraint], ...] = (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)
# Keras names and class names (the form Keras's own `serialize` writes)
_BY_NAME = registry(*_CLASSES)


def get(identifier: str | dict | Constraint | None) -> Constraint | None:
    """A constraint from None (none), a Keras name, a ``{"class_name", "config"}`` dict or an
    instance."""
    return None if identifier is None else resolve("constraint", identifier, _BY_NAME)
