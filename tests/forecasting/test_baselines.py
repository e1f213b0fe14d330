"""Baselines in the same API: exact naive forecasts; SARIMA and ETS give the airline figures."""

import numpy as np
import pandas as pd
import pytest

from lstmkit.forecasting import (
    ETSForecaster,
    NaiveForecaster,
    SARIMAForecaster,
    SeasonalNaiveForecaster,
    rmse,
)


def test_naive_and_seasonal_naive_values(series):
    naive = NaiveForecaster(horizon=5).fit(series).predict()
    np.testing.assert_array_equal(naive["sales"], np.full(5, series.iloc[-1]))
    seasonal = SeasonalNaiveForecaster(horizon=15).fit(series).predict()
    expected = np.r_[series.iloc[-12:].to_numpy(), series.iloc[-12:-9].to_numpy()]
    np.testing.assert_array_equal(seasonal["sales"], expected)
    # intervals widen with the horizon (per step for naive, per season for seasonal naive)
    width = naive["sales_q0.9"] - naive["sales_q0.1"]
    assert np.all(np.diff(width) > 0)
    width = seasonal["sales_q0.9"] - seasonal["sales_q0.1"]
    assert width.iloc[11] == pytest.approx(width.iloc[0]) and width.iloc[12] > width.iloc[11]


def test_season_length_is_needed_without_dates():
    with pytest.raises(ValueError, match="pass season_length"):
        SeasonalNaiveForecaster(3).fit(np.arange(30.0))
    forecast = SeasonalNaiveForecaster(3, season_length=4).fit(np.arange(30.0)).predict()
    np.testing.assert_array_equal(forecast["y"], [26.0, 27.0, 28.0])


def test_covariates_are_refused():
    with pytest.raises(ValueError, match="does not use covariates"):
        NaiveForecaster(2).fit(np.arange(10.0), covariates=np.arange(10.0))


@pytest.fixture(scope="module")
def airline():
    datasets = pytest.importorskip("sktime.datasets")
    return datasets.load_airline()


def test_statsmodels_baselines_reproduce_the_airline_figures(airline):
    pytest.importorskip("statsmodels")
    train, test = airline.iloc[:-12], airline.iloc[-12:].to_numpy()
    target = airline.name
    results = {
        "seasonal naive": SeasonalNaiveForecaster(12).fit(train).predict()[target],
        "sarima": SARIMAForecaster(12).fit(train).predict()[target],
        "ets": ETSForecaster(12, simulations=200).fit(train).predict()[target],
    }
    scores = {name: round(rmse(test, forecast), 2) for name, forecast in results.items()}
    assert scores == {"seasonal naive": 50.71, "sarima": 18.59, "ets": 15.81}


def test_statsmodels_baselines_give_ordered_quantiles(airline):
    pytest.importorskip("statsmodels")
    train = airline.iloc[:-12]
    for forecaster in (SARIMAForecaster(6), ETSForecaster(6, simulations=200)):
        forecast = forecaster.fit(train).predict()
        columns = [c for c in forecast.columns if "_q" in c]
        assert np.all(forecast[columns[0]] <= forecast[columns[1]])
        # from another history (a backtest origin) too
        other = forecaster.predict(series=train.iloc[:-12])
        assert isinstance(other.index, pd.DatetimeIndex) and len(other) == 6
