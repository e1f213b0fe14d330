"""Network inputs and targets from model-scale arrays: windows, level normalisation, covariates.

For a forecast origin ``t`` (the first step to forecast) the network sees the ``lookback``
steps ``t - lookback .. t - 1`` of the targets (minus their smoothed level, `InstanceScaler`
``"ewm"``) and of the past covariates; with known-future covariates the window runs on for the
``horizon`` steps ``t .. t + horizon - 1``, where the target and past-covariate channels are 0
and a flag channel is 1, so the network reads the future covariates in order. The targets are
steps ``t .. t + horizon - 1`` minus the same level. Nothing at or after ``t`` other than
known-future covariates enters the inputs of origin ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmkit.data.scalers import InstanceScaler
from lstmkit.data.windows import sliding_windows


def ses_alpha(z: np.ndarray) -> float:
    """Smoothing weight of simple exponential smoothing by least one-step squared error.

    A grid search over ``alpha`` in [0.05, 1] (Hyndman & Athanasopoulos, FPP3 section 8.1),
    started from the first value.
    """
    z = np.asarray(z, dtype=np.float64)
    grid = np.linspace(0.05, 1.0, 20)
    level = np.full(len(grid), z[0])
    sse = np.zeros(len(grid))
    for value in z[1:]:
        sse += (value - level) ** 2
        level += grid * (value - level)
    return float(grid[int(np.argmin(sse))])


@dataclass
class Design:
    """Sizes of the network's input window."""

    lookback: int
    horizon: int
    targets: int
    past: int
    future: int

    @property
    def steps(self) -> int:
        return self.lookback + (self.horizon if self.future else 0)

    @property
    def features(self) -> int:
        return self.targets + self.past + (self.future + 1 if self.future else 0)

    def inputs(
        self,
        z: np.ndarray,
        past: np.ndarray | None,
        future: np.ndarray | None,
        origins: np.ndarray,
        alpha: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Network inputs ``(len(origins), steps, features)`` and each window's level.

        ``z`` (time, targets) and ``past`` need rows up to ``max(origins) - 1``; ``future``
        up to ``max(origins) + horizon - 1``.
        """
        starts = np.asarray(origins) - self.lookback
        windows = sliding_windows(z, self.lookback)[starts]
        scaler = InstanceScaler(loc="ewm", alpha=alpha)
        normalised, (level, _) = scaler.transform(windows)
        parts = [normalised]
        if self.past:
            parts.append(sliding_windows(past, self.lookback)[starts])
        x = np.concatenate(parts, axis=2)
        if self.future:
            pad = np.zeros((len(starts), self.horizon, x.shape[2]))
            x = np.concatenate([x, pad], axis=1)
            known = sliding_windows(future, self.steps)[starts]
            flag = np.zeros((len(starts), self.steps, 1))
            flag[:, self.lookback :] = 1.0
            x = np.concatenate([x, known, flag], axis=2)
        return x, level

    def targets_for(self, z: np.ndarray, origins: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Training targets ``(len(origins), horizon, targets)``: the next steps minus the level."""
        return sliding_windows(z, self.horizon)[np.asarray(origins)] - level
