"""Feature scalers that invert exactly: standard, min-max, robust, and per-window (RevIN-style).

The global scalers follow scikit-learn's ``fit`` / ``transform`` / ``inverse_transform``
contract on ``(samples, features)`` arrays (a 1-D array is one feature), computing statistics
over axis 0 in float64. Each is an affine map ``x -> (x - loc) / scale``; a feature whose scale
is 0 gets scale 1, so constant features map to 0 and come back unchanged. Their state is a
plain dict (`get_config` / `from_config`), so it can be stored as JSON.

`InstanceScaler` normalises each window by its own statistics and undoes that on the model's
output, as RevIN does (Kim et al. 2022, "Reversible Instance Normalization for Accurate
Time-Series Forecasting against Distribution Shift", ICLR), without the learnable affine part.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _as_float(x: Any, name: str = "x") -> np.ndarray:
    array = np.asarray(x)
    if array.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric; got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


class _AffineScaler:
    """``x -> (x - loc_) / scale_`` per feature; subclasses compute ``loc_`` and ``scale_``."""

    loc_: np.ndarray | None = None
    scale_: np.ndarray | None = None

    def _statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def fit(self, x: Any) -> _AffineScaler:
        """Learn the statistics of ``x`` (samples on axis 0). NaN or infinity is an error."""
        x = _as_float(x)
        if x.ndim == 0 or len(x) == 0:
            raise ValueError(f"{type(self).__name__}.fit needs at least one sample")
        if not np.isfinite(x).all():
            first = int(np.argwhere(~np.isfinite(x))[0][0])
            raise ValueError(f"{type(self).__name__}.fit got NaN or infinity at sample {first}")
        loc, scale = self._statistics(x)
        scale = np.where(scale > 0, scale, 1.0)
        self.loc_, self.scale_ = loc, scale
        return self

    def _check_fitted(self) -> None:
        if self.loc_ is None:
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet; call fit first")

    def transform(self, x: Any) -> np.ndarray:
        """Scaled copy of ``x`` (float64)."""
        self._check_fitted()
        return (_as_float(x) - self.loc_) / self.scale_

    def inverse_transform(self, x: Any) -> np.ndarray:
        """Undo `transform`: ``x * scale_ + loc_``."""
        self._check_fitted()
        return _as_float(x) * self.scale_ + self.loc_

    def fit_transform(self, x: Any) -> np.ndarray:
        return self.fit(x).transform(x)

    def get_config(self) -> dict[str, Any]:
        """Class name and fitted statistics, JSON-serialisable."""
        self._check_fitted()
        return {
            "class_name": type(self).__name__,
            "loc": np.asarray(self.loc_).tolist(),
            "scale": np.asarray(self.scale_).tolist(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _AffineScaler:
        scaler = cls.__new__(cls)
        scaler.loc_ = np.asarray(config["loc"], dtype=np.float64)
        scaler.scale_ = np.asarray(config["scale"], dtype=np.float64)
        return scaler


class StandardScaler(_AffineScaler):
    """Zero mean and unit (population) standard deviation per feature."""

    def _statistics(self, x):
        return x.mean(axis=0), x.std(axis=0)


class MinMaxScaler(_AffineScaler):
    """Maps each feature's training range onto ``feature_range`` (default ``(0, 1)``)."""

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)):
        low, high = (float(v) for v in feature_range)
        if not low < high:
            raise ValueError(
                f"feature_range must be (low, high) with low < high; got {feature_range}"
            )
        self.feature_range = (low, high)

    def _statistics(self, x):
        low, high = self.feature_range
        data_min, data_max = x.min(axis=0), x.max(axis=0)
        scale = (data_max - data_min) / (high - low)
        safe = np.where(scale > 0, scale, 1.0)
        return data_min - low * safe, scale


class RobustScaler(_AffineScaler):
    """Median and interquartile range per feature: robust to outliers (``quantile_range`` %)."""

    def __init__(self, quantile_range: tuple[float, float] = (25.0, 75.0)):
        low, high = (float(v) for v in quantile_range)
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(
                f"quantile_range must satisfy 0 <= low < high <= 100; got {quantile_range}"
            )
        self.quantile_range = (low, high)

    def _statistics(self, x):
        q_low, q_high = np.percentile(x, self.quantile_range, axis=0)
        return np.median(x, axis=0), q_high - q_low


