"""The target pipeline's automatic choices and its exact inverse."""

import numpy as np
import pytest

from lstmkit.forecasting.design import ses_alpha
from lstmkit.forecasting.transforms import (
    TargetPipeline,
    choose_log,
    guerrero_lambda,
    is_seasonal,
    seasonal_indices,
)

RNG = np.random.default_rng(0)


def test_guerrero_picks_log_when_the_spread_grows_with_the_level():
    t = np.arange(144)
    multiplicative = np.exp(0.02 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
    additive = 500 + 2 * t + 30 * np.sin(2 * np.pi * t / 12) + RNG.normal(0, 1, 144)
    assert guerrero_lambda(multiplicative, 12) < 0.5
    assert guerrero_lambda(additive, 12) > 0.5
    assert choose_log(multiplicative, 12)
    assert not choose_log(additive, 12)
    assert not choose_log(multiplicative - 10, 12)  # not positive: never log


def test_seasonality_test():
    t = np.arange(120)
    assert is_seasonal(np.sin(2 * np.pi * t / 12) + RNG.normal(0, 0.3, 120), 12)
    assert not is_seasonal(RNG.normal(size=120), 12)
    assert not is_seasonal(np.sin(2 * np.pi * t[:30] / 12), 12)  # fewer than 3 seasons


def test_seasonal_indices_recover_a_known_pattern():
    pattern = np.array([3.0, -1, 2, 0, -4, 1, 0, 2, -2, 1, -1, -1])
    t = np.arange(96)
    z = 0.5 * t + np.tile(pattern, 8)
    np.testing.assert_allclose(seasonal_indices(z, 12), pattern - pattern.mean(), atol=1e-9)
    np.testing.assert_allclose(seasonal_indices(z, 12, window=2), pattern, atol=1e-9)


def test_pipeline_choices_and_exact_inverse(series):
    y = series.to_numpy()[:, None]
    pipeline = TargetPipeline(season_length=12).fit(y)
    assert pipeline.describe() == [{"log": True, "seasonal": True}]
    for start in (0, 5, 120):
        z = pipeline.transform(y, start)
        np.testing.assert_allclose(pipeline.inverse_transform(z, start), y, rtol=1e-13)
    restored = TargetPipeline.from_config(pipeline.get_config())
    np.testing.assert_array_equal(restored.transform(y, 3), pipeline.transform(y, 3))
    # quantile axis broadcast: an increasing map keeps quantiles ordered
    z = pipeline.transform(y, 0)[:12]
    stacked = np.stack([z - 0.1, z, z + 0.1], axis=-1)
    back = pipeline.inverse_transform(stacked, 0)
    assert np.all(np.diff(back, axis=-1) > 0)


def test_pipeline_options_are_respected(series):
    y = series.to_numpy()[:, None]
    none = TargetPipeline(log=False, season_length=12, seasonality=False).fit(y)
    assert none.describe() == [{"log": False, "seasonal": False}]
    no_season = TargetPipeline(season_length=None).fit(y)
    assert not no_season.describe()[0]["seasonal"]
    with pytest.raises(ValueError, match="strictly positive"):
        TargetPipeline(log=True).fit(y - 1000)


def test_ses_alpha_tracks_noise_level():
    walk = np.cumsum(RNG.normal(size=300))
    noise = RNG.normal(size=300)
    assert ses_alpha(walk) > 0.8  # a random walk: the last value is the best level
    assert ses_alpha(noise) < 0.2  # white noise: average over a long past
