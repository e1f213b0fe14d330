"""Forecast accuracy measures: MAE, RMSE, MAPE, sMAPE, MASE, pinball loss, interval coverage.

Definitions follow Hyndman & Koehler (2006), "Another look at measures of forecast accuracy",
International Journal of Forecasting 22(4): MAPE and sMAPE in percent (sMAPE with the
``|y| + |f|`` denominator of the M4 competition, range 0-200), and MASE scaled by the in-sample
mean absolute error of the seasonal naive forecast with period ``m`` (``m=1``: naive).
All functions take array-likes of equal shape and average over every element.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same shape; got {t.shape} and {p.shape}")
    if t.size == 0:
        raise ValueError("y_true and y_pred are empty")
    return t, p


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error, in percent; undefined (error) when a true value is 0."""
    t, p = _pair(y_true, y_pred)
    if np.any(t == 0):
        raise ValueError("MAPE is undefined when y_true contains zeros; use smape or mase")
    return float(100.0 * np.mean(np.abs((t - p) / t)))


def smape(y_true: Any, y_pred: Any) -> float:
    """Symmetric MAPE, ``200 * |y - f| / (|y| + |f|)`` averaged, in percent (0 when both are 0)."""
    t, p = _pair(y_true, y_pred)
    denominator = np.abs(t) + np.abs(p)
    ratio = np.divide(np.abs(t - p), denominator, out=np.zeros_like(t), where=denominator > 0)
    return float(200.0 * np.mean(ratio))


def mase(y_true: Any, y_pred: Any, y_train: Any, m: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006).

    The forecast's MAE divided by the in-sample MAE of the seasonal naive forecast of period
    ``m`` on ``y_train`` (time on axis 0). Below 1: better than that naive forecast in-sample.
    """
    t, p = _pair(y_true, y_pred)
    train = np.asarray(y_train, dtype=np.float64)
    if len(train) <= m:
        raise ValueError(f"MASE needs more than m={m} training points; got {len(train)}")
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    if scale == 0:
        raise ValueError("MASE is undefined: the training series is constant at lag m")
    return float(np.mean(np.abs(t - p)) / scale)


def pinball_loss(y_true: Any, y_quantile: Any, q: float) -> float:
    """Mean pinball (quantile) loss of the ``q``-quantile forecast (Koenker & Bassett 1978)."""
    t, p = _pair(y_true, y_quantile)
    error = t - p
    return float(np.mean(np.maximum(q * error, (q - 1.0) * error)))


def coverage(y_true: Any, lower: Any, upper: Any) -> float:
    """Fraction of true values inside ``[lower, upper]``."""
    t, low = _pair(y_true, lower)
    _, high = _pair(y_true, upper)
    return float(np.mean((t >= low) & (t <= high)))


def point_metrics(y_true: Any, y_pred: Any, y_train: Any, m: int = 1) -> dict[str, float]:
    """MAE, RMSE, MAPE (NaN when y_true has zeros), sMAPE and MASE as a dict."""
    t, _ = _pair(y_true, y_pred)
    return {
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "mape": float("nan") if np.any(t == 0) else mape(y_true, y_pred),
        "smape": smape(y_true, y_pred),
        "mase": mase(y_true, y_pred, y_train, m),
    }


def interval_metrics(
    y_true: Any, quantile_forecasts: dict[float, Any], levels: Sequence[tuple[float, float]]
) -> dict[str, float]:
    """Mean pinball loss over the quantiles and the coverage of each ``(low, high)`` pair."""
    out = {
        "pinball": float(
            np.mean([pinball_loss(y_true, f, q) for q, f in quantile_forecasts.items()])
        )
    }
    for low, high in levels:
        name = f"coverage_{round(100 * (high - low))}"
        out[name] = coverage(y_true, quantile_forecasts[low], quantile_forecasts[high])
    return out
