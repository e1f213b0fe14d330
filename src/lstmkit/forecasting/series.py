"""Turn what a user passes (pandas Series/DataFrame with dates, NumPy) into checked frames.

Every forecaster works on a `pandas.DataFrame` with one float column per variable and either a
regular `DatetimeIndex` (a `PeriodIndex` is converted to timestamps) or a `RangeIndex`.
Problems are reported as `ValueError` naming what was expected: the unknown column and the
ones available, the first NaN and its date, the first date that breaks the order, a series
too short for the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# Season length for the pandas frequency codes (the offset's ``name`` without anchors).
_SEASON_BY_FREQ = {
    "h": 24,
    "D": 7,
    "B": 5,
    "W": 52,
    "M": 12,
    "ME": 12,
    "MS": 12,
    "BME": 12,
    "BMS": 12,
    "SME": 24,
    "SMS": 24,
    "Q": 4,
    "QE": 4,
    "QS": 4,
    "BQE": 4,
    "BQS": 4,
    "min": 60,
}


def _label(index: pd.Index, position: int) -> str:
    value = index[position]
    if isinstance(value, pd.Timestamp):
        return f"position {position} ({value.isoformat()})"
    return f"position {position}"


def as_frame(data: Any, name: str = "series", default_column: str = "y") -> pd.DataFrame:
    """A float DataFrame with a checked index from a Series, DataFrame, array or tensor.

    NumPy input gets a `RangeIndex` and columns ``y`` (1-D) or ``y0, y1, ...`` (2-D).
    A `DatetimeIndex` must be strictly increasing and regularly spaced.
    """
    if isinstance(data, pd.Series):
        frame = data.to_frame(default_column if data.name is None else str(data.name))
    elif isinstance(data, pd.DataFrame):
        frame = data.copy()
        frame.columns = [str(c) for c in frame.columns]
    else:
        if hasattr(data, "detach"):
            data = data.detach().cpu().numpy()
        array = np.asarray(data)
        if array.ndim == 1:
            frame = pd.DataFrame({default_column: array})
        elif array.ndim == 2:
            columns = [f"{default_column}{i}" for i in range(array.shape[1])]
            frame = pd.DataFrame(array, columns=columns)
        else:
            raise ValueError(
                f"{name} must be 1-D (time,) or 2-D (time, variables); got shape {array.shape}"
            )
    if frame.shape[1] == 0:
        raise ValueError(f"{name} has no columns")
    non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise ValueError(f"{name} columns must be numeric; {non_numeric} are not")
    frame = frame.astype(np.float64)
    frame.index = _checked_index(frame.index, name)
    return frame


def _checked_index(index: pd.Index, name: str) -> pd.Index:
    if isinstance(index, pd.PeriodIndex):
        index = index.to_timestamp()
    if not isinstance(index, pd.DatetimeIndex):
        if isinstance(index, pd.RangeIndex) and index.step == 1:
            return index
        return pd.RangeIndex(len(index))
    if index.tz is not None:
        index = index.tz_convert(None)
    steps = np.diff(index.asi8)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0)) + 1
        raise ValueError(
            f"{name} dates must be strictly increasing; the date at {_label(index, bad)} "
            f"does not come after {index[bad - 1].isoformat()}"
        )
    freq = index.freq or (pd.infer_freq(index) if len(index) >= 3 else None)
    if freq is None:
        raise ValueError(
            f"{name} dates are not regularly spaced (no frequency can be inferred); "
            "expected one row per period, e.g. monthly dates with none missing"
        )
    return pd.DatetimeIndex(index, freq=freq)


def check_finite(frame: pd.DataFrame, name: str) -> None:
    """Raise naming the first row (and its date) with a NaN or infinite value."""
    bad_rows = ~np.isfinite(frame.to_numpy()).all(axis=1)
    if bad_rows.any():
        row = int(np.argmax(bad_rows))
        columns = [c for c in frame.columns if not np.isfinite(frame[c].iloc[row])]
        raise ValueError(
            f"{name} contains NaN or infinite values; the first is at "
            f"{_label(frame.index, row)} in column {columns[0]!r}. "
            "Fill or drop missing values before forecasting"
        )


def select_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> pd.DataFrame:
    """``frame[columns]`` with a clear error for names that are not there."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name}: unknown column(s) {missing}; available columns are {list(frame.columns)}"
        )
    return frame[list(columns)]


def future_index(index: pd.Index, steps: int) -> pd.Index:
    """The ``steps`` index labels after the end of ``index`` (dates continue its frequency)."""
    if isinstance(index, pd.DatetimeIndex):
        return pd.date_range(index[-1] + index.freq, periods=steps, freq=index.freq)
    start = index[-1] + 1 if len(index) else 0
    return pd.RangeIndex(start, start + steps)


def season_length_from_index(index: pd.Index) -> int | None:
    """Season length implied by a date frequency (12 for monthly, 7 for daily ...), else None."""
    if not isinstance(index, pd.DatetimeIndex) or index.freq is None:
        return None
    offset = index.freq
    base = offset.name.split("-")[0]
    season = _SEASON_BY_FREQ.get(base)
    if season is None or offset.n != 1:
        return None
    return season


def align(
    covariates: pd.DataFrame, index: pd.Index, name: str, series_name: str = "the series"
) -> pd.DataFrame:
    """Rows of ``covariates`` for every label of ``index``; error naming the first missing one."""
    if isinstance(index, pd.DatetimeIndex) != isinstance(covariates.index, pd.DatetimeIndex):
        raise ValueError(
            f"{name} and {series_name} must both be indexed by dates or both by position"
        )
    missing = index.difference(covariates.index)
    if len(missing):
        first = missing[0]
        label = first.isoformat() if isinstance(first, pd.Timestamp) else str(first)
        raise ValueError(
            f"{name} has no row for {label} ({len(missing)} needed rows are missing); "
            f"it must cover every time step of {series_name}"
        )
    return covariates.loc[index]
