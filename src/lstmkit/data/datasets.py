"""Bundled benchmark datasets, loaded through the optional ``sktime`` extra."""

from __future__ import annotations

import numpy as np

from lstmkit.data.sequence import pad_sequences

JAPANESE_VOWELS_MAXLEN = 29
"""Longest utterance over both splits (train tops out at 26, test at 29)."""


def load_japanese_vowels(
    split: str = "train", *, padding: str = "pre", return_lengths: bool = False
) -> tuple[np.ndarray, ...]:
    """Load UCI Japanese Vowels (9 speakers, 12 LPC cepstrum coefficients per step).

    Returns ``(X, y)`` -- or ``(X, y, lengths)`` with ``return_lengths=True`` -- where
    ``X`` is float32 ``(N, 29, 12)`` zero-padded by :func:`pad_sequences` (``padding``
    is passed through; ``"pre"`` is the Keras default), ``y`` holds int64 labels 0..8 and
    ``lengths`` the int64 true lengths (7..29). ``split`` is ``"train"`` (270 samples) or
    ``"test"`` (370 samples). Both splits share the same padded length.
    """
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test', got {split!r}.")
    try:
        from sktime.datasets import load_japanese_vowels as _sktime_load
    except ImportError as e:
        raise ImportError("load_japanese_vowels needs sktime: pip install lstmkit[datasets]") from e

    frame, labels = _sktime_load(split=split, return_X_y=True)
    sequences = [
        np.stack([np.asarray(cell, dtype=np.float32) for cell in row], axis=1)
        for row in frame.itertuples(index=False)
    ]
    X = pad_sequences(
        sequences, maxlen=JAPANESE_VOWELS_MAXLEN, dtype="float32", padding=padding, value=0.0
    )
    y = np.asarray(labels).astype(np.int64) - 1
    if not return_lengths:
        return X, y
    lengths = np.array([len(seq) for seq in sequences], dtype=np.int64)
    return X, y, lengths
