"""Airline passengers: the LSTM Forecaster against naive, seasonal naive, SARIMA and Holt-Winters.

Reproduces the figures of the forecasting section of bench/RESULTS.md:

1. Hold out the last 12 months, then the last 36; fit every model on the rest only and score
   the held-out months (RMSE, MAE, MAPE, sMAPE, MASE, coverage of the 80% interval).
2. A rolling-origin backtest of 12-month forecasts from 1957-01 on (refitted at each origin),
   for the coverage of the 80% intervals.
3. The time to fit and forecast a 10-year monthly series (the first 120 months).

The LSTM uses the Forecaster's defaults; nothing is chosen by looking at the held-out months.

    python examples/airline_forecast.py [--seeds 5] [--quick] [--out runs/airline]

Needs ``pip install 'lstmkit[datasets,plot,forecast]'`` (sktime, matplotlib, statsmodels).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sktime.datasets import load_airline

from lstmkit.forecasting import (
    ETSForecaster,
    Forecaster,
    NaiveForecaster,
    SARIMAForecaster,
    SeasonalNaiveForecaster,
    backtest,
)
from lstmkit.forecasting.metrics import coverage, point_metrics

BASELINES = {
    "naive": lambda h: NaiveForecaster(h),
    "seasonal naive": lambda h: SeasonalNaiveForecaster(h),
    "SARIMA (0,1,1)(0,1,1)12, log": lambda h: SARIMAForecaster(h),
    "Holt-Winters (add. trend, mul. season)": lambda h: ETSForecaster(h),
}


def load() -> pd.Series:
    series = load_airline()
    series.index = series.index.to_timestamp()
    return series.rename("passengers")


def score(forecaster, train: pd.Series, test: pd.Series) -> dict[str, float]:
    start = time.perf_counter()
    forecast = forecaster.fit(train).predict()
    seconds = time.perf_counter() - start
    row = point_metrics(test, forecast["passengers"], train, m=12)
    row["coverage_80"] = coverage(test, forecast["passengers_q0.1"], forecast["passengers_q0.9"])
    row["seconds"] = seconds
    return row, forecast


def holdout_table(series: pd.Series, horizon: int, seeds: int, out: Path) -> pd.DataFrame:
    train, test = series.iloc[:-horizon], series.iloc[-horizon:]
    rows = {}
    for name, make in BASELINES.items():
        rows[name], _ = score(make(horizon), train, test)
    lstm_rows = []
    for seed in range(seeds):
        forecaster = Forecaster(horizon=horizon, seed=100 * seed)
        row, forecast = score(forecaster, train, test)
        lstm_rows.append(row)
        if seed == 0:
            forecaster.plot(
                out / f"holdout_{horizon}.png",
                forecast=forecast,
                actual=test,
                history=48,
                title=f"LSTM Forecaster, last {horizon} months held out",
            )
            chosen = forecaster.pipeline_.describe()[0]
            print(
                f"  LSTM choices: log={chosen['log']}, seasonal adjustment={chosen['seasonal']}, "
                f"season={forecaster.season_length_}, lookback={forecaster.lookback_}, "
                f"level alpha={forecaster.alpha_[0]:.2f}"
            )
    lstm = pd.DataFrame(lstm_rows)
    label = "LSTM Forecaster" + (f" (mean of {seeds} seeds)" if seeds > 1 else "")
    rows[label] = lstm.mean().to_dict()
    if seeds > 1:
        rows["  LSTM seed-to-seed std"] = lstm.std().to_dict()
    return pd.DataFrame(rows).T


def backtest_table(series: pd.Series) -> pd.DataFrame:
    rows = {}
    models = {**BASELINES, "LSTM Forecaster": lambda h: Forecaster(horizon=h)}
    for name, make in models.items():
        if name in ("naive",):
            continue
        start = time.perf_counter()
        result = backtest(make(12), series, start="1957-01-01", stride=3, retrain=True)
        rows[name] = {**result.metrics, "seconds": time.perf_counter() - start}
        rows[name]["origins"] = result.forecasts["origin"].nunique()
    return pd.DataFrame(rows).T


def ten_year_timing(series: pd.Series, repeats: int = 3) -> list[tuple[float, float]]:
    """Wall and CPU seconds of fit + predict on the first 120 months, default settings."""
    times = []
    for seed in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        Forecaster(horizon=12, seed=seed).fit(series.iloc[:120]).predict()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="LSTM seeds to average (1)")
    parser.add_argument("--quick", action="store_true", help="skip the backtest and timing")
    parser.add_argument("--out", default="runs/airline", help="folder for the plots")
    args = parser.parse_args()
    out = Path(args.out)
    series = load()
    print(f"airline passengers: {len(series)} months, torch threads {torch.get_num_threads()}")
    fmt = {"float_format": lambda v: f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"}
    for horizon in (12, 36):
        print(f"\n== last {horizon} months held out ==")
        print(holdout_table(series, horizon, args.seeds, out).to_string(**fmt))
    if args.quick:
        return
    print("\n== rolling-origin backtest: 12-month forecasts from 1957-01, every 3 months ==")
    print(backtest_table(series).to_string(**fmt))
    times = np.array(ten_year_timing(series))
    print(
        "\n== fit + forecast of a 10-year monthly series (120 points), default settings ==\n"
        f"wall seconds {np.round(times[:, 0], 1).tolist()}, CPU seconds "
        f"{np.round(times[:, 1], 1).tolist()}"
    )
    print(f"\nplots in {out}/")


if __name__ == "__main__":
    main()