SCALERS: dict[str, type[_AffineScaler]] = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
}


def get(identifier: str | _AffineScaler) -> _AffineScaler:
    """A scaler by name (``"standard"``, ``"minmax"``, ``"robust"``) or the instance itself."""
    if isinstance(identifier, _AffineScaler):
        return identifier
    if not isinstance(identifier, str) or identifier not in SCALERS:
        raise ValueError(f"Unknown scaler {identifier!r}; expected one of {sorted(SCALERS)}")
    return SCALERS[identifier]()


def deserialize(config: dict[str, Any]) -> _AffineScaler:
    """Rebuild a fitted scaler from `get_config`'s dict."""
    classes = {cls.__name__: cls for cls in SCALERS.values()}
    name = config.get("class_name")
    if name not in classes:
        raise ValueError(f"Unknown scaler class {name!r}; expected one of {sorted(classes)}")
    return classes[name].from_config(config)


class InstanceScaler:
    """Per-window normalisation (RevIN-style, Kim et al. 2022, without the learnable affine).

    `transform` takes windows ``(windows, steps, features)`` and returns them shifted by a
    per-window location -- their ``"mean"`` over the steps, their ``"last"`` value (the
    NLinear normalisation of Zeng et al. 2023), or their exponentially weighted mean ``"ewm"``
    (the smoothed level at the window's end, as ES-RNN normalises by its exponential-smoothing
    level; Smyl 2020) -- and, with ``scale=True``, divided by their standard deviation plus
    ``eps``. It returns the statistics too, and `inverse_transform` applies them back to any
    array of the same windows (e.g. the model's horizon outputs).

    Args:
        loc: ``"mean"``, ``"last"`` or ``"ewm"``.
        scale: also divide by each window's standard deviation.
        eps: added to the standard deviation so flat windows stay finite.
        alpha: smoothing weight of ``"ewm"`` in (0, 1], one value or one per feature; step
            ``k`` before the window's end weighs ``(1 - alpha) ** k``.
    """

    def __init__(self, loc: str = "mean", scale: bool = False, eps: float = 1e-5, alpha: Any = 0.5):
        if loc not in ("mean", "last", "ewm"):
            raise ValueError(f"loc must be 'mean', 'last' or 'ewm'; got {loc!r}")
        alpha_array = np.asarray(alpha, dtype=np.float64)
        if np.any(alpha_array <= 0) or np.any(alpha_array > 1):
            raise ValueError(f"alpha must lie in (0, 1]; got {alpha!r}")
        self.loc, self.scale, self.eps, self.alpha = loc, bool(scale), float(eps), alpha_array

    def _ewm(self, x: np.ndarray) -> np.ndarray:
        age = np.arange(x.shape[1])[::-1].reshape(-1, 1)  # steps before the window's end
        weights = (1.0 - np.broadcast_to(self.alpha, (x.shape[2],))) ** age  # (steps, features)
        weights = weights / weights.sum(axis=0)
        return np.einsum("wsf,sf->wf", x, weights)[:, None, :]

    def statistics(self, windows: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per-window location and scale, each of shape ``(windows, 1, features)``."""
        x = _as_float(windows, "windows")
        if x.ndim != 3:
            raise ValueError(f"windows must have shape (windows, steps, features); got {x.shape}")
        if self.loc == "mean":
            loc = x.mean(axis=1, keepdims=True)
        elif self.loc == "last":
            loc = x[:, -1:, :]
        else:
            loc = self._ewm(x)
        if self.scale:
            scale = x.std(axis=1, keepdims=True) + self.eps
        else:
            scale = np.ones_like(loc)
        return loc, scale

    def transform(self, windows: Any) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Normalised windows and the ``(loc, scale)`` that `inverse_transform` needs."""
        loc, scale = self.statistics(windows)
        return (_as_float(windows) - loc) / scale, (loc, scale)

    def inverse_transform(self, y: Any, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Undo the normalisation on ``y`` of shape ``(windows, steps, features)``."""
        loc, scale = stats
        return _as_float(y) * scale + loc
