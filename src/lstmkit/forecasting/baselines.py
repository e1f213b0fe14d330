"""Baselines with the same API, for honest comparisons: naive, seasonal naive, SARIMA, ETS.

Intervals of the naive methods assume normal errors with the spread of the in-sample
residuals growing as in Hyndman & Athanasopoulos, FPP3 section 5.5: ``sigma * sqrt(h)`` for
the naive forecast and ``sigma * sqrt(k + 1)`` (``k`` full seasons ahead) for the seasonal
one. SARIMA and ETS come from statsmodels (``pip install lstmkit[forecast]``) and are fitted
per target column.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from lstmkit.forecasting import series as series_lib
from lstmkit.forecasting.base import BaseForecaster, check_positive_int


def _normal_quantiles(
    point: np.ndarray, sigma: np.ndarray, quantiles: Sequence[float] | None
) -> np.ndarray | None:
    """``point + z_q * sigma`` stacked on a last axis (both ``(horizon, targets)``)."""
    if not quantiles:
        return None
    z = np.array([NormalDist().inv_cdf(q) for q in quantiles])
    return point[..., None] + sigma[..., None] * z


def _statsmodels():
    try:
        import statsmodels.api as sm
    except ImportError as err:
        raise ImportError("SARIMA and ETS need statsmodels: pip install lstmkit[forecast]") from err
    return sm


class _SeasonAware(BaseForecaster):
    """Resolves ``season_length="auto"`` from the dates of the training series."""

    def __init__(
        self,
        horizon: int = 1,
        quantiles: Sequence[float] | None = (0.1, 0.9),
        season_length: int | str = "auto",
    ):
        super().__init__(horizon, quantiles)
        if season_length != "auto":
            season_length = check_positive_int("season_length", season_length)
        self.season_length = season_length

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "season_length": self.season_length}

    def _resolve_season(self) -> int:
        if self.season_length != "auto":
            return self.season_length
        season = series_lib.season_length_from_index(self.history_.index)
        if season is None:
            raise ValueError(
                f"{type(self).__name__} cannot infer the season length from the index; "
                "pass season_length=..."
            )
        return season


class NaiveForecaster(BaseForecaster):
    """Repeats the last value (the random-walk forecast)."""

    def __init__(self, horizon: int = 1, quantiles: Sequence[float] | None = (0.1, 0.9)):
        super().__init__(horizon, quantiles)

    def min_length(self) -> int:
        return 2

    def _fit(self, y, past, future) -> None:
        self.sigma_ = (
            np.std(np.diff(y, axis=0), axis=0, ddof=1) if len(y) > 2 else np.zeros(y.shape[1])
        )

    def _forecast(self, y, start, horizon, past, future):
        point = np.repeat(y[-1:], horizon, axis=0)
        sigma = self.sigma_ * np.sqrt(np.arange(1, horizon + 1))[:, None]
        return point, _normal_quantiles(point, sigma, self.quantiles)


class SeasonalNaiveForecaster(_SeasonAware):
    """Repeats the last observed season: ``y[t + h] = y[t + h - m * (k + 1)]``."""

    def min_length(self) -> int:
        return self.season_length + 1 if self.season_length != "auto" else 2

    def _fit(self, y, past, future) -> None:
        self.season_length_ = m = self._resolve_season()
        if len(y) <= m:
            raise ValueError(f"series has {len(y)} observations; season length {m} needs more")
        self.sigma_ = (
            np.std(y[m:] - y[:-m], axis=0, ddof=1) if len(y) > m + 1 else np.zeros(y.shape[1])
        )

    def _forecast(self, y, start, horizon, past, future):
        m = self.season_length_
        if len(y) < m:
            raise ValueError(f"series has {len(y)} observations; season length {m} needs more")
        steps = np.arange(horizon)
        point = y[len(y) - m + steps % m]
        sigma = self.sigma_ * np.sqrt(steps // m + 1)[:, None]
        return point, _normal_quantiles(point, sigma, self.quantiles)


class SARIMAForecaster(_SeasonAware):
    """Seasonal ARIMA by statsmodels' SARIMAX, per target column.

    The default is the "airline model" ARIMA(0,1,1)(0,1,1)_m on the log of the series (Box &
    Jenkins 1976), the classic reference for the airline passengers data.

    Args:
        order: ``(p, d, q)``.
        seasonal_order: ``(P, D, Q)``; the season length is appended.
        log: model the log of the series (needs positive values).
    """

    def __init__(
        self,
        horizon: int = 1,
        quantiles: Sequence[float] | None = (0.1, 0.9),
        season_length: int | str = "auto",
        order: Sequence[int] = (0, 1, 1),
        seasonal_order: Sequence[int] = (0, 1, 1),
        log: bool = True,
    ):
        super().__init__(horizon, quantiles, season_length)
        self.order, self.seasonal_order, self.log = tuple(order), tuple(seasonal_order), bool(log)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "order": list(self.order),
            "seasonal_order": list(self.seasonal_order),
            "log": self.log,
        }

    def min_length(self) -> int:
        return 2 * (self.season_length if self.season_length != "auto" else 12) + 2

    def _fit(self, y, past, future) -> None:
        self.season_length_ = self._resolve_season()
        if self.log and np.any(y <= 0):
            raise ValueError("SARIMAForecaster(log=True) needs a strictly positive series")
        self.params_ = [self._model(col).fit(disp=False).params for col in self._scale(y).T]

    def _scale(self, y: np.ndarray) -> np.ndarray:
        return np.log(y) if self.log else y

    def _model(self, column: np.ndarray):
        sm = _statsmodels()
        return sm.tsa.SARIMAX(
            column, order=self.order, seasonal_order=(*self.seasonal_order, self.season_length_)
        )

    def _forecast(self, y, start, horizon, past, future):
        means, sigmas = [], []
        for column, params in zip(self._scale(y).T, self.params_, strict=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = self._model(column).filter(params).get_forecast(horizon)
            means.append(np.asarray(result.predicted_mean))
            sigmas.append(np.asarray(result.se_mean))
        mean, sigma = np.stack(means, 1), np.stack(sigmas, 1)
        quantiles = _normal_quantiles(mean, sigma, self.quantiles)
        if self.log:
            return np.exp(mean), None if quantiles is None else np.exp(quantiles)
        return mean, quantiles


class ETSForecaster(_SeasonAware):
    """Holt-Winters exponential smoothing by statsmodels, per target column.

    The default, additive trend with multiplicative seasonality, is the Holt-Winters method
    for series whose seasonal swings grow with the level (Hyndman & Athanasopoulos, FPP3
    section 8.3). Quantiles come from ``simulations`` simulated future paths.

    Args:
        trend, seasonal: ``"add"``, ``"mul"`` or None.
        damped_trend: damp the trend.
        simulations: paths simulated for the quantiles.
    """

    def __init__(
        self,
        horizon: int = 1,
        quantiles: Sequence[float] | None = (0.1, 0.9),
        season_length: int | str = "auto",
        trend: str | None = "add",
        seasonal: str | None = "mul",
        damped_trend: bool = False,
        simulations: int = 1000,
    ):
        super().__init__(horizon, quantiles, season_length)
        self.trend, self.seasonal, self.damped_trend = trend, seasonal, bool(damped_trend)
        self.simulations = check_positive_int("simulations", simulations)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "trend": self.trend,
            "seasonal": self.seasonal,
            "damped_trend": self.damped_trend,
            "simulations": self.simulations,
        }

    def min_length(self) -> int:
        return 2 * (self.season_length if self.season_length != "auto" else 12) + 2

    def _fit(self, y, past, future) -> None:
        self.season_length_ = self._resolve_season() if self.seasonal else None
        self.results_ = [self._fit_column(col) for col in y.T]

    def _fit_column(self, column: np.ndarray):
        sm = _statsmodels()
        model = sm.tsa.ExponentialSmoothing(
            column,
            trend=self.trend,
            seasonal=self.seasonal,
            seasonal_periods=self.season_length_,
            damped_trend=self.damped_trend,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit()

    def _forecast(self, y, start, horizon, past, future):
        """From the training history, the fitted model; from another one, a fit on it."""
        same = start == 0 and np.array_equal(y, self.history_.to_numpy())
        points, quantiles = [], []
        for j, column in enumerate(y.T):
            result = self.results_[j] if same else self._fit_column(column)
            points.append(np.asarray(result.forecast(horizon)))
            if self.quantiles:
                paths = result.simulate(
                    horizon,
                    repetitions=self.simulations,
                    error="mul" if self.seasonal == "mul" else "add",
                    rng=np.random.default_rng(j),
                )
                quantiles.append(np.quantile(np.asarray(paths), self.quantiles, axis=1).T)
        point = np.stack(points, 1)
        return point, np.stack(quantiles, 1) if self.quantiles else None
