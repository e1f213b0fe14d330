"""Choose the backend that runs a spec: torch's fused LSTM where it can, else the reference."""

from __future__ import annotations

from types import ModuleType

import torch

from lstmkit.kernels import native, reference
from lstmkit.kernels.weights import LSTMWeights
from lstmkit.spec import LSTMSpec

BACKENDS: dict[str, ModuleType] = {"native": native, "reference": reference}


def select_backend(spec: LSTMSpec) -> str:
    """Name of the fastest backend that supports ``spec``."""
    return "native" if native.supports(spec) else "reference"


def lstm(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weights: LSTMWeights,
    spec: LSTMSpec,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run one LSTM layer; ``backend`` forces a backend by name (for tests and benchmarks)."""
    name = backend or select_backend(spec)
    if name not in BACKENDS:
        raise ValueError(f"Unknown LSTM backend {name!r}; expected one of {sorted(BACKENDS)}")
    return BACKENDS[name].lstm(x, h0, c0, weights, spec)
