"""What a kernel receives besides the inputs: the weights, and the random masks of training.

Weights are in Keras layout (gate order i, f, c, o): ``kernel`` (I, 4H), ``recurrent_kernel``
(P, 4H) with P = ``spec.output_size``, ``bias`` (4H,). PyTorch's ``weight_ih`` is ``kernel.T``,
``weight_hh`` is ``recurrent_kernel.T``, ``bias_ih + bias_hh`` is ``bias`` and ``weight_hr`` is
``projection.T``. The variant weights are None unless the spec asks for them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class LSTMWeights(NamedTuple):
    kernel: torch.Tensor  # (I, 4H)
    recurrent_kernel: torch.Tensor  # (P, 4H)
    bias: torch.Tensor | None = None  # (4H,)
    peephole: torch.Tensor | None = None  # (3, H): rows for the i, f and o gates
    projection: torch.Tensor | None = None  # (H, P)
    input_norm_gamma: torch.Tensor | None = None  # (4H,) gain of LN(x·W)
    recurrent_norm_gamma: torch.Tensor | None = None  # (4H,) gain of LN(h·U)
    cell_norm_gamma: torch.Tensor | None = None  # (H,) gain of LN(c)
    cell_norm_beta: torch.Tensor | None = None  # (H,) shift of LN(c)


class LSTMNoise(NamedTuple):
    """Random masks of one training call. Passing a noise object means "training"."""

    recurrent_mask: torch.Tensor | None = None  # (B, P) dropout mask on h, already scaled
    zoneout_cell: torch.Tensor | None = None  # (B, T, H) 1 where the old cell value is kept
    zoneout_hidden: torch.Tensor | None = None  # (B, T, P) 1 where the old hidden value is kept
