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

from lstmkit import constraints, initializers, regularizers

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


def input_tensor(module: torch.nn.Module, x: Any) -> torch.Tensor:
    """``x`` as a tensor (`as_tensor`); arrays go to the device of the module's weights, as
    Keras places inputs."""
    tensor = as_tensor(x)
    if not isinstance(x, torch.Tensor):
        weight = next(module.parameters(), None)
        if weight is not None:
            tensor = tensor.to(weight.device)
    return tensor


class Layer(torch.nn.Module):
    """Base class of lstmkit layers.

    Unlike a bare `torch.nn.Module`, a layer starts in inference mode, as a Keras layer runs
    unless told it is training: `fit` switches the model to training, and so does ``.train()``
    on any module that contains the layer.

    Args:
        name: layer name; by default the snake-cased class name made unique (``dense_1``).
        input_shape: shape of one sample (no batch axis); lets a `Sequential` build at once.
    """

    call_takes_mask = False  # layers whose forward accepts ``mask=`` (LSTM, wrappers)

    def __init__(
        self,
        name: str | None = None,
        input_shape: Shape | None = None,
        activity_regularizer: Any = None,
    ):
        super().__init__()
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.input_shape_arg = None if input_shape is None else tuple(input_shape)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.weight_regularizers: dict[str, regularizers.Regularizer] = {}
        self.weight_constraints: dict[str, constraints.Constraint] = {}
        self.activity_losses: list[torch.Tensor] = []
        self.built = False
        self.eval()  # Keras semantics: inference unless fit() or .train() says training

    def add_weight(
        self,
        name: str,
        shape: tuple[int, ...],
        initializer: Any,
        regularizer: Any = None,
        constraint: Any = None,
    ) -> torch.nn.Parameter:
        """Create, register and return a weight, as Keras's ``Layer.add_weight``.

        ``initializer`` is a Keras name, a config dict, or any callable ``shape -> tensor``.
        """
        init = initializers.get(initializer) if isinstance(initializer, str | dict) else initializer
        weight = torch.nn.Parameter(init(shape))
        self.register_parameter(name, weight)
        if regularizer is not None:
            self.weight_regularizers[name] = regularizers.get(regularizer)
        if constraint is not None:
            self.weight_constraints[name] = constraints.get(constraint)
        return weight

    @property
    def losses(self) -> list[torch.Tensor]:
        """This layer's regularization terms: weight penalties now, activity of the last call."""
        weights = [reg(getattr(self, name)) for name, reg in self.weight_regularizers.items()]
        return weights + self.activity_losses

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Project constrained weights back onto their sets (run after each optimizer step)."""
        for name, constraint in self.weight_constraints.items():
            weight = getattr(self, name)
            weight.copy_(constraint(weight))

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        """The mask of this layer's output; by default the input's mask passes through."""
        return mask

    # -- building -------------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            args = (input_tensor(self, args[0]), *args[1:])
        if not self.built:
            device = next((a.device for a in args if isinstance(a, torch.Tensor)), None)
            self.build(tuple(args[0].shape))
            if device is not None:
                self.to(device)
        outputs = super().__call__(*args, **kwargs)
        if self.activity_regularizer is not None:
            first = outputs[0] if isinstance(outputs, tuple) else outputs
            # Keras 3 divides the activity penalty by the batch size
            self.activity_losses = [self.activity_regularizer(first) / first.shape[0]]
        return outputs

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
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
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


WeightOptions = dict[str, tuple[Any, Any]]  # prefix -> (regularizer, constraint)


def weight_options(**by_prefix: tuple[Any, Any]) -> WeightOptions:
    """Resolve Keras's ``<prefix>_regularizer`` / ``<prefix>_constraint`` arguments."""
    return {
        prefix: (regularizers.get(reg), None if con is None else constraints.get(con))
        for prefix, (reg, con) in by_prefix.items()
    }


def weight_options_config(options: WeightOptions) -> dict[str, Any]:
    """The config entries of resolved weight options (None where unset)."""
    config: dict[str, Any] = {}
    for prefix, (reg, con) in options.items():
        config[f"{prefix}_regularizer"] = None if reg is None else regularizers.serialize(reg)
        config[f"{prefix}_constraint"] = None if con is None else constraints.serialize(con)
    return config
