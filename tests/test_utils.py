"""lstmkit.utils: the keras.utils-style namespace."""

import random

import numpy as np
import pytest
import torch

from lstmkit import utils
from lstmkit.data.sequence import pad_sequences, to_categorical


def _draw():
    return random.random(), np.random.rand(3), torch.randn(3)


def test_set_random_seed_repeats_all_rngs():
    utils.set_random_seed(123)
    first = _draw()
    utils.set_random_seed(123)
    second = _draw()
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    assert torch.equal(first[2], second[2])
    utils.set_random_seed(124)
    other = _draw()
    assert other[0] != first[0]
    assert not np.array_equal(other[1], first[1])
    assert not torch.equal(other[2], first[2])


def test_set_random_seed_accepts_numpy_int():
    utils.set_random_seed(np.int64(7))


@pytest.mark.parametrize("bad", [-1, 1.5, "1", None, True, 2**32])
def test_set_random_seed_bad_seed_raises(bad):
    with pytest.raises(ValueError, match="`seed`"):
        utils.set_random_seed(bad)


def test_reexports():
    assert utils.pad_sequences is pad_sequences
    assert utils.to_categorical is to_categorical
    assert sorted(utils.__all__) == ["pad_sequences", "set_random_seed", "to_categorical"]
