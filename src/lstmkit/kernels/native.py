"""torch's own fused LSTM (cuDNN on CUDA, ATen/oneDNN on the CPU) for the plain cell.

Supports specs with ``spec.is_plain``: tanh cell activation and sigmoid gates.
"""

from __future__ import annotations

import torch

from lstmkit.kernels.weights import LSTMWeights
from lstmkit.spec import LSTMSpec


def supports(spec: LSTMSpec) -> bool:
    return spec.is_plain


def lstm(
    x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weights: LSTMWeights, spec: LSTMSpec
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same contract as `lstmkit.kernels.reference.lstm`."""
    if not supports(spec):
        raise ValueError(f"the native kernel runs only the plain tanh/sigmoid cell; got {spec}")
    params = [weights.kernel.t(), weights.recurrent_kernel.t()]  # torch layout (4H, I), (4H, H)
    if weights.bias is not None:
        params += [weights.bias, torch.zeros_like(weights.bias)]  # bias_ih + bias_hh = bias
    outputs, h_n, c_n = torch.lstm(
        x,
        (h0.unsqueeze(0), c0.unsqueeze(0)),
        params,
        weights.bias is not None,  # has_biases
        1,  # num_layers
        0.0,  # dropout
        torch.is_grad_enabled(),  # train
        False,  # bidirectional
        True,  # batch_first
    )
    return outputs, h_n[0], c_n[0]
