"""`Masking` and `Embedding`: the two layers that create a time-step mask (Keras semantics).

The mask, (batch, timesteps) booleans that are True at real steps, flows through a
`Sequential` to every later layer that takes one (`LSTM`, wrappers); an LSTM skips masked steps.
"""

from __future__ import annotations

from typing import Any

import torch

from lstmkit import initializers
from lstmkit.layers.layer import Layer, Shape, weight_options, weight_options_config


class Masking(Layer):
    """Mark time steps whose features all equal ``mask_value`` as padding.

    The output is the input with masked steps zeroed, as Keras's `Masking` returns it.
    """

    def __init__(self, mask_value: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return (inputs != self.mask_value).any(dim=-1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        keep = self.compute_mask(inputs, None).unsqueeze(-1)
        return inputs * keep.to(inputs.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}


class Embedding(Layer):
    """Map integer ids in [0, input_dim) to dense vectors of size ``output_dim``.

    Args:
        input_dim: vocabulary size.
        output_dim: embedding size.
        embeddings_initializer: default ``"uniform"`` (U(-0.05, 0.05)), as Keras.
        embeddings_regularizer, embeddings_constraint: as for other weights.
        mask_zero: treat id 0 as padding and emit a mask (then 0 cannot be a real id).
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Embedding {name} must be a positive integer; got {value!r}")
        self.input_dim, self.output_dim = input_dim, output_dim
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.options = weight_options(embeddings=(embeddings_regularizer, embeddings_constraint))
        self.mask_zero = bool(mask_zero)

    def build(self, input_shape: Shape) -> None:
        shape = (self.input_dim, self.output_dim)
        self.add_weight(
            "embeddings", shape, self.embeddings_initializer, *self.options["embeddings"]
        )
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.output_dim)

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        return inputs != 0 if self.mask_zero else None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.is_complex():
            raise ValueError(f"Layer {self.name!r} expects integer ids; got {inputs.dtype}")
        ids = inputs.long()
        # the ids are checked where it costs no device sync (on a GPU a check would wait for
        # the device every step, and a CUDA graph could not hold it): elsewhere float ids are
        # cast, as Keras casts them
        if ids.device.type == "cpu" and ids.numel():
            if inputs.is_floating_point() and not bool((inputs == inputs.round()).all()):
                raise ValueError(f"Layer {self.name!r} expects integer ids; got {inputs.dtype}")
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= self.input_dim:
                raise ValueError(
                    f"Layer {self.name!r} expects ids in [0, {self.input_dim}); "
                    f"got ids from {low} to {high}"
                )
        return self.embeddings[ids]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            **weight_options_config(self.options),
            "mask_zero": self.mask_zero,
        }
