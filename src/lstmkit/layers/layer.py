"""`Layer`: the Keras layer contract on a `torch.nn.Module`.

A layer is built lazily: its weights are created by ``build(input_shape)`` on the first call (or
when a `Sequential` knows its input shape), as in Keras. Weights are registered in Keras order so
that ``get_weights()`` returns the same list of arrays Keras returns for the same layer.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import numpy as np
import torch

Shape = tuple[int | None, ...]

_name_counts: defaultdict[str, int] = defaultdict(int)


def unique_name(prefix: str) -> str:
    """Keras-style automatic names: ``lstm``, ``lstm_1``, ``lstm_2`` ..."""
    n = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def snake_case(name: str) -> str:
    """``Dense`` -> ``dense``, ``LSTM`` -> ``lstm``, ``InputLayer`` -> ``input_layer``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def as_tensor(x: Any) -> torch.Tensor:
    """NumPy arrays, lists and float64 tensors become tensors with floats as float32 (as Keras
    casts inputs); other tensors pass through."""
    if isinstance(x, torch.Tensor):
        return x.float() if x.dtype == torch.float64 else x
    array = np.asarray(x)
    if array.dtype.kind == "f":
        array = array.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(array))


class Layer(torch.nn.Module):
    """Base class of lstmkit layers.

    Unlike a bare `torch.nn.Module`, a layer starts in inference mode, as a Keras layer runs
    unless told it is training: `fit` switches the model to training, and so does ``.train()``
    on any module that contains the layer.

    Args:
        name: layer name; by default the snake-cased class name made unique (``dense_1``).
        input_shape: shape of one sample (no batch axis); lets a `Sequential` build at once.
    """

    def __init__(self, name: str | None = None, input_shape: Shape | None = None):
        super().__init__()
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.input_shape_arg = None if input_shape is None else tuple(input_shape)
        self.built = False
        self.eval()  # Keras semantics: inference unless fit() or .train() says training

    # -- building -------------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and not isinstance(args[0], torch.Tensor):
            args = (as_tensor(args[0]), *args[1:])
        if not self.built:
            device = next((a.device for a in args if isinstance(a, torch.Tensor)), None)
            self.build(tuple(args[0].shape))
            if device is not None:
                self.to(device)
        return super().__call__(*args, **kwargs)

    # -- weights --------------------------------------------------------------------------
    @property
    def weights(self) -> list[torch.nn.Parameter]:
        return list(self.parameters())

    @property
    def trainable(self) -> bool:
        return all(p.requires_grad for p in self.parameters())

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for p in self.parameters():
            p.requires_grad_(bool(value))

    def get_weights(self) -> list[np.ndarray]:
        return [p.detach().cpu().numpy().copy() for p in self.weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(
                f"Layer {self.name!r} expects {len(own)} weight arrays; got {len(weights)}"
            )
        for p, w in zip(own, weights, strict=True):
            w = torch.as_tensor(np.asarray(w))
            if tuple(w.shape) != tuple(p.shape):
                raise ValueError(
                    f"Layer {self.name!r}: weight of shape {tuple(p.shape)} cannot take an array "
                    f"of shape {tuple(w.shape)}"
                )
        with torch.no_grad():
            for p, w in zip(own, weights, strict=True):
                p.copy_(torch.as_tensor(np.asarray(w), dtype=p.dtype))

    def count_params(self) -> int:
        return sum(p.numel() for p in self.weights)

    # -- config ---------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name}
        if self.input_shape_arg is not None:
            config["input_shape"] = list(self.input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def check_input(layer: Layer, x: torch.Tensor, rank: int | None, last_dim: int) -> None:
    """Raise a `ValueError` naming the expected shape when ``x`` does not fit ``layer``.

    ``rank`` is the exact rank expected, or None for "at least 2" (Dense acts on the last axis).
    """
    rank_ok = x.dim() == rank if rank is not None else x.dim() >= 2
    if rank_ok and x.shape[-1] == last_dim:
        return
    want = f"(batch, timesteps, {last_dim})" if rank == 3 else f"(batch, ..., {last_dim})"
    got = (None, *x.shape[1:])  # the batch size is free, as in Keras's messages
    raise ValueError(f"Layer {layer.name!r} expects input of shape {want}; got {got}")
