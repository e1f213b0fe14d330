"""The LSTM gate equations in plain torch ops: the executable specification and test oracle.

Plain cell (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), Keras
gate order i, f, c, o::

    z = x_t W + h_{t-1} U + b            (zi, zf, zc, zo) = split(z, 4)
    i = σ(zi)  f = σ(zf)  g = act(zc)  o = σ(zo)
    c_t = f ⊙ c_{t-1} + i ⊙ g            h_t = o ⊙ act(c_t)

σ is ``spec.recurrent_activation``, act is ``spec.activation``. Slow (one autograd node per op
and step) but supports every spec; every other backend is tested against it.
"""

from __future__ import annotations

import torch

from lstmkit import activations
from lstmkit.kernels.weights import LSTMWeights
from lstmkit.spec import LSTMSpec


def lstm(
    x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weights: LSTMWeights, spec: LSTMSpec
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the recurrence over ``x`` (B, T, I) from state ``h0``, ``c0`` (B, H).

    Returns ``(outputs (B, T, H), h_T (B, H), c_T (B, H))``.
    """
    act = activations.get(spec.activation)
    gate = activations.get(spec.recurrent_activation)
    zx = x @ weights.kernel  # (B, T, 4H): the input projection of all steps in one GEMM
    if weights.bias is not None:
        zx = zx + weights.bias
    h, c = h0, c0
    outputs = []
    for t in range(x.shape[1]):
        z = zx[:, t] + h @ weights.recurrent_kernel  # (B, 4H)
        zi, zf, zc, zo = z.chunk(4, dim=-1)
        i, f, g, o = gate(zi), gate(zf), act(zc), gate(zo)
        c = f * c + i * g
        h = o * act(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h, c
