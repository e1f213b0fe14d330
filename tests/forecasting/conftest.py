"""Small series and tiny training settings shared by the forecasting tests."""

import numpy as np
import pandas as pd
import pytest

# A few epochs of one small network: enough to exercise every code path in well under a second.
FAST = {"epochs": 3, "ensemble": 1, "units": 8, "calibrate": False}


def monthly_series(years: int = 10, seed: int = 0, name: str = "sales") -> pd.Series:
    """Positive monthly series with trend, multiplicative seasonality and noise."""
    rng = np.random.default_rng(seed)
    n = 12 * years
    t = np.arange(n)
    values = (100 + 2.0 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) * rng.lognormal(0, 0.02, n)
    index = pd.date_range("2010-01-01", periods=n, freq="MS")
    return pd.Series(values, index=index, name=name)


@pytest.fixture
def series() -> pd.Series:
    return monthly_series()


@pytest.fixture
def frame() -> pd.DataFrame:
    a, b = monthly_series(seed=1), monthly_series(seed=2)
    return pd.DataFrame({"a": a, "b": b * 0.5 + 10})


@pytest.fixture
def make_series():
    return monthly_series
