"""A `Bidirectional` LSTM's two directions side by side on two CUDA streams (`kernels.streams`):
when they may (the split layout's grids fit on the SMs together), how the layer orders the
streams (checked on the CPU with stand-ins for them), and on a GPU that side by side gives what
one after the other gives, eagerly and in `fit`'s CUDA graph."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from lstmkit.kernels import streams
from lstmkit.layers import LSTM, Bidirectional, Dense, Input
from lstmkit.models import Sequential
from lstmkit.utils import set_random_seed

CUDA = torch.cuda.is_available()


@pytest.mark.parametrize(
    "batch, units, sms, expected",
    [
        (64, [128, 128], 132, True),  # 32 + 32 programs
        (64, [256, 256], 132, True),  # 64 + 64
        (64, [256, 288], 132, False),  # 64 + 72
        (64, [512], 132, True),  # one direction alone: 128
        (64, [512, 512], 132, False),
        (256, [128, 128], 132, False),  # 16 tiles of 8 programs each
        (64, [128, 128], 64, True),  # exactly the SMs
        (64, [128, 128], 63, False),
    ],
)
def test_recurrences_fit_together_where_the_split_grids_fit_on_the_sms(batch, units, sms, expected):
    assert streams.fit_together(batch, units, sms) is expected


def test_no_second_stream_off_a_gpu():
    assert not streams.side_by_side(torch.zeros(64, 5, 3), [8, 8])


class _Stream:
    """A stand-in for a CUDA stream that logs what is ordered on it."""

    def __init__(self, name: str, log: list):
        self.name, self.log = name, log

    def wait_stream(self, other: _Stream) -> None:
        self.log.append(f"{self.name} waits for {other.name}")


def test_the_backward_direction_runs_on_the_second_stream_between_fork_and_join(monkeypatch):
    """Stand-ins for the streams (this runs on the CPU): the second stream waits for the
    current one before either direction runs, the forward layer runs first on the current
    stream, the backward one on the second, then the current stream waits for it; what each
    stream reads from the other is recorded on it; outputs as one after the other; the streams
    are joined even when a direction raises."""
    torch.manual_seed(0)
    layer = Bidirectional(LSTM(6, return_sequences=True, dropout=0.3), merge_mode=None)
    x = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    states = [torch.randn(3, 6) for _ in range(4)]
    layer.build(tuple(x.shape))
    torch.manual_seed(1)  # dropout masks from torch's generator, in the order of the calls
    expected = layer(x, initial_state=states, mask=mask, training=True)

    log: list = []
    main, side = _Stream("main", log), _Stream("side", log)
    current = [main]

    @contextlib.contextmanager
    def on(stream):
        current.append(stream)
        try:
            yield
        finally:
            current.pop()

    def runs(direction):
        call = direction.forward
        return lambda *a, **k: (
            log.append(f"{direction.name} on {current[-1].name}") or call(*a, **k)
        )

    monkeypatch.setattr(streams, "side_by_side", lambda x, units: units == [6, 6])
    monkeypatch.setattr(streams, "side_stream", lambda device: side)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: current[-1])
    monkeypatch.setattr(torch.cuda, "stream", on)
    monkeypatch.setattr(streams, "read_on", lambda s, *v: log.append((s.name, v)))
    for direction in (layer.forward_layer, layer.backward_layer):
        monkeypatch.setattr(direction, "forward", runs(direction))
    torch.manual_seed(1)
    got = layer(x, initial_state=states, mask=mask, training=True)

    fwd, bwd = layer.forward_layer.name, layer.backward_layer.name
    assert log[:4] == [
        "side waits for main",
        f"{fwd} on main",
        f"{bwd} on side",
        "main waits for side",
    ]
    (reader, read), (back, results) = log[4:]
    assert reader == "side" and read[0] is x and read[1] is mask and read[2] == states[2:]
    assert back == "main" and results[0] is got[1]
    for a, b in zip(got, expected, strict=True):  # the same dropout masks
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    log.clear()  # a direction that raises: the streams are joined all the same
    monkeypatch.setattr(layer.backward_layer, "forward", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        layer(x, initial_state=states, mask=mask, training=True)
    assert log[-1] == "main waits for side"


def _outputs_and_grads(layer, x, mask, states):
    for direction in (layer.forward_layer, layer.backward_layer):
        direction.generator = None  # the dropout masks drawn anew from the layers' seeds
    out = layer(x, initial_state=states, mask=mask, training=True)
    loss = (out * torch.linspace(-1, 1, out.numel(), device=out.device).reshape(out.shape)).sum()
    return [out, *torch.autograd.grad(loss, [x, *layer.parameters(), *states])]


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize(
    "units, variant",
    [(256, {}), (128, dict(peephole=True, layer_norm=True, proj_size=24))],
    ids=["plain_256", "everything_128"],
)
def test_cuda_side_by_side_gives_what_one_after_the_other_gives(monkeypatch, units, variant):
    """B=64, T=50, on the Triton kernels (split layout, fp32; at H=256 the two grids take 128
    of an H100's 132 SMs): a masked, dropped-out `Bidirectional` layer with initial states,
    side by side (checked: the second stream was used) and one after the other; outputs and
    every gradient agree (the same kernels on the same inputs)."""
    if not streams.side_by_side(torch.zeros(64, 1, 1, device="cuda"), [units, units]):
        pytest.skip(f"two directions of {units} units do not fit on this GPU's SMs together")
    set_random_seed(0)
    B, T, D = 64, 50, 32
    lstm = LSTM(units, return_sequences=True, dropout=0.2, seed=4, use_cudnn=False, **variant)
    layer = Bidirectional(lstm)
    layer = layer.cuda()
    x = torch.randn(B, T, D, device="cuda", requires_grad=True)
    lengths = torch.randint(1, T + 1, (B,), device="cuda")
    mask = torch.arange(T, device="cuda")[None] < lengths[:, None]
    states = [
        torch.randn(B, n, device="cuda", requires_grad=True)
        for n in (layer.forward_layer.spec.output_size, units) * 2
    ]
    layer(x, initial_state=states, mask=mask)  # builds; dispatch settles its backends
    used = []
    side_stream = streams.side_stream
    monkeypatch.setattr(streams, "side_stream", lambda d: used.append(d) or side_stream(d))
    side = _outputs_and_grads(layer, x, mask, states)
    torch.cuda.synchronize()
    assert used
    monkeypatch.setattr(streams, "side_by_side", lambda *args: False)
    serial = _outputs_and_grads(layer, x, mask, states)
    for a, b in zip(side, serial, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("variant", [{}, dict(peephole=True)], ids=["cudnn", "triton"])
def test_cuda_graphed_fit_of_a_bidirectional_model_trains_as_the_eager_fit(
    monkeypatch, variant, no_tf32
):
    """The two streams inside `fit`'s captured step, on cuDNN and on the Triton kernels
    (peepholes): weights and History after 2 epochs agree with the eager fit's (same seed and
    data)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 12, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[(x[:, :, 0].sum(1) > 0).astype(int)]
    results = []
    for env in ("0", "1"):
        monkeypatch.setenv("LSTMKIT_CUDA_GRAPHS", env)
        set_random_seed(3)
        m = Sequential(
            [Input((12, 3)), Bidirectional(LSTM(16, **variant)), Dense(2, activation="softmax")]
        )
        m.compile(
            loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"], device="cuda"
        )
        history = m.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        results.append((m.get_weights(), history.history))
    (eager_w, eager_h), (graph_w, graph_h) = results
    for a, b in zip(graph_w, eager_w, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in eager_h:
        np.testing.assert_allclose(graph_h[name], eager_h[name], rtol=1e-4, atol=1e-6)
