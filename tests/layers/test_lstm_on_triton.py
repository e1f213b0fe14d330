"""Layers on the Triton kernels: a masked `Bidirectional` LSTM (whose backward copy runs with
go_backwards), given initial states, matches the same layer on the reference kernel, outputs
and every weight's gradient, in both layouts; so does a go_backwards LSTM alone, whose output
sequence comes back reversed as Keras returns it. Without CUDA the kernels run under Triton's
interpreter (``TRITON_INTERPRET=1``, set here)."""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is first imported

pytest.importorskip("triton")

from lstmkit.kernels import dispatch, triton_lstm  # noqa: E402
from lstmkit.kernels.triton_lstm import TritonConfig  # noqa: E402
from lstmkit.layers import LSTM, Bidirectional  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and not triton_lstm.interpreter_ready():
    pytest.skip("no CUDA, and TRITON_INTERPRET is not 1", allow_module_level=True)

LAYOUTS = {
    "persistent": TritonConfig(16, 16, 16, 4, 1),
    "split": TritonConfig(16, 16, 16, 4, 1, split=True),
}
VARIANTS = {
    "plain": {},
    "everything": dict(
        peephole=True, layer_norm=True, proj_size=5, zoneout_cell=0.2, zoneout_hidden=0.1
    ),
}


def run(monkeypatch, layer, x, mask, states, backend):
    """Outputs and the gradients of every weight of ``layer`` with dispatch held to
    ``backend``."""
    with monkeypatch.context() as patch:
        patch.setattr(dispatch, "select_backend", lambda *args, **kwargs: backend)
        out = layer(x, initial_state=states, mask=mask, training=False)
    loss = (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape).to(out)).sum()
    params = list(layer.parameters())
    return [out, *torch.autograd.grad(loss, params + states)]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_bidirectional_masked_layer_matches_the_reference(monkeypatch, layout, variant, no_tf32):
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "0")
    monkeypatch.setattr(triton_lstm, "default_config", lambda *args: LAYOUTS[layout])
    calls = []
    kernel = triton_lstm.lstm
    monkeypatch.setattr(triton_lstm, "lstm", lambda *a, **k: calls.append(1) or kernel(*a, **k))
    torch.manual_seed(0)
    B, T, D, H = 3, 5, 4, 20
    layer = Bidirectional(LSTM(H, return_sequences=True, **VARIANTS[variant])).to(DEVICE)
    x = torch.randn(B, T, D, device=DEVICE)
    mask = torch.tensor(
        [[1] * 5, [1, 1, 1, 0, 0], [0, 0, 1, 1, 1]], dtype=torch.bool, device=DEVICE
    )
    layer(x)  # builds the weights (on CUDA, through the kernels too)
    calls.clear()
    P = VARIANTS[variant].get("proj_size") or H
    states = [torch.randn(B, n, device=DEVICE, requires_grad=True) for n in (P, H, P, H)]
    ours = run(monkeypatch, layer, x, mask, states, "triton")
    assert len(calls) == 2  # both directions ran on the Triton kernels
    ref = run(monkeypatch, layer, x, mask, states, "reference")
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5, msg=lambda m, i=i: f"#{i}: {m}")


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
def test_go_backwards_layer_matches_the_reference(monkeypatch, return_sequences, no_tf32):
    """The kernels run the steps backwards themselves; the layer flips the sequence to Keras's
    order (the reference runs on flipped steps, `dispatch._flipped`), and its last output is
    that of input step 0."""
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "0")
    monkeypatch.setattr(triton_lstm, "default_config", lambda *args: LAYOUTS["split"])
    torch.manual_seed(1)
    B, T, D, H = 3, 5, 4, 20
    layer = LSTM(H, go_backwards=True, return_sequences=return_sequences).to(DEVICE)
    x = torch.randn(B, T, D, device=DEVICE)
    mask = torch.tensor(
        [[1] * 5, [1, 1, 1, 0, 0], [0, 0, 1, 1, 1]], dtype=torch.bool, device=DEVICE
    )
    layer(x)
    states = [torch.randn(B, H, device=DEVICE, requires_grad=True) for _ in range(2)]
    ours = run(monkeypatch, layer, x, mask, states, "triton")
    ref = run(monkeypatch, layer, x, mask, states, "reference")
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5, msg=lambda m, i=i: f"#{i}: {m}")
