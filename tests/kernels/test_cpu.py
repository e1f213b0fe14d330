"""The CPU kernel against the reference: outputs and every gradient, its threads and buffers.

Every test runs twice: with the compiled C++ step loops (`cpu_compiled`) and with the torch-op
loops that replace them where no compiler is at hand.
"""

import pytest
import torch

from lstmkit.kernels import LSTMNoise, LSTMWeights, cpu, cpu_buffers, cpu_compiled, reference
from lstmkit.spec import LSTMSpec


@pytest.fixture(autouse=True, params=["compiled loops", "torch-op loops"])
def loops(request, monkeypatch):
    compiled = request.param == "compiled loops"
    if compiled and cpu_compiled.loops() is None:
        pytest.skip("the C++ loops could not be compiled here")
    monkeypatch.setenv("LSTMKIT_CPU_LOOPS", "1" if compiled else "0")
    return request.param


GRAD_FIELDS = ("kernel", "recurrent_kernel", "bias", "input_norm_gamma", "recurrent_norm_gamma",
               "cell_norm_gamma", "cell_norm_beta", "peephole", "projection")  # fmt: skip


def problem(spec: LSTMSpec, B: int, T: int, D: int, seed: int = 0):
    """Float64 inputs, states, weights (Glorot-like scale, so long sequences stay tame), noise."""
    g = torch.Generator().manual_seed(seed)
    H, P = spec.units, spec.output_size

    def r(*shape, scale=0.5):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    ln = spec.layer_norm
    weights = LSTMWeights(
        kernel=r(D, 4 * H, scale=D**-0.5),
        recurrent_kernel=r(P, 4 * H, scale=P**-0.5),
        bias=r(4 * H) if spec.use_bias else None,
        input_norm_gamma=1 + r(4 * H, scale=0.2) if ln else None,
        recurrent_norm_gamma=1 + r(4 * H, scale=0.2) if ln else None,
        cell_norm_gamma=1 + r(H, scale=0.2) if ln else None,
        cell_norm_beta=r(H, scale=0.2) if ln else None,
        peephole=r(3, H) if spec.peephole else None,
        projection=r(H, P, scale=H**-0.5) if spec.proj_size else None,
    )
    drop = None
    if spec.recurrent_dropout:
        keep = torch.rand(B, P, generator=g) >= spec.recurrent_dropout
        drop = keep.double() / (1 - spec.recurrent_dropout)

    def keep_old(rate, size):  # zoneout: 1 where the old value is kept
        return (torch.rand(B, T, size, generator=g) < rate).double() if rate else None

    noise = LSTMNoise(drop, keep_old(spec.zoneout_cell, H), keep_old(spec.zoneout_hidden, P))
    return r(B, T, D), r(B, P), r(B, H), weights, noise


def leaves(args, dtype, grad_x=True, grad_states=True, grad_weights=True):
    x, h0, c0, w, noise = args

    def leaf(t, grad):
        return None if t is None else t.to(dtype).requires_grad_(grad)

    weights = LSTMWeights(**{n: leaf(getattr(w, n), grad_weights) for n in GRAD_FIELDS})
    if noise is not None:  # in the dtype of the call
        noise = LSTMNoise(*(None if t is None else t.to(dtype) for t in noise))
    return leaf(x, grad_x), leaf(h0, grad_states), leaf(c0, grad_states), weights, noise


