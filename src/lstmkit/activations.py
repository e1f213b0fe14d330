"""Activation functions by Keras name (`keras.activations`), as torch callables.

`hard_sigmoid` follows Keras 3: ``relu6(x + 3) / 6``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Activation = Callable[[torch.Tensor], torch.Tensor]

_ACTIVATIONS: dict[str, Activation] = {
    "linear": lambda x: x,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": F.hardsigmoid,
    "relu": F.relu,
    "relu6": F.relu6,
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,  # exact (erf) form, Keras's default
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "silu": F.silu,
    "hard_silu": F.hardswish,
    "hard_swish": F.hardswish,
    "mish": F.mish,
    "exponential": torch.exp,
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
}


def canonical_name(identifier: str | None) -> str:
    """Return the Keras name of an activation, or raise `ValueError` naming the known ones."""
    if identifier is None:
        return "linear"
    if not isinstance(identifier, str):
        raise TypeError(f"activation must be a string name; got {type(identifier).__name__}")
    name = identifier.lower()
    if name not in _ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {identifier!r}; expected one of {sorted(_ACTIVATIONS)}"
        )
    return name


def get(identifier: str | None) -> Activation:
    """Look up an activation function by Keras name (None means linear)."""
    return _ACTIVATIONS[canonical_name(identifier)]
