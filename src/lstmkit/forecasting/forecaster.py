"""`Forecaster`: an LSTM forecaster with darts-style fit / predict / backtest / plot / save.

What happens in `fit`, all of it on the training series only:

1. The target pipeline (`lstmkit.forecasting.transforms.TargetPipeline`) picks a log
   transform (Guerrero's method) and seasonal adjustment (the M4 seasonality test, indices
   from the last ``seasonal_window`` seasons) per target column, then standardises.
2. Windows of ``lookback`` steps are cut at every origin; each window's targets are taken
   relative to the window's exponentially smoothed level (`InstanceScaler` ``"ewm"``, the
   smoothing weight fitted by simple exponential smoothing per column), as ES-RNN normalises
   by its level (Smyl 2020). The network thus learns changes from the current level, and
   forecasts can leave the range seen in training.
3. ``ensemble`` LSTM networks (``Input -> LSTM -> Dense``) are trained from seeds
   ``seed, seed + 1, ...`` with the pinball loss over the quantiles (plus the median, the
   point forecast), optionally weighting recent windows more (``recency_halflife``); their
   outputs are averaged. Strategy ``"direct"`` predicts all ``horizon`` steps at once;
   ``"recursive"`` predicts one step and feeds the median back.
4. With ``calibrate=True`` the prediction intervals are conformalised (CQR; Romano,
   Patterson & Candes 2019): a copy of the forecaster is fitted on the series without its last
   ``2 * horizon`` steps and forecasts them from rolling origins; the ``(1 - alpha)`` quantile
   of how far those held-out steps fall outside each interval widens (or narrows) it. This
   costs a second fit.

Crossing quantiles are sorted (Chernozhukov, Fernandez-Val & Galichon 2010), and every
transform is increasing, so the quantiles returned are ordered.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lstmkit.data.scalers import StandardScaler
from lstmkit.forecasting import series as series_lib
from lstmkit.forecasting.base import (
    BaseForecaster,
    check_positive_int,
    interval_pairs,
    quantile_column,
)
from lstmkit.forecasting.design import Design, ses_alpha
from lstmkit.forecasting.features import calendar_features
from lstmkit.forecasting.network import predict_ensemble, train_ensemble
from lstmkit.forecasting.transforms import TargetPipeline

STRATEGIES = ("direct", "recursive")
MIN_WINDOWS = 12  # training windows the automatic lookback leaves at least (when it can)


class Forecaster(BaseForecaster):
    """LSTM forecaster for one or several target series, with covariates and quantiles.

    Args:
        lookback: input steps per window; default two seasons, or ``max(2 * horizon, 8)``
            without a season, shortened on a short series to leave 12 training windows.
        horizon: steps forecast by `predict` by default (and by each direct forecast).
        quantiles: quantile levels to forecast (default 10% and 90%: an 80% interval), or
            None for point forecasts trained with the squared error.
        strategy: ``"direct"`` (one network output per step) or ``"recursive"``.
        log: ``"auto"`` (Guerrero's method), True or False.
        season_length: ``"auto"`` (from the date frequency: 12 for monthly ...), an int, or
            None for no seasonal adjustment.
        seasonality: ``"auto"`` (the M4 autocorrelation test), True or False.
        seasonal_window: seasons averaged for the seasonal indices (None: all).
        calendar: add calendar covariates as known-future inputs: False, True (attributes
            chosen from the frequency) or a list such as ``["month"]``.
        recency_halflife: weigh a window by ``0.5 ** (age / recency_halflife)``, age in steps
            from the newest window; ``"auto"`` uses two seasons (``2 * lookback`` without
            one); None weighs all windows alike.
        units, layers, dropout: LSTM size, depth, and dropout after each LSTM.
        epochs, batch_size, learning_rate: training of each member (Adam); the default batch
            holds every window of a 10-year monthly series, one step per epoch.
        ensemble: networks trained from seeds ``seed, seed + 1, ...`` and averaged.
        seed: first seed (`lstmkit.utils.set_random_seed`).
        calibrate: conformalise the intervals (needs ``quantiles`` with symmetric pairs).
        calibration_ensemble: networks in the copy fitted for calibration (1: a third of the
            ensemble's cost; one network's intervals are noisier, so the correction errs wide).
        device: where to train (``"cpu"``: small networks run fastest there).
    """

    uses_past_covariates = True
    uses_future_covariates = True

    def __init__(
        self,
        lookback: int | None = None,
        horizon: int = 1,
        *,
        quantiles: Sequence[float] | None = (0.1, 0.9),
        strategy: str = "direct",
        log: bool | str = "auto",
        season_length: int | str | None = "auto",
        seasonality: bool | str = "auto",
        seasonal_window: int | None = 4,
        calendar: bool | Sequence[str] = False,
        recency_halflife: float | str | None = "auto",
        units: int = 32,
        layers: int = 1,
        dropout: float = 0.0,
        epochs: int = 300,
        batch_size: int = 128,
        learning_rate: float = 3e-3,
        ensemble: int = 3,
        seed: int = 0,
        calibrate: bool = True,
        calibration_ensemble: int = 1,
        device: str = "cpu",
    ):
        super().__init__(horizon, quantiles)
        if lookback is not None:
            lookback = check_positive_int("lookback", lookback)
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}")
        if log not in ("auto", True, False):
            raise ValueError(f"log must be 'auto', True or False; got {log!r}")
        if seasonality not in ("auto", True, False):
            raise ValueError(f"seasonality must be 'auto', True or False; got {seasonality!r}")
        if season_length not in ("auto", None):
            season_length = check_positive_int("season_length", season_length)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}")
        self.lookback = lookback
        self.strategy = strategy
        self.log = log
        self.season_length = season_length
        self.seasonality = seasonality
        self.seasonal_window = seasonal_window
        self.calendar = calendar if isinstance(calendar, bool) else list(calendar)
        self.recency_halflife = recency_halflife
        self.units = check_positive_int("units", units)
        self.layers = check_positive_int("layers", layers)
        self.dropout = float(dropout)
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.learning_rate = float(learning_rate)
        self.ensemble = check_positive_int("ensemble", ensemble)
        self.seed = int(seed)
        self.calibrate = bool(calibrate)
        self.calibration_ensemble = check_positive_int("calibration_ensemble", calibration_ensemble)
        self.device = device

    def get_config(self) -> dict[str, Any]:
        return {
            "lookback": self.lookback,
            "horizon": self.horizon,
            "quantiles": None if self.quantiles is None else list(self.quantiles),
            "strategy": self.strategy,
            "log": self.log,
            "season_length": self.season_length,
            "seasonality": self.seasonality,
            "seasonal_window": self.seasonal_window,
            "calendar": self.calendar,
            "recency_halflife": self.recency_halflife,
            "units": self.units,
            "layers": self.layers,
            "dropout": self.dropout,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "ensemble": self.ensemble,
            "seed": self.seed,
            "calibrate": self.calibrate,
            "calibration_ensemble": self.calibration_ensemble,
            "device": self.device,
        }

    # -- sizes ----------------------------------------------------------------------------
    @property
    def network_horizon(self) -> int:
        return self.horizon if self.strategy == "direct" else 1

    @property
    def levels(self) -> tuple[float, ...]:
        """Quantile levels the network outputs: the requested ones and the median."""
        return tuple(sorted(set(self.quantiles or ()) | {0.5}))

    def _season(self, index: pd.Index) -> int | None:
        if self.season_length == "auto":
            return series_lib.season_length_from_index(index)
        return self.season_length

    def _default_lookback(self, season: int | None) -> int:
        if self.lookback is not None:
            return self.lookback
        return 2 * season if season else max(2 * self.horizon, 8)

    def min_length(self) -> int:
        """One window needs ``lookback + horizon`` steps (lookback 2 when left to shrink)."""
        lookback = self.lookback if self.lookback is not None else 2
        return lookback + self.network_horizon

    def _length_reason(self, needed: int) -> str:
        return (
            f"lookback={self.lookback if self.lookback is not None else 'auto (at least 2)'} "
            f"+ horizon={self.network_horizon} needs at least {needed}"
        )

    # -- covariates -----------------------------------------------------------------------
    def _extra_future(self, index: pd.Index, steps: int) -> pd.DataFrame | None:
        if self.calendar is False:
            return None
        dates = index.append(series_lib.future_index(index, steps)) if steps else index
        return calendar_features(dates, "auto" if self.calendar is True else self.calendar)

    # -- fit ------------------------------------------------------------------------------
    def _fit(self, y: np.ndarray, past: np.ndarray | None, future: np.ndarray | None) -> None:
        n, targets = y.shape
        season = self._season(self.history_.index)
        lookback = self._default_lookback(season)
        if self.lookback is None:  # shrink it on short series to keep MIN_WINDOWS windows
            lookback = max(2, min(lookback, n - self.network_horizon - MIN_WINDOWS + 1))
        self.season_length_, self.lookback_ = season, lookback
        self.pipeline_ = TargetPipeline(self.log, season, self.seasonality, self.seasonal_window)
        z = self.pipeline_.fit(y).transform(y, 0)
        self.alpha_ = np.array([ses_alpha(z[:, j]) for j in range(targets)])
        self.past_scaler_ = None if past is None else StandardScaler().fit(past)
        self.future_scaler_ = None if future is None else StandardScaler().fit(future[:n])
        self.design_ = Design(
            lookback,
            self.network_horizon,
            targets,
            0 if past is None else past.shape[1],
            0 if future is None else future.shape[1],
        )
        origins = np.arange(lookback, n - self.network_horizon + 1)
        x, level = self.design_.inputs(
            z,
            self._scaled(self.past_scaler_, past),
            self._scaled(self.future_scaler_, future),
            origins,
            self.alpha_,
        )
        y_windows = self.design_.targets_for(z, origins, level)
        self.networks_ = train_ensemble(
            x,
            y_windows,
            self.levels if self.quantiles else None,
            members=self.ensemble,
            seed=self.seed,
            units=self.units,
            layers=self.layers,
            dropout=self.dropout,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            sample_weight=self._recency_weights(len(origins), season),
            device=self.device,
        )
        self.corrections_ = np.zeros((len(self.interval_pairs), targets))
        if self.calibrate and self.interval_pairs:
            self.corrections_ = self._conformal_corrections()

    @staticmethod
    def _scaled(scaler: StandardScaler | None, values: np.ndarray | None) -> np.ndarray | None:
        return None if scaler is None else scaler.transform(values)

    def _recency_weights(self, count: int, season: int | None) -> np.ndarray | None:
        halflife = self.recency_halflife
        if halflife is None:
            return None
        if halflife == "auto":
            halflife = 2 * season if season else 2 * self.lookback_
        age = np.arange(count)[::-1]
        weights = 0.5 ** (age / float(halflife))
        return weights / weights.mean()

    @property
    def interval_pairs(self) -> list[tuple[float, float]]:
        """``(low, high)`` quantile pairs symmetric around the median: the intervals."""
        return interval_pairs(self.quantiles)

    def _conformal_corrections(self) -> np.ndarray:
        """CQR widening per interval and target, in model scale, from held-out steps.

        A clone without calibration is fitted on the history minus its last ``2 * horizon``
        steps (``horizon`` when the series is too short for that) and forecasts the held-out
        steps from every origin before them whose forecast reaches them; each held-out step
        scores ``max(low - y, y - high)`` on the model scale of this fit.
        """
        history = self.history_
        n = len(history)
        clone = self.clone()
        clone.calibrate = False
        clone.ensemble = self.calibration_ensemble
        enough = clone.min_length() + MIN_WINDOWS - 1
        held_out = next((k * self.horizon for k in (2, 1) if n - k * self.horizon >= enough), 0)
        if not held_out:
            warnings.warn(
                f"series too short to calibrate intervals ({n} steps for horizon "
                f"{self.horizon}); they are the raw quantile outputs, which tend to be too narrow",
                stacklevel=4,
            )
            return np.zeros((len(self.interval_pairs), history.shape[1]))
        cut = n - held_out
        covariates = None if self.covariates_ is None else self.covariates_.iloc[:cut]
        clone.fit(history.iloc[:cut], covariates, self.future_covariates_)
        scores: list[list[np.ndarray]] = [[] for _ in self.interval_pairs]
        for origin in range(max(cut - self.horizon + 1, clone.lookback_), n):
            forecast = clone.predict(
                series=history.iloc[:origin],
                covariates=None if self.covariates_ is None else self.covariates_.iloc[:origin],
            )
            first, end = max(cut, origin), min(n, origin + self.horizon)  # held-out steps
            rows = slice(first - origin, end - origin)
            actual = self.pipeline_.transform(history.iloc[first:end].to_numpy(), first)
            for k, pair in enumerate(self.interval_pairs):
                low, high = (
                    self.pipeline_.transform(
                        forecast[[quantile_column(c, q) for c in history.columns]].to_numpy()[rows],
                        first,
                    )
                    for q in pair
                )
                scores[k].append(np.maximum(low - actual, actual - high))
        corrections = np.zeros((len(self.interval_pairs), history.shape[1]))
        for k, (low, high) in enumerate(self.interval_pairs):
            pooled = np.concatenate(scores[k])
            rank = min(len(pooled), math.ceil((len(pooled) + 1) * (high - low)))
            corrections[k] = np.sort(pooled, axis=0)[rank - 1]
        return corrections

    # -- forecast -------------------------------------------------------------------------
    def _forecast(
        self,
        y: np.ndarray,
        start: int,
        horizon: int,
        past: np.ndarray | None,
        future: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if past is not None and horizon > self.network_horizon:
            raise ValueError(
                f"a {horizon}-step forecast with past covariates needs their future values; "
                f"this forecaster predicts {self.network_horizon} step(s) at once. Use "
                "strategy='direct' with horizon >= the steps you need, or pass the covariates "
                "as future_covariates"
            )
        if len(y) < self.lookback_:
            raise ValueError(
                f"series has {len(y)} observations; the forecaster's lookback is {self.lookback_}"
            )
        z = self.pipeline_.transform(y, start)
        past_s = self._scaled(self.past_scaler_, past)
        future_s = self._scaled(self.future_scaler_, future)
        levels = self._predict_scaled(z, past_s, future_s, horizon)  # (h, T, L) model scale
        levels = self._widen(levels)
        values = self.pipeline_.inverse_transform(levels, start + len(y))
        median = values[:, :, self.levels.index(0.5)]
        if self.quantiles is None:
            return median, None
        keep = [self.levels.index(q) for q in self.quantiles]
        return median, values[:, :, keep]

    def _predict_scaled(
        self, z: np.ndarray, past: np.ndarray | None, future: np.ndarray | None, horizon: int
    ) -> np.ndarray:
        """Model-scale forecasts ``(horizon, targets, levels)``, block after block.

        Each block forecasts ``network_horizon`` steps from the median path so far; the last
        block starts early enough to end exactly at ``horizon`` (so no covariates are needed
        beyond it).
        """
        n, targets = z.shape
        block = self.network_horizon
        outputs = len(self.levels) if self.quantiles else 1
        path = np.concatenate([z, np.zeros((horizon, targets))])
        result = np.zeros((horizon, targets, len(self.levels)))
        done = 0
        while done < horizon:
            origin = n + min(done, horizon - block) if horizon >= block else n
            x, level = self.design_.inputs(path, past, future, np.array([origin]), self.alpha_)
            out = predict_ensemble(self.networks_, x, (block, targets, outputs))[0]
            out = np.sort(out + level[0][:, :, None], axis=-1)
            skip = n + done - origin
            take = min(block - skip, horizon - done)
            result[done : done + take] = out[skip : skip + take]
            path[n + done : n + done + take] = out[skip : skip + take, :, self.levels.index(0.5)]
            done += take
        return result

    def _widen(self, levels: np.ndarray) -> np.ndarray:
        """Apply the conformal corrections: lower quantiles down, upper ones up.

        A negative correction narrows an interval, but never past the median, so the point
        forecast is the same with or without calibration.
        """
        out = levels.copy()
        median = levels[:, :, self.levels.index(0.5)]
        for k, (low, high) in enumerate(self.interval_pairs):
            i, j = self.levels.index(low), self.levels.index(high)
            out[:, :, i] = np.minimum(out[:, :, i] - self.corrections_[k], median)
            out[:, :, j] = np.maximum(out[:, :, j] + self.corrections_[k], median)
        return np.sort(out, axis=-1)

    # -- saving ---------------------------------------------------------------------------
    def save(self, filepath: Any, overwrite: bool = False) -> None:
        """Save settings, fitted transforms, history and weights as one safetensors file."""
        from lstmkit.forecasting.saving import save_forecaster

        save_forecaster(self, filepath, overwrite=overwrite)