def outputs_and_grads(kernel, spec, x, h0, c0, w, noise, loss_on=("out", "h", "c"), mask=None):
    """Outputs, final states and the gradients of a loss on them w.r.t. every leaf."""
    out, h, c = kernel.lstm(x, h0, c0, w, spec, mask, noise)
    terms = {
        "out": (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum(),
        "h": (h * 0.3).sum(),
        "c": (c * 0.7).sum(),
    }
    loss = sum(terms[k] for k in loss_on)
    wrt = [t for t in (x, h0, c0, *w) if t is not None and t.requires_grad]
    return [out, h, c, *torch.autograd.grad(loss, wrt)]


def assert_matches_reference(spec, args, dtype, mask=None, **kwargs):
    loss_on = kwargs.pop("loss_on", ("out", "h", "c"))
    ours = outputs_and_grads(cpu, spec, *leaves(args, dtype, **kwargs), loss_on, mask)
    ref = outputs_and_grads(reference, spec, *leaves(args, dtype, **kwargs), loss_on, mask)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert a.dtype == b.dtype == dtype
        if dtype == torch.float64:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    if dtype == torch.float64:
        return
    # fp32 against the float64 truth, as a fraction of each tensor's scale (weight gradients
    # sum over every step and row): within 2e-5, or within 3x the fp32 reference's own error
    # where that is larger (long rows with layer norm: 3e-5, so that two fp32 results can
    # differ by more than 1e-5 with the summation order of the CPU's matmuls)
    exact = outputs_and_grads(
        reference, spec, *leaves(args, torch.float64, **kwargs), loss_on, mask
    )  # fmt: skip
    for i, (a, b, e) in enumerate(zip(ours, ref, exact, strict=True)):
        scale = max(1.0, e.abs().max().item())
        ours_error = (a.double() - e).abs().max().item() / scale
        ref_error = (b.double() - e).abs().max().item() / scale
        assert ours_error <= max(2e-5, 3 * ref_error), (i, ours_error, ref_error)


SHAPES = {  # (B, T, D, H)
    "small": (3, 7, 5, 6),
    "one step": (4, 1, 3, 8),
    "one row, long": (1, 63, 9, 60),
    "many rows": (40, 9, 4, 6),
}
VARIANTS = {
    "plain": {},
    "recurrent_dropout": {"recurrent_dropout": 0.3},
    "layer_norm": {"layer_norm": True},
    "both": {"layer_norm": True, "recurrent_dropout": 0.25},
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_matches_reference(variant, shape, bias, dtype):
    B, T, D, H = shape
    spec = LSTMSpec(H, use_bias=bias, **variant)
    assert cpu.supports(spec, None, None)
    assert_matches_reference(spec, problem(spec, B, T, D), dtype)


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_backward_in_blocks(variant, monkeypatch):
    """Blocks of two steps, the last one partial."""
    monkeypatch.setattr(cpu, "BLOCK_ELEMENTS", 1)
    spec = LSTMSpec(7, **variant)
    for dtype in (torch.float32, torch.float64):
        assert_matches_reference(spec, problem(spec, 9, 11, 5, seed=1), dtype)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_batch_rows_split_across_threads(variant, threads, loops):
    """The compiled steps give each thread its own rows (here uneven: 7 rows over 2 or 3)."""
    if variant.get("layer_norm") and loops != "compiled loops":
        pytest.skip("torch's own norms on 2+ threads round differently (up to 6e-5)")
    spec = LSTMSpec(6, **variant)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for dtype in (torch.float32, torch.float64):
            assert_matches_reference(spec, problem(spec, 7, 9, 4, seed=2), dtype)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize(
    "grads",
    [
        {"grad_x": False},  # the first layer: no input gradient
        {"grad_x": False, "grad_states": False},
        {"grad_weights": False},
        {"grad_x": False, "grad_weights": False},
    ],
)
@pytest.mark.parametrize("loss_on", [("out",), ("h",), ("c",), ("out", "c")])
def test_only_the_gradients_asked_for(grads, loss_on):
    spec = LSTMSpec(6, layer_norm=True)
    args = problem(spec, 5, 6, 4)
    assert_matches_reference(spec, args, torch.float32, loss_on=loss_on, **grads)


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_gradcheck_float64(variant):
    spec = LSTMSpec(4, **variant)
    x, h0, c0, w, noise = problem(spec, 3, 4, 3)
    names = [n for n in GRAD_FIELDS if getattr(w, n) is not None]
    inputs = [t.requires_grad_() for t in (x, h0, c0, *(getattr(w, n) for n in names))]

    def f(x, h0, c0, *tensors):
        return cpu.lstm(
            x, h0, c0, LSTMWeights(**dict(zip(names, tensors, strict=True))), spec, None, noise
        )

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def test_inference_matches_reference_and_keeps_no_graph():
    spec = LSTMSpec(8)
    x, h0, c0, w, _ = leaves(problem(spec, 4, 5, 3), torch.float32)
    with torch.no_grad():
        ours = cpu.lstm(x, h0, c0, w, spec)
        ref = reference.lstm(x, h0, c0, w, spec)
    for a, b in zip(ours, ref, strict=True):
        assert a.grad_fn is None
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_graph_keeps_its_buffers_until_freed():
    """Two forwards with both graphs alive, then their backwards: no buffer lent twice."""
    spec = LSTMSpec(6)
    first, second = problem(spec, 3, 5, 4, seed=1), problem(spec, 3, 5, 4, seed=2)
    refs = [outputs_and_grads(reference, spec, *leaves(a, torch.float32)) for a in (first, second)]
    graphs = []
    for args in (first, second):
        x, h0, c0, w, noise = leaves(args, torch.float32)
        out, h, c = cpu.lstm(x, h0, c0, w, spec, None, noise)
        loss = (out * torch.linspace(-1, 1, 6)).sum() + (h * 0.3).sum() + (c * 0.7).sum()
        graphs.append((loss, [out, h, c], [x, h0, c0, *(t for t in w if t is not None)]))
    for (loss, outs, wrt), ref in zip(graphs, refs, strict=True):
        ours = outs + list(torch.autograd.grad(loss, wrt))
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 5), (4, 1), (1, 1)])
def test_outputs_are_not_views_of_pooled_buffers(shape):
    """A later call reuses the buffers; what an earlier call returned must not change."""
    spec = LSTMSpec(6)
    B, T = shape
    first = leaves(problem(spec, B, T, 3, seed=1), torch.float32, False, False, False)
    with torch.no_grad():
        out, h, c = cpu.lstm(*first[:4], spec)
        kept = [t.clone() for t in (out, h, c)]
        cpu.lstm(*leaves(problem(spec, B, T, 3, seed=2), torch.float32)[:4], spec)
    for a, b in zip((out, h, c), kept, strict=True):
        assert torch.equal(a, b)


