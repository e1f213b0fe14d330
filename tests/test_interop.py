"""`torch.nn.LSTM` <-> lstmkit conversion: same outputs both ways, clear errors otherwise."""

import warnings

import pytest
import torch

from lstmkit.interop import from_torch_lstm, to_torch_lstm
from lstmkit.layers import LSTM, Bidirectional, Dense, Dropout
from lstmkit.models import Sequential

ATOL = 1e-5
B, T, I = 2, 5, 4  # noqa: E741


def torch_output(module, x):
    """The module's sequence output for batch-first ``x``, batch-first."""
    if module.batch_first:
        return module(x)[0]
    return module(x.transpose(0, 1))[0].transpose(0, 1)


def built(*layers, features=I):
    model = Sequential(list(layers))
    model.build((None, None, features))
    return model


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize(
    "layout",
    [
        dict(num_layers=2, bidirectional=True, proj_size=3),
        dict(num_layers=2, bidirectional=False, proj_size=0),
        dict(num_layers=1, bidirectional=True, proj_size=0),
    ],
)
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@torch.no_grad()
def test_round_trip_gives_the_torch_outputs(bias, batch_first, layout):
    torch.manual_seed(0)
    module = torch.nn.LSTM(I, 5, bias=bias, batch_first=batch_first, **layout).eval()
    if bias:  # distinct bias_ih and bias_hh, to check that they are summed
        for name, p in module.named_parameters():
            if name.startswith("bias"):
                p.normal_()
    x = torch.randn(B, T, I)
    expected = torch_output(module, x)

    model = from_torch_lstm(module)
    torch.testing.assert_close(model(x), expected, atol=ATOL, rtol=1e-5)
    kinds = [type(layer) for layer in model.layers]
    layer_type = Bidirectional if layout["bidirectional"] else LSTM
    assert kinds == [layer_type] * layout["num_layers"]

    back = to_torch_lstm(model, batch_first=batch_first).eval()
    torch.testing.assert_close(torch_output(back, x), expected, atol=ATOL, rtol=1e-5)
    for name in ("num_layers", "bidirectional", "proj_size", "hidden_size", "input_size", "bias"):
        assert getattr(back, name) == getattr(module, name)


def test_dropout_between_layers_travels_both_ways():
    module = torch.nn.LSTM(I, 3, num_layers=3, dropout=0.25)
    model = from_torch_lstm(module)
    assert [type(layer) for layer in model.layers] == [LSTM, Dropout, LSTM, Dropout, LSTM]
    assert to_torch_lstm(model).dropout == 0.25


def test_lstm_layer_dropout_is_dropped_with_a_warning():
    model = built(LSTM(3, return_sequences=True, dropout=0.1, recurrent_dropout=0.2))
    with pytest.warns(UserWarning, match="recurrent_dropout=0.2"):
        module = to_torch_lstm(model)
    x = torch.randn(B, T, I)
    with torch.no_grad():
        torch.testing.assert_close(module(x)[0], model(x), atol=ATOL, rtol=1e-5)


def test_a_list_of_layers_converts_too():
    layers = built(LSTM(3, return_sequences=True), LSTM(3, return_sequences=True)).layers
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert to_torch_lstm(layers).num_layers == 2


@pytest.mark.parametrize(
    "layers, match",
    [
        ([LSTM(3, return_sequences=True, activation="relu")], "activation='tanh'"),
        ([LSTM(3, return_sequences=True, recurrent_activation="hard_sigmoid")], "sigmoid"),
        ([LSTM(3, return_sequences=True, peephole=True)], "peephole"),
        ([LSTM(3, return_sequences=True, layer_norm=True)], "layer_norm"),
        ([LSTM(3, return_sequences=True, zoneout_cell=0.1)], "zoneout_cell"),
        ([LSTM(3)], "return_sequences=False"),
        ([LSTM(3, return_sequences=True, go_backwards=True)], "go_backwards"),
        ([LSTM(3, return_sequences=True), LSTM(4, return_sequences=True)], "units"),
        ([LSTM(3, return_sequences=True), LSTM(3, return_sequences=True, use_bias=False)], "bias"),
        (
            [LSTM(3, return_sequences=True), Bidirectional(LSTM(3, return_sequences=True))],
            "mix",
        ),
        ([Bidirectional(LSTM(3, return_sequences=True), merge_mode="sum")], "merge_mode='sum'"),
        ([LSTM(3, return_sequences=True), Dense(2)], "Dense"),
        ([LSTM(3, return_sequences=True), Dropout(0.1)], "after the last"),
        ([Dropout(0.1), LSTM(3, return_sequences=True)], "between"),
        (
            [
                LSTM(3, return_sequences=True),
                Dropout(0.1),
                LSTM(3, return_sequences=True),
                LSTM(3, return_sequences=True),
            ],
            "one dropout rate",
        ),
    ],
)
def test_unconvertible_models_raise(layers, match):
    with pytest.raises(ValueError, match=match):
        to_torch_lstm(built(*layers))


def test_unbuilt_layers_and_foreign_modules_raise():
    with pytest.raises(ValueError, match="not built"):
        to_torch_lstm([LSTM(3, return_sequences=True)])
    with pytest.raises(ValueError, match="no LSTM"):
        to_torch_lstm([])
    stateful = LSTM(3, return_sequences=True, stateful=True)
    stateful.build((B, T, I))
    with pytest.raises(ValueError, match="stateful"):
        to_torch_lstm([stateful])
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        from_torch_lstm(torch.nn.GRU(I, 3))
