"""pad_sequences / to_categorical against Keras 3's own implementations."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

from lstmkit.data.sequence import pad_sequences, to_categorical

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.keras

INT_SEQS = [[1], [2, 3], [4, 5, 6], [], [7, 8, 9, 10, 11]]
RNG = np.random.default_rng(0)
FEATURE_SEQS = [RNG.normal(size=(t, 12)) for t in (3, 7, 1, 5)]


def assert_same(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 1, 2, 4, 8])
@pytest.mark.parametrize("value", [0.0, -1])
def test_pad_int_matches_keras(padding, truncating, maxlen, value):
    kwargs = dict(maxlen=maxlen, padding=padding, truncating=truncating, value=value)
    assert_same(pad_sequences(INT_SEQS, **kwargs), keras.utils.pad_sequences(INT_SEQS, **kwargs))


def test_pad_defaults_match_keras():
    assert_same(pad_sequences(INT_SEQS), keras.utils.pad_sequences(INT_SEQS))
    assert pad_sequences(INT_SEQS).dtype == np.int32


def test_pad_float_values_are_truncated_to_int32_like_keras():
    seqs = [[0.7, 1.9], [2.5]]
    assert_same(pad_sequences(seqs), keras.utils.pad_sequences(seqs))


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 2, 6, 10])
def test_pad_feature_dims_match_keras(padding, truncating, maxlen):
    kwargs = dict(maxlen=maxlen, dtype="float32", padding=padding, truncating=truncating)
    ours = pad_sequences(FEATURE_SEQS, **kwargs)
    assert_same(ours, keras.utils.pad_sequences(FEATURE_SEQS, **kwargs))
    assert ours.shape[2] == 12


def test_pad_feature_dims_with_empty_sequences_and_value():
    seqs = [np.zeros((0, 12)), *FEATURE_SEQS, []]
    kwargs = dict(dtype="float32", value=-9.0)
    assert_same(pad_sequences(seqs, **kwargs), keras.utils.pad_sequences(seqs, **kwargs))


def test_pad_numpy_2d_input_and_tuples():
    arr = np.arange(12).reshape(3, 4)
    assert_same(pad_sequences(arr, maxlen=3), keras.utils.pad_sequences(arr, maxlen=3))
    tuples = [(1, 2), (3,)]
    assert_same(pad_sequences(tuples), keras.utils.pad_sequences(tuples))


def test_pad_strings_with_object_dtype():
    seqs = [["a", "bb"], ["ccc"]]
    kwargs = dict(dtype=object, value="<pad>")
    assert_same(pad_sequences(seqs, **kwargs), keras.utils.pad_sequences(seqs, **kwargs))


def test_pad_empty_inputs():
    assert_same(pad_sequences([], maxlen=3), keras.utils.pad_sequences([], maxlen=3))
    assert_same(pad_sequences([[], []]), keras.utils.pad_sequences([[], []]))
    with pytest.raises(ValueError, match="maxlen"):
        pad_sequences([])
    with pytest.raises(ValueError):
        keras.utils.pad_sequences([])


def test_pad_maxlen_zero_gives_empty_time_axis():
    # Keras crashes here with a broadcast error (s[-0:] keeps the whole sequence).
    out = pad_sequences([[1, 2], []], maxlen=0)
    assert out.shape == (2, 0)


@pytest.mark.parametrize(("name", "bad"), [("padding", "middle"), ("truncating", "both")])
def test_pad_bad_side_raises(name, bad):
    with pytest.raises(ValueError, match=f"`{name}`.*'{bad}'"):
        pad_sequences(INT_SEQS, maxlen=2, **{name: bad})
    with pytest.raises(ValueError):
        keras.utils.pad_sequences(INT_SEQS, maxlen=2, **{name: bad})


def test_pad_bad_side_raises_even_without_data():
    with pytest.raises(ValueError, match="`padding`"):
        pad_sequences([[]], padding="left")


def test_pad_inconsistent_trailing_shape_raises():
    seqs = [np.ones((3, 12)), np.ones((2, 5))]
    with pytest.raises(ValueError, match=r"position 1.*\(5,\).*\(12,\)"):
        pad_sequences(seqs, dtype="float32")
    with pytest.raises(ValueError):
        keras.utils.pad_sequences(seqs, dtype="float32")


def test_pad_empty_array_with_wrong_trailing_shape_raises():
    seqs = [np.ones((3, 12)), np.zeros((0, 5))]
    with pytest.raises(ValueError, match=r"Empty sequence at position 1.*\(5,\)"):
        pad_sequences(seqs, dtype="float32")


def test_pad_string_value_needs_string_dtype():
    with pytest.raises(ValueError, match="`dtype` 'int32'.*'x'"):
        pad_sequences([["a"]], value="x")
    with pytest.raises(ValueError):
        keras.utils.pad_sequences([["a"]], value="x")
    out = pad_sequences([["a"], ["b", "c"]], dtype="<U3", value="x")
    assert out.tolist() == [["x", "a"], ["b", "c"]]


@pytest.mark.parametrize("bad", [5, None])
def test_pad_non_sequence_elements_raise(bad):
    with pytest.raises(ValueError, match="element 1"):
        pad_sequences([[1], bad])


def test_pad_unsized_input_raises():
    with pytest.raises(ValueError, match="`sequences`"):
        pad_sequences(iter([[1], [2]]))


@pytest.mark.parametrize("bad", [-1, 2.5])
def test_pad_bad_maxlen_raises(bad):
    with pytest.raises(ValueError, match="`maxlen`"):
        pad_sequences(INT_SEQS, maxlen=bad)


CATEGORICAL_CASES = [
    ([0, 1, 2, 3], None),
    ([0, 1, 2, 3], 6),
    (np.array([[1], [0], [2]]), None),
    (np.array([[1], [0], [2]]), 4),
    (np.array([[1, 2], [0, 1]]), None),
    (np.array([[[1], [2]], [[0], [1]]]), 3),
    (np.array([1]), None),
    (3, 5),
    (np.array([2, 0], dtype=np.uint8), None),
    ([1.0, 2.0], None),
    ([True, False], None),
]


@pytest.mark.parametrize(("x", "num_classes"), CATEGORICAL_CASES)
def test_to_categorical_matches_keras(x, num_classes):
    ours = to_categorical(x, num_classes)
    theirs = keras.utils.to_categorical(x, num_classes)
    assert ours.dtype == np.float32  # Keras returns float64
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_to_categorical_empty_with_num_classes():
    ours = to_categorical([], 3)
    assert ours.shape == keras.utils.to_categorical([], 3).shape == (0, 3)


@pytest.mark.parametrize(
    ("x", "num_classes", "match"),
    [
        ([0, 3], 3, r"num_classes=3.*\[0, 3\]"),
        ([-1, 1], 3, r"num_classes=3.*\[-1, 1\]"),
        ([-2, -1], None, r"\[-2, -1\]"),
    ],
)
def test_to_categorical_out_of_range_raises(x, num_classes, match):
    with pytest.raises(ValueError, match=match):
        to_categorical(x, num_classes)


@pytest.mark.parametrize("x", [[0.5, 1.0], [np.nan], [np.inf], ["a", "b"]])
def test_to_categorical_non_integer_raises(x):
    with pytest.raises(ValueError, match="integer labels"):
        to_categorical(x)


@pytest.mark.parametrize("num_classes", [0, -2, 2.0])
def test_to_categorical_bad_num_classes_raises(num_classes):
    with pytest.raises(ValueError, match="`num_classes`"):
        to_categorical([0, 1], num_classes)


def test_to_categorical_empty_without_num_classes_raises():
    with pytest.raises(ValueError, match="num_classes"):
        to_categorical([])