def test_buffers_return_to_the_pool():
    cpu_buffers._free.clear()
    lease = cpu_buffers.Lease()
    a = lease.empty(3, 4, dtype=torch.float32)
    assert a.shape == (3, 4)
    del lease, a
    again = cpu_buffers.Lease()
    assert cpu_buffers._free[(12, torch.float32)]
    again.empty(12, dtype=torch.float32)
    assert not cpu_buffers._free[(12, torch.float32)]


@pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no bf16 instructions"
)
@pytest.mark.parametrize("variant", [{}, {"recurrent_dropout": 0.3}], ids=["plain", "dropout"])
def test_bf16_within_one_percent(variant):
    """Under bf16 autocast the GEMMs run in bf16 (the state stays float32); and with bf16
    inputs and weights the outputs and gradients are bf16."""
    spec = LSTMSpec(16, **variant)
    args = problem(spec, 6, 12, 8)
    ref = outputs_and_grads(reference, spec, *leaves(args, torch.float32))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = outputs_and_grads(cpu, spec, *leaves(args, torch.float32))
    halves = outputs_and_grads(cpu, spec, *leaves(args, torch.bfloat16))
    for a, h, b in zip(ours, halves, ref, strict=True):
        assert a.dtype == torch.float32 and h.dtype == torch.bfloat16
        scale = b.abs().max().item()
        assert 0 < (a - b).abs().max() <= 1e-2 * scale  # bf16: close, not equal
        torch.testing.assert_close(h.float(), b, rtol=2e-2, atol=1e-2 * scale)


def test_layer_norm_keeps_float32_gemms_under_autocast():
    spec = LSTMSpec(16, layer_norm=True)
    args = problem(spec, 6, 12, 8)
    ref = outputs_and_grads(reference, spec, *leaves(args, torch.float32))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = outputs_and_grads(cpu, spec, *leaves(args, torch.float32))
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * max(1.0, b.abs().max().item()))


def test_supports_the_tanh_sigmoid_cell(loops):
    assert cpu.supports(LSTMSpec(4, layer_norm=True, recurrent_dropout=0.2), None, None)
    assert not cpu.supports(LSTMSpec(4, activation="relu"), None, None)
    assert not cpu.supports(LSTMSpec(4, recurrent_activation="hard_sigmoid"), None, None)
    assert cpu.supports(LSTMSpec(4, peephole=True), None, None) == (loops == "compiled loops")
    assert not cpu.supports(LSTMSpec(4, peephole=True, layer_norm=True), None, None)
    compiled = loops == "compiled loops"
    assert cpu.supports(LSTMSpec(4, proj_size=2), None, None) == compiled
    assert not cpu.supports(LSTMSpec(4, proj_size=2, layer_norm=True), None, None)
    assert cpu.supports(LSTMSpec(4, zoneout_cell=0.1), None, None) == compiled
    assert not cpu.supports(LSTMSpec(4, zoneout_cell=0.1, layer_norm=True), None, None)
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert cpu.supports(LSTMSpec(4), mask, None) == compiled
    assert not cpu.supports(LSTMSpec(4, layer_norm=True), mask, None)
    with pytest.raises(ValueError, match="cannot run"):
        x = torch.zeros(2, 3, 4)
        cpu.lstm(x, x[:, 0], x[:, 0], None, LSTMSpec(4, activation="relu"))


