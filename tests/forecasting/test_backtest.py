"""Backtests (origins, metrics, options) and PNG plots."""

import numpy as np
import pandas as pd
import pytest

from conftest import FAST
from lstmkit.forecasting import Forecaster, SeasonalNaiveForecaster, backtest, mase


def test_origins_rows_and_metrics(series):
    result = SeasonalNaiveForecaster(horizon=6).backtest(series, start=-24, stride=4)
    origins = result.forecasts["origin"].unique()
    assert list(origins) == list(series.index[[96, 100, 104, 108, 112]])
    assert len(result.forecasts) == 5 * 6
    assert list(result.forecasts.columns) == [
        "origin",
        "step",
        "time",
        "target",
        "actual",
        "forecast",
        "q0.1",
        "q0.9",
    ]
    assert set(result.metrics) == {"mae", "rmse", "mape", "smape", "mase", "pinball", "coverage_80"}
    # MASE against the seasonal naive scale of the data before the first origin
    f = result.forecasts
    assert result.metrics["mase"] == pytest.approx(
        mase(f["actual"], f["forecast"], series.iloc[:96], 12)
    )
    # every forecast is the value one season before its time: seasonal naive from each origin
    lagged = series.shift(12).loc[f["time"]].to_numpy()
    np.testing.assert_allclose(f["forecast"].to_numpy(), lagged)
    assert "Backtest over 5 origins" in str(result)


def test_start_as_fraction_date_or_position(series):
    forecaster = SeasonalNaiveForecaster(horizon=3)
    by_date = forecaster.backtest(series, start="2019-01-01", stride=12)
    by_position = forecaster.backtest(series, start=108, stride=12)
    by_fraction = forecaster.backtest(series, start=0.9, stride=12)
    pd.testing.assert_frame_equal(by_date.forecasts, by_position.forecasts)
    pd.testing.assert_frame_equal(by_date.forecasts, by_fraction.forecasts)
    with pytest.raises(ValueError, match="no origin from 119 leaves a full horizon of 3"):
        forecaster.backtest(series, start=-1)
    with pytest.raises(ValueError, match="start date 2031-01-01"):
        forecaster.backtest(series, start="2031-01-01")


def test_backtest_leaves_the_forecaster_alone(series):
    forecaster = Forecaster(horizon=3, **FAST).fit(series)
    before = forecaster.predict()
    result = backtest(forecaster, series, start=100, stride=5)
    pd.testing.assert_frame_equal(forecaster.predict(), before)
    assert result.forecasts["origin"].nunique() == 4
    multi = Forecaster(horizon=2, **FAST).backtest(
        pd.DataFrame({"a": series, "b": series * 2}), start=110, stride=3
    )
    assert list(multi.per_target.index) == ["a", "b"]


def test_plot_writes_a_png(series, tmp_path):
    forecaster = Forecaster(horizon=6, **FAST).fit(series.iloc[:-6])
    path = forecaster.plot(tmp_path / "plots" / "f.png", actual=series.iloc[-6:])
    data = (tmp_path / "plots" / "f.png").read_bytes()
    assert path.endswith("f.png") and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
