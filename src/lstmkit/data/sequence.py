"""Sequence helpers with Keras 3 semantics (``keras.utils.pad_sequences`` / ``to_categorical``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

_SIDES = ("pre", "post")


def _check_side(name: str, side: str) -> None:
    if side not in _SIDES:
        raise ValueError(f"`{name}` must be 'pre' or 'post', got {side!r}.")


def _lengths_and_sample_shape(sequences: Sequence[Any]) -> tuple[list[int], tuple[int, ...]]:
    """Lengths of all sequences and the trailing shape of the first non-empty one (as Keras)."""
    lengths: list[int] = []
    sample_shape: tuple[int, ...] | None = None
    for idx, seq in enumerate(sequences):
        try:
            lengths.append(len(seq))
        except TypeError as e:
            raise ValueError(
                f"`sequences` must contain sequences; element {idx} is not sized: {seq!r}"
            ) from e
        if sample_shape is None and len(seq):
            sample_shape = np.asarray(seq).shape[1:]
    return lengths, sample_shape or ()


def pad_sequences(
    sequences: Sequence[Any],
    maxlen: int | None = None,
    dtype: DTypeLike = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Pad/truncate ``sequences`` to one length, like ``keras.utils.pad_sequences``.

    Returns an array of shape ``(len(sequences), maxlen) + sample_shape`` filled with
    ``value``, where ``maxlen`` defaults to the longest length and ``sample_shape`` is the
    trailing shape of the first non-empty sequence. ``padding``/``truncating`` choose
    which end is padded/cut. Elements are cast with ``np.asarray(..., dtype)`` (so floats
    cast to the default ``int32`` are truncated, as in Keras); empty sequences stay all
    ``value``. A ``str`` ``value`` needs ``dtype=object`` or a string dtype.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError(
            f"`sequences` must be a sized collection of sequences, got {type(sequences)!r}."
        )
    _check_side("padding", padding)
    _check_side("truncating", truncating)
    if isinstance(value, str) and np.dtype(dtype).kind not in "OSU":
        raise ValueError(
            f"`dtype` {dtype!r} cannot hold the string `value` {value!r}; "
            "use dtype=object for variable-length strings."
        )

    lengths, sample_shape = _lengths_and_sample_shape(sequences)
    if maxlen is None:
        if not lengths:
            raise ValueError("`sequences` is empty: pass `maxlen` to pad an empty list.")
        maxlen = max(lengths)
    elif not isinstance(maxlen, int | np.integer) or maxlen < 0:
        raise ValueError(f"`maxlen` must be None or a non-negative int, got {maxlen!r}.")
    maxlen = int(maxlen)

    out = np.full((len(sequences), maxlen) + sample_shape, value, dtype=dtype)
    for idx, (seq, length) in enumerate(zip(sequences, lengths, strict=True)):
        if length == 0:
            if isinstance(seq, np.ndarray) and seq.ndim > 1 and seq.shape[1:] != sample_shape:
                raise ValueError(
                    f"Empty sequence at position {idx} has trailing shape {seq.shape[1:]}, "
                    f"expected {sample_shape}."
                )
            continue
        keep = min(length, maxlen)
        if keep == 0:
            continue
        cut = seq[length - keep :] if truncating == "pre" else seq[:keep]
        cut = np.asarray(cut, dtype=dtype)
        if cut.shape[1:] != sample_shape:
            raise ValueError(
                f"Sequence at position {idx} has trailing shape {cut.shape[1:]}, "
                f"expected {sample_shape} (from the first non-empty sequence)."
            )
        if padding == "pre":
            out[idx, maxlen - keep :] = cut
        else:
            out[idx, :keep] = cut
    return out


def _as_int_labels(x: ArrayLike) -> np.ndarray:
    """Labels as int64; floats are accepted only when they hold whole numbers."""
    labels = np.asarray(x)
    if labels.dtype.kind in "iub":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if whole.all():
            return labels.astype(np.int64)
        raise ValueError(f"to_categorical needs integer labels, got {labels[~whole][0]}.")
    raise ValueError(f"to_categorical needs integer labels, got dtype {labels.dtype}.")


def to_categorical(x: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """One-hot encode integer labels, like ``keras.utils.to_categorical``.

    The class axis is appended last; a trailing axis of size 1 is dropped first
    (``(N, 1) -> (N, C)``). ``num_classes=None`` infers ``max(x) + 1``. Unlike Keras the
    result is float32 (Keras gives float64), and out-of-range or non-integer labels raise
    ``ValueError`` instead of wrapping negatives or truncating floats.
    """
    labels = _as_int_labels(x)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)

    if num_classes is None:
        if flat.size == 0:
            raise ValueError("Cannot infer `num_classes` from empty labels; pass it explicitly.")
        num_classes = int(flat.max()) + 1
    elif not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int or None, got {num_classes!r}.")
    num_classes = int(num_classes)

    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        raise ValueError(
            f"Labels must lie in [0, {num_classes}) for num_classes={num_classes}; "
            f"got labels in [{flat.min()}, {flat.max()}]."
        )
    onehot = np.zeros((flat.size, num_classes), dtype=np.float32)
    onehot[np.arange(flat.size), flat] = 1.0
    return onehot.reshape(shape + (num_classes,))
