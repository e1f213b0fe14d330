"""One-file save/load: identical forecasts, atomic and explicit overwrites, clear errors."""

import numpy as np
import pandas as pd
import pytest

from conftest import FAST
from lstmkit.forecasting import Forecaster, load_forecaster
from lstmkit.models import Sequential


def test_reloaded_forecaster_predicts_identically(series, tmp_path):
    forecaster = Forecaster(horizon=6, **{**FAST, "calibrate": True, "ensemble": 2}).fit(series)
    path = tmp_path / "sales.lstmkit"
    forecaster.save(path)
    loaded = load_forecaster(path)
    pd.testing.assert_frame_equal(loaded.predict(), forecaster.predict(), check_exact=True)
    pd.testing.assert_frame_equal(
        loaded.predict(horizon=9, series=series.iloc[:100]),
        forecaster.predict(horizon=9, series=series.iloc[:100]),
        check_exact=True,
    )
    assert loaded.get_config() == forecaster.get_config()
    np.testing.assert_array_equal(loaded.corrections_, forecaster.corrections_)
    assert len(list(tmp_path.iterdir())) == 1  # no temporary file left behind


def test_with_covariates_calendar_and_numpy_index(tmp_path):
    y = np.sin(np.arange(100) / 3) + 2
    cov = np.cos(np.arange(100) / 7)
    forecaster = Forecaster(12, 3, **FAST).fit(y, covariates=cov)
    forecaster.save(tmp_path / "a.lstmkit")
    loaded = load_forecaster(tmp_path / "a.lstmkit")
    pd.testing.assert_frame_equal(loaded.predict(), forecaster.predict(), check_exact=True)


def test_calendar_and_future_covariates_survive(series, tmp_path):
    future = pd.DataFrame(
        {"promo": np.arange(len(series) + 4) % 3 == 0},
        index=pd.date_range(series.index[0], periods=len(series) + 4, freq="MS"),
    ).astype(float)
    forecaster = Forecaster(horizon=4, calendar=["month"], **FAST)
    forecaster.fit(series, future_covariates=future)
    forecaster.save(tmp_path / "f.lstmkit")
    loaded = load_forecaster(tmp_path / "f.lstmkit")
    pd.testing.assert_frame_equal(loaded.predict(), forecaster.predict(), check_exact=True)


def test_overwrite_is_explicit(series, tmp_path):
    path = tmp_path / "f.lstmkit"
    forecaster = Forecaster(horizon=2, **FAST).fit(series)
    forecaster.save(path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        forecaster.save(path)
    forecaster.save(path, overwrite=True)


def test_load_errors(series, tmp_path):
    with pytest.raises(FileNotFoundError):
        load_forecaster(tmp_path / "missing.lstmkit")
    (tmp_path / "junk.lstmkit").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not an lstmkit forecaster file"):
        load_forecaster(tmp_path / "junk.lstmkit")
    model = Sequential()
    from lstmkit.layers import Dense, Input

    model.add(Input((3,)))
    model.add(Dense(1))
    model.save(tmp_path / "model.lstmkit")
    with pytest.raises(ValueError, match="not a saved lstmkit forecaster.*holds .lstmkit."):
        load_forecaster(tmp_path / "model.lstmkit")
    with pytest.raises(RuntimeError, match="fitted"):
        Forecaster(horizon=2).save(tmp_path / "unfitted.lstmkit")
