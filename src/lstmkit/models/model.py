"""`Model`: a `torch.nn.Module` with Keras's training API, weights API, summary and saving.

Subclass it and write ``forward`` as in PyTorch, or use `Sequential`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from lstmkit.layers.layer import Layer, unique_name
from lstmkit.training.trainer import Trainer


class Model(Trainer, torch.nn.Module):
    """Base class of lstmkit models.

    Args:
        name: model name (default ``model``, ``model_1`` ...).
    """

    def __init__(self, name: str | None = None):
        torch.nn.Module.__init__(self)
        self.name = name or unique_name("model")
        self.built = False
        self.stop_training = False
        self.eval()  # as in Keras, calling a model runs inference; fit() switches to training

    @property
    def layers(self) -> list[Layer]:
        return [m for m in self.children() if isinstance(m, Layer)]

    # -- weights --------------------------------------------------------------------------
    @property
    def weights(self) -> list[torch.nn.Parameter]:
        return list(self.parameters())

    def get_weights(self) -> list[np.ndarray]:
        """All weights as NumPy arrays, layer by layer in Keras's order."""
        return [p.detach().cpu().numpy().copy() for p in self.parameters()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set every weight from a list shaped like `get_weights`' result."""
        params = list(self.parameters())
        if len(weights) != len(params):
            raise ValueError(
                f"Model {self.name!r} has {len(params)} weights; got {len(weights)} arrays"
            )
        for i, (p, w) in enumerate(zip(params, weights, strict=True)):
            if tuple(np.shape(w)) != tuple(p.shape):
                raise ValueError(
                    f"weight {i} of model {self.name!r} has shape {tuple(p.shape)}; "
                    f"got an array of shape {tuple(np.shape(w))}"
                )
        with torch.no_grad():
            for p, w in zip(params, weights, strict=True):
                p.copy_(torch.as_tensor(np.asarray(w), dtype=p.dtype))

    def count_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- summary --------------------------------------------------------------------------
    def layer_output_shapes(self) -> list[Any]:
        """Output shape of each layer (batch axis None); subclasses that know them override."""
        return ["?" for _ in self.layers]

    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print a Keras-style table of layers, output shapes and parameter counts."""
        table = Table(title=f'Model: "{self.name}"', title_justify="left")
        table.add_column("Layer (type)")
        table.add_column("Output Shape")
        table.add_column("Param #", justify="right")
        for layer, shape in zip(self.layers, self.layer_output_shapes(), strict=True):
            table.add_row(
                f"{layer.name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}"
            )
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = self.count_params()
        console = Console()
        with console.capture() as captured:
            console.print(table)
            console.print(f" Total params: {total:,}")
            console.print(f" Trainable params: {trainable:,}")
            console.print(f" Non-trainable params: {total - trainable:,}")
        (print_fn or print)(captured.get().rstrip("\n"))

    # -- saving ---------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"{type(self).__name__} has no config, so it cannot be saved whole; "
            "use save_weights() and rebuild the model in code"
        )

    def save(self, filepath: str | os.PathLike, overwrite: bool = False) -> None:
        """Save architecture, weights, compile settings and optimizer state in one file."""
        from lstmkit.models.saving import save_model

        save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath: str | os.PathLike, overwrite: bool = False) -> None:
        """Save the weights alone (safetensors)."""
        from lstmkit.models.saving import save_weights

        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str | os.PathLike) -> None:
        """Load weights written by `save_weights` (or `save`) into this model."""
        from lstmkit.models.saving import load_weights

        load_weights(self, filepath)
