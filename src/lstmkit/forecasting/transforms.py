"""The target pipeline: log transform, seasonal adjustment and scaling, each chosen from the data.

For each target column, fitted on the training series only:

1. **Log** when every value is positive and Guerrero's (1993) method ("Time-series
   variance stabilization", Communications in Statistics 22(8)) picks a Box-Cox lambda below
   0.5, i.e. closer to the log than to no transform: the spread grows with the level.
2. **Seasonal adjustment** when the season length ``m`` is known (from the date frequency or
   given) and the 90% autocorrelation test at lag ``m`` used for the M4 competition's
   benchmarks (Makridakis et al. 2020; Hyndman's ``thetaf``) finds seasonality, on at least
   three seasons of data. Seasonal indices come from a classical additive decomposition (a
   centred ``2 x m`` moving average; Hyndman & Athanasopoulos, "Forecasting: Principles and
   Practice", 3rd ed., section 3.4) of the (logged) series, averaged over the last
   ``seasonal_window`` seasons so that a slowly changing pattern is followed. On the log scale
   additive indices are multiplicative seasonality on the original scale.
3. **Standard scaling** of the adjusted series.

Every step is a strictly increasing map at each time step, so quantiles of the transformed
target map back to quantiles of the original one exactly; that is why the pipeline removes
seasonality with fixed indices and leaves the trend to the network (with per-window level
normalisation) rather than differencing, which would need forecasts to be summed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstmkit.data.scalers import StandardScaler

SEASONALITY_Z = 1.645  # one-sided 90% level of the M4 benchmarks' seasonality test


def guerrero_lambda(y: np.ndarray, period: int, lower: float = -1.0, upper: float = 2.0) -> float:
    """Box-Cox lambda by Guerrero's method: steadiest ``std / mean**(1 - lambda)`` over blocks.

    The series (positive) is cut into consecutive blocks of ``period`` values (at least 2),
    keeping the most recent complete blocks; lambda minimises the coefficient of variation of
    ``std_i / mean_i ** (1 - lambda)`` over a grid on ``[lower, upper]``.
    """
    period = max(int(period), 2)
    blocks = len(y) // period
    if blocks < 2:
        return 1.0
    values = np.asarray(y, dtype=np.float64)[len(y) - blocks * period :].reshape(blocks, period)
    means, stds = values.mean(axis=1), values.std(axis=1, ddof=1)
    grid = np.linspace(lower, upper, 301)
    ratios = stds[None, :] / means[None, :] ** (1.0 - grid[:, None])
    cv = ratios.std(axis=1, ddof=1) / ratios.mean(axis=1)
    return float(grid[int(np.argmin(cv))])


def choose_log(y: np.ndarray, period: int) -> bool:
    """True when ``y`` is positive and Guerrero's lambda is below 0.5."""
    y = np.asarray(y, dtype=np.float64)
    return bool(np.all(y > 0) and guerrero_lambda(y, period) < 0.5)


