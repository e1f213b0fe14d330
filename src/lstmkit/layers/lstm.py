"""`LSTM`: the Keras LSTM layer (`keras.layers.LSTM`), plus the variants Keras lacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lstmkit import initializers
from lstmkit.kernels import LSTMNoise, LSTMWeights, native
from lstmkit.kernels import lstm as run_lstm
from lstmkit.layers.layer import (
    Layer,
    Shape,
    as_tensor,
    check_input,
    weight_options,
    weight_options_config,
)
from lstmkit.spec import LSTMSpec


class LSTM(Layer):
    """Long Short-Term Memory layer (Hochreiter & Schmidhuber 1997) with Keras's semantics.

    Weights in Keras layout: ``kernel`` (input_dim, 4H), ``recurrent_kernel`` (P, 4H),
    ``bias`` (4H,), gates in order i, f, c, o; P is ``proj_size`` or H = ``units``. The
    variants add ``peephole`` (3, H), ``projection`` (H, P) and the layer-norm gains
    ``input_norm_gamma`` (4H,), ``recurrent_norm_gamma`` (4H,), ``cell_norm_gamma`` and
    ``cell_norm_beta`` (H,). Equations: `lstmkit.kernels.reference`.

    Args:
        units: size H of the cell state (and of the output without projection).
        activation: cell and candidate activation (default ``"tanh"``).
        recurrent_activation: gate activation (default ``"sigmoid"``; ``"hard_sigmoid"`` too).
        use_bias: whether the gates have a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras defaults
            ``glorot_uniform``, ``orthogonal``, ``zeros``. The projection uses the kernel's.
        unit_forget_bias: start the forget-gate bias at 1 (Jozefowicz et al. 2015).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: penalties on the
            weights, added to the training loss; ``activity_regularizer`` on the output.
        kernel_constraint, recurrent_constraint, bias_constraint: applied after each step.
        dropout: rate of the input dropout, one (batch, input_dim) mask per sequence.
        recurrent_dropout: rate of the dropout on h before the recurrent projection, one mask
            per sequence (Gal & Ghahramani 2016). Both only in training.
        seed: seed of this layer's dropout and zoneout masks.
        return_sequences: return the whole output sequence (B, T, P), not just the last output.
        return_state: also return the final states ``h_T`` (B, P) and ``c_T`` (B, H).
        go_backwards: process the sequence in reverse and return the reversed sequence
            (`Bidirectional` asks its backward layer for it in the input's order instead,
            ``flip_backwards_output = False``, which saves two flips).
        stateful: carry the final states of a batch over as the initial states of the next
            (sample i to sample i); needs a fixed batch size. `reset_states` clears them.
        unroll: accepted for Keras compatibility; the result is the same either way.
        use_cudnn: ``"auto"`` picks the fastest backend; ``True`` demands torch's fused LSTM
            (cuDNN on GPU) and fails for configurations it cannot run; ``False`` avoids it.
        zero_output_for_mask: output zeros (instead of the previous output) at masked steps.
        peephole: peephole connections (Gers & Schmidhuber 2000).
        layer_norm: layer normalisation inside the cell (Ba, Kiros & Hinton 2016).
        zoneout_cell, zoneout_hidden: zoneout probabilities (Krueger et al. 2017).
        proj_size: project h to this size (Sak et al. 2014; PyTorch's ``proj_size``).
        name, input_shape, activity_regularizer: see `Layer`.

    Call arguments:
        inputs: (batch, timesteps, input_dim) tensor or array.
        initial_state: optional ``[h0, c0]``, shapes (batch, P) and (batch, H).
        mask: optional (batch, timesteps) booleans, True where a step is real.
        training: run as in training (dropout, zoneout); by default the module's mode.

    Returns:
        (B, P) or (B, T, P); with ``return_state`` the tuple ``(output, h_T, c_T)``.
    """

    call_takes_mask = True

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
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        use_cudnn: bool | str = "auto",
        zero_output_for_mask: bool = False,
        peephole: bool = False,
        layer_norm: bool = False,
        zoneout_cell: float = 0.0,
        zoneout_hidden: float = 0.0,
        proj_size: int = 0,
        **kwargs: Any,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.spec = LSTMSpec(
            units=units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=bool(use_bias),
            peephole=bool(peephole),
            layer_norm=bool(layer_norm),
            proj_size=proj_size,
            zoneout_cell=float(zoneout_cell),
            zoneout_hidden=float(zoneout_hidden),
            recurrent_dropout=float(recurrent_dropout),
        )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}")
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"use_cudnn must be 'auto', True or False; got {use_cudnn!r}")
        if use_cudnn is True and not native.supports(self.spec, None, None):
            raise ValueError(
                "use_cudnn=True needs the classic tanh/sigmoid cell without peephole, "
                f"layer_norm or zoneout; got {self.spec}"
            )
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.options = weight_options(
            kernel=(kernel_regularizer, kernel_constraint),
            recurrent=(recurrent_regularizer, recurrent_constraint),
            bias=(bias_regularizer, bias_constraint),
        )
        self.dropout = float(dropout)
        self.seed = seed
        self.generator: torch.Generator | None = None
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.flip_backwards_output = True  # Keras's order; not in the config
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.use_cudnn = use_cudnn
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.states: tuple[torch.Tensor, torch.Tensor] | None = None
        self.batch_size: int | None = None

    @property
    def units(self) -> int:
        return self.spec.units

    # -- building ---------------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"Layer {self.name!r} expects input of shape (batch, timesteps, features); "
                f"got {tuple(input_shape)}"
            )
        if self.stateful and input_shape[0] is None:
            raise ValueError(
                f"Layer {self.name!r} is stateful, so it needs a fixed batch size: declare it "
                "with Input(shape=..., batch_size=...) or call the layer on a batch first"
            )
        self.batch_size = input_shape[0]
        spec, input_dim = self.spec, int(input_shape[-1])
        H, P = spec.units, spec.output_size
        opts = self.options
        self.add_weight("kernel", (input_dim, 4 * H), self.kernel_initializer, *opts["kernel"])
        self.add_weight(
            "recurrent_kernel", (P, 4 * H), self.recurrent_initializer, *opts["recurrent"]
        )
        if spec.use_bias:
            self.add_weight("bias", (4 * H,), self._bias_initializer, *opts["bias"])
        else:
            self.bias = None
        if spec.peephole:
            self.add_weight("peephole", (3, H), "zeros")  # starts as the plain cell
        if spec.proj_size:
            self.add_weight("projection", (H, P), self.kernel_initializer)
        if spec.layer_norm:
            self.add_weight("input_norm_gamma", (4 * H,), "ones")
            self.add_weight("recurrent_norm_gamma", (4 * H,), "ones")
            self.add_weight("cell_norm_gamma", (H,), "ones")
            self.add_weight("cell_norm_beta", (H,), "zeros")
        self.built = True

    def _bias_initializer(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Keras's bias: the initializer everywhere, with ones in the forget-gate block."""
        if not self.unit_forget_bias:
            return self.bias_initializer(shape)
        H, init = self.units, self.bias_initializer
        return torch.cat([init((H,)), torch.ones(H), init((2 * H,))])

    def compute_output_shape(self, input_shape: Shape) -> Shape | tuple[Shape, ...]:
        batch, steps, P = input_shape[0], input_shape[1], self.spec.output_size
        output = (batch, steps, P) if self.return_sequences else (batch, P)
        if self.return_state:
            return output, (batch, P), (batch, self.units)
        return output

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        return mask if self.return_sequences else None

    # -- calling ----------------------------------------------------------------------------
    def weights_for_kernel(self) -> LSTMWeights:
        fields = {name: getattr(self, name, None) for name in LSTMWeights._fields}
        return LSTMWeights(**fields)

    def forward(
        self,
        inputs: torch.Tensor,
        initial_state: Sequence[Any] | None = None,
        mask: Any = None,
        training: bool | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        check_input(self, inputs, rank=3, last_dim=self.kernel.shape[0])
        training = self.training if training is None else bool(training)
        mask = self._check_mask(inputs, mask)
        h0, c0 = self._initial_state(inputs, initial_state)
        x = inputs
        noise = None
        if training:
            if self.dropout:
                x = x * self._dropout_mask((x.shape[0], 1, x.shape[2]), self.dropout, x)
            noise = self._noise(x)
        sequence, h, c = run_lstm(
            x,
            h0,
            c0,
            self.weights_for_kernel(),
            self.spec,
            mask,
            noise,
            backend="native" if self.use_cudnn is True else None,
            allow_native=self.use_cudnn is not False,
            go_backwards=self.go_backwards,
        )  # the sequence aligned with the inputs
        if self.stateful:
            self.states = (h.detach(), c.detach())
        if self.zero_output_for_mask and mask is not None:
            sequence = sequence * mask.unsqueeze(-1)
        if self.return_sequences:
            flip = self.go_backwards and self.flip_backwards_output
            output = sequence.flip(1) if flip else sequence
        else:  # unmasked, the last output is h_T: its gradient skips a dense (B, T, P) zero
            output = h if mask is None else sequence[:, 0 if self.go_backwards else -1]
        return (output, h, c) if self.return_state else output

    def _check_mask(self, inputs: torch.Tensor, mask: Any) -> torch.Tensor | None:
        if mask is None:
            return None
        mask = as_tensor(mask).to(inputs.device)
        if tuple(mask.shape) != tuple(inputs.shape[:2]):
            raise ValueError(
                f"Layer {self.name!r}: mask must have shape (batch, timesteps) = "
                f"{tuple(inputs.shape[:2])}; got {tuple(mask.shape)}"
            )
        return mask.bool()

    def _random(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """Uniform [0, 1) draws from this layer's seeded generator (or torch's global one)."""
        if self.seed is not None and (
            self.generator is None or self.generator.device != like.device
        ):
            self.generator = torch.Generator(device=like.device).manual_seed(self.seed)
        return torch.rand(shape, generator=self.generator, device=like.device, dtype=like.dtype)

    def _dropout_mask(
        self, shape: tuple[int, ...], rate: float, like: torch.Tensor
    ) -> torch.Tensor:
        return (self._random(shape, like) >= rate).to(like.dtype) / (1.0 - rate)

    def _noise(self, x: torch.Tensor) -> LSTMNoise:
        """This call's training masks: recurrent dropout (B, P), zoneout keep-masks (B, T, ·)."""
        spec, (B, T) = self.spec, x.shape[:2]

        def keep_old(rate: float, size: int) -> torch.Tensor | None:
            return (self._random((B, T, size), x) < rate).to(x.dtype) if rate else None

        rate = spec.recurrent_dropout
        recurrent = self._dropout_mask((B, spec.output_size), rate, x) if rate else None
        return LSTMNoise(
            recurrent_mask=recurrent,
            zoneout_cell=keep_old(spec.zoneout_cell, spec.units),
            zoneout_hidden=keep_old(spec.zoneout_hidden, spec.output_size),
        )

    def _initial_state(
        self, inputs: torch.Tensor, initial_state: Sequence[Any] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = inputs.shape[0]
        if self.stateful and self.batch_size is not None and batch != self.batch_size:
            raise ValueError(
                f"Layer {self.name!r} is stateful with batch size {self.batch_size}; "
                f"got a batch of {batch} (every batch, the last one included, must have it)"
            )
        shapes = {"h0": (batch, self.spec.output_size), "c0": (batch, self.units)}
        if initial_state is None:
            if self.stateful and self.states is not None:
                return self.states
            return inputs.new_zeros(shapes["h0"]), inputs.new_zeros(shapes["c0"])
        if len(initial_state) != 2:
            raise ValueError(
                f"Layer {self.name!r}: initial_state must be [h0, c0]; "
                f"got {len(initial_state)} tensors"
            )
        states = []
        for (label, expected), s in zip(shapes.items(), initial_state, strict=True):
            s = as_tensor(s).to(device=inputs.device, dtype=inputs.dtype)
            if tuple(s.shape) != expected:
                raise ValueError(
                    f"Layer {self.name!r}: initial_state {label} must have shape {expected}; "
                    f"got {tuple(s.shape)}"
                )
            states.append(s)
        return states[0], states[1]

    def reset_states(self, states: Sequence[Any] | None = None) -> None:
        """Clear the carried states of a stateful layer, or set them to ``[h, c]``."""
        if not self.stateful:
            raise ValueError(f"Layer {self.name!r} is not stateful: there are no states to reset")
        if states is None:
            self.states = None
            return
        if self.batch_size is None:
            raise ValueError(f"Layer {self.name!r} must be built before its states are set")
        device = self.kernel.device
        probe = torch.zeros(self.batch_size, 1, self.kernel.shape[0], device=device)
        self.states = self._initial_state(probe, states)

    def get_config(self) -> dict[str, Any]:
        spec = self.spec
        return {
            **super().get_config(),
            "units": spec.units,
            "activation": spec.activation,
            "recurrent_activation": spec.recurrent_activation,
            "use_bias": spec.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            **weight_options_config(self.options),
            "dropout": self.dropout,
            "recurrent_dropout": spec.recurrent_dropout,
            "seed": self.seed,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "use_cudnn": self.use_cudnn,
            "zero_output_for_mask": self.zero_output_for_mask,
            "peephole": spec.peephole,
            "layer_norm": spec.layer_norm,
            "zoneout_cell": spec.zoneout_cell,
            "zoneout_hidden": spec.zoneout_hidden,
            "proj_size": spec.proj_size,
        }
