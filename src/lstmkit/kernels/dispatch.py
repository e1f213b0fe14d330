"""Choose the backend that runs a layer call: the fastest one that supports it.

Every backend module offers ``supports(spec, mask, noise)`` and ``lstm(x, h0, c0, weights,
spec, mask, noise)`` with the contract of `lstmkit.kernels.reference.lstm`, which supports
everything and is the fallback.
"""

from __future__ import annotations

from types import ModuleType

import torch

from lstmkit.kernels import native, reference
from lstmkit.kernels.weights import LSTMNoise, LSTMWeights
from lstmkit.spec import LSTMSpec

BACKENDS: dict[str, ModuleType] = {"native": native, "reference": reference}


def select_backend(
    spec: LSTMSpec,
    mask: torch.Tensor | None = None,
    noise: LSTMNoise | None = None,
    allow_native: bool = True,
) -> str:
    """Name of the fastest backend that supports this call (``allow_native=False``: not torch's
    fused LSTM, as Keras's ``use_cudnn=False`` asks)."""
    return "native" if allow_native and native.supports(spec, mask, noise) else "reference"


def lstm(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weights: LSTMWeights,
    spec: LSTMSpec,
    mask: torch.Tensor | None = None,
    noise: LSTMNoise | None = None,
    backend: str | None = None,
    allow_native: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run one LSTM layer; ``backend`` forces a backend by name (for tests and benchmarks)."""
    name = backend or select_backend(spec, mask, noise, allow_native)
    if name not in BACKENDS:
        raise ValueError(f"Unknown LSTM backend {name!r}; expected one of {sorted(BACKENDS)}")
    module = BACKENDS[name]
    if not module.supports(spec, mask, noise):
        raise ValueError(f"The {name!r} LSTM backend cannot run {spec} with this mask/noise")
    return module.lstm(x, h0, c0, weights, spec, mask, noise)
