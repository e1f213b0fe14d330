"""`LSTM`: the Keras LSTM layer (`keras.layers.LSTM`) on lstmkit's kernels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lstmkit import initializers
from lstmkit.kernels import LSTMWeights
from lstmkit.kernels import lstm as run_lstm
from lstmkit.layers.layer import Layer, Shape, as_tensor, check_input
from lstmkit.spec import LSTMSpec


class LSTM(Layer):
    """Long Short-Term Memory layer (Hochreiter & Schmidhuber 1997), Keras semantics.

    Weights in Keras layout: ``kernel`` (input_dim, 4·units), ``recurrent_kernel``
    (units, 4·units), ``bias`` (4·units,), gates in order i, f, c, o.

    Args:
        units: dimensionality of the output space H.
        activation: cell and candidate activation (default ``"tanh"``).
        recurrent_activation: gate activation (default ``"sigmoid"``; ``"hard_sigmoid"`` too).
        use_bias: whether the layer has a bias vector.
        kernel_initializer: initializer of ``kernel`` (default ``"glorot_uniform"``).
        recurrent_initializer: initializer of ``recurrent_kernel`` (default ``"orthogonal"``).
        bias_initializer: initializer of ``bias`` (default ``"zeros"``).
        unit_forget_bias: add 1 to the forget-gate bias at initialisation (Jozefowicz et al.
            2015); forces ``bias_initializer="zeros"`` for that block, as Keras does.
        return_sequences: return the whole output sequence (B, T, H) instead of the last output.
        return_state: also return the final states ``h_T`` and ``c_T``.
        name, input_shape: see `Layer`.

    Call arguments:
        inputs: (batch, timesteps, input_dim) tensor or array.
        initial_state: optional ``[h0, c0]``, each (batch, units).

    Returns:
        (B, H) or (B, T, H); with ``return_state`` the tuple ``(output, h_T, c_T)``.
    """

    def __init__(
        self,
        units: int,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        return_sequences: bool = False,
        return_state: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.spec = LSTMSpec(
            units=units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=bool(use_bias),
        )
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)

    @property
    def units(self) -> int:
        return self.spec.units

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"Layer {self.name!r} expects input of shape (batch, timesteps, features); "
                f"got {tuple(input_shape)}"
            )
        input_dim, units = int(input_shape[-1]), self.units
        self.kernel = torch.nn.Parameter(self.kernel_initializer((input_dim, 4 * units)))
        self.recurrent_kernel = torch.nn.Parameter(self.recurrent_initializer((units, 4 * units)))
        if self.spec.use_bias:
            if self.unit_forget_bias:
                init = self.bias_initializer
                bias = torch.cat([init((units,)), torch.ones(units), init((2 * units,))])
            else:
                bias = self.bias_initializer((4 * units,))
            self.bias = torch.nn.Parameter(bias)
        else:
            self.bias = None
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape | tuple[Shape, ...]:
        batch, steps = input_shape[0], input_shape[1]
        output = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return output, (batch, self.units), (batch, self.units)
        return output

    def forward(
        self, inputs: torch.Tensor, initial_state: Sequence[Any] | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        check_input(self, inputs, rank=3, last_dim=self.kernel.shape[0])
        h0, c0 = self._initial_state(inputs, initial_state)
        weights = LSTMWeights(self.kernel, self.recurrent_kernel, self.bias)
        sequence, h, c = run_lstm(inputs, h0, c0, weights, self.spec)
        output = sequence if self.return_sequences else h
        return (output, h, c) if self.return_state else output

    def _initial_state(
        self, inputs: torch.Tensor, initial_state: Sequence[Any] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        expected = (inputs.shape[0], self.units)
        if initial_state is None:
            zeros = inputs.new_zeros(expected)
            return zeros, zeros
        if len(initial_state) != 2:
            raise ValueError(
                f"Layer {self.name!r}: initial_state must be [h0, c0]; "
                f"got {len(initial_state)} tensors"
            )
        states = []
        for label, s in zip(("h0", "c0"), initial_state, strict=True):
            s = as_tensor(s).to(device=inputs.device, dtype=inputs.dtype)
            if tuple(s.shape) != expected:
                raise ValueError(
                    f"Layer {self.name!r}: initial_state {label} must have shape {expected}; "
                    f"got {tuple(s.shape)}"
                )
            states.append(s)
        return states[0], states[1]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.spec.activation,
            "recurrent_activation": self.spec.recurrent_activation,
            "use_bias": self.spec.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
        }
