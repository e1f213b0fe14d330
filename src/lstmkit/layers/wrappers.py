"""Keras's layer wrappers and `RepeatVector`: `Bidirectional`, `TimeDistributed`, `RepeatVector`.

Semantics follow Keras 3 (``keras.layers.Bidirectional``, ``keras.layers.TimeDistributed``,
``keras.layers.RepeatVector``). Wrapped layers are saved as nested ``{"class_name", "config"}``
entries and rebuilt through `lstmkit.layers.REGISTRY`, like the layers of a `Sequential`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lstmkit.kernels import streams
from lstmkit.layers.layer import Layer, Shape
from lstmkit.layers.lstm import LSTM

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def serialize_layer(layer: Layer) -> dict[str, Any]:
    """A layer as the ``{"class_name", "config"}`` entry a saved model holds."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize_layer(entry: dict[str, Any]) -> Layer:
    """Rebuild a layer from `serialize_layer`'s entry; classes come from the registry only."""
    from lstmkit.layers import REGISTRY  # here, as lstmkit.layers imports this module

    name = entry["class_name"]
    if name not in REGISTRY:
        raise ValueError(
            f"Unknown layer class {name!r} in saved config; expected one of {sorted(REGISTRY)}"
        )
    return REGISTRY[name].from_config(entry["config"])


def _renamed_copy(layer: Layer, prefix: str, **overrides: Any) -> Layer:
    """A fresh layer from ``layer``'s config named ``<prefix>_<name>`` (Keras's naming)."""
    config = {**layer.get_config(), **overrides}
    config["name"] = f"{prefix}_{layer.name.removeprefix(prefix + '_')}"
    return type(layer).from_config(config)


def _check_recurrent(label: str, layer: Any) -> None:
    if not isinstance(layer, Layer) or not all(
        hasattr(layer, a) for a in ("go_backwards", "return_sequences", "return_state")
    ):
        raise ValueError(
            f"Bidirectional {label} must be a recurrent lstmkit layer such as LSTM "
            f"(with go_backwards, return_sequences and return_state); got {layer!r}"
        )


