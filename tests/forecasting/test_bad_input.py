"""Bad input fails early with a ValueError that names what was expected."""

import numpy as np
import pandas as pd
import pytest

from conftest import FAST
from lstmkit.forecasting import Forecaster, SeasonalNaiveForecaster
from lstmkit.forecasting.series import select_columns


def test_series_too_short_for_lookback_and_horizon():
    with pytest.raises(ValueError, match=r"series has 20 observations; lookback=18 \+ horizon=6"):
        Forecaster(18, 6, **FAST).fit(np.arange(20.0))


def test_nan_in_the_target_names_position_and_date(series):
    broken = series.copy()
    broken.iloc[37] = np.nan
    broken.iloc[50] = np.nan
    with pytest.raises(ValueError, match=r"position 37 \(2013-02-01T00:00:00\) in column 'sales'"):
        Forecaster(horizon=3, **FAST).fit(broken)
    with pytest.raises(ValueError, match="position 37"):
        SeasonalNaiveForecaster(3).fit(broken)


def test_non_monotonic_dates_name_the_offending_date(series):
    index = series.index.tolist()
    index[40], index[41] = index[41], index[40]
    with pytest.raises(
        ValueError, match=r"strictly increasing; the date at position 41 \(2013-05-01"
    ):
        Forecaster(horizon=3, **FAST).fit(
            pd.Series(series.to_numpy(), index=pd.DatetimeIndex(index))
        )
    duplicated = series.index.tolist()
    duplicated[10] = duplicated[9]
    with pytest.raises(ValueError, match="position 10"):
        Forecaster(horizon=3, **FAST).fit(
            pd.Series(series.to_numpy(), index=pd.DatetimeIndex(duplicated))
        )


def test_irregular_dates(series):
    with pytest.raises(ValueError, match="not regularly spaced"):
        Forecaster(horizon=3, **FAST).fit(series.drop(series.index[30]))


def test_unknown_column(frame):
    with pytest.raises(
        ValueError, match=r"unknown column\(s\) \['c'\]; available columns are \['a', 'b'\]"
    ):
        select_columns(frame, ["a", "c"], "--target")


def test_covariates_must_cover_the_series(series):
    covariates = pd.DataFrame({"x": 1.0}, index=series.index[5:])
    with pytest.raises(ValueError, match="covariates has no row for 2010-01-01"):
        Forecaster(horizon=3, **FAST).fit(series, covariates=covariates)
    with pytest.raises(ValueError, match="covariates has 50 rows; expected at least 120"):
        Forecaster(horizon=3, **FAST).fit(series, covariates=np.ones(50))


def test_non_numeric_and_bad_shapes():
    with pytest.raises(ValueError, match="must be numeric"):
        Forecaster(horizon=2).fit(pd.DataFrame({"a": ["x"] * 30}))
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        Forecaster(horizon=2).fit(np.zeros((10, 2, 2)))


def test_bad_settings():
    with pytest.raises(ValueError, match="quantiles must be distinct numbers in"):
        Forecaster(quantiles=(0.1, 1.2))
    with pytest.raises(ValueError, match="strategy must be one of"):
        Forecaster(strategy="multi")
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        Forecaster(horizon=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        Forecaster().predict()


def test_predict_from_another_series_checks_it(series):
    forecaster = Forecaster(horizon=3, **FAST).fit(series)
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['sales'\]"):
        forecaster.predict(series=series.rename("other"))
    with pytest.raises(ValueError, match="lookback is 24"):
        forecaster.predict(series=series.iloc[:10])
    with pytest.raises(ValueError, match="log-transformed in fit .* expected positive"):
        forecaster.predict(series=-series)