def test_nan_and_inf_propagate_and_large_inputs_saturate_as_in_the_reference():
    spec = LSTMSpec(8)
    x, h0, c0, w, _ = leaves(problem(spec, B=4, T=5, D=3), torch.float32)
    with torch.no_grad():
        w.recurrent_kernel[0, 0] = float("nan")
        w.kernel[0, 1] = float("inf")
    ours, ref = cpu.lstm(x, h0, c0, w, spec), reference.lstm(x, h0, c0, w, spec)
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(torch.isnan(a), torch.isnan(b))
    ours[1].sum().backward()
    assert torch.isnan(w.recurrent_kernel.grad).any()
    x, h0, c0, w, _ = leaves(problem(spec, B=4, T=5, D=3), torch.float32)
    big = x.detach() * 1e4
    ours, ref = cpu.lstm(big, h0, c0, w, spec)[0], reference.lstm(big, h0, c0, w, spec)[0]
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


MASKS = {  # (B=4, T=6): True where a step is real
    "post-padding": [[1, 1, 1, 1, 0, 0], [1] * 6, [1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0]],
    "pre-padding": [[0, 0, 1, 1, 1, 1], [1] * 6, [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 1]],
    "holes and an empty row": [[1, 0, 1, 0, 1, 0], [0] * 6, [0, 1, 1, 0, 0, 1], [1] * 6],
}


@pytest.mark.parametrize("mask", MASKS.values(), ids=MASKS.keys())
@pytest.mark.parametrize("variant", [{}, {"recurrent_dropout": 0.3}], ids=["plain", "dropout"])
def test_masks_match_reference(mask, variant, loops):
    """Keras's masking: states carry over a masked step, the output repeats (0 before the
    first real step); gradients too, with a loss on every output and the final states."""
    if loops != "compiled loops":
        pytest.skip("masks run on the compiled steps only")
    spec = LSTMSpec(5, **variant)
    mask = torch.tensor(mask, dtype=torch.bool)
    for dtype in (torch.float32, torch.float64):
        for loss_on in (("out", "h", "c"), ("h",), ("out",)):
            args = problem(spec, 4, 6, 3, seed=3)
            assert_matches_reference(spec, args, dtype, mask=mask, loss_on=loss_on)


def test_masks_in_blocks_and_threads_and_gradcheck(loops, monkeypatch):
    if loops != "compiled loops":
        pytest.skip("masks run on the compiled steps only")
    spec = LSTMSpec(4, recurrent_dropout=0.2)
    mask = torch.tensor(MASKS["holes and an empty row"] * 2, dtype=torch.bool)  # (8, 6)
    monkeypatch.setattr(cpu, "BLOCK_ELEMENTS", 1)  # blocks of a few steps
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        assert_matches_reference(spec, problem(spec, 8, 6, 3, seed=4), torch.float64, mask=mask)
    finally:
        torch.set_num_threads(previous)
    x, h0, c0, w, noise = leaves(problem(spec, 3, 5, 2, seed=5), torch.float64)
    small = mask[:3, :5]

    def run(*t):
        return cpu.lstm(t[0], t[1], t[2], LSTMWeights(*t[3:], *[None] * 4), spec, small, noise)

    assert torch.autograd.gradcheck(run, (x, h0, c0, w.kernel, w.recurrent_kernel, w.bias))


ZONEOUT = {
    "cell": {"zoneout_cell": 0.3},
    "hidden": {"zoneout_hidden": 0.4},
    "both, with recurrent dropout": {"zoneout_cell": 0.2, "zoneout_hidden": 0.3,
                                     "recurrent_dropout": 0.25},
}  # fmt: skip


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("variant", ZONEOUT.values(), ids=ZONEOUT.keys())
def test_zoneout_matches_reference(variant, training, masked, loops):
    """Zoneout (Krueger et al. 2017): keep masks in training, the rates' expectation at
    inference; with and without a mask; outputs and every gradient."""
    if loops != "compiled loops":
        pytest.skip("zoneout runs on the compiled steps only")
    spec = LSTMSpec(5, **variant)
    x, h0, c0, w, noise = problem(spec, 4, 6, 3, seed=6)
    if not training:
        noise = None
    mask = torch.tensor(MASKS["holes and an empty row"], dtype=torch.bool) if masked else None
    for dtype in (torch.float32, torch.float64):
        assert_matches_reference(spec, (x, h0, c0, w, noise), dtype, mask=mask)


