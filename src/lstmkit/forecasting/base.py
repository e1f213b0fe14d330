"""`BaseForecaster`: the fit / predict / backtest / plot API every forecaster shares.

Subclasses implement ``_fit`` and ``_forecast`` on checked NumPy arrays; this class turns
pandas or NumPy input into those arrays (with the errors of `lstmkit.forecasting.series`),
keeps the training history so that ``predict()`` needs no arguments, and formats forecasts as
a DataFrame indexed by the forecast dates: one column per target with the point forecast
(the median when 0.5 is among the quantiles), then ``<target>_q<q>`` per quantile.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lstmkit.forecasting import series as series_lib


def quantile_column(target: str, q: float) -> str:
    """Name of the column holding quantile ``q`` of ``target`` (``"y_q0.1"``)."""
    return f"{target}_q{q:g}"


def interval_pairs(quantiles: Sequence[float] | None) -> list[tuple[float, float]]:
    """``(low, high)`` quantile pairs symmetric around the median, widest first."""
    qs = sorted(quantiles or ())
    return [(q, h) for q in qs for h in qs if q < 0.5 and math.isclose(q + h, 1.0)]


def check_quantiles(quantiles: Sequence[float] | None) -> tuple[float, ...] | None:
    """Sorted, distinct quantiles in (0, 1), or None."""
    if quantiles is None:
        return None
    values = tuple(sorted(float(q) for q in quantiles))
    if not values or any(not 0.0 < q < 1.0 for q in values) or len(set(values)) != len(values):
        raise ValueError(f"quantiles must be distinct numbers in (0, 1); got {quantiles!r}")
    return values


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


class BaseForecaster:
    """Common API. ``horizon`` is the default number of steps `predict` forecasts.

    Args:
        horizon: steps to forecast.
        quantiles: quantile levels to forecast besides the point forecast, or None.
    """

    uses_past_covariates = False
    uses_future_covariates = False

    def __init__(self, horizon: int = 1, quantiles: Sequence[float] | None = None):
        self.horizon = check_positive_int("horizon", horizon)
        self.quantiles = check_quantiles(quantiles)
        self.history_: pd.DataFrame | None = None
        self.covariates_: pd.DataFrame | None = None
        self.future_covariates_: pd.DataFrame | None = None

    # -- to implement ---------------------------------------------------------------------
    def _fit(self, y: np.ndarray, past: np.ndarray | None, future: np.ndarray | None) -> None:
        raise NotImplementedError

    def _forecast(
        self,
        y: np.ndarray,
        start: int,
        horizon: int,
        past: np.ndarray | None,
        future: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Point forecast ``(horizon, targets)`` and quantiles ``(horizon, targets, Q)``.

        ``y`` is the history (its first row at position ``start`` from the training start),
        ``past`` the past covariates over the history, ``future`` the known-future covariates
        over the history and the horizon.
        """
        raise NotImplementedError

    def min_length(self) -> int:
        """Fewest observations `fit` accepts."""
        return self.horizon + 1

    def get_config(self) -> dict[str, Any]:
        return {"horizon": self.horizon, "quantiles": self.quantiles}

    def clone(self) -> BaseForecaster:
        """An unfitted forecaster with the same settings."""
        config = copy.deepcopy(self.get_config())
        return type(self)(**config)

    # -- input handling -------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self.history_ is not None

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet; call fit first")

    @staticmethod
    def _with_labels(frame: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
        """NumPy covariates (a RangeIndex) take ``index``'s dates, continued past its end."""
        if isinstance(frame.index, pd.RangeIndex) and not isinstance(index, pd.RangeIndex):
            extra = max(0, len(frame) - len(index))
            labels = index.append(series_lib.future_index(index, extra)) if extra else index
            return frame.set_axis(labels[: len(frame)])
        return frame

    def _covariate_frame(
        self, data: Any, index: pd.Index, name: str, extra_steps: int = 0
    ) -> pd.DataFrame:
        """Covariates as a frame aligned to ``index`` (plus ``extra_steps`` future rows).

        NumPy covariates are read row by row from the start of ``index``.
        """
        needed = index.append(series_lib.future_index(index, extra_steps)) if extra_steps else index
        frame = series_lib.as_frame(data, name, default_column="x")
        if isinstance(frame.index, pd.RangeIndex) and len(frame) < len(needed):
            raise ValueError(
                f"{name} has {len(frame)} rows; expected at least {len(needed)} "
                f"(one per step of the series{' and the horizon' if extra_steps else ''})"
            )
        frame = self._with_labels(frame, index)
        what = "the series and the horizon" if extra_steps else "the series"
        frame = series_lib.align(frame, needed, name, what)
        series_lib.check_finite(frame, name)
        return frame

    def _check_covariate_use(self, covariates: Any, future_covariates: Any) -> None:
        if covariates is not None and not self.uses_past_covariates:
            raise ValueError(f"{type(self).__name__} does not use covariates; pass covariates=None")
        if future_covariates is not None and not self.uses_future_covariates:
            raise ValueError(
                f"{type(self).__name__} does not use future covariates; pass future_covariates=None"
            )

    def _extra_future(self, index: pd.Index, steps: int) -> pd.DataFrame | None:
        """Known-future covariates a subclass derives from dates (calendar); None by default."""
        return None

    def fit(
        self, series: Any, covariates: Any = None, future_covariates: Any = None
    ) -> BaseForecaster:
        """Fit on ``series`` (pandas Series/DataFrame with a DatetimeIndex, or NumPy).

        Every column of ``series`` is a target. ``covariates`` are past covariates (known up
        to each time step), ``future_covariates`` are known ahead (holidays, prices, calendar);
        both are indexed like ``series`` (or NumPy arrays with one row per step; future
        covariates may run on past the end of the series, and those rows are used by
        `predict`).
        """
        self._check_covariate_use(covariates, future_covariates)
        frame = series_lib.as_frame(series, "series")
        series_lib.check_finite(frame, "series")
        needed = self.min_length()
        if len(frame) < needed:
            raise ValueError(f"series has {len(frame)} observations; {self._length_reason(needed)}")
        past = None
        if covariates is not None:
            past = self._covariate_frame(covariates, frame.index, "covariates")
        future = None
        if future_covariates is not None:
            future = series_lib.as_frame(future_covariates, "future_covariates", "x")
            future = self._with_labels(future, frame.index)
        self.history_, self.covariates_, self.future_covariates_ = frame, past, future
        self._fit(
            frame.to_numpy(),
            None if past is None else past.to_numpy(),
            self._future_array(frame.index, 0, future),
        )
        return self

    def _length_reason(self, needed: int) -> str:
        return f"{type(self).__name__} with horizon={self.horizon} needs at least {needed}"

    def _future_array(
        self, index: pd.Index, steps: int, user: pd.DataFrame | None
    ) -> np.ndarray | None:
        parts = []
        if user is not None:
            parts.append(self._covariate_frame(user, index, "future_covariates", steps))
        extra = self._extra_future(index, steps)
        if extra is not None:
            parts.append(extra)
        if not parts:
            return None
        return pd.concat(parts, axis=1).to_numpy()

    def _start_position(self, index: pd.Index) -> int:
        """Steps from the first training label to ``index[0]`` (for seasonal phases)."""
        first = self.history_.index[0]
        if isinstance(index, pd.DatetimeIndex):
            if index[0] >= first:
                return len(pd.date_range(first, index[0], freq=index.freq)) - 1
            return 1 - len(pd.date_range(index[0], first, freq=index.freq))
        return int(index[0] - first)

    def predict(
        self,
        horizon: int | None = None,
        series: Any = None,
        covariates: Any = None,
        future_covariates: Any = None,
    ) -> pd.DataFrame:
        """Forecast ``horizon`` steps (default: the horizon given at construction).

        By default the forecast starts after the series given to `fit`. Pass ``series`` to
        forecast after another history of the same targets (e.g. the data up to a backtest
        origin); ``covariates`` must then cover it, and ``future_covariates`` it and the
        horizon (defaults: the covariates given to `fit`, when they cover enough).
        """
        self._require_fitted()
        self._check_covariate_use(covariates, future_covariates)
        horizon = self.horizon if horizon is None else check_positive_int("horizon", horizon)
        history = self.history_ if series is None else self._history_frame(series)
        past = None
        if self.covariates_ is not None:
            source = self.covariates_ if covariates is None else covariates
            past = self._covariate_frame(source, history.index, "covariates").to_numpy()
        user_future = self.future_covariates_ if future_covariates is None else future_covariates
        future = self._future_array(history.index, horizon, user_future)
        point, quantiles = self._forecast(
            history.to_numpy(), self._start_position(history.index), horizon, past, future
        )
        return self._forecast_frame(history.index, point, quantiles)

    def _history_frame(self, series: Any) -> pd.DataFrame:
        frame = series_lib.as_frame(series, "series")
        frame = series_lib.select_columns(frame, list(self.history_.columns), "series")
        series_lib.check_finite(frame, "series")
        if isinstance(frame.index, pd.DatetimeIndex) != isinstance(
            self.history_.index, pd.DatetimeIndex
        ):
            raise ValueError(
                "series must be indexed like the series given to fit (dates or positions)"
            )
        if len(frame) < self.min_length() - self.horizon:
            raise ValueError(
                f"series has {len(frame)} observations; forecasting needs at least "
                f"{self.min_length() - self.horizon}"
            )
        return frame

    def _forecast_frame(
        self, index: pd.Index, point: np.ndarray, quantiles: np.ndarray | None
    ) -> pd.DataFrame:
        columns: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.history_.columns):
            columns[name] = point[:, j]
            if quantiles is not None:
                for k, q in enumerate(self.quantiles):
                    columns[quantile_column(name, q)] = quantiles[:, j, k]
        future = series_lib.future_index(index, len(point))
        frame = pd.DataFrame(columns, index=future)
        frame.index.name = index.name
        return frame

    # -- evaluation and plots -------------------------------------------------------------
    def backtest(
        self,
        series: Any,
        start: int | float | str | pd.Timestamp,
        stride: int = 1,
        horizon: int | None = None,
        covariates: Any = None,
        future_covariates: Any = None,
        retrain: bool = False,
    ):
        """Rolling-origin evaluation; see `lstmkit.forecasting.backtest.backtest`.

        Works on a clone: this forecaster's own fit is left as it is.
        """
        from lstmkit.forecasting.backtest import backtest

        return backtest(
            self, series, start, stride, horizon, covariates, future_covariates, retrain
        )

    def plot(
        self,
        path: str | os.PathLike,
        forecast: pd.DataFrame | None = None,
        actual: Any = None,
        history: int | None = None,
        title: str | None = None,
    ) -> str:
        """Write a PNG of the history, the forecast and its intervals; returns the path.

        ``forecast`` defaults to ``predict()``; ``actual`` (held-out values) is drawn too;
        ``history`` limits how many past steps are shown (default: 4 horizons).
        """
        from lstmkit.forecasting.plotting import plot_forecast

        self._require_fitted()
        forecast = self.predict() if forecast is None else forecast
        actual_frame = None if actual is None else series_lib.as_frame(actual, "actual")
        return plot_forecast(
            path,
            self.history_,
            forecast,
            self.quantiles,
            actual=actual_frame,
            last=history if history is not None else 4 * len(forecast),
            title=title or type(self).__name__,
        )
