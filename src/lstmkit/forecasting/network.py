"""The forecasting network: an lstmkit `Sequential` (LSTM then Dense), its loss, and ensembles.

The network maps a window ``(steps, features)`` to ``horizon * targets * outputs`` numbers,
read as ``(horizon, targets, outputs)``: one output per quantile with the pinball loss
(Koenker & Bassett 1978), or one mean with the squared error. An ensemble trains the same
network from several seeds and averages the outputs, which steadies a model trained on a few
dozen windows.

Training and prediction run with one torch intra-op thread: the GEMMs of a 32-unit LSTM on a
batch of 32 are far too small to gain from more, and on a busy machine a team of spinning
threads makes every step several times slower (measured: 1-2 ms per step on one thread, 10-30
ms on two, on a loaded 2-core machine).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from lstmkit.layers import LSTM, Dense, Dropout, Input
from lstmkit.losses import Loss, MeanSquaredError
from lstmkit.models import Sequential
from lstmkit.optimizers import Adam
from lstmkit.utils import set_random_seed


class PinballLoss(Loss):
    """Mean pinball loss over horizon, targets and ``quantiles`` (Koenker & Bassett 1978).

    ``y_true`` is ``(batch, horizon, targets)``; the prediction is the network's flat output,
    read as ``(batch, horizon, targets, len(quantiles))``.
    """

    name = "pinball"

    def __init__(self, quantiles: Sequence[float]):
        self.quantiles = [float(q) for q in quantiles]
        self._q = torch.tensor(self.quantiles)

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        q = self._q.to(device=y_pred.device, dtype=y_pred.dtype)
        pred = y_pred.reshape(*y_true.shape, len(self.quantiles))
        error = y_true.to(y_pred.dtype).unsqueeze(-1) - pred
        return torch.maximum(q * error, (q - 1.0) * error).flatten(1).mean(1)

    def check_targets(self, y: torch.Tensor, output_shape: tuple) -> None:
        if y.dim() != 3 or y[0].numel() * len(self.quantiles) != output_shape[-1]:
            raise ValueError(
                f"pinball loss expects targets (N, horizon, targets) with horizon * targets * "
                f"{len(self.quantiles)} = {output_shape[-1]}; got {tuple(y.shape)}"
            )

    def get_config(self) -> dict[str, Any]:
        return {"quantiles": self.quantiles}


class FlatMeanSquaredError(MeanSquaredError):
    """Squared error of ``(batch, horizon, targets)`` targets against the flat network output."""

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return super().per_sample(y_true.flatten(1), y_pred)

    def check_targets(self, y: torch.Tensor, output_shape: tuple) -> None:
        if y.dim() != 3 or y[0].numel() != output_shape[-1]:
            raise ValueError(
                f"expected targets (N, horizon, targets) with {output_shape[-1]} values per "
                f"sample; got {tuple(y.shape)}"
            )


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def build_network(
    input_shape: tuple[int, int], outputs: int, units: int, layers: int, dropout: float
) -> Sequential:
    """``Input -> LSTM x layers (-> Dropout) -> Dense(outputs)``."""
    model = Sequential([Input(input_shape)])
    for i in range(layers):
        model.add(LSTM(units, return_sequences=i < layers - 1))
        if dropout:
            model.add(Dropout(dropout))
    model.add(Dense(outputs))
    return model


def train_ensemble(
    x: np.ndarray,
    y: np.ndarray,
    quantiles: Sequence[float] | None,
    *,
    members: int,
    seed: int,
    units: int,
    layers: int,
    dropout: float,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    sample_weight: np.ndarray | None = None,
    device: str = "cpu",
) -> list[Sequential]:
    """Train ``members`` networks on windows ``x`` (N, steps, features), ``y`` (N, H, T).

    Member ``i`` starts from ``set_random_seed(seed + i)`` (weights and shuffling).
    """
    outputs = y.shape[1] * y.shape[2] * (len(quantiles) if quantiles else 1)
    x, y = x.astype(np.float32), y.astype(np.float32)
    networks = []
    with single_thread():
        for i in range(members):
            set_random_seed(seed + i)
            network = build_network(x.shape[1:], outputs, units, layers, dropout)
            loss = PinballLoss(quantiles) if quantiles else FlatMeanSquaredError()
            network.compile(optimizer=Adam(learning_rate), loss=loss, device=device)
            network.fit(
                x,
                y,
                epochs=epochs,
                batch_size=batch_size,
                sample_weight=sample_weight,
                verbose=0,
            )
            networks.append(network)
    return networks


def predict_ensemble(networks: Sequence[Sequential], x: np.ndarray, shape: tuple) -> np.ndarray:
    """Mean output of the ``networks`` on ``x``, reshaped to ``(N, *shape)``."""
    with single_thread():
        outputs = [net.predict(x.astype(np.float32), batch_size=256, verbose=0) for net in networks]
    return np.mean(outputs, axis=0).astype(np.float64).reshape(len(x), *shape)