class Bidirectional(Layer):
    """Run a recurrent layer forwards and backwards over the sequence and merge the two outputs.

    As Keras: the forward layer is a fresh copy of ``layer`` (its weights are not reused), the
    backward layer is, unless given, another copy with ``go_backwards`` flipped; both get
    ``zero_output_for_mask = return_sequences``. With ``return_sequences`` the backward output
    is merged in the input's time order: an lstmkit `LSTM` running backwards returns it so
    (``flip_backwards_output = False``, set here; no flip of x or of the output), any other
    backward layer's output is flipped back. Weights are the forward layer's, then the
    backward layer's. On a GPU two LSTM directions run side by side, the backward one on a
    second CUDA stream, where their kernels fit on the GPU together (`kernels.streams`).

    Args:
        layer: an LSTM-like layer (with ``go_backwards``, ``return_sequences``, ``return_state``
            and a ``mask`` call argument).
        merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"``, or None to return
            the pair ``(forward, backward)``.
        backward_layer: the layer for the backward direction, used as given; it must differ
            from ``layer`` in ``go_backwards`` and agree in ``stateful``, ``return_sequences``
            and ``return_state``.
        name, input_shape, activity_regularizer: see `Layer`.

    Call arguments:
        inputs: (batch, timesteps, features).
        initial_state: the forward layer's states followed by the backward layer's
            (``[h_f, c_f, h_b, c_b]`` for LSTMs); the first half goes forwards.
        mask: (batch, timesteps) booleans, passed to both directions.
        training: passed to both directions.

    Returns:
        The merged output (the pair for ``merge_mode=None``); with ``return_state``, followed by
        the forward then the backward final states.
    """

    call_takes_mask = True

    def __init__(
        self,
        layer: Layer,
        merge_mode: str | None = "concat",
        backward_layer: Layer | None = None,
        **kwargs: Any,
    ):
        _check_recurrent("layer", layer)
        if backward_layer is not None:
            _check_recurrent("backward_layer", backward_layer)
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"Invalid merge_mode {merge_mode!r}; expected one of "
                "'concat', 'sum', 'mul', 'ave' or None"
            )
        super().__init__(**kwargs)
        self.forward_layer = _renamed_copy(layer, "forward")
        if backward_layer is None:
            backward_layer = _renamed_copy(layer, "backward", go_backwards=not layer.go_backwards)
        self.backward_layer = backward_layer
        self._check_directions()
        for direction in (self.forward_layer, self.backward_layer):
            if hasattr(direction, "zero_output_for_mask"):
                direction.zero_output_for_mask = direction.return_sequences
        # the backward output in the input's order from the layer itself, where it can
        self.backward_flips = not (
            backward_layer.go_backwards and hasattr(backward_layer, "flip_backwards_output")
        )
        if not self.backward_flips:
            backward_layer.flip_backwards_output = False
        self.merge_mode = merge_mode
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        self.stateful = getattr(self.forward_layer, "stateful", False)

    def _check_directions(self) -> None:
        forward, backward = self.forward_layer, self.backward_layer
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(
                "Bidirectional forward and backward layers must differ in go_backwards; "
                f"both have go_backwards={forward.go_backwards}"
            )
        for attribute in ("stateful", "return_sequences", "return_state"):
            f_value = getattr(forward, attribute, False)
            b_value = getattr(backward, attribute, False)
            if f_value != b_value:
                raise ValueError(
                    f"Bidirectional forward and backward layers must have the same {attribute}; "
                    f"got {f_value} (forward) and {b_value} (backward)"
                )

    def build(self, input_shape: Shape) -> None:
        for direction in (self.forward_layer, self.backward_layer):
            if not direction.built:
                direction.build(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape | tuple[Any, ...]:
        forward = self.forward_layer.compute_output_shape(input_shape)
        backward = self.backward_layer.compute_output_shape(input_shape)
        f_states: tuple[Shape, ...] = ()
        b_states: tuple[Shape, ...] = ()
        if self.return_state:
            (forward, *f_states), (backward, *b_states) = forward, backward
        if self.merge_mode == "concat":
            f_size, b_size = forward[-1], backward[-1]
            size = None if f_size is None or b_size is None else f_size + b_size
            output: Any = (*forward[:-1], size)
        elif self.merge_mode is None:
            output = (tuple(forward), tuple(backward))
        else:
            output = tuple(forward)
        if not self.return_state:
            return output
        head = output if self.merge_mode is None else (output,)
        return (*head, *f_states, *b_states)

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        """The output keeps the input's mask when it is a sequence (both halves share it)."""
        return mask if self.return_sequences else None

    def forward(
        self,
        inputs: torch.Tensor,
        initial_state: Sequence[Any] | None = None,
        mask: Any = None,
        training: bool | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        f_state = b_state = None
        if initial_state is not None:
            if len(initial_state) % 2:
                raise ValueError(
                    f"Layer {self.name!r}: initial_state must hold the forward states then the "
                    f"backward states (an even count); got {len(initial_state)} tensors"
                )
            half = len(initial_state) // 2
            f_state, b_state = list(initial_state[:half]), list(initial_state[half:])
        options: dict[str, Any] = {"training": training}
        if mask is not None:
            options["mask"] = mask
        y, y_rev = self._directions(inputs, f_state, b_state, options)
        states: tuple[torch.Tensor, ...] = ()
        if self.return_state:
            states = (*y[1:], *y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences and self.backward_flips:
            y_rev = y_rev.flip(1)  # (B, T, P) back in the input's time order
        output = self._merge(y, y_rev)
        if not self.return_state:
            return output
        head = output if self.merge_mode is None else (output,)
        return (*head, *states)

    def _directions(
        self,
        inputs: torch.Tensor,
        f_state: list[Any] | None,
        b_state: list[Any] | None,
        options: dict[str, Any],
    ) -> tuple[Any, Any]:
        """Both directions' results; on a GPU side by side where they fit, the backward one
        on a second CUDA stream (`kernels.streams`). The forward layer is called first either
        way, so seeded dropout masks are the same."""
        if not self._side_by_side(inputs):
            y = self.forward_layer(inputs, initial_state=f_state, **options)
            return y, self.backward_layer(inputs, initial_state=b_state, **options)
        main, side = torch.cuda.current_stream(inputs.device), streams.side_stream(inputs.device)
        side.wait_stream(main)
        try:
            y = self.forward_layer(inputs, initial_state=f_state, **options)
            with torch.cuda.stream(side):
                y_rev = self.backward_layer(inputs, initial_state=b_state, **options)
        finally:  # joined even on an error: a CUDA graph's capture must not end forked
            main.wait_stream(side)
        streams.read_on(side, inputs, options.get("mask"), b_state)
        streams.read_on(main, y_rev)
        return y, y_rev

    def _side_by_side(self, inputs: torch.Tensor) -> bool:
        directions = (self.forward_layer, self.backward_layer)
        if not all(isinstance(layer, LSTM) for layer in directions):
            return False
        return streams.side_by_side(inputs, [layer.units for layer in directions])

    def _merge(
        self, y: torch.Tensor, y_rev: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.merge_mode == "concat":
            return torch.cat([y, y_rev], dim=-1)  # (B, [T,] P_f + P_b)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "mul":
            return y * y_rev
        if self.merge_mode == "ave":
            return (y + y_rev) / 2
        return y, y_rev

    def reset_states(self, states: Sequence[Any] | None = None) -> None:
        """Reset both directions of a stateful layer; ``states`` is split in halves as
        ``initial_state`` is."""
        if not self.stateful:
            raise ValueError(f"Layer {self.name!r} is not stateful: there are no states to reset")
        if states is None:
            self.forward_layer.reset_states()
            self.backward_layer.reset_states()
            return
        half = len(states) // 2
        self.forward_layer.reset_states(list(states[:half]))
        self.backward_layer.reset_states(list(states[half:]))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "layer": serialize_layer(self.forward_layer),
            "merge_mode": self.merge_mode,
            "backward_layer": serialize_layer(self.backward_layer),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        config = dict(config)
        layer = deserialize_layer(config.pop("layer"))
        backward = config.pop("backward_layer", None)
        backward_layer = None if backward is None else deserialize_layer(backward)
        return cls(layer, backward_layer=backward_layer, **config)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, merge_mode={self.merge_mode!r}"


class TimeDistributed(Layer):
    """Apply ``layer`` to every time step: (B, T, ...) -> (B·T, ...) -> layer -> (B, T, ...).

    As Keras's `TimeDistributed`, the same weights serve every step and the input's
    (batch, timesteps) mask passes through to the output. A mask with more axes than that
    (e.g. from an `Embedding` of (B, T, T') ids) is given to ``layer`` step by step when it
    takes one, and the output mask is then ``layer``'s, or, when it drops the mask, True at
    steps with any real inner element.

    Args:
        layer: the layer to apply; it sees inputs (batch · timesteps, ...).
        name, input_shape, activity_regularizer: see `Layer`.
    """

    call_takes_mask = True

    def __init__(self, layer: Layer, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError(f"TimeDistributed needs an lstmkit layer; got {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer

    def _child_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 3:
            raise ValueError(
                f"Layer {self.name!r} expects input of shape (batch, timesteps, ...) with at "
                f"least 3 axes; got {tuple(input_shape)}"
            )
        batch, steps = input_shape[:2]
        return (None if batch is None or steps is None else batch * steps, *input_shape[2:])

    def build(self, input_shape: Shape) -> None:
        if not self.layer.built:
            self.layer.build(self._child_shape(input_shape))
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        child = self.layer.compute_output_shape(self._child_shape(input_shape))
        return (input_shape[0], input_shape[1], *child[1:])

    def _inner_mask(self, mask: torch.Tensor | None) -> torch.Tensor | None:
        """A mask beyond (B, T) as (B·T, ...) for the inner layer; None otherwise."""
        if mask is None or mask.dim() <= 2:
            return None
        return mask.reshape(-1, *mask.shape[2:])

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        inner = self._inner_mask(mask)
        if inner is None:
            return mask
        flat = inputs.reshape(-1, *inputs.shape[2:])  # (B·T, ...)
        child = self.layer.compute_mask(flat, inner)
        if child is None:
            return mask.flatten(2).any(-1)  # (B, T)
        return child.reshape(*mask.shape[:2], *child.shape[1:])

    def forward(self, inputs: torch.Tensor, mask: Any = None) -> torch.Tensor:
        flat = inputs.reshape(self._child_shape(tuple(inputs.shape)))  # (B·T, ...)
        batch, steps = inputs.shape[:2]
        inner = self._inner_mask(None if mask is None else torch.as_tensor(mask).bool())
        if inner is not None and self.layer.call_takes_mask:
            y = self.layer(flat, mask=inner)
        else:
            y = self.layer(flat)
        if not isinstance(y, torch.Tensor):
            raise ValueError(
                f"Layer {self.name!r}: the wrapped layer must return one tensor; "
                f"got {type(y).__name__}"
            )
        return y.reshape(batch, steps, *y.shape[1:])  # (B, T, ...)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layer": serialize_layer(self.layer)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TimeDistributed:
        config = dict(config)
        return cls(deserialize_layer(config.pop("layer")), **config)


class RepeatVector(Layer):
    """Repeat a (batch, features) input ``n`` times: (B, F) -> (B, n, F), as Keras's
    `RepeatVector` (e.g. to feed an encoder's last output to every decoder step).

    The output has no mask.
    """

    def __init__(self, n: int, **kwargs: Any):
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"RepeatVector n must be an integer; got {n!r}")
        if n < 1:
            raise ValueError(f"RepeatVector n must be a positive integer; got {n}")
        super().__init__(**kwargs)
        self.n = n

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], self.n, input_shape[-1])

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> None:
        return None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() != 2:
            raise ValueError(
                f"Layer {self.name!r} expects input of shape (batch, features); "
                f"got {(None, *inputs.shape[1:])}"
            )
        return inputs.unsqueeze(1).repeat(1, self.n, 1)  # (B, n, F)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n}