def test_zoneout_gradcheck(loops):
    if loops != "compiled loops":
        pytest.skip("zoneout runs on the compiled steps only")
    spec = LSTMSpec(3, zoneout_cell=0.3, zoneout_hidden=0.5)
    x, h0, c0, w, noise = leaves(problem(spec, 2, 4, 2, seed=8), torch.float64)
    g = torch.Generator().manual_seed(9)
    noise = LSTMNoise(
        zoneout_cell=(torch.rand(2, 4, 3, generator=g) < 0.3).double(),
        zoneout_hidden=(torch.rand(2, 4, 3, generator=g) < 0.5).double(),
    )

    def run(*t):
        return cpu.lstm(t[0], t[1], t[2], LSTMWeights(*t[3:], *[None] * 4), spec, None, noise)

    assert torch.autograd.gradcheck(run, (x, h0, c0, w.kernel, w.recurrent_kernel, w.bias))


PEEPHOLE = {
    "alone": {"peephole": True},
    "with dropout and zoneout": {"peephole": True, "recurrent_dropout": 0.2,
                                 "zoneout_cell": 0.3, "zoneout_hidden": 0.2},
}  # fmt: skip


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("variant", PEEPHOLE.values(), ids=PEEPHOLE.keys())
def test_peepholes_match_reference(variant, masked, loops):
    """Peepholes (Gers & Schmidhuber 2000): i and f see c_{t-1}, o sees c_t; the peephole
    weights get their gradients too."""
    if loops != "compiled loops":
        pytest.skip("peepholes run on the compiled steps only")
    spec = LSTMSpec(5, **variant)
    x, h0, c0, w, noise = problem(spec, 4, 6, 3, seed=10)
    mask = torch.tensor(MASKS["pre-padding"], dtype=torch.bool) if masked else None
    for dtype in (torch.float32, torch.float64):
        assert_matches_reference(spec, (x, h0, c0, w, noise), dtype, mask=mask)


def test_peephole_gradcheck(loops):
    if loops != "compiled loops":
        pytest.skip("peepholes run on the compiled steps only")
    spec = LSTMSpec(3, peephole=True, zoneout_cell=0.4)
    x, h0, c0, w, _ = leaves(problem(spec, 2, 4, 2, seed=12), torch.float64)
    noise = LSTMNoise(zoneout_cell=torch.tensor([[0, 1, 0, 1], [1, 0, 0, 1]]).double()[..., None]
                      .expand(2, 4, 3).contiguous())  # fmt: skip
    mask = torch.tensor([[1, 1, 0, 1], [0, 1, 1, 1]], dtype=torch.bool)

    def run(x, h0, c0, kernel, recurrent, bias, peephole):
        weights = LSTMWeights(kernel, recurrent, bias, peephole=peephole)
        return cpu.lstm(x, h0, c0, weights, spec, mask, noise)

    assert torch.autograd.gradcheck(
        run, (x, h0, c0, w.kernel, w.recurrent_kernel, w.bias, w.peephole)
    )


PROJECTION = {
    "alone": {"proj_size": 3},
    "with everything": {"proj_size": 3, "peephole": True, "recurrent_dropout": 0.2,
                        "zoneout_cell": 0.3, "zoneout_hidden": 0.2},
}  # fmt: skip


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("variant", PROJECTION.values(), ids=PROJECTION.keys())
def test_projection_matches_reference(variant, masked, loops):
    """Projection (Sak et al. 2014): h_t = (o tanh c_t) W_hr, of size P < H; alone and with
    every other variant the compiled steps run, with and without a mask."""
    if loops != "compiled loops":
        pytest.skip("projection runs on the compiled steps only")
    spec = LSTMSpec(5, **variant)
    mask = torch.tensor(MASKS["post-padding"], dtype=torch.bool) if masked else None
    for dtype in (torch.float32, torch.float64):
        assert_matches_reference(spec, problem(spec, 4, 6, 3, seed=13), dtype, mask=mask)
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        assert_matches_reference(spec, problem(spec, 4, 6, 3, seed=13), torch.float64, mask=mask)
    finally:
        torch.set_num_threads(previous)


def test_projection_gradcheck(loops):
    if loops != "compiled loops":
        pytest.skip("projection runs on the compiled steps only")
    spec = LSTMSpec(4, proj_size=2, zoneout_hidden=0.5)
    x, h0, c0, w, noise = leaves(problem(spec, 2, 4, 2, seed=14), torch.float64)

    def run(x, h0, c0, kernel, recurrent, bias, projection):
        weights = LSTMWeights(kernel, recurrent, bias, projection=projection)
        return cpu.lstm(x, h0, c0, weights, spec, None, noise)

    assert torch.autograd.gradcheck(
        run, (x, h0, c0, w.kernel, w.recurrent_kernel, w.bias, w.projection)
    )
