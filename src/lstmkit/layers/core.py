"""Keras core layers: `Dense`, `Dropout`, `Activation`, `Flatten`, `InputLayer` / `Input`."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from lstmkit import activations, initializers
from lstmkit.layers.layer import (
    Layer,
    Shape,
    check_input,
    weight_options,
    weight_options_config,
)


class Dense(Layer):
    """Densely connected layer ``activation(x · kernel + bias)`` on the last axis (Keras `Dense`).

    Args:
        units: output size.
        activation: Keras activation name (default none, i.e. linear).
        use_bias: whether to add a bias vector.
        kernel_initializer: default ``"glorot_uniform"``; ``kernel`` has shape (input_dim, units).
        bias_initializer: default ``"zeros"``.
        kernel_regularizer, bias_regularizer: penalties added to the training loss.
        kernel_constraint, bias_constraint: projections applied after each optimizer step.
    """

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"Dense units must be a positive integer; got {units!r}")
        self.units = units
        self.activation = activations.canonical_name(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.options = weight_options(
            kernel=(kernel_regularizer, kernel_constraint), bias=(bias_regularizer, bias_constraint)
        )

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                f"Layer {self.name!r} expects input of shape (batch, ..., features); "
                f"got {tuple(input_shape)}"
            )
        shape = (int(input_shape[-1]), self.units)
        self.add_weight("kernel", shape, self.kernel_initializer, *self.options["kernel"])
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, *self.options["bias"])
        else:
            self.bias = None
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        check_input(self, inputs, rank=None, last_dim=self.kernel.shape[0])
        z = inputs @ self.kernel
        if self.bias is not None:
            z = z + self.bias
        return activations.get(self.activation)(z)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            **weight_options_config(self.options),
        }


class Dropout(Layer):
    """Zero a fraction ``rate`` of the inputs in training and scale the rest by 1/(1-rate)."""

    def __init__(self, rate: float, **kwargs: Any):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1); got {rate!r}")
        self.rate = float(rate)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return F.dropout(inputs, self.rate, self.training)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}


class Activation(Layer):
    """Apply an activation function by Keras name."""

    def __init__(self, activation: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation = activations.canonical_name(activation)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return activations.get(self.activation)(inputs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation}


class Flatten(Layer):
    """Flatten every axis but the batch axis."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.reshape(inputs.shape[0], -1)

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> None:
        return None


class InputLayer(Layer):
    """Declares the shape of one sample; `Sequential` builds from it. Holds no weights."""

    def __init__(
        self,
        shape: Shape | None = None,
        batch_size: int | None = None,
        batch_shape: Shape | None = None,
        **kwargs: Any,
    ):
        if batch_shape is not None:  # Keras 3: batch_shape = (batch_size, *shape)
            if shape is not None or batch_size is not None:
                raise ValueError("give either batch_shape, or shape (and batch_size); not both")
            batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
        if shape is None:
            raise ValueError("an input needs its shape: shape=(steps, features) or batch_shape")
        super().__init__(input_shape=tuple(shape), **kwargs)
        self.batch_size = batch_size

    @property
    def shape(self) -> Shape:
        return (self.batch_size, *self.input_shape_arg)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.input_shape_arg),
            "batch_size": self.batch_size,
        }


def Input(  # noqa: N802
    shape: Shape | None = None,
    batch_size: int | None = None,
    name: str | None = None,
    batch_shape: Shape | None = None,
) -> InputLayer:
    """Keras's ``Input(shape=...)`` or ``Input(batch_shape=...)`` (a stateful model's fixed
    batch): the input declaration to put first in a `Sequential`."""
    return InputLayer(shape=shape, batch_size=batch_size, batch_shape=batch_shape, name=name)