def acf(z: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations at lags ``1..max_lag``."""
    centred = np.asarray(z, dtype=np.float64) - np.mean(z)
    denominator = np.sum(centred**2)
    if denominator == 0:
        return np.zeros(max_lag)
    return np.array(
        [np.sum(centred[lag:] * centred[:-lag]) / denominator for lag in range(1, max_lag + 1)]
    )


def is_seasonal(z: np.ndarray, m: int) -> bool:
    """The M4 benchmarks' test: ``|r_m| > 1.645 * sqrt((1 + 2 sum_{k<m} r_k^2) / n)``, n >= 3m."""
    n = len(z)
    if m < 2 or n < 3 * m:
        return False
    r = acf(z, m)
    limit = SEASONALITY_Z * np.sqrt((1.0 + 2.0 * np.sum(r[: m - 1] ** 2)) / n)
    return bool(abs(r[m - 1]) > limit)


def centred_moving_average(z: np.ndarray, m: int) -> np.ndarray:
    """The trend-cycle of classical decomposition: ``2 x m`` MA (m even) or ``m`` MA (odd).

    Returns the values for positions ``m // 2 .. n - m // 2 - 1`` (the ends have none).
    """
    weights = np.ones(m) / m if m % 2 else np.r_[0.5, np.ones(m - 1), 0.5] / m
    return np.convolve(z, weights, mode="valid")


def seasonal_indices(z: np.ndarray, m: int, window: int | None = None) -> np.ndarray:
    """Additive seasonal indices (sum 0) for phases ``0..m-1`` of positions ``0..n-1``.

    The detrended values ``z - trend`` are averaged per phase over the last ``window`` seasons
    (all of them when None).
    """
    trend = centred_moving_average(z, m)
    offset = m // 2
    detrended = z[offset : offset + len(trend)] - trend
    phase = (np.arange(len(trend)) + offset) % m
    if window is not None:
        keep = min(len(detrended), window * m)
        detrended, phase = detrended[-keep:], phase[-keep:]
    indices = np.array([detrended[phase == k].mean() for k in range(m)])
    return indices - indices.mean()


class TargetPipeline:
    """Per-column log / seasonal adjustment / standard scaling, fitted on training values.

    Args:
        log: ``"auto"`` (Guerrero), True or False; one choice per column when auto.
        season_length: the season ``m`` in steps, or None for no seasonal adjustment.
        seasonality: ``"auto"`` (the ACF test), True (always adjust) or False.
        seasonal_window: seasons averaged for the indices (None: all).
    """

    def __init__(
        self,
        log: bool | str = "auto",
        season_length: int | None = None,
        seasonality: bool | str = "auto",
        seasonal_window: int | None = 4,
    ):
        self.log_option, self.season_length = log, season_length
        self.seasonality_option, self.seasonal_window = seasonality, seasonal_window

    def fit(self, values: np.ndarray) -> TargetPipeline:
        """Choose and fit every step on ``values`` (time, columns); positions start at 0."""
        m = self.season_length
        period = m if m and m >= 2 else 2
        columns = values.shape[1]
        if self.log_option == "auto":
            self.log = [choose_log(values[:, j], period) for j in range(columns)]
        else:
            if self.log_option and np.any(values <= 0):
                raise ValueError("log=True needs a strictly positive target")
            self.log = [bool(self.log_option)] * columns
        logged = self._log(values)
        self.seasonal: list[list[float] | None] = []
        for j in range(columns):
            adjust = m is not None and m >= 2 and len(values) >= 2 * m
            if adjust and self.seasonality_option == "auto":
                adjust = is_seasonal(logged[:, j], m)
            elif not self.seasonality_option:
                adjust = False
            indices = seasonal_indices(logged[:, j], m, self.seasonal_window) if adjust else None
            self.seasonal.append(None if indices is None else indices.tolist())
        self.scaler = StandardScaler().fit(self._deseasonalise(logged, 0))
        return self

    def _log(self, values: np.ndarray) -> np.ndarray:
        out = np.array(values, dtype=np.float64)
        for j, use in enumerate(self.log):
            if use:
                out[:, j] = np.log(out[:, j])
        return out

    def _seasonal_matrix(self, start: int, steps: int) -> np.ndarray:
        """Seasonal index of every column at positions ``start .. start + steps - 1``."""
        out = np.zeros((steps, len(self.seasonal)))
        for j, indices in enumerate(self.seasonal):
            if indices is not None:
                out[:, j] = np.asarray(indices)[(start + np.arange(steps)) % len(indices)]
        return out

    def _deseasonalise(self, logged: np.ndarray, start: int) -> np.ndarray:
        return logged - self._seasonal_matrix(start, len(logged))

    def transform(self, values: np.ndarray, start: int = 0) -> np.ndarray:
        """Model scale of ``values`` (time, columns) whose first row is at position ``start``."""
        values = np.asarray(values, dtype=np.float64)
        for j, use in enumerate(self.log):
            if use and np.any(values[:, j] <= 0):
                row = int(np.argmax(values[:, j] <= 0))
                raise ValueError(
                    f"target column {j} was log-transformed in fit but has a value <= 0 at "
                    f"row {row}; expected positive values"
                )
        return self.scaler.transform(self._deseasonalise(self._log(values), start))

    def inverse_transform(self, z: np.ndarray, start: int) -> np.ndarray:
        """Original scale of model-scale ``z`` (time, columns, ...) starting at ``start``.

        Extra trailing axes (e.g. quantiles) are broadcast.
        """
        z = np.asarray(z, dtype=np.float64)
        extra = (1,) * (z.ndim - 2)
        loc = self.scaler.loc_.reshape(-1, *extra)
        scale = self.scaler.scale_.reshape(-1, *extra)
        seasonal = self._seasonal_matrix(start, z.shape[0]).reshape(z.shape[0], -1, *extra)
        out = z * scale + loc + seasonal
        for j, use in enumerate(self.log):
            if use:
                out[:, j] = np.exp(out[:, j])
        return out

    def describe(self) -> list[dict[str, Any]]:
        """What was chosen for each column: log or not, seasonal adjustment or not."""
        return [
            {"log": use, "seasonal": indices is not None}
            for use, indices in zip(self.log, self.seasonal, strict=True)
        ]

    def get_config(self) -> dict[str, Any]:
        return {
            "log_option": self.log_option,
            "season_length": self.season_length,
            "seasonality_option": self.seasonality_option,
            "seasonal_window": self.seasonal_window,
            "log": self.log,
            "seasonal": self.seasonal,
            "scaler": self.scaler.get_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TargetPipeline:
        pipeline = cls(
            config["log_option"],
            config["season_length"],
            config["seasonality_option"],
            config["seasonal_window"],
        )
        pipeline.log, pipeline.seasonal = list(config["log"]), list(config["seasonal"])
        pipeline.scaler = StandardScaler.from_config(config["scaler"])
        return pipeline
