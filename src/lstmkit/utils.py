"""Keras-compatible ``lstmkit.utils`` namespace (mirrors ``keras.utils``)."""

from __future__ import annotations

import random

import numpy as np
import torch

from lstmkit.data.sequence import pad_sequences, to_categorical

__all__ = ["pad_sequences", "set_random_seed", "to_categorical"]


def set_random_seed(seed: int) -> None:
    """Seed Python ``random``, NumPy's global RNG and torch, like ``keras.utils.set_random_seed``.

    ``torch.manual_seed`` seeds the CPU and every CUDA device. ``seed`` must be an int in
    ``[0, 2**32)`` (NumPy's legacy seeding range).
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"`seed` must be an int in [0, 2**32), got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
