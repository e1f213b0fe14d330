"""Accuracy measures against hand-computed values (Hyndman & Koehler 2006 definitions)."""

import numpy as np
import pytest

from lstmkit.forecasting import coverage, mae, mape, mase, pinball_loss, rmse, smape
from lstmkit.forecasting.metrics import interval_metrics, point_metrics

Y = np.array([10.0, 20.0, 30.0, 40.0])
F = np.array([12.0, 18.0, 33.0, 40.0])


def test_point_metrics_by_hand():
    assert mae(Y, F) == pytest.approx((2 + 2 + 3 + 0) / 4)
    assert rmse(Y, F) == pytest.approx(np.sqrt((4 + 4 + 9 + 0) / 4))
    assert mape(Y, F) == pytest.approx(100 * (0.2 + 0.1 + 0.1 + 0) / 4)
    expected_smape = 200 * np.mean([2 / 22, 2 / 38, 3 / 63, 0])
    assert smape(Y, F) == pytest.approx(expected_smape)


def test_mase_scales_by_in_sample_seasonal_naive():
    train = np.array([1.0, 3.0, 2.0, 6.0, 4.0, 8.0])
    # naive (m=1): mean |diff| = (2 + 1 + 4 + 2 + 4) / 5 = 2.6
    assert mase(Y, F, train) == pytest.approx(mae(Y, F) / 2.6)
    # m=2: mean |y_t - y_{t-2}| = (1 + 3 + 2 + 2) / 4 = 2
    assert mase(Y, F, train, m=2) == pytest.approx(mae(Y, F) / 2.0)


def test_pinball_and_coverage():
    y = np.array([0.0, 1.0, 2.0])
    q = np.array([1.0, 1.0, 1.0])
    # errors y - q = -1, 0, 1: q=0.9 -> (0.1*1 + 0 + 0.9*1)/3
    assert pinball_loss(y, q, 0.9) == pytest.approx((0.1 + 0.9) / 3)
    assert coverage(y, [0, 0, 0], [0.5, 1, 1.5]) == pytest.approx(2 / 3)
    out = interval_metrics(y, {0.1: y - 1, 0.9: y + 1}, [(0.1, 0.9)])
    assert out["coverage_80"] == 1.0


def test_edge_cases():
    assert smape([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert smape([1.0], [-1.0]) == 200.0
    with pytest.raises(ValueError, match="zeros"):
        mape([0.0, 1.0], [1.0, 1.0])
    assert np.isnan(point_metrics([0.0, 1.0], [1.0, 1.0], [1.0, 2.0, 4.0])["mape"])
    with pytest.raises(ValueError, match="same shape"):
        mae([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="constant"):
        mase(Y, F, np.ones(5))
    with pytest.raises(ValueError, match="more than m=4"):
        mase(Y, F, np.arange(4.0), m=4)
