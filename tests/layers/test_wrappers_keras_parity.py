"""`Bidirectional`, `TimeDistributed` and `RepeatVector` against Keras 3 (torch backend) with the
same weights and inputs; plus the wrappers' config and save/load round trips."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

keras = pytest.importorskip("keras")

from lstmkit.layers import (  # noqa: E402
    LSTM,
    Bidirectional,
    Dense,
    Input,
    Masking,
    RepeatVector,
    TimeDistributed,
)
from lstmkit.models import Sequential, load_model  # noqa: E402

pytestmark = pytest.mark.keras

ATOL = 1e-5
B, T, D, H = 3, 5, 2, 4
STEPS = np.arange(T)
MASKS = {
    "post_padding": np.array([STEPS < 5, STEPS < 3, STEPS < 1]),
    "pre_padding": np.array([STEPS >= 0, STEPS >= 2, STEPS >= 4]),
    "fully_masked_row": np.array([STEPS < 4, np.zeros(T, bool), STEPS >= 1]),
}


def to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(x))


def assert_same(theirs, ours):
    """Equal outputs, also for the tuples that merge_mode=None and return_state give."""
    if isinstance(theirs, list | tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for t, o in zip(theirs, ours, strict=True):
            assert_same(t, o)
        return
    np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), atol=ATOL, rtol=1e-5)


def randomize(keras_obj, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    keras_obj.set_weights(
        [rng.normal(0.0, scale, w.shape).astype("float32") for w in keras_obj.get_weights()]
    )
    return keras_obj.get_weights()


def inputs(seed=1, shape=(B, T, D)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def bidirectional_pair(merge_mode="concat", **config):
    theirs = keras.layers.Bidirectional(keras.layers.LSTM(H, **config), merge_mode=merge_mode)
    theirs.build((B, T, D))
    ours = Bidirectional(LSTM(H, **config), merge_mode=merge_mode)
    ours.build((B, T, D))
    ours.set_weights(randomize(theirs))
    return theirs, ours


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_merge_modes_match_keras(merge_mode, return_sequences):
    theirs, ours = bidirectional_pair(merge_mode, return_sequences=return_sequences)
    x = inputs()
    assert_same(theirs(x), ours(x))
    shape = ours.compute_output_shape((None, T, D))
    assert shape == tuple(theirs.compute_output_shape((None, T, D)))


@pytest.mark.parametrize("merge_mode", ["concat", None])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_return_state_matches_keras(merge_mode, return_sequences):
    theirs, ours = bidirectional_pair(
        merge_mode, return_sequences=return_sequences, return_state=True
    )
    x = inputs()
    out_theirs, out_ours = theirs(x), ours(x)
    assert len(out_ours) == (6 if merge_mode is None else 5)  # output(s), h_f, c_f, h_b, c_b
    assert_same(out_theirs, out_ours)
    assert [tuple(t.shape) for t in out_ours[-4:]] == [(B, H)] * 4


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_masks_match_keras(mask, return_sequences):
    theirs, ours = bidirectional_pair(return_sequences=return_sequences, return_state=True)
    x, m = inputs(), MASKS[mask]
    assert_same(theirs(x, mask=m), ours(x, mask=m))
    if return_sequences:  # masked steps are zeros in both halves (zero_output_for_mask)
        assert not ours(x, mask=m)[0][torch.from_numpy(~m)].any()


def test_bidirectional_initial_state_is_split_in_halves_like_keras():
    theirs, ours = bidirectional_pair(return_sequences=True)
    states = [inputs(seed, (B, H)) for seed in range(4)]  # h_f, c_f, h_b, c_b
    x, m = inputs(), MASKS["post_padding"]
    assert_same(theirs(x, initial_state=states, mask=m), ours(x, initial_state=states, mask=m))


def test_stacked_bidirectional_sequential_with_masking_matches_keras():
    x = inputs()
    x[1, 3:] = 0.0  # post-padded
    x[2, :2] = 0.0  # pre-padded
    theirs = keras.Sequential(
        [
            keras.Input((T, D)),
            keras.layers.Masking(0.0),
            keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True)),
            keras.layers.Bidirectional(keras.layers.LSTM(3), merge_mode="sum"),
        ]
    )
    ours = Sequential(
        [
            Input((T, D)),
            Masking(0.0),
            Bidirectional(LSTM(H, return_sequences=True)),
            Bidirectional(LSTM(3), merge_mode="sum"),
        ]
    )
    ours.set_weights(randomize(theirs))
    assert_same(theirs.predict(x, verbose=0), ours.predict(x, verbose=0))
    assert ours.output_shape == (None, 3)


def time_distributed_models():
    theirs = keras.Sequential(
        [
            keras.Input((T, D)),
            keras.layers.Masking(0.0),
            keras.layers.LSTM(H, return_sequences=True),
            keras.layers.TimeDistributed(keras.layers.Dense(3, activation="tanh")),
        ]
    )
    ours = Sequential(
        [
            Input((T, D)),
            Masking(0.0),
            LSTM(H, return_sequences=True),
            TimeDistributed(Dense(3, activation="tanh")),
        ]
    )
    ours.set_weights(randomize(theirs))
    return theirs, ours


def test_time_distributed_dense_matches_keras_and_passes_the_mask():
    theirs, ours = time_distributed_models()
    x = inputs()
    x[1, 3:] = 0.0
    assert_same(theirs.predict(x, verbose=0), ours.predict(x, verbose=0))
    _, mask = ours.call_with_mask(torch.from_numpy(x))
    np.testing.assert_array_equal(mask.numpy(), (x != 0).any(-1))
    assert ours.output_shape == tuple(theirs.output_shape) == (None, T, 3)


def test_time_distributed_lstm_takes_inner_masks_step_by_step():
    """A (B, T, T') mask reaches the wrapped LSTM slice by slice (Keras 3 gives it mask[:, t]);
    the output mask says which outer steps hold any real inner step."""
    theirs = keras.layers.LSTM(H)
    theirs.build((B, 4, D))
    ours = TimeDistributed(LSTM(H))
    ours.build((B, T, 4, D))
    ours.set_weights(randomize(theirs))
    x = inputs(shape=(B, T, 4, D))
    mask = np.ones((B, T, 4), bool)
    mask[0, 1, 2:] = False
    mask[1, 3, :] = False
    expected = np.stack([to_numpy(theirs(x[:, t], mask=mask[:, t])) for t in range(T)], axis=1)
    assert_same(expected, ours(x, mask=mask))
    out_mask = ours.compute_mask(torch.from_numpy(x), torch.from_numpy(mask))
    np.testing.assert_array_equal(out_mask.numpy(), mask.any(-1))


def test_repeat_vector_matches_keras_and_drops_the_mask():
    theirs = keras.Sequential(
        [
            keras.Input((T, D)),
            keras.layers.LSTM(H),
            keras.layers.RepeatVector(3),
            keras.layers.LSTM(2, return_sequences=True),
        ]
    )
    ours = Sequential([Input((T, D)), LSTM(H), RepeatVector(3), LSTM(2, return_sequences=True)])
    ours.set_weights(randomize(theirs))
    assert_same(theirs.predict(inputs(), verbose=0), ours.predict(inputs(), verbose=0))
    assert ours.layers[1].compute_output_shape((None, H)) == (None, 3, H)
    assert ours.layers[1].compute_mask(torch.zeros(B, H), torch.ones(B, T, dtype=bool)) is None


def test_bidirectional_and_time_distributed_config_and_file_round_trip(tmp_path):
    model = Sequential(
        [
            Input((T, D)),
            Masking(0.0),
            Bidirectional(LSTM(H, return_sequences=True), merge_mode="ave"),
            Bidirectional(
                LSTM(3, return_sequences=True),
                backward_layer=LSTM(3, return_sequences=True, go_backwards=True, proj_size=2),
            ),
            TimeDistributed(Dense(2)),
            TimeDistributed(RepeatVector(2)),
        ]
    )
    x = inputs()
    x[0, 4:] = 0.0
    rebuilt = Sequential.from_config(model.get_config())
    assert rebuilt.get_config() == model.get_config()
    path = tmp_path / "wrappers.lstmkit"
    model.save(path)
    loaded = load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert model.predict(x, verbose=0).shape == (B, T, 2, 2)


def test_bidirectional_validation_errors():
    with pytest.raises(ValueError, match="'max'"):
        Bidirectional(LSTM(H), merge_mode="max")
    with pytest.raises(ValueError, match="return_sequences"):
        Bidirectional(LSTM(H), backward_layer=LSTM(H, go_backwards=True, return_sequences=True))
    with pytest.raises(ValueError, match="return_state"):
        Bidirectional(LSTM(H), backward_layer=LSTM(H, go_backwards=True, return_state=True))
    with pytest.raises(ValueError, match="go_backwards"):
        Bidirectional(LSTM(H), backward_layer=LSTM(H))
    with pytest.raises(ValueError, match="recurrent"):
        Bidirectional(Dense(H))


def test_bidirectional_weights_are_forward_then_backward_like_keras():
    theirs, ours = bidirectional_pair()
    names = [w.path for w in theirs.weights]
    assert [n.split("/")[-1] for n in names] == ["kernel", "recurrent_kernel", "bias"] * 2
    assert names[0].startswith("bidirectional") and "forward" in names[0]
    assert [p for p, _ in ours.named_parameters()][:3] == [
        "forward_layer.kernel",
        "forward_layer.recurrent_kernel",
        "forward_layer.bias",
    ]
    assert ours.forward_layer.name.startswith("forward_")
    assert ours.backward_layer.name.startswith("backward_") and ours.backward_layer.go_backwards
