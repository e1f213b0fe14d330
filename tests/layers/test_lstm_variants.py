"""Every LSTM variant and Keras argument: trains, saves, loads; bad configurations fail early."""

import numpy as np
import pytest
import torch

from lstmkit.layers import LSTM, Dense, Embedding, Input, Masking
from lstmkit.models import Sequential, load_model
from lstmkit.optimizers import Adam
from lstmkit.utils import set_random_seed

N, T, D = 96, 8, 3


def task(seed=0):
    """Label = sign of the sum of the first feature over the sequence: needs memory."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, T, D)).astype("float32")
    y = (x[:, :, 0].sum(1) > 0).astype("float32")[:, None]
    return x, y


VARIANTS = {
    "plain": {},
    "hard_sigmoid": {"recurrent_activation": "hard_sigmoid"},
    "peephole": {"peephole": True},
    "layer_norm": {"layer_norm": True},
    "projection": {"proj_size": 4},
    "zoneout": {"zoneout_cell": 0.1, "zoneout_hidden": 0.1},
    "dropout": {"dropout": 0.1, "recurrent_dropout": 0.2, "seed": 3},
    "go_backwards": {"go_backwards": True},
    "regularized": {"kernel_regularizer": "l2", "recurrent_constraint": "max_norm"},
    "all_at_once": {
        "peephole": True,
        "layer_norm": True,
        "proj_size": 5,
        "zoneout_cell": 0.1,
        "recurrent_dropout": 0.1,
        "go_backwards": True,
        "bias_regularizer": "l1",
    },
}


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_trains_saves_and_loads(name, tmp_path):
    x, y = task()
    set_random_seed(0)
    model = Sequential([LSTM(8, input_shape=(T, D), **VARIANTS[name]), Dense(1, "sigmoid")])
    model.compile(Adam(learning_rate=0.02), "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    path = tmp_path / "model.lstmkit"
    model.save(path)
    loaded = load_model(path)
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_variant_weights_are_listed_after_the_keras_ones():
    layer = LSTM(6, peephole=True, layer_norm=True, proj_size=2)
    layer.build((None, T, D))
    names = [name for name, _ in layer.named_parameters()]
    assert names[:3] == ["kernel", "recurrent_kernel", "bias"]
    shapes = dict((n, tuple(p.shape)) for n, p in layer.named_parameters())
    assert shapes["recurrent_kernel"] == (2, 24)
    assert shapes["projection"] == (6, 2)
    assert shapes["peephole"] == (3, 6)
    out, h, c = LSTM(6, proj_size=2, return_state=True)(np.zeros((4, T, D), "float32"))
    assert out.shape == (4, 2) and h.shape == (4, 2) and c.shape == (4, 6)


def test_dropout_is_random_in_training_and_off_at_inference():
    layer = LSTM(5, dropout=0.5, recurrent_dropout=0.5, zoneout_hidden=0.3)
    x = torch.randn(4, T, D)
    inference = [layer(x) for _ in range(2)]
    torch.testing.assert_close(inference[0], inference[1])
    training = [layer(x, training=True) for _ in range(2)]
    assert not torch.allclose(training[0], training[1])


def test_seeded_layers_draw_the_same_masks():
    x = torch.randn(4, T, D)
    outputs = []
    for _ in range(2):
        set_random_seed(0)
        layer = LSTM(5, recurrent_dropout=0.5, seed=11)
        outputs.append(layer(x, training=True))
    torch.testing.assert_close(outputs[0], outputs[1])


def test_regularizers_add_to_the_loss_and_constraints_hold_after_each_step():
    x, y = task()
    set_random_seed(0)
    lstm = LSTM(8, kernel_regularizer="l2", kernel_constraint="non_neg", input_shape=(T, D))
    model = Sequential([lstm, Dense(1, "sigmoid")])
    model.compile("adam", "binary_crossentropy")
    penalty = model.losses[0].item()
    assert penalty == pytest.approx(0.01 * (lstm.kernel**2).sum().item(), rel=1e-5)
    prediction = model(x)  # arrays go to the model's device
    plain_loss = model.loss(torch.as_tensor(y, device=prediction.device), prediction).item()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(plain_loss + penalty, rel=1e-4)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert (lstm.kernel >= 0).all()


def test_stateful_layers_carry_states_between_batches_and_reset():
    x = torch.randn(2, 2 * T, D)
    whole = LSTM(5, return_sequences=True)
    expected = whole(x)
    stateful = LSTM(5, return_sequences=True, stateful=True)
    stateful.build((2, 2 * T, D))
    stateful.set_weights(whole.get_weights())
    first, second = stateful(x[:, :T]), stateful(x[:, T:])
    torch.testing.assert_close(torch.cat([first, second], 1), expected)
    stateful.reset_states()
    torch.testing.assert_close(stateful(x[:, :T]), first)
    h, c = torch.ones(2, 5), torch.zeros(2, 5)
    stateful.reset_states([h, c])
    torch.testing.assert_close(stateful.states[0], h)
    torch.testing.assert_close(stateful(x[:, :T]), whole(x[:, :T], initial_state=[h, c]))


def test_stateful_model_from_an_input_with_batch_size():
    model = Sequential([Input((T, D), batch_size=4), LSTM(3, stateful=True), Dense(1)])
    model(torch.randn(4, T, D))
    with pytest.raises(ValueError, match="batch size 4"):
        model(torch.randn(3, T, D))


def test_masking_and_embedding_masks_reach_the_lstm():
    set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(3, T, D)).astype("float32")
    x[0, :3] = 0.0  # pre-padding
    masked = Sequential([Masking(0.0, input_shape=(T, D)), LSTM(4)])
    lstm = masked.layers[1]
    torch.testing.assert_close(masked(x)[0], lstm(x[:1, 3:])[0])
    ids = np.array([[0, 0, 5, 7], [3, 2, 9, 1]])
    embedded = Sequential([Embedding(10, 3, mask_zero=True), LSTM(4)])
    out = embedded(ids)
    emb, lstm = embedded.layers
    torch.testing.assert_close(out[0], lstm(emb(ids[:1, 2:]))[0])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"proj_size": 8}, "proj_size"),
        ({"zoneout_cell": 1.0}, "zoneout_cell"),
        ({"dropout": -0.1}, "dropout"),
        ({"recurrent_dropout": 1.0}, "recurrent_dropout"),
        ({"use_cudnn": "yes"}, "use_cudnn"),
        ({"use_cudnn": True, "peephole": True}, "use_cudnn=True"),
        ({"use_cudnn": True, "activation": "relu"}, "use_cudnn=True"),
        ({"kernel_regularizer": "l3"}, "l3"),
    ],
)
def test_contradictory_configurations_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LSTM(8, **kwargs)


def test_stateful_needs_a_fixed_batch_size():
    with pytest.raises(ValueError, match="fixed batch size"):
        Sequential([LSTM(4, stateful=True, input_shape=(T, D))])
    with pytest.raises(ValueError, match="not stateful"):
        LSTM(4).reset_states()


def test_mask_of_the_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, timesteps\)"):
        LSTM(4)(np.zeros((2, T, D), "float32"), mask=np.ones((2, T + 1), bool))


def test_use_cudnn_false_avoids_torch_s_kernel_with_the_same_result():
    x = torch.randn(3, T, D)
    fused = LSTM(4)
    fused(x)
    loop = LSTM(4, use_cudnn=False)
    loop(x)
    loop.set_weights(fused.get_weights())
    torch.testing.assert_close(loop(x), fused(x), atol=1e-6, rtol=1e-5)
