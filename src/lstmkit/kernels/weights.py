"""The weights of one LSTM layer in Keras layout (the layout every kernel reads).

``kernel`` (I, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,) or None; gate order i, f, c, o.
PyTorch's ``weight_ih`` is ``kernel.T``, ``weight_hh`` is ``recurrent_kernel.T`` and
``bias_ih + bias_hh`` is ``bias``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class LSTMWeights(NamedTuple):
    kernel: torch.Tensor  # (I, 4H)
    recurrent_kernel: torch.Tensor  # (H, 4H)
    bias: torch.Tensor | None  # (4H,)
