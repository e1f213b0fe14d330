"""The LSTM gate equations in plain torch ops: the executable specification and test oracle.

Plain cell (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), Keras
gate order i, f, c, o::

    z = x_t W + h_{t-1} U + b            (zi, zf, zc, zo) = split(z, 4)
    i = σ(zi)  f = σ(zf)  g = act(zc)  o = σ(zo)
    c_t = f ⊙ c_{t-1} + i ⊙ g            h_t = o ⊙ act(c_t)

σ is ``spec.recurrent_activation``, act is ``spec.activation``. Variants, each switched by the
spec:

- peephole (Gers & Schmidhuber 2000): zi += p_i ⊙ c_{t-1}, zf += p_f ⊙ c_{t-1},
  zo += p_o ⊙ c_t.
- layer_norm (Ba, Kiros & Hinton 2016): z = γ_x LN(x W) + γ_h LN(h U) + b and
  h_t = o ⊙ act(γ_c LN(c_t) + β_c); the shifts of the two gate norms are folded into b.
- recurrent dropout (Gal & Ghahramani 2016): h_{t-1} ⊙ m before ·U, one mask per sequence.
- zoneout (Krueger et al. 2017): c_t = d ⊙ c_{t-1} + (1 - d) ⊙ c_t with d ~ Bernoulli(z)
  per unit and step in training, d = z at inference; the same for h.
- projection (Sak et al. 2014): h_t = (o ⊙ act(c_t)) W_hr.
- mask (Keras semantics): where a step is masked the states carry over unchanged and the
  output repeats the previous step's output (zeros before the first unmasked step).

Slow (one autograd node per op and step) but supports every spec; every other backend is
tested against it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lstmkit import activations
from lstmkit.kernels.weights import LSTMNoise, LSTMWeights
from lstmkit.spec import LSTMSpec

LN_EPSILON = 1e-5


def _norm(z: torch.Tensor) -> torch.Tensor:
    """Layer normalisation over the last axis, without gain or shift."""
    return F.layer_norm(z, z.shape[-1:], eps=LN_EPSILON)


def _zoneout(old: torch.Tensor, new: torch.Tensor, rate: float, keep: torch.Tensor | None):
    if not rate:
        return new
    keep_old = rate if keep is None else keep  # expectation at inference, a mask in training
    return keep_old * old + (1 - keep_old) * new


def _at(steps: torch.Tensor | None, t: int) -> torch.Tensor | None:
    return None if steps is None else steps[:, t]


def check_noise(spec: LSTMSpec, noise: LSTMNoise | None) -> None:
    """In training, every zoneout rate of the spec needs its mask."""
    if noise is None:
        return
    for name in ("zoneout_cell", "zoneout_hidden"):
        if getattr(spec, name) and getattr(noise, name) is None:
            raise ValueError(f"training with {name}={getattr(spec, name)} needs its mask in noise")


def lstm(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weights: LSTMWeights,
    spec: LSTMSpec,
    mask: torch.Tensor | None = None,
    noise: LSTMNoise | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the recurrence over ``x`` (B, T, I) from ``h0`` (B, P) and ``c0`` (B, H).

    ``mask`` (B, T) is True where a step is real; ``noise`` holds the training masks (None at
    inference). Returns ``(outputs (B, T, P), h_T (B, P), c_T (B, H))``.
    """
    check_noise(spec, noise)
    act = activations.get(spec.activation)
    gate = activations.get(spec.recurrent_activation)
    w = weights
    zx = x @ w.kernel  # (B, T, 4H): the input projection of all steps in one GEMM
    if spec.layer_norm:
        zx = _norm(zx) * w.input_norm_gamma
    if w.bias is not None:
        zx = zx + w.bias
    h, c = h0, c0
    previous_output = torch.zeros_like(h0)
    outputs = []
    for t in range(x.shape[1]):
        h_in = h if noise is None or noise.recurrent_mask is None else h * noise.recurrent_mask
        zh = h_in @ w.recurrent_kernel  # (B, 4H)
        if spec.layer_norm:
            zh = _norm(zh) * w.recurrent_norm_gamma
        zi, zf, zc, zo = (zx[:, t] + zh).chunk(4, dim=-1)
        if spec.peephole:
            zi, zf = zi + w.peephole[0] * c, zf + w.peephole[1] * c
        c_new = gate(zf) * c + gate(zi) * act(zc)
        if spec.peephole:
            zo = zo + w.peephole[2] * c_new
        if spec.layer_norm:
            h_new = gate(zo) * act(_norm(c_new) * w.cell_norm_gamma + w.cell_norm_beta)
        else:
            h_new = gate(zo) * act(c_new)
        if spec.proj_size:
            h_new = h_new @ w.projection  # (B, P)
        c_new = _zoneout(c, c_new, spec.zoneout_cell, _at(noise and noise.zoneout_cell, t))
        h_new = _zoneout(h, h_new, spec.zoneout_hidden, _at(noise and noise.zoneout_hidden, t))
        if mask is None:
            h, c, output = h_new, c_new, h_new
        else:
            real = mask[:, t, None]  # (B, 1)
            h, c = torch.where(real, h_new, h), torch.where(real, c_new, c)
            output = torch.where(real, h_new, previous_output)
        outputs.append(output)
        previous_output = output
    return torch.stack(outputs, dim=1), h, c


def supports(spec: LSTMSpec, mask: torch.Tensor | None, noise: LSTMNoise | None) -> bool:
    """The reference runs every spec, mask and noise."""
    return True
