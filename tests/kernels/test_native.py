"""torch's fused LSTM against the reference, and the dispatch rules."""

import pytest
import torch

from lstmkit.kernels import (
    LSTMNoise,
    LSTMWeights,
    cpu,
    cpu_compiled,
    dispatch,
    native,
    reference,
    triton_lstm,
)
from lstmkit.spec import LSTMSpec


def problem(B, T, D, H, bias, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return (torch.randn(*shape, generator=g, dtype=dtype) * 0.4).requires_grad_()

    return (
        r(B, T, D),
        r(B, H),
        r(B, H),
        LSTMWeights(r(D, 4 * H), r(H, 4 * H), r(4 * H) if bias else None),
    )


# float64 shows the two compute the same function; float32 that rounding stays small.
TOLERANCE = {torch.float64: 1e-10, torch.float32: 5e-4}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(3, 7, 5, 6), (4, 1, 3, 8), (2, 63, 9, 60)])
@pytest.mark.parametrize("bias", [True, False])
def test_native_matches_reference_outputs_and_gradients(shape, bias, dtype):
    spec = LSTMSpec(shape[-1], use_bias=bias)
    x, h0, c0, w = problem(*shape, bias=bias, dtype=dtype)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    results = []
    for backend in (native, reference):
        out, h, c = backend.lstm(x, h0, c0, w, spec)
        weight = torch.linspace(-1, 1, out.shape[-1], dtype=dtype)
        loss = (out * weight).sum() + (h * 0.3).sum() + (c * 0.7).sum()
        grads = torch.autograd.grad(loss, leaves)
        results.append((out, h, c, *grads))
    for ours, ref in zip(*results, strict=True):
        torch.testing.assert_close(ours, ref, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


def test_dispatch_picks_cpu_then_native_for_what_they_compute():
    cuda, f64 = {"device": "cuda"}, {"dtype": torch.float64}
    assert dispatch.select_backend(LSTMSpec(4)) == "cpu"
    bf16 = "native" if cpu.bf16_requested(torch.bfloat16) else "cpu"  # oneDNN's bf16 is faster
    assert dispatch.select_backend(LSTMSpec(4), dtype=torch.bfloat16) == bf16
    dropped = LSTMNoise(recurrent_mask=torch.ones(2, 4))  # training with recurrent dropout
    dropout = LSTMSpec(4, recurrent_dropout=0.2)
    assert dispatch.select_backend(dropout, noise=dropped, dtype=torch.bfloat16) == "cpu"
    assert dispatch.select_backend(LSTMSpec(4, layer_norm=True)) == "cpu"
    assert dispatch.select_backend(LSTMSpec(4, recurrent_dropout=0.2)) == "cpu"
    assert dispatch.select_backend(LSTMSpec(4), allow_native=False) == "cpu"
    assert dispatch.select_backend(LSTMSpec(4), grad=False) == "native"  # oneDNN's forward
    assert dispatch.select_backend(LSTMSpec(4), allow_native=False, grad=False) == "cpu"
    assert dispatch.select_backend(LSTMSpec(4, layer_norm=True), grad=False) == "cpu"
    assert dispatch.select_backend(LSTMSpec(4), **f64) == "native"
    assert dispatch.select_backend(LSTMSpec(4), **cuda) == "native"
    projection = dispatch.select_backend(LSTMSpec(4, proj_size=2))
    assert projection == ("cpu" if cpu_compiled.loops() is not None else "native")
    norm = LSTMSpec(4, layer_norm=True)
    on_gpu = "triton" if triton_lstm.supports(norm, None, None) else "reference"
    assert dispatch.select_backend(norm, **cuda) == on_gpu
    assert dispatch.select_backend(LSTMSpec(4, recurrent_activation="hard_sigmoid")) == "reference"
    assert dispatch.select_backend(LSTMSpec(4, activation="relu")) == "reference"
    compiled = cpu_compiled.loops() is not None  # masks, peepholes: the compiled CPU steps
    peephole = dispatch.select_backend(LSTMSpec(4, peephole=True))
    assert peephole == ("cpu" if compiled else "reference")
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert dispatch.select_backend(LSTMSpec(4), mask=mask) == ("cpu" if compiled else "reference")
    assert dispatch.select_backend(LSTMSpec(4), mask=mask, **cuda) == on_gpu


def test_native_refuses_other_cells_and_dispatch_refuses_unknown_backends():
    x, h0, c0, w = problem(2, 3, 4, 5, bias=True)
    with pytest.raises(ValueError, match="cannot run"):
        native.lstm(x, h0, c0, w, LSTMSpec(5, activation="relu"))
    with pytest.raises(ValueError, match="Unknown LSTM backend 'cudnn9'"):
        dispatch.lstm(x, h0, c0, w, LSTMSpec(5), backend="cudnn9")


def test_spec_validates_its_fields():
    with pytest.raises(ValueError, match="units"):
        LSTMSpec(0)
    with pytest.raises(ValueError, match="Unknown activation 'tanhh'"):
        LSTMSpec(4, activation="tanhh")


def test_inference_sees_weights_changed_in_place_or_replaced():
    spec = LSTMSpec(6)
    x, h0, c0, w = problem(2, 4, 3, 6, bias=True)
    with torch.no_grad():
        first = native.lstm(x, h0, c0, w, spec)[0]
        torch.testing.assert_close(first, reference.lstm(x, h0, c0, w, spec)[0])
        w.recurrent_kernel.mul_(-0.5)  # in place, as an optimizer step or set_weights does
        w.kernel.data = w.kernel.data * 2  # new storage under the same tensor
        changed = native.lstm(x, h0, c0, w, spec)[0]
        torch.testing.assert_close(changed, reference.lstm(x, h0, c0, w, spec)[0])
    assert not torch.allclose(first, changed)
    out = native.lstm(x, h0, c0, w, spec)[0]
    out.sum().backward()
    assert w.kernel.grad is not None and w.recurrent_kernel.grad is not None
