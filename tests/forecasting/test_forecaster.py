"""Forecaster: output layout, ordered quantiles, targets, covariates, strategies, determinism."""

import numpy as np
import pandas as pd
import pytest

from conftest import FAST
from lstmkit.forecasting import Forecaster, rmse
from lstmkit.forecasting.base import quantile_column


def assert_ordered(forecast: pd.DataFrame, target: str, quantiles) -> None:
    columns = [quantile_column(target, q) for q in quantiles]
    low, high = forecast[columns[0]], forecast[columns[-1]]
    values = forecast[columns].to_numpy()
    assert np.all(np.diff(values, axis=1) >= 0), "quantiles cross"
    assert np.all(low <= forecast[target]) and np.all(forecast[target] <= high)


def test_forecast_layout_and_dates(series):
    forecaster = Forecaster(horizon=6, **FAST).fit(series.iloc[:-6])
    forecast = forecaster.predict()
    assert list(forecast.columns) == ["sales", "sales_q0.1", "sales_q0.9"]
    pd.testing.assert_index_equal(forecast.index, series.index[-6:], check_names=False)
    assert forecaster.lookback_ == 24  # two seasons of monthly data
    assert forecaster.pipeline_.describe() == [{"log": True, "seasonal": True}]
    assert_ordered(forecast, "sales", (0.1, 0.9))
    assert len(forecaster.predict(horizon=3)) == 3


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_quantiles_are_ordered_for_every_step(series, strategy):
    quantiles = (0.05, 0.25, 0.5, 0.75, 0.95)
    forecaster = Forecaster(
        horizon=4, quantiles=quantiles, strategy=strategy, **{**FAST, "calibrate": True}
    ).fit(series)
    forecast = forecaster.predict(horizon=10)  # longer than the horizon: blocks / recursion
    assert len(forecast) == 10
    assert_ordered(forecast, "sales", quantiles)
    # the point forecast is the median when 0.5 is requested
    np.testing.assert_array_equal(forecast["sales"], forecast["sales_q0.5"])


def test_a_short_training_run_beats_naive_on_a_seasonal_series(series):
    train, test = series.iloc[:-12], series.iloc[-12:]
    forecast = Forecaster(horizon=12, epochs=30, ensemble=1, calibrate=False).fit(train).predict()
    naive = np.full(12, train.iloc[-1])
    assert rmse(test, forecast["sales"]) < 0.5 * rmse(test, naive)


def test_multivariate_targets(frame):
    forecaster = Forecaster(horizon=5, **FAST).fit(frame)
    forecast = forecaster.predict()
    assert list(forecast.columns) == ["a", "a_q0.1", "a_q0.9", "b", "b_q0.1", "b_q0.9"]
    assert forecaster.design_.targets == 2
    assert len(forecaster.pipeline_.describe()) == 2
    for target in ("a", "b"):
        assert_ordered(forecast, target, (0.1, 0.9))
    # each target keeps its own scale (the last year of a is 320-430, of b 170-225)
    for target in ("a", "b"):
        last_year = frame[target].iloc[-12:]
        assert forecast[target].between(0.8 * last_year.min(), 1.25 * last_year.max()).all()


def test_numpy_input():
    y = np.sin(np.arange(80) / 4) + 5
    forecast = Forecaster(12, 3, **FAST).fit(y).predict()
    assert list(forecast.index) == [80, 81, 82]
    assert list(forecast.columns) == ["y", "y_q0.1", "y_q0.9"]


def test_past_and_future_covariates(series):
    index = series.index
    past = pd.DataFrame({"visits": np.arange(len(index), dtype=float)}, index=index)
    future_index = pd.date_range(index[0], periods=len(index) + 6, freq="MS")
    promo = pd.DataFrame({"promo": (np.arange(len(future_index)) % 5 == 0) * 1.0}, future_index)
    forecaster = Forecaster(horizon=6, calendar=True, **FAST)
    forecaster.fit(series, covariates=past, future_covariates=promo)
    design = forecaster.design_
    assert (design.past, design.future) == (1, 3)  # promo + month sin/cos
    assert design.steps == design.lookback + 6
    forecast = forecaster.predict()
    assert len(forecast) == 6
    # changing the future promo changes the forecast: the network reads it
    other = promo.copy()
    other.iloc[-6:] = 5.0
    assert not np.allclose(forecaster.predict(future_covariates=other)["sales"], forecast["sales"])
    with pytest.raises(ValueError, match="no row for 2020-07-01.* and the horizon"):
        forecaster.predict(horizon=7)  # the promo is known 6 months ahead only


def test_past_covariates_are_not_extrapolated(series):
    past = pd.DataFrame({"visits": np.arange(len(series), dtype=float)}, index=series.index)
    forecaster = Forecaster(horizon=3, **FAST).fit(series, covariates=past)
    assert len(forecaster.predict()) == 3
    with pytest.raises(ValueError, match="past covariates needs their future values"):
        forecaster.predict(horizon=7)


def test_same_seed_same_forecast_and_ensembles_average(series):
    one = Forecaster(horizon=3, **FAST).fit(series).predict()
    again = Forecaster(horizon=3, **FAST).fit(series).predict()
    pd.testing.assert_frame_equal(one, again)
    other_seed = Forecaster(horizon=3, **{**FAST, "seed": 1}).fit(series).predict()
    assert not np.allclose(one.to_numpy(), other_seed.to_numpy())
    assert len(Forecaster(horizon=3, **{**FAST, "ensemble": 2}).fit(series).networks_) == 2


def test_calibration_widens_too_narrow_intervals(series):
    raw = Forecaster(horizon=6, **FAST).fit(series)
    calibrated = Forecaster(horizon=6, **{**FAST, "calibrate": True}).fit(series)
    assert calibrated.corrections_.shape == (1, 1)
    width = lambda f: (f["sales_q0.9"] - f["sales_q0.1"]).mean()  # noqa: E731
    correction = calibrated.corrections_[0, 0]
    assert (width(calibrated.predict()) > width(raw.predict())) == (correction > 0)
    # the point forecast does not move
    np.testing.assert_allclose(calibrated.predict()["sales"], raw.predict()["sales"])


def test_point_forecasts_without_quantiles(series):
    forecast = Forecaster(horizon=4, quantiles=None, **FAST).fit(series).predict()
    assert list(forecast.columns) == ["sales"]


def test_clone_has_the_same_settings_and_no_fit(series):
    forecaster = Forecaster(
        12, 4, units=16, seed=7, **{k: v for k, v in FAST.items() if k != "units"}
    )
    forecaster.fit(series)
    clone = forecaster.clone()
    assert clone.get_config() == forecaster.get_config()
    assert not clone.is_fitted
