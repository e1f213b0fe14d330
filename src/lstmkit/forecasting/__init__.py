"""Forecasting with LSTMs: `Forecaster`, baselines in the same API, backtests, metrics, plots.

```python
from lstmkit.forecasting import Forecaster

forecaster = Forecaster(horizon=12).fit(series)   # pandas Series with a DatetimeIndex
forecast = forecaster.predict()                  # DataFrame: point forecast and quantiles
result = forecaster.backtest(series, start=-36, stride=3)
forecaster.plot("forecast.png")
forecaster.save("airline.lstmkit")
```
"""

from lstmkit.forecasting.backtest import BacktestResult, backtest
from lstmkit.forecasting.base import BaseForecaster
from lstmkit.forecasting.baselines import (
    ETSForecaster,
    NaiveForecaster,
    SARIMAForecaster,
    SeasonalNaiveForecaster,
)
from lstmkit.forecasting.features import calendar_features
from lstmkit.forecasting.forecaster import Forecaster
from lstmkit.forecasting.metrics import coverage, mae, mape, mase, pinball_loss, rmse, smape
from lstmkit.forecasting.saving import load_forecaster

__all__ = [
    "BacktestResult",
    "BaseForecaster",
    "ETSForecaster",
    "Forecaster",
    "NaiveForecaster",
    "SARIMAForecaster",
    "SeasonalNaiveForecaster",
    "backtest",
    "calendar_features",
    "coverage",
    "load_forecaster",
    "mae",
    "mape",
    "mase",
    "pinball_loss",
    "rmse",
    "smape",
]
