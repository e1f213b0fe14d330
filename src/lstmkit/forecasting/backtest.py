"""Rolling-origin backtests (time-series cross-validation; Tashman 2000).

From each origin ``start, start + stride, ...`` (while a full horizon of actual values
follows) the forecaster forecasts ``horizon`` steps from the data before the origin only.
It is fitted once on the data before ``start`` (``retrain=False``, fast) or again at every
origin (``retrain=True``). Metrics pool every forecast step of every origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lstmkit.forecasting import metrics as metrics_lib
from lstmkit.forecasting import series as series_lib
from lstmkit.forecasting.base import check_positive_int, interval_pairs, quantile_column

if TYPE_CHECKING:
    from lstmkit.forecasting.base import BaseForecaster


@dataclass
class BacktestResult:
    """Forecasts of every origin and their accuracy.

    Attributes:
        forecasts: one row per origin, step and target: ``origin`` (the first forecast
            time), ``step`` (1-based), ``time``, ``target``, ``actual``, ``forecast`` and one
            column per quantile (``q0.1`` ...).
        per_target: metrics per target column (MAE, RMSE, MAPE, sMAPE, MASE, and with
            quantiles the mean pinball loss and the coverage of each interval).
        metrics: ``per_target`` averaged over targets, as a dict.
    """

    forecasts: pd.DataFrame
    per_target: pd.DataFrame
    metrics: dict[str, float]

    def __str__(self) -> str:
        origins = self.forecasts["origin"].nunique()
        return f"Backtest over {origins} origins\n{self.per_target.to_string(float_format='%.4g')}"


def _start_position(start: Any, index: pd.Index) -> int:
    n = len(index)
    if isinstance(start, float) and not isinstance(start, bool):
        if not 0.0 < start < 1.0:
            raise ValueError(f"a fractional start must be in (0, 1); got {start}")
        return int(n * start)
    if isinstance(start, int | np.integer) and not isinstance(start, bool):
        position = int(start) + (n if start < 0 else 0)
        if not 0 < position < n:
            raise ValueError(f"start={start} is outside the series of length {n}")
        return position
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"start must be a position or a fraction; got {start!r}")
    stamp = pd.Timestamp(start)
    if stamp not in index:
        raise ValueError(
            f"start date {stamp.isoformat()} is not in the series "
            f"({index[0].isoformat()} .. {index[-1].isoformat()})"
        )
    return int(index.get_loc(stamp))


def _rows(frame: Any, upto: int) -> Any:
    return None if frame is None else frame.iloc[:upto]


def backtest(
    forecaster: BaseForecaster,
    series: Any,
    start: int | float | str | pd.Timestamp,
    stride: int = 1,
    horizon: int | None = None,
    covariates: Any = None,
    future_covariates: Any = None,
    retrain: bool = False,
) -> BacktestResult:
    """Evaluate ``forecaster`` (a clone of it) from rolling origins over ``series``.

    Args:
        forecaster: any forecaster of this package; its own fit is not touched.
        series: the whole series (training part and evaluation part).
        start: first origin: a position, a fraction of the length, or a date.
        stride: steps between origins.
        horizon: steps per forecast (default: the forecaster's horizon).
        covariates, future_covariates: as for `fit`, covering the whole series.
        retrain: refit at every origin instead of once on the data before ``start``.
    """
    frame = series_lib.as_frame(series, "series")
    series_lib.check_finite(frame, "series")
    horizon = forecaster.horizon if horizon is None else check_positive_int("horizon", horizon)
    stride = check_positive_int("stride", stride)
    first = _start_position(start, frame.index)
    origins = list(range(first, len(frame) - horizon + 1, stride))
    if not origins:
        raise ValueError(
            f"no origin from {first} leaves a full horizon of {horizon} steps "
            f"in a series of length {len(frame)}"
        )
    past = None if covariates is None else series_lib.as_frame(covariates, "covariates", "x")
    future = (
        None
        if future_covariates is None
        else series_lib.as_frame(future_covariates, "future_covariates", "x")
    )
    model = None
    rows = []
    for origin in origins:
        if model is None or retrain:
            model = forecaster.clone()
            model.fit(frame.iloc[:origin], _rows(past, origin), future)
        forecast = model.predict(horizon, frame.iloc[:origin], _rows(past, origin), future)
        actual = frame.iloc[origin : origin + horizon]
        for target in frame.columns:
            part = pd.DataFrame(
                {
                    "origin": actual.index[0],
                    "step": np.arange(1, horizon + 1),
                    "time": actual.index,
                    "target": target,
                    "actual": actual[target].to_numpy(),
                    "forecast": forecast[target].to_numpy(),
                }
            )
            for q in forecaster.quantiles or ():
                part[f"q{q:g}"] = forecast[quantile_column(target, q)].to_numpy()
            rows.append(part)
    forecasts = pd.concat(rows, ignore_index=True)
    season = getattr(model, "season_length_", None) or series_lib.season_length_from_index(
        frame.index
    )
    per_target = _metrics(forecasts, frame.iloc[:first], forecaster.quantiles, season or 1)
    return BacktestResult(forecasts, per_target, per_target.mean(axis=0).to_dict())


def _metrics(
    forecasts: pd.DataFrame, train: pd.DataFrame, quantiles: Any, season: int
) -> pd.DataFrame:
    table = {}
    for target, part in forecasts.groupby("target", sort=False):
        m = season if len(train) > season else 1
        row = metrics_lib.point_metrics(part["actual"], part["forecast"], train[target], m)
        if quantiles:
            by_q = {q: part[f"q{q:g}"] for q in quantiles}
            row.update(
                metrics_lib.interval_metrics(part["actual"], by_q, interval_pairs(quantiles))
            )
        table[target] = row
    return pd.DataFrame(table).T
