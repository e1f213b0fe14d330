"""PNG plots of a forecast: recent history, point forecast, prediction intervals, actuals.

Uses matplotlib's non-interactive Agg backend (``pip install lstmkit[plot]``), so it works on
machines without a display. One panel per target column.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lstmkit.forecasting.base import interval_pairs, quantile_column


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install lstmkit[plot]") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_forecast(
    path: str | os.PathLike,
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    quantiles: Sequence[float] | None,
    actual: pd.DataFrame | None = None,
    last: int | None = None,
    title: str = "forecast",
) -> str:
    """Draw ``history`` (its ``last`` steps), ``forecast`` with intervals, and ``actual``.

    ``forecast`` has the columns `BaseForecaster.predict` returns. Returns the path written.
    """
    plt = _pyplot()
    targets = list(history.columns)
    fig, axes = plt.subplots(len(targets), 1, figsize=(9, 3.2 * len(targets)), squeeze=False)
    shown = history if last is None else history.iloc[-last:]
    for ax, target in zip(axes[:, 0], targets, strict=True):
        ax.plot(shown.index, shown[target], color="black", lw=1.2, label="history")
        for k, (low, high) in enumerate(interval_pairs(quantiles)):
            ax.fill_between(
                forecast.index,
                forecast[quantile_column(target, low)],
                forecast[quantile_column(target, high)],
                color="tab:blue",
                alpha=0.15 + 0.15 * k,
                lw=0,
                label=f"{round(100 * (high - low))}% interval",
            )
        # start the forecast line at the last observation, so the two read as one curve
        line = pd.concat([history[target].iloc[-1:], forecast[target]])
        ax.plot(line.index, line.to_numpy(), color="tab:blue", lw=1.6, label="forecast")
        if actual is not None and target in actual.columns:
            ax.plot(actual.index, actual[target], color="tab:red", lw=1.2, ls="--", label="actual")
        ax.set_ylabel(target)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[0, 0].set_title(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return str(out)
