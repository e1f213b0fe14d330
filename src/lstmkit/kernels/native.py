"""torch's own fused LSTM (cuDNN on CUDA, ATen/oneDNN on the CPU).

Runs the classic tanh/sigmoid cell, with or without projection (torch's ``proj_size``), at
inference or in training without recurrent dropout; no masks, peepholes, layer norm or zoneout.
"""

from __future__ import annotations

import warnings

import torch

from lstmkit.kernels.weights import LSTMNoise, LSTMWeights
from lstmkit.spec import LSTMSpec

# Our weights live in Keras layout, so cuDNN always gets fresh (cheap) contiguous copies rather
# than one flattened buffer; its per-call warning about that says nothing actionable here.
warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")


def supports(spec: LSTMSpec, mask: torch.Tensor | None, noise: LSTMNoise | None) -> bool:
    classic = spec.activation == "tanh" and spec.recurrent_activation == "sigmoid"
    variants = spec.peephole or spec.layer_norm or spec.zoneout_cell or spec.zoneout_hidden
    dropped = noise is not None and noise.recurrent_mask is not None
    return classic and not variants and not dropped and mask is None


def lstm(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weights: LSTMWeights,
    spec: LSTMSpec,
    mask: torch.Tensor | None = None,
    noise: LSTMNoise | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same contract as `lstmkit.kernels.reference.lstm`."""
    if not supports(spec, mask, noise):
        raise ValueError(f"the native kernel cannot run {spec} with this mask/noise")
    # torch layout (4H, I), (4H, P); cuDNN needs contiguous weights (the copies are cheap and
    # gradients flow through them)
    params = [weights.kernel.t().contiguous(), weights.recurrent_kernel.t().contiguous()]
    if weights.bias is not None:
        params += [weights.bias, torch.zeros_like(weights.bias)]  # bias_ih + bias_hh = bias
    if spec.proj_size:
        params.append(weights.projection.t().contiguous())  # weight_hr (P, H)
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
