"""Scalers: exact round trips, the statistics they promise, saved state, bad input."""

import numpy as np
import pytest

from lstmkit.data import InstanceScaler, MinMaxScaler, RobustScaler, StandardScaler
from lstmkit.data.scalers import deserialize, get

SCALERS = [StandardScaler, MinMaxScaler, RobustScaler]
RNG = np.random.default_rng(1)


def samples():
    yield RNG.normal(size=200)
    yield RNG.normal(loc=1e4, scale=3.0, size=(100, 3))
    yield RNG.lognormal(size=(64, 2)) * [1e-6, 1e6]
    yield np.c_[np.full(30, 7.5), RNG.normal(size=30)]  # a constant feature


@pytest.mark.parametrize("cls", SCALERS)
def test_round_trip_is_exact(cls):
    for x in samples():
        scaler = cls().fit(x)
        back = scaler.inverse_transform(scaler.transform(x))
        # float64 rounding only: a few ulps of the values
        np.testing.assert_allclose(back, x, rtol=1e-13, atol=0)
        # and on new data beyond the training range
        wide = x * 3.0 + 1.0
        np.testing.assert_allclose(
            scaler.inverse_transform(scaler.transform(wide)), wide, rtol=1e-13
        )


@pytest.mark.parametrize("cls", SCALERS)
def test_constant_feature_maps_to_a_constant_and_back_unchanged(cls):
    x = np.c_[np.full(20, 3.25), np.arange(20.0)]
    scaler = cls().fit(x)
    z = scaler.transform(x)
    assert np.all(z[:, 0] == z[0, 0]) and np.isfinite(z).all()
    np.testing.assert_array_equal(scaler.inverse_transform(z)[:, 0], x[:, 0])


def test_statistics():
    x = RNG.normal(loc=5, scale=2, size=(500, 2))
    z = StandardScaler().fit_transform(x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-12)
    z = MinMaxScaler((-1, 1)).fit_transform(x)
    np.testing.assert_allclose(z.min(0), -1, atol=1e-12)
    np.testing.assert_allclose(z.max(0), 1, atol=1e-12)
    z = RobustScaler().fit_transform(x)
    np.testing.assert_allclose(np.median(z, 0), 0, atol=1e-12)
    q1, q3 = np.percentile(z, [25, 75], axis=0)
    np.testing.assert_allclose(q3 - q1, 1, atol=1e-12)


def test_robust_scaler_ignores_an_outlier():
    x = np.r_[np.arange(100.0), 1e9]
    robust = RobustScaler().fit_transform(x)
    assert 1.5 < robust[99] - robust[0] < 2.5  # inliers keep their spread (IQR = 50)
    standard = StandardScaler().fit_transform(x)
    assert standard[99] - standard[0] < 1e-5  # the outlier swamps the standard deviation


@pytest.mark.parametrize("cls", SCALERS)
def test_config_round_trip_gives_the_same_transform(cls):
    x = RNG.normal(size=(40, 3))
    scaler = cls().fit(x)
    restored = deserialize(scaler.get_config())
    assert type(restored) is cls
    np.testing.assert_array_equal(restored.transform(x), scaler.transform(x))
    np.testing.assert_array_equal(restored.inverse_transform(x), scaler.inverse_transform(x))


def test_errors():
    with pytest.raises(ValueError, match="NaN or infinity at sample 3"):
        StandardScaler().fit(np.array([1.0, 2.0, 3.0, np.nan]))
    with pytest.raises(RuntimeError, match="not fitted"):
        MinMaxScaler().transform([1.0])
    with pytest.raises(ValueError, match="low < high"):
        MinMaxScaler((1, 1))
    with pytest.raises(ValueError, match="Unknown scaler"):
        get("zscore")
    assert isinstance(get("robust"), RobustScaler)


@pytest.mark.parametrize("loc", ["mean", "last", "ewm"])
@pytest.mark.parametrize("scale", [False, True])
def test_instance_scaler_round_trip(loc, scale):
    windows = RNG.normal(loc=100, size=(16, 12, 3))
    scaler = InstanceScaler(loc=loc, scale=scale, alpha=[0.2, 0.5, 1.0])
    z, stats = scaler.transform(windows)
    np.testing.assert_allclose(scaler.inverse_transform(z, stats), windows, rtol=1e-14)
    # each window is normalised by its own statistics only
    z0, _ = scaler.transform(windows[:1])
    np.testing.assert_array_equal(z0, z[:1])


def test_instance_scaler_locations():
    windows = RNG.normal(size=(4, 6, 2))
    _, (loc, _) = InstanceScaler("mean").transform(windows)
    np.testing.assert_allclose(loc[:, 0], windows.mean(1))
    _, (loc, _) = InstanceScaler("last").transform(windows)
    np.testing.assert_array_equal(loc[:, 0], windows[:, -1])
    _, (loc, _) = InstanceScaler("ewm", alpha=1.0).transform(windows)
    np.testing.assert_allclose(loc[:, 0], windows[:, -1])
    alpha = 0.3
    weights = (1 - alpha) ** np.arange(5, -1, -1)
    _, (loc, _) = InstanceScaler("ewm", alpha=alpha).transform(windows)
    np.testing.assert_allclose(loc[:, 0], np.einsum("wsf,s->wf", windows, weights / weights.sum()))
    with pytest.raises(ValueError, match="alpha must lie in"):
        InstanceScaler("ewm", alpha=0.0)
    with pytest.raises(ValueError, match=r"\(windows, steps, features\)"):
        InstanceScaler().transform(np.zeros((3, 4)))
