"""Calendar covariates: known for any future date, so usable as known-future covariates.

Each cyclic attribute becomes a sine/cosine pair on the unit circle (so December sits next to
January), the usual cyclical encoding of calendar features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# attribute -> (value from a DatetimeIndex, starting at 0; period)
CALENDAR_ATTRIBUTES = {
    "month": (lambda idx: idx.month - 1, 12),
    "quarter": (lambda idx: idx.quarter - 1, 4),
    "weekofyear": (lambda idx: idx.isocalendar().week.to_numpy() - 1, 53),
    "dayofweek": (lambda idx: idx.dayofweek, 7),
    "dayofyear": (lambda idx: idx.dayofyear - 1, 366),
    "hour": (lambda idx: idx.hour, 24),
}

# Attributes that vary within a year for each frequency (``"auto"``).
_AUTO = {
    "MS": ("month",),
    "ME": ("month",),
    "M": ("month",),
    "QS": ("quarter",),
    "QE": ("quarter",),
    "W": ("weekofyear",),
    "D": ("dayofweek", "dayofyear"),
    "B": ("dayofweek", "dayofyear"),
    "h": ("hour", "dayofweek"),
}


def auto_attributes(index: pd.DatetimeIndex) -> tuple[str, ...]:
    """Calendar attributes that change within a year at ``index``'s frequency."""
    if index.freq is None:
        return ()
    return _AUTO.get(index.freq.name.split("-")[0], ())


def calendar_features(index: pd.Index, attributes: Sequence[str] | str = "auto") -> pd.DataFrame:
    """Sine/cosine encodings of calendar ``attributes`` for every date of ``index``.

    Args:
        index: a `DatetimeIndex`.
        attributes: names from `CALENDAR_ATTRIBUTES`, or ``"auto"`` (from the frequency:
            month for monthly data, day of week and of year for daily data ...).

    Returns:
        A DataFrame indexed like ``index`` with columns ``<attribute>_sin`` and ``_cos``.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(
            "calendar features need a DatetimeIndex; the series is indexed by position"
        )
    names = auto_attributes(index) if attributes == "auto" else tuple(attributes)
    unknown = [a for a in names if a not in CALENDAR_ATTRIBUTES]
    if unknown:
        raise ValueError(
            f"unknown calendar attribute(s) {unknown}; "
            f"expected some of {sorted(CALENDAR_ATTRIBUTES)}"
        )
    columns = {}
    for name in names:
        value_of, period = CALENDAR_ATTRIBUTES[name]
        angle = 2.0 * np.pi * np.asarray(value_of(index), dtype=np.float64) / period
        columns[f"{name}_sin"] = np.sin(angle)
        columns[f"{name}_cos"] = np.cos(angle)
    return pd.DataFrame(columns, index=index)
