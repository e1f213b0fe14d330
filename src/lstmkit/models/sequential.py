"""`Sequential`: a plain stack of layers, built from its input shape (Keras `Sequential`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from lstmkit.layers import REGISTRY, InputLayer, Layer
from lstmkit.layers.layer import Shape, input_tensor, unique_name
from lstmkit.models.model import Model


class Sequential(Model):
    """A linear stack of layers.

    Layers come from the constructor list or `add`. If the first one is an `Input` or was given
    ``input_shape=``, the model is built at once (weights exist, `summary` shows shapes);
    otherwise it is built on its first call.
    """

    def __init__(self, layers: Iterable[Layer] | None = None, name: str | None = None):
        super().__init__(name=name or unique_name("sequential"))
        self.stack = torch.nn.ModuleList()
        self.build_input_shape: Shape | None = None
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        return list(self.stack)

    def add(self, layer: Layer) -> None:
        """Append a layer; an `Input` first, or a first layer with ``input_shape=``, builds."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects an lstmkit layer; got {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if len(self.stack) or self.build_input_shape is not None:
                raise ValueError("An Input can only be the first layer of a Sequential model")
            self.build_input_shape = layer.shape
            return
        if not len(self.stack) and layer.input_shape_arg is not None:
            self.build_input_shape = (None, *layer.input_shape_arg)
        layer.train(self.training)
        self.stack.append(layer)
        if self.build_input_shape is not None:
            self.build(self.build_input_shape)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not len(self.stack):
            raise ValueError("There are no layers to pop")
        layer = self.stack[-1]
        del self.stack[-1]
        return layer

    def build(self, input_shape: Shape) -> None:
        """Create the weights of every layer for inputs of ``input_shape`` (batch axis first)."""
        self.build_input_shape = tuple(input_shape)
        shape = self.build_input_shape
        for layer in self.stack:
            if not layer.built:
                layer.build(shape)
                if hasattr(self, "device"):
                    layer.to(self.device)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.call_with_mask(x)[0]

    def call_with_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the stack; a mask made by `Masking` or `Embedding` flows to the layers after it
        and, when it survives to the output, leaves padded steps out of the loss and metrics."""
        x = input_tensor(self, x)
        if self.build_input_shape is None:
            self.build((None, *x.shape[1:]))
        mask = None
        for layer in self.stack:
            y = layer(x, mask=mask) if mask is not None and layer.call_takes_mask else layer(x)
            mask = layer.compute_mask(x, mask)
            x = y
        return x, mask

    def layer_output_shapes(self) -> list[Any]:
        if self.build_input_shape is None:
            return super().layer_output_shapes()
        shapes, shape = [], self.build_input_shape
        for layer in self.stack:
            shape = layer.compute_output_shape(shape)
            shapes.append(shape)
        return shapes

    @property
    def output_shape(self) -> Shape:
        return self.layer_output_shapes()[-1]

    @property
    def input_shape(self) -> Shape | None:
        return self.build_input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layers": [
                {"class_name": type(layer).__name__, "config": layer.get_config()}
                for layer in self.stack
            ],
            "build_input_shape": None
            if self.build_input_shape is None
            else list(self.build_input_shape),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        layers = []
        for entry in config["layers"]:
            name = entry["class_name"]
            if name not in REGISTRY:
                raise ValueError(
                    f"Unknown layer class {name!r} in saved config; "
                    f"expected one of {sorted(REGISTRY)}"
                )
            layers.append(REGISTRY[name].from_config(entry["config"]))
        model = cls(layers, name=config["name"])
        if config.get("build_input_shape") is not None and not model.built:
            model.build(tuple(config["build_input_shape"]))
        return model
