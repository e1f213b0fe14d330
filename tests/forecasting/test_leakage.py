"""No future leakage: what is forecast from an origin never depends on values at or after it.

Each test perturbs the targets from some time on and checks that inputs and forecasts for
earlier origins are bit-for-bit unchanged; any use of future targets in the windows, in the
fitted transforms or in the backtest's fits would change them.
"""

import numpy as np
import pandas as pd

from conftest import FAST
from lstmkit.forecasting import Forecaster, backtest
from lstmkit.forecasting.design import Design


def test_network_inputs_never_contain_the_targets():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 2))
    design = Design(lookback=8, horizon=4, targets=2, past=0, future=0)
    origins = np.arange(8, 57)
    x, level = design.inputs(z, None, None, origins, np.array([0.3, 0.7]))
    y = design.targets_for(z, origins, level)
    for i, t in enumerate(origins):
        poisoned = z.copy()
        poisoned[t:] = np.nan  # everything from the origin on
        x_t, level_t = design.inputs(poisoned, None, None, np.array([t]), np.array([0.3, 0.7]))
        np.testing.assert_array_equal(x_t[0], x[i])
        np.testing.assert_array_equal(level_t[0], level[i])
        # the targets are exactly the steps t .. t+3, relative to the window's level
        np.testing.assert_allclose(y[i] + level[i], z[t : t + 4], rtol=0, atol=1e-15)


def test_future_covariates_enter_but_targets_do_not():
    rng = np.random.default_rng(1)
    z, future = rng.normal(size=(40, 1)), rng.normal(size=(40, 2))
    design = Design(lookback=6, horizon=3, targets=1, past=0, future=2)
    x, _ = design.inputs(z, None, future, np.array([20]), np.array([0.5]))
    assert x.shape == (1, 9, 1 + 2 + 1)
    np.testing.assert_array_equal(x[0, 6:, 0], 0.0)  # target channel blank over the horizon
    np.testing.assert_array_equal(x[0, :, 1:3], future[14:23])  # covariates known throughout
    np.testing.assert_array_equal(x[0, :, 3], [0] * 6 + [1] * 3)


def test_forecast_from_an_origin_ignores_later_values(series):
    forecaster = Forecaster(horizon=6, **FAST).fit(series.iloc[:90])
    base = forecaster.predict(series=series.iloc[:100])
    changed = series.copy()
    changed.iloc[100:] *= 3.0
    np.testing.assert_array_equal(forecaster.predict(series=changed.iloc[:100]), base)


def test_backtest_forecasts_ignore_values_after_their_origin(series):
    """Fitted once before `start`: perturbing later values leaves earlier origins unchanged."""
    start, stride = 84, 6
    result = backtest(Forecaster(horizon=6, **FAST), series, start=start, stride=stride)
    changed = series.copy()
    changed.iloc[102:] = changed.iloc[102:] * 2.0 + 50.0
    other = backtest(Forecaster(horizon=6, **FAST), changed, start=start, stride=stride)
    origins = result.forecasts["origin"]
    early = origins <= series.index[96]  # origins 84, 90, 96: inputs end at 95 at the latest
    late = origins >= series.index[102]
    cols = ["forecast", "q0.1", "q0.9"]
    pd.testing.assert_frame_equal(
        result.forecasts.loc[early, cols], other.forecasts.loc[early, cols]
    )
    assert not np.allclose(result.forecasts.loc[late, cols], other.forecasts.loc[late, cols])


def test_backtest_with_retrain_fits_only_on_the_past(series):
    def run(data):
        forecaster = Forecaster(horizon=3, **FAST)
        return backtest(forecaster, data, start=96, stride=12, retrain=True).forecasts

    result = run(series)
    changed = series.copy()
    changed.iloc[100:] *= 1.5  # after the first origin (96) and its horizon
    other = run(changed)
    first = result["origin"] == series.index[96]
    cols = ["forecast", "q0.1", "q0.9"]
    pd.testing.assert_frame_equal(result.loc[first, cols], other.loc[first, cols])
    assert not np.allclose(result.loc[~first, cols], other.loc[~first, cols])
