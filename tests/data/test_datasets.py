"""load_japanese_vowels via the optional sktime extra."""

import sys

import numpy as np
import pytest

from lstmkit.data import load_japanese_vowels

pytest.importorskip("sktime")


@pytest.fixture(scope="module", params=[("train", 270), ("test", 370)], ids=["train", "test"])
def split_data(request):
    split, n = request.param
    return n, load_japanese_vowels(split, return_lengths=True)


def test_shapes_dtypes_and_labels(split_data):
    n, (X, y, lengths) = split_data
    assert X.shape == (n, 29, 12) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert lengths.shape == (n,) and lengths.dtype == np.int64
    assert set(np.unique(y)) == set(range(9))


def test_lengths_range(split_data):
    _, (_, _, lengths) = split_data
    assert lengths.min() >= 7 and lengths.max() <= 29
    assert lengths.min() == 7


def test_prepadded_with_zeros(split_data):
    _, (X, _, lengths) = split_data
    short = int(np.argmin(lengths))
    assert np.all(X[short, 0] == 0)
    assert np.all(X[short, : 29 - lengths[short]] == 0)
    assert np.any(X[short, -1] != 0)
    assert np.all(np.any(X[:, -1] != 0, axis=1))


def test_post_padding_passthrough():
    X_pre, _, lengths = load_japanese_vowels("train", return_lengths=True)
    X_post, _ = load_japanese_vowels("train", padding="post")
    i = int(np.argmin(lengths))
    t = int(lengths[i])
    np.testing.assert_array_equal(X_post[i, :t], X_pre[i, 29 - t :])
    assert np.all(X_post[i, t:] == 0)


def test_default_returns_pair():
    assert len(load_japanese_vowels()) == 2


def test_test_split_reaches_max_length():
    _, _, lengths = load_japanese_vowels("test", return_lengths=True)
    assert lengths.max() == 29


def test_bad_split_raises():
    with pytest.raises(ValueError, match="`split`.*'valid'"):
        load_japanese_vowels("valid")


def test_missing_sktime_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sktime.datasets", None)
    with pytest.raises(ImportError, match=r"pip install lstmkit\[datasets\]"):
        load_japanese_vowels()


def test_importing_data_does_not_import_sktime():
    import subprocess

    code = "import sys, lstmkit.data; assert 'sktime' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
