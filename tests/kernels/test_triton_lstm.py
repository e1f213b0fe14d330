"""The fused Triton kernels against the reference: outputs and every gradient.

Without CUDA they run under Triton's interpreter (``TRITON_INTERPRET=1``, set here), at small
odd shapes: about 10 s on two cores. On a GPU the same cases run compiled (true fp32 dots), and
the ``cuda`` tests check accuracy at the benchmark shape (B=64, T=100, I=32, H=128) with TF32
and with bf16 autocast.
"""

import collections
import importlib
import os
import sys
import weakref
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

if not torch.cuda.is_available():
    # before triton is imported here and before the kernels are first used (triton_lstm then
    # wraps them for the interpreter even if keras imported triton earlier in the session)
    os.environ.setdefault("TRITON_INTERPRET", "1")

pytest.importorskip("triton")

from lstmkit.kernels import (  # noqa: E402
    dispatch,
    reference,
    triton_cell,
    triton_lstm,
    triton_persistent,
    triton_split,
)
from lstmkit.kernels.triton_lstm import TritonConfig  # noqa: E402
from lstmkit.kernels.weights import LSTMNoise, LSTMWeights  # noqa: E402
from lstmkit.spec import LSTMSpec  # noqa: E402

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
if not CUDA and not triton_lstm.interpreter_ready():
    pytest.skip(
        "no CUDA, and TRITON_INTERPRET is set to something other than 1",
        allow_module_level=True,
    )

SMALL = TritonConfig(16, 16, 16, 4, 1)  # 16-unit chunks: H=20 runs two hidden chunks
SPLIT = TritonConfig(16, 16, 16, 4, 1, split=True)  # H=20: two programs per batch tile
RESIDENT = TritonConfig(16, 16, 64, 4, 1, split=True)  # K chunk >= H: U held on the SM


def problem(
    spec, B=3, T=5, D=4, training=False, dtype=torch.float32, device=DEVICE, seed=0, long=False
):
    """Random inputs, state, weights (and training noise) for ``spec``, as leaves.

    ``long``: a well-conditioned draw for T=100 (unit-variance projections, gains near 1 and
    γ_h = 0.5: with random gains the layer-norm cell is chaotic over 100 steps, and even the
    float32 reference's gradients are then off by 1e-3)."""
    g = torch.Generator().manual_seed(seed)
    H, P = spec.units, spec.output_size

    def r(*shape, scale=0.5):
        t = torch.randn(*shape, generator=g, dtype=torch.float64) * scale
        return t.to(device=device, dtype=dtype).requires_grad_()

    def gain(n, mean):
        return (mean * (1 + 0.1 * r(n))).detach().requires_grad_() if long else r(n)

    weights = LSTMWeights(
        kernel=r(D, 4 * H, scale=D**-0.5 if long else 0.5),
        recurrent_kernel=r(P, 4 * H, scale=P**-0.5),
        bias=r(4 * H, scale=0.1 if long else 0.5) if spec.use_bias else None,
        peephole=r(3, H, scale=0.1 if long else 0.5) if spec.peephole else None,
        projection=r(H, P, scale=H**-0.5) if spec.proj_size else None,
        input_norm_gamma=gain(4 * H, 1.0) if spec.layer_norm else None,
        recurrent_norm_gamma=gain(4 * H, 0.5) if spec.layer_norm else None,
        cell_norm_gamma=gain(H, 1.0) if spec.layer_norm else None,
        cell_norm_beta=r(H, scale=0.1 if long else 0.5) if spec.layer_norm else None,
    )
    noise = None
    if training:

        def bern(*shape, p):
            return (torch.rand(*shape, generator=g) < p).to(device=device, dtype=dtype)

        noise = LSTMNoise(
            recurrent_mask=bern(B, P, p=0.7) / 0.7 if spec.recurrent_dropout else None,
            zoneout_cell=bern(B, T, H, p=spec.zoneout_cell) if spec.zoneout_cell else None,
            zoneout_hidden=bern(B, T, P, p=spec.zoneout_hidden) if spec.zoneout_hidden else None,
        )
    return r(B, T, D), r(B, P), r(B, H), weights, noise


def outputs_and_grads(backend, x, h0, c0, w, spec, mask=None, noise=None, **kwargs):
    """(outputs, h_T, c_T, d x, d h0, d c0, d every weight) for a random linear loss."""
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    out, h, c = backend.lstm(x, h0, c0, w, spec, mask, noise, **kwargs)
    g = torch.Generator().manual_seed(1)
    loss = sum(
        (t.double() * torch.randn(t.shape, generator=g, dtype=torch.float64).to(t.device)).sum()
        for t in (out, h, c)
    )
    return [out, h, c, *torch.autograd.grad(loss, leaves)]


def names(w):
    return ["outputs", "h_T", "c_T", "dx", "dh0", "dc0"] + [
        n for n in LSTMWeights._fields if getattr(w, n) is not None
    ]


def rel_err(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def mask_3x5():
    """Pre-padding, post-padding and a fully masked row."""
    rows = [[0, 1, 1, 1, 0], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]]
    return torch.tensor(rows, dtype=torch.bool, device=DEVICE)


def lengths_mask(B, T, seed=3):
    lengths = torch.randint(0, T + 1, (B,), generator=torch.Generator().manual_seed(seed))
    return (torch.arange(T)[None, :] < lengths[:, None]).to(DEVICE)


EVERYTHING = dict(
    peephole=True,
    layer_norm=True,
    proj_size=17,
    zoneout_cell=0.2,
    zoneout_hidden=0.1,
    recurrent_dropout=0.25,
)
SPLIT_VARIANTS = dict(peephole=True, zoneout_cell=0.2, zoneout_hidden=0.1, recurrent_dropout=0.25)

# name: (spec, problem kwargs, mask, training, config)
CASES = {
    "plain": (LSTMSpec(8), {}, None, False, None),
    "h6_no_bias_t1": (LSTMSpec(6, use_bias=False), dict(T=1), None, False, None),
    "mask": (LSTMSpec(8), {}, mask_3x5, False, None),
    "mask_two_chunks": (LSTMSpec(20), {}, mask_3x5, False, SMALL),
    "peephole": (LSTMSpec(8, peephole=True), {}, mask_3x5, False, None),
    "peephole_unmasked": (LSTMSpec(8, peephole=True), {}, None, False, None),
    "recurrent_dropout": (LSTMSpec(8, recurrent_dropout=0.3), {}, None, True, None),
    "zoneout_training": (
        LSTMSpec(8, zoneout_cell=0.3, zoneout_hidden=0.2),
        {},
        mask_3x5,
        True,
        None,
    ),
    # the hidden state's keep is the mask alone (bool), the cell's from zoneout and the mask
    "zoneout_cell_alone_masked": (LSTMSpec(8, zoneout_cell=0.3), {}, mask_3x5, True, None),
    "zoneout_inference": (
        LSTMSpec(8, zoneout_cell=0.3, zoneout_hidden=0.2),
        {},
        mask_3x5,
        False,
        None,
    ),
    "projection": (LSTMSpec(8, proj_size=5), {}, None, False, None),
    "projection_two_chunks": (LSTMSpec(20, proj_size=18), {}, mask_3x5, False, SMALL),
    "layer_norm": (LSTMSpec(8, layer_norm=True), {}, None, False, None),
    "layer_norm_two_chunks": (LSTMSpec(20, layer_norm=True), {}, mask_3x5, False, SMALL),
    "softsign_hard_sigmoid": (LSTMSpec(6, "softsign", "hard_sigmoid"), {}, None, False, None),
    "everything_training": (
        LSTMSpec(20, "relu", "hard_sigmoid", **EVERYTHING),
        {},
        mask_3x5,
        True,
        SMALL,
    ),
    "everything_two_tiles": (
        LSTMSpec(20, **EVERYTHING),
        dict(B=19),
        lambda: lengths_mask(19, 5),
        False,
        SMALL,
    ),
    # the split-hidden layout (each step a launch under the interpreter)
    "split_plain": (LSTMSpec(20), {}, None, False, SPLIT),
    "split_t1_no_bias": (LSTMSpec(6, use_bias=False), dict(T=1), None, False, SPLIT),
    "split_mask_peephole": (LSTMSpec(20, peephole=True), {}, mask_3x5, False, SPLIT),
    "split_variants_training": (
        LSTMSpec(20, "relu", "hard_sigmoid", **SPLIT_VARIANTS),
        {},
        mask_3x5,
        True,
        SPLIT,
    ),
    "split_variants_two_tiles": (
        LSTMSpec(33, **SPLIT_VARIANTS),
        dict(B=19),
        lambda: lengths_mask(19, 5),
        True,
        SPLIT,
    ),
    "split_projection": (LSTMSpec(20, proj_size=18), {}, mask_3x5, False, SPLIT),
    "split_projection_variants_two_tiles": (
        LSTMSpec(40, "relu", "hard_sigmoid", proj_size=7, **SPLIT_VARIANTS),
        dict(B=19),
        lambda: lengths_mask(19, 5),
        True,
        SPLIT,
    ),
    "split_layer_norm": (LSTMSpec(20, layer_norm=True), {}, mask_3x5, False, SPLIT),
    "split_everything_training": (
        LSTMSpec(20, "relu", "hard_sigmoid", **EVERYTHING),
        {},
        mask_3x5,
        True,
        SPLIT,
    ),
    "split_everything_two_tiles": (
        LSTMSpec(30, **EVERYTHING),  # two programs a tile, the second on 14 units
        dict(B=19),
        lambda: lengths_mask(19, 5),
        True,
        SPLIT,
    ),
    "split_resident_plain": (LSTMSpec(20), {}, None, False, RESIDENT),
    "split_resident_everything_training": (
        LSTMSpec(20, "relu", "hard_sigmoid", **EVERYTHING),
        {},
        mask_3x5,
        True,
        RESIDENT,
    ),
    "split_resident_everything_two_tiles": (
        LSTMSpec(30, **EVERYTHING),  # two programs a tile, the second on 14 units
        dict(B=19),
        lambda: lengths_mask(19, 5),
        True,
        RESIDENT,
    ),
    # one program per batch tile: each tile's whole time loop in one launch, barriers and all
    "split_one_program_everything_two_tiles": (
        LSTMSpec(16, "relu", "hard_sigmoid", **{**EVERYTHING, "proj_size": 11}),
        dict(B=19),
        lambda: lengths_mask(19, 5),
        True,
        SPLIT,
    ),
    "split_one_program_resident_layer_norm": (
        LSTMSpec(14, layer_norm=True),
        {},
        mask_3x5,
        False,
        RESIDENT,
    ),
    # 17 programs a tile: the row statistics' merges read the programs' pairs 16 at a time
    "split_layer_norm_more_programs_than_units": (
        LSTMSpec(264, layer_norm=True),
        dict(B=3, T=2),
        None,
        False,
        RESIDENT,
    ),
    "split_zoneout_inference": (
        LSTMSpec(20, "softsign", zoneout_cell=0.3, zoneout_hidden=0.2),
        {},
        mask_3x5,
        False,
        SPLIT,
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_matches_reference_outputs_and_every_gradient(name, no_tf32):
    spec, kwargs, make_mask, training, config = CASES[name]
    x, h0, c0, w, noise = problem(spec, training=training, **kwargs)
    mask = make_mask() if make_mask else None
    ours = outputs_and_grads(triton_lstm, x, h0, c0, w, spec, mask, noise, config=config)
    ref = outputs_and_grads(reference, x, h0, c0, w, spec, mask, noise)
    for label, a, b in zip(names(w), ours, ref, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, label
        # measured under the interpreter: max abs error 1.2e-5, relative (norm) 9e-7 at worst
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5, msg=lambda m, n=label: f"{n}: {m}")
    if mask is not None:  # a fully masked row keeps its initial state and outputs zeros
        dead = ~mask.any(1)
        assert torch.equal(ours[1][dead], h0[dead]) and torch.equal(ours[2][dead], c0[dead])
        assert not ours[0][dead].any()


def _flipped(t):
    return None if t is None else t.flip(1)


class _BackwardsByFlips:
    """The reference run backwards by hand: over x, the mask and the zoneout masks flipped in
    time, its outputs flipped back (aligned with the inputs, as go_backwards returns them)."""

    @staticmethod
    def lstm(x, h0, c0, w, spec, mask=None, noise=None):
        if noise is not None:
            noise = LSTMNoise(
                noise.recurrent_mask, _flipped(noise.zoneout_cell), _flipped(noise.zoneout_hidden)
            )
        out, h, c = reference.lstm(x.flip(1), h0, c0, w, spec, _flipped(mask), noise)
        return out.flip(1), h, c


class _BackwardsByDispatch:
    @staticmethod
    def lstm(*args):
        return dispatch.lstm(*args, backend="reference", go_backwards=True)


# both layouts; masks with pre- and post-padding and a row with no real step; training noise;
# the split layout's launch per phase and its one launch with barriers
BACKWARDS_CASES = [
    "plain",
    "mask",
    "everything_training",
    "split_plain",
    "split_everything_training",
    "split_one_program_everything_two_tiles",
]


@pytest.mark.parametrize("name", BACKWARDS_CASES)
def test_go_backwards_runs_the_steps_in_reverse_inside_the_kernels(name, no_tf32):
    """go_backwards: the kernels walk the steps from the last, every buffer aligned with the
    inputs, and match the reference over the flipped steps; so do dispatch's flips around a
    backend that cannot (here the reference)."""
    spec, kwargs, make_mask, training, config = CASES[name]
    x, h0, c0, w, noise = problem(spec, training=training, **kwargs)
    mask = make_mask() if make_mask else None
    args = (x, h0, c0, w, spec, mask, noise)
    ours = outputs_and_grads(triton_lstm, *args, config=config, go_backwards=True)
    ref = outputs_and_grads(_BackwardsByFlips, *args)
    flips = outputs_and_grads(_BackwardsByDispatch, *args)
    forwards = outputs_and_grads(reference, *args)
    assert not torch.allclose(ref[0], forwards[0])  # the direction matters here
    for label, a, b, c in zip(names(w), ours, ref, flips, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5, msg=lambda m, n=label: f"{n}: {m}")
        torch.testing.assert_close(c, b, msg=lambda m, n=label: f"dispatch, {n}: {m}")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_low_precision_path_under_autocast(dtype, config):
    """bf16 / fp16 dot operands (emulated in the interpreter, bf16 with round-to-nearest-even),
    fp32 state; outputs come back in that dtype as cuDNN's do, gradients in the leaves'."""
    spec = LSTMSpec(20, peephole=True, proj_size=9)
    x, h0, c0, w, _ = problem(spec)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    with torch.autocast(DEVICE, dtype=dtype):
        out, h, c = triton_lstm.lstm(x, h0, c0, w, spec, config=config)
    assert out.dtype == h.dtype == c.dtype == dtype
    grads = torch.autograd.grad(out.float().sum() + h.float().sum() + c.float().sum(), leaves)
    ref_out, ref_h, ref_c = reference.lstm(x, h0, c0, w, spec)
    ref_grads = torch.autograd.grad(ref_out.sum() + ref_h.sum() + ref_c.sum(), leaves)
    for a, b in zip([out, h, c, *grads], [ref_out, ref_h, ref_c, *ref_grads], strict=True):
        assert a.shape == b.shape
        # measured ≤ 1.3e-2; the reference itself under CPU autocast: ≤ 1.3e-2 at this size
        assert rel_err(a, b) < 3e-2


@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
@pytest.mark.parametrize(
    "spec",
    [
        LSTMSpec(20, layer_norm=True, zoneout_cell=0.1, zoneout_hidden=0.1),
        LSTMSpec(20, proj_size=9),
    ],
    ids=["layer_norm_zoneout", "projection"],
)
def test_bf16_inputs_and_weights_without_autocast(spec, config):
    """A model cast to bf16 (inputs, state and weights bf16, no autocast) runs in bf16, with
    gradients in bf16, near the float64 reference."""
    x, h0, c0, w, noise = problem(spec, dtype=torch.bfloat16, training=True)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    outs = triton_lstm.lstm(x, h0, c0, w, spec, noise=noise, config=config)
    grads = torch.autograd.grad(sum(o.float().sum() for o in outs), leaves)

    def f64(t):
        return None if t is None else t.detach().double().requires_grad_()

    leaves64 = [f64(t) for t in leaves]
    w64 = LSTMWeights(*(f64(t) for t in w))
    noise64 = LSTMNoise(*(None if t is None else t.double() for t in noise))
    ref = reference.lstm(*leaves64[:3], w64, spec, noise=noise64)
    ref_grads = torch.autograd.grad(
        sum(o.sum() for o in ref), [*leaves64[:3], *(t for t in w64 if t is not None)]
    )
    assert all(t.dtype == torch.bfloat16 for t in [*outs, *grads])
    for a, b in zip([*outs, *grads], [*ref, *ref_grads], strict=True):
        assert rel_err(a, b) < 3e-2  # measured ≤ 5.0e-3


@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_strided_gradients_of_the_last_states(config, no_tf32):
    """h_T and c_T used through a transpose get transposed (strided) gradients."""
    spec = LSTMSpec(20)
    x, h0, c0, w, _ = problem(spec, B=4)
    target = torch.randn(20, 4, dtype=torch.float64).float().to(DEVICE)
    grads = []
    for backend, kwargs in ((triton_lstm, dict(config=config)), (reference, {})):
        outputs, h_t, c_t = backend.lstm(x, h0, c0, w, spec, **kwargs)
        loss = (h_t.t() * target).sum() + (c_t.t() * target).square().sum() + outputs.sum()
        grads.append(torch.autograd.grad(loss, [x, h0, c0, w.recurrent_kernel]))
    for ours, ref in zip(*grads, strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=2e-5)


def test_supports_and_refusals():
    assert triton_lstm.supports(LSTMSpec(8), None, None)
    assert triton_lstm.supports(LSTMSpec(20, "relu", "hard_sigmoid", **EVERYTHING), None, None)
    assert not triton_lstm.supports(LSTMSpec(8, activation="gelu"), None, None)
    assert not triton_lstm.supports(LSTMSpec(8, recurrent_activation="swish"), None, None)
    spec = LSTMSpec(8, activation="gelu")
    x, h0, c0, w, _ = problem(spec)
    with pytest.raises(ValueError, match="cannot run"):
        triton_lstm.lstm(x, h0, c0, w, spec)
    x, h0, c0, w, _ = problem(LSTMSpec(8), dtype=torch.float64)
    with pytest.raises(ValueError, match="float32, bfloat16 or float16"):
        triton_lstm.lstm(x, h0, c0, w, LSTMSpec(8))
    with pytest.raises(ValueError, match="power of two"):
        TritonConfig(block_h=24)


def test_every_device_function_is_wrapped_and_calls_no_jitted_helper_of_triton():
    """A function of the kernel modules that uses ``tl`` is a device function: `_triton()` must
    wrap it (its name in the module's list), or compiled kernels cannot call it although the
    interpreter can; and none calls triton.language's own jitted helpers (tl.zeros, tl.cdiv,
    …), which fail under the interpreter where triton was first imported in compiled mode."""
    import ast

    import triton.language

    jitted = {
        name
        for name in dir(triton.language)
        if type(getattr(triton.language, name)).__name__ in ("JITFunction", "InterpretedFunction")
    }
    assert {"zeros", "cdiv", "sum"} <= jitted
    for module, wrapped in (
        (triton_lstm, ()),  # the host side: no Triton code
        (triton_cell, triton_cell.JIT_FUNCTIONS),
        (triton_persistent, triton_persistent.JIT_FUNCTIONS),
        (triton_split, triton_split.JIT_FUNCTIONS),
    ):
        tree = ast.parse(Path(module.__file__).read_text())
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            used = {
                node.attr
                for node in ast.walk(fn)
                if isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "tl"
            }
            if used and fn.name != "_triton":
                assert fn.name in wrapped, f"{module.__name__}.{fn.name} is not wrapped"
                assert not used & jitted, f"{fn.name} calls tl.{used & jitted}"


def test_tf32_rounding_is_round_to_nearest_even():
    bits = torch.tensor(
        [0x3F800000, 0x3F801000, 0x3F803000, 0x3F801001, 0xBF807FFF, 0x7F7FF000, 0x00001FFF],
        dtype=torch.int64,
    )
    x = torch.cat([(bits - (bits >= 2**31) * 2**32).to(torch.int32).view(torch.float32),
                   torch.tensor([float("inf"), float("nan"), 0.0])])  # fmt: skip
    expected = torch.tensor(
        [0x3F800000, 0x3F800000, 0x3F804000, 0x3F802000, 0xBF808000, 0x7F800000, 0x00002000],
        dtype=torch.int64,
    )
    rounded = triton_lstm._tf32(x)
    assert torch.equal(rounded[:7].view(torch.int32).to(torch.int64) & 0xFFFFFFFF, expected)
    assert rounded[7] == float("inf") and rounded[8].isnan() and rounded[9] == 0.0


def test_tf32_parts_are_the_rounded_value_and_its_rounded_rest():
    """The operands of three-product TF32 dots: x's TF32 part and the TF32 part of the rest,
    which together hold x to about 2⁻²² of it."""
    x = torch.randn(3, 1000, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    hi, rest = triton_lstm._tf32(x, 2)
    assert torch.equal(hi, triton_lstm._tf32(x)) and torch.equal(rest, triton_lstm._tf32(x - hi))
    assert not torch.equal(hi, x)
    assert ((hi.double() + rest.double() - x.double()).abs() <= x.abs().double() * 2**-21).all()


def test_one_operands_launch_does_three_jobs_and_zeroes_the_counters():
    """`_operands_into`: U in two TF32 parts, h0 ⊙ dropout rounded (the first job, scaled) and
    W_hr rounded, each into its own buffer, with the split layout's counters zeroed, in one
    launch; a job of several blocks (3000 elements) among them."""
    g = torch.Generator().manual_seed(5)
    u, h0, wr = (torch.randn(*s, generator=g).to(DEVICE) for s in ((3, 1000), (4, 7), (6, 5)))
    keep = (torch.rand(4, 7, generator=g) < 0.7).float().to(DEVICE) / 0.7
    u_out, h0_out, wr_out = (
        torch.empty(p, *t.shape, device=DEVICE) for p, t in ((2, u), (1, h0), (1, wr))
    )
    counters = torch.ones(5, dtype=torch.int32, device=DEVICE)
    triton_lstm._operands_into(
        [(h0, h0_out, keep), (u, u_out, None), (wr, wr_out, None)], "tf32", counters
    )
    assert torch.equal(h0_out[0], triton_lstm._tf32(h0 * keep))
    assert torch.equal(u_out, triton_lstm._tf32(u, 2))
    assert torch.equal(wr_out[0], triton_lstm._tf32(wr))
    assert not counters.any()


def test_a_cast_of_u_beside_a_rounding_of_w_hr_is_not_rounded():
    """Layer norm's three-product TF32 dots in the persistent kernels take U unrounded: where
    U must be cast too (weights in float64 here, inputs fp32) and W_hr rounded, U is cast
    alone."""
    g = torch.Generator().manual_seed(6)
    u = torch.randn(5, 12, generator=g, dtype=torch.float64).to(DEVICE)
    wr = torch.randn(3, 5, generator=g).to(DEVICE)
    u_parts, u_gates, wr_dot = triton_lstm._operands(u, wr, torch.float32, "tf32", "tf32x3")
    assert torch.equal(u_parts, u.float()) and torch.equal(u_gates, u.float())
    assert torch.equal(wr_dot, triton_lstm._tf32(wr)) and not torch.equal(wr_dot, wr)


@pytest.mark.parametrize("config", [SMALL, RESIDENT], ids=["persistent", "split"])
def test_tf32_dots_see_rounded_operands(monkeypatch, config):
    """Tensor cores drop the low 13 bits of fp32 operands, a bias that adds up over the steps
    (on an H200, relative error 1.7e-3 with a projection); the kernels round both operands to
    nearest instead, as cuBLAS does. One step with TF32 dots forced matches float64 arithmetic
    on TF32-rounded operands, forward (h0·U, then the projection) and backward (dz·Uᵀ)."""
    monkeypatch.setattr(triton_lstm, "_dot_mode", lambda dtype, device: "tf32")
    spec = LSTMSpec(20, proj_size=12)
    x, h0, c0, w, _ = problem(spec, B=16, T=1)
    out, h1, c1 = triton_lstm.lstm(x, h0, c0, w, spec, config=config)
    g = torch.Generator().manual_seed(2)
    dh1, dc1 = (torch.randn(t.shape, generator=g).to(t) for t in (h1, c1))
    dh0, dc0 = torch.autograd.grad((h1 * dh1).sum() + (c1 * dc1).sum(), [h0, c0])

    def r(t):
        return triton_lstm._tf32(t.detach().float()).double()

    H = spec.units
    z = (x[:, 0] @ w.kernel + w.bias).double() + r(h0) @ r(w.recurrent_kernel)
    z = z.detach().requires_grad_()
    i, f, o = (torch.sigmoid(z[:, k * H : (k + 1) * H]) for k in (0, 1, 3))
    c = f * c0.double() + i * torch.tanh(z[:, 2 * H : 3 * H])
    m = o * torch.tanh(c)
    assert rel_err(c1, c) < 1e-6 and rel_err(h1, r(m) @ r(w.projection)) < 1e-6
    dm = r(dh1) @ r(w.projection).t()
    (dz,) = torch.autograd.grad((m * dm).sum() + (c * dc1.double()).sum(), [z])
    # the kernel's fp32 dz rounds differently from float64's in a few elements (2.4e-5
    # measured); with dz unrounded the error is 2.5e-4
    assert rel_err(dh0, r(dz) @ r(w.recurrent_kernel).t()) < 6e-5
    assert not torch.equal(r(h0), h0.double())  # the operands did need rounding


@pytest.mark.parametrize(
    "config", [SMALL, RESIDENT, SPLIT], ids=["persistent", "split_held", "split_streamed"]
)
def test_layer_norm_cells_take_three_tf32_products_for_u(monkeypatch, config):
    """With layer norm, the dots with U keep fp32 accuracy (tf32x3: exact in the interpreter
    for the persistent kernels; the split kernels' three TF32 products of stored parts drop
    the product of the two rests) and U is not rounded: three steps and the gradients of h0,
    c0 and U match float64 to 1e-6, where rounded operands miss by about 1e-4."""
    monkeypatch.setattr(triton_lstm, "_dot_mode", lambda dtype, device: "tf32")
    spec = LSTMSpec(20, layer_norm=True)
    x, h0, c0, w, _ = problem(spec, B=16, T=3)
    g = torch.Generator().manual_seed(4)
    dh, dc = torch.randn(2, 16, 20, generator=g).to(x)

    def run(lstm, cast):
        """h_T, c_T and the gradients of h0, c0 and U."""
        leaves = [None if t is None else cast(t.detach()).requires_grad_() for t in (h0, c0, *w)]
        weights = LSTMWeights(*leaves[2:])
        _, h1, c1 = lstm(cast(x), *leaves[:2], weights, spec)
        loss = (h1 * cast(dh)).sum() + (c1 * cast(dc)).sum()
        grads = torch.autograd.grad(loss, [*leaves[:2], weights.recurrent_kernel])
        return (h1, c1, *grads)

    ours = run(lambda *args: triton_lstm.lstm(*args, config=config), lambda t: t)
    ref = run(reference.lstm, torch.Tensor.double)
    for label, a, b in zip(("h_T", "c_T", "dh0", "dc0", "dU"), ours, ref, strict=True):
        assert rel_err(a, b) < 1e-6, label


# ---- on a GPU: accuracy at the benchmark shape ---------------------------------------------

cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")

GPU_VARIANTS = {
    "plain": (LSTMSpec(128), None, False),
    "mask": (LSTMSpec(128), "lengths", False),
    "peephole": (LSTMSpec(128, peephole=True), None, False),
    "layer_norm": (LSTMSpec(128, layer_norm=True), None, False),
    "projection": (LSTMSpec(128, proj_size=64), None, False),
    "zoneout": (LSTMSpec(128, zoneout_cell=0.1, zoneout_hidden=0.1), None, True),
    "recurrent_dropout": (LSTMSpec(128, recurrent_dropout=0.2), None, True),
    "everything_h256": (LSTMSpec(256, **EVERYTHING), "lengths", True),
}


def _storage(t):
    return t.untyped_storage().data_ptr()


def _saved_bytes(spec, B, T, D, config, autocast=None):
    """The sizes (bytes, sorted) of the buffers one forward saves for backward, leaves aside;
    and the outputs."""
    x, h0, c0, w, _ = problem(spec, B=B, T=T, D=D)
    leaves = {_storage(t) for t in (x, h0, c0, *w) if t is not None}
    saved = {}

    def pack(t):
        saved[_storage(t)] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast(DEVICE, dtype=autocast or torch.float32, enabled=bool(autocast)):
            outputs, _, _ = triton_lstm.lstm(x, h0, c0, w, spec, config=config)
    return sorted(n for ptr, n in saved.items() if ptr not in leaves), outputs


@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_forward_saves_the_states_and_nothing_recomputable(config):
    """Backward recomputes x·W (with layer norm LN(x·W) and LN(h·U) too), the gates and
    act(c~): the recurrence saves hs and cs, and with layer norm the row mean and inverse
    deviation of h·U and of c~, four numbers per row and step."""
    B, T, H = 3, 5, 20
    f32 = 4
    states = [B * T * H * f32, B * (T + 1) * H * f32]  # the outputs, c0 and the cell states
    expected = {False: sorted(states), True: sorted([*states, B * T * 4 * f32])}
    for layer_norm in (False, True):
        made, outputs = _saved_bytes(LSTMSpec(H, layer_norm=layer_norm), B, T, 4, config)
        assert made == expected[layer_norm], layer_norm
        assert outputs.is_contiguous()  # the next layer's x·W takes them without a copy


# (case, autocast, go_backwards): both layouts; masks; layer norm (whose row statistics
# backward alone reads); training noise; the split layout's launch per phase and its one
# launch with barriers
NO_BACKWARD_CASES = [
    ("mask", torch.bfloat16, True),
    ("layer_norm_two_chunks", None, True),
    ("everything_training", torch.bfloat16, False),
    ("split_mask_peephole", torch.bfloat16, False),
    ("split_one_program_everything_two_tiles", None, True),
]


@pytest.mark.parametrize("name, autocast, go_backwards", NO_BACKWARD_CASES)
def test_without_a_backward_to_come_no_cell_states_are_stored(name, autocast, go_backwards):
    """Under ``torch.no_grad`` (and where no input needs a gradient) the forward makes no
    buffer for every step's cell state, nor for the layer-norm statistics, which backward
    alone reads (under autocast one more: c_T, the carried fp32 state cast), and gives the
    very outputs, h_T and c_T of a forward that keeps them."""
    spec, kwargs, make_mask, training, config = CASES[name]
    x, h0, c0, w, noise = problem(spec, training=training, **kwargs)
    mask = make_mask() if make_mask else None
    B, T, _ = x.shape
    H = spec.units
    leaves = [x, h0, c0, *(t for t in w if t is not None)]

    def run():
        with _NewBuffers(leaves) as new:
            with torch.autocast(DEVICE, dtype=autocast or torch.float32, enabled=bool(autocast)):
                outs = triton_lstm.lstm(
                    x, h0, c0, w, spec, mask, noise, config=config, go_backwards=go_backwards
                )
        return outs, collections.Counter(new.sizes)

    kept, made_kept = run()
    assert kept[0].requires_grad
    skipped = collections.Counter(
        {B * (T + 1) * H: 1, **({B * T * 4: 1} if spec.layer_norm else {})}
    )
    cast = collections.Counter({B * H: 1} if autocast else {})
    for how in ("no_grad", "no input needs one"):
        if how == "no_grad":
            with torch.no_grad():
                outs, made = run()
        else:
            for t in leaves:
                t.requires_grad_(False)
            outs, made = run()
            for t in leaves:
                t.requires_grad_(True)
        assert not outs[0].requires_grad
        assert made + skipped == made_kept + cast, how
        for label, a, b in zip(["outputs", "h_T", "c_T"], outs, kept, strict=True):
            assert a.dtype == b.dtype and torch.equal(a, b.detach()), f"{how}: {label}"


@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_under_bf16_autocast_the_outputs_and_cell_states_are_saved_in_bf16(config):
    """Under autocast the outputs and the cell states are saved in bf16 (the state itself is
    carried in fp32 through the steps), and nothing else of that size is saved, with layer
    norm or without. (x, W and U's dot operand in bf16, autocast's, fall below B·T·H·2.)"""
    B, T, D, H = 8, 12, 4, 16
    bf16 = 2
    for layer_norm in (False, True):
        spec = LSTMSpec(H, layer_norm=layer_norm)
        made, _ = _saved_bytes(spec, B, T, D, config, torch.bfloat16)
        large = [n for n in made if n >= B * T * H * 2]
        assert large == sorted([B * T * H * bf16, B * (T + 1) * H * bf16]), layer_norm


@pytest.mark.parametrize("layer_norm", [False, True], ids=["no_layer_norm", "layer_norm"])
@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_a_second_backward_gives_the_same_gradients(config, layer_norm, no_tf32):
    """Backward recomputes the gates (and LN(h·U)) into buffers of its own and writes dz (and
    d loss / d (h·U)) over them, so a graph kept with ``retain_graph`` gives the same gradients
    again (the peepholes' sums and every step's o ⊙ act(c~) for d loss / d W_hr go to new
    buffers as well)."""
    spec = LSTMSpec(
        20, peephole=True, proj_size=9, recurrent_dropout=0.2, zoneout_cell=0.1,
        layer_norm=layer_norm,
    )  # fmt: skip
    x, h0, c0, w, noise = problem(spec, T=3, training=True)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    outs = triton_lstm.lstm(x, h0, c0, w, spec, noise=noise, config=config)
    g = torch.Generator().manual_seed(1)  # the loss of `outputs_and_grads`
    f64 = dict(generator=g, dtype=torch.float64)
    loss = sum((t.double() * torch.randn(t.shape, **f64).to(t.device)).sum() for t in outs)
    first = torch.autograd.grad(loss, leaves, retain_graph=True)
    second = torch.autograd.grad(loss, leaves)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    ref = outputs_and_grads(reference, x, h0, c0, w, spec, None, noise)
    for a, b in zip(first, ref[3:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("autocast", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_every_pass_of_the_split_layout_starts_its_tile_counters_at_zero(monkeypatch, autocast):
    """The forward's launch that prepares U's and h0's operands zeroes the barrier counters of
    both passes (fp32 TF32 rounding and bf16 casts alike); a second backward of the same graph
    (``retain_graph``) zeroes its own again: a counter left at the last target would let a
    GPU's programs pass their barriers without waiting."""
    monkeypatch.setattr(
        triton_lstm,
        "_dot_mode",
        lambda dtype, device: "tf32" if dtype == torch.float32 else "emulate",
    )
    starts = []

    def recorded(launcher):
        def launch(*args):
            starts.append(args[-1].clone())  # the counters, before the launch
            return launcher(*args)

        return launch

    for name in ("forward", "backward"):
        monkeypatch.setattr(triton_split, name, recorded(getattr(triton_split, name)))
    counters = triton_split.tile_counters  # made with garbage in them, here 7s
    monkeypatch.setattr(triton_split, "tile_counters", lambda *args: counters(*args).fill_(7))
    spec = LSTMSpec(16)  # one program per tile: the interpreter runs the barriers too
    x, h0, c0, w, _ = problem(spec)
    with torch.autocast(DEVICE, dtype=autocast or torch.float32, enabled=bool(autocast)):
        outs = triton_lstm.lstm(x, h0, c0, w, spec, config=SPLIT)
    for _ in range(2):
        torch.autograd.grad(outs[0].float().sum(), [x], retain_graph=True)
    assert len(starts) == 3 and not any(count.any() for count in starts)


@pytest.mark.parametrize("layer_norm", [False, True], ids=["bias", "layer_norm"])
@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_backward_reads_no_buffer_it_did_not_write(monkeypatch, config, layer_norm, no_tf32):
    """Backward makes its buffers with torch.empty, the running sums too (each row's of dz
    for the bias and of the peepholes' terms, each tile's for the norms' gains and shifts):
    the kernels store a sum's first term rather than add it to zeros. With every such buffer
    full of NaN (int32 ones of 7s), the gradients are still the reference's, in the split
    layout's launch per step (two programs per tile) as in one launch."""
    spec = LSTMSpec(20, peephole=True, layer_norm=layer_norm)
    x, h0, c0, w, _ = problem(spec)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    ref = reference.lstm(x, h0, c0, w, spec, mask_3x5())
    expected = torch.autograd.grad(sum(o.sum() for o in ref), leaves)
    outs = triton_lstm.lstm(x, h0, c0, w, spec, mask_3x5(), config=config)

    def garbage(make):
        def made(*args, **kwargs):
            t = make(*args, **kwargs)
            return t.fill_(float("nan") if t.is_floating_point() else 7)

        return made

    monkeypatch.setattr(torch, "empty", garbage(torch.empty))
    monkeypatch.setattr(torch, "empty_like", garbage(torch.empty_like))
    grads = torch.autograd.grad(sum(o.sum() for o in outs), leaves)
    monkeypatch.undo()
    for grad, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(grad, want, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_backward_recomputes_the_gates_once(monkeypatch, config):
    """The gates are formed again once per backward, for every row at once, whatever the
    variant: the reverse kernel hands on what the peephole and projection gradients need
    (those once recomputed the gates a slice of the batch at a time, a dozen launches and
    hundreds of small host ops per backward)."""
    spec = LSTMSpec(20, "relu", "hard_sigmoid", **EVERYTHING)
    x, h0, c0, w, noise = problem(spec, training=True)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    triton_lstm._triton()
    launched = []

    class Counted:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            launched.append(grid)
            return self.kernel[grid]

    monkeypatch.setattr(triton_cell, "_gates_kernel", Counted(triton_cell._gates_kernel))
    outs = triton_lstm.lstm(x, h0, c0, w, spec, mask_3x5(), noise, config=config)
    assert launched == []
    torch.autograd.grad([o.sum() for o in outs], leaves)
    assert len(launched) == 1


def _bench_module(name: str):
    """A script of bench/ as a module (bench/ on the path, as when it runs)."""
    bench = str(Path(__file__).resolve().parents[2] / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module(name)


@pytest.mark.parametrize("autocast", [None, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_a_fwd_bwd_takes_few_host_ops(monkeypatch, config, masked, autocast):
    """Each torch op and launch costs host time the GPU waits for: at B=64 T=100 H=128 one
    fwd+bwd's kernels took 0.8-1.0 ms and its wall 2.9-3.4 ms (H200, 2026-11-27), with 48
    torch ops (fp32 with TF32 dots, split layout; ten for each rounding of U or h0 to TF32,
    done twice for U). Counted with the Triton kernels stubbed out, on the paths taken on
    CUDA: U and h0 rounded to TF32 in one launch, U's operand kept for backward, c0 stored by
    the kernels, both passes' barrier counters zeroed in the same launch, the reverse
    carries started by the kernels from the gradients of h_T and c_T, the bias gradient
    the sum of the reverse kernels' per-row sums (9 ops with a ones vector and its GEMM): at
    most 8 torch ops and 4 launches. With a mask (21 ops before) the kernels find each row's
    first real step from the mask itself, hand on h_T and the gradient at that step, and
    read the states' keeps from the mask too: as many. Under bf16 autocast (30 ops before,
    39 with a mask) the leaves are cast inside the layer and their gradients come from GEMMs
    with fp32 outputs, with no cast after: 15, with a mask or without. (`bench/host_ops.py`
    counts every variant so.)"""
    host_ops = _bench_module("host_ops")
    host_ops.as_on_cuda(monkeypatch.setattr)
    launches = host_ops.stub_kernels(monkeypatch.setattr)
    spec = LSTMSpec(16)  # one program per tile: the interpreter runs the split layout's
    x, h0, c0, w, _ = problem(spec, B=3, T=5)  # steps in one launch, as a GPU does
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    mask = mask_3x5() if masked else None
    with host_ops.KernelOps() as forward:
        with torch.autocast(DEVICE, dtype=autocast or torch.float32, enabled=bool(autocast)):
            outs = triton_lstm.lstm(x, h0, c0, w, spec, mask, config=config)
    grads = [torch.ones_like(o) for o in outs]
    with host_ops.KernelOps() as backward:
        torch.autograd.grad(outs, leaves, grads)
    ops = forward.names + backward.names
    assert len(ops) <= (15 if autocast else 8), ops
    assert len(launches) <= 4


def test_bidirectional_on_the_kernels_flips_nothing(monkeypatch):
    """The backward direction of a `Bidirectional` layer runs backwards inside the kernels and
    hands its sequence over in the input's order: no flip of x, of the mask or of an output,
    forwards or backwards (kernels stubbed, ops counted as `bench/host_ops.py` does)."""
    from lstmkit.layers import LSTM, Bidirectional

    host_ops = _bench_module("host_ops")
    host_ops.stub_kernels(monkeypatch.setattr)
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "0")
    monkeypatch.setattr(dispatch, "select_backend", lambda *args, **kwargs: "triton")
    layer = Bidirectional(LSTM(8, return_sequences=True)).to(DEVICE)
    x = torch.randn(2, 3, 4, device=DEVICE, requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.bool, device=DEVICE)
    layer(x)
    with host_ops.KernelOps() as ops:
        layer(x, mask=mask).sum().backward()
    assert ops.names and not [n for n in ops.names if "flip" in n], ops.names


@pytest.mark.parametrize(
    "spec, masked, training, config",
    [  # the products are the host's: one layout each
        (LSTMSpec(20), True, False, SPLIT),
        (LSTMSpec(20, layer_norm=True), False, False, SMALL),
        (LSTMSpec(20, recurrent_dropout=0.3, proj_size=9), False, True, SPLIT),
    ],
    ids=["masked-split", "layer_norm-persistent", "dropout_projection-split"],
)
def test_under_autocast_fp32_leaves_take_gradients_from_gemms_with_fp32_outputs(
    monkeypatch, config, spec, masked, training
):  # fmt: skip
    """Where torch has them (CUDA, torch ≥ 2.8), the gradients of fp32 leaves under bf16
    autocast are bf16 GEMMs with fp32 outputs (`triton_lstm._product`), with no cast after
    them (`test_a_fwd_bwd_takes_few_host_ops` counts the ops). That path taken here on the
    CPU, those GEMMs computed from the operands in fp32 (bench/host_ops.py): it runs, and
    its gradients match the reference's."""
    host_ops = _bench_module("host_ops")
    monkeypatch.setattr(triton_lstm, "_fp32_out", lambda t: True)
    x, h0, c0, w, noise = problem(spec, training=training)
    mask = mask_3x5() if masked else None
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    with host_ops.KernelOps() as ops:
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            outs = triton_lstm.lstm(x, h0, c0, w, spec, mask, noise, config=config)
        ops.names.clear()
        grads = torch.autograd.grad(sum(o.float().sum() for o in outs), leaves)
    ref = reference.lstm(x, h0, c0, w, spec, mask, noise)
    ref_grads = torch.autograd.grad(sum(o.sum() for o in ref), leaves)
    assert "aten.mm.dtype" in ops.names
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert grad.dtype == torch.float32
        assert rel_err(grad, ref_grad) < 3e-2


@pytest.mark.parametrize("reverse", [False, True], ids=["forwards", "backwards"])
@pytest.mark.parametrize("T", [1, 5])
def test_recurrent_kernel_gradient_over_flat_rows_matches_every_step_summed(T, reverse):
    """d loss / d U over the flattened rows (no copy of h_{t-1}, `_shifted_rows_grad`) is the
    sum over rows and steps of h_{t-1}ᵀ·dzh_t, h0 at each row's first real step (whose dzh
    the reverse kernels hand on: at the last step in a row with none): with pre-padding, a
    row with no real step, and one step alone; with ``reverse`` the steps run from T − 1 to
    0 over buffers aligned with the inputs (go_backwards)."""
    g = torch.Generator().manual_seed(4)
    B, P, G4 = 4, 3, 8
    first = torch.tensor([0, min(2, T - 1), T, 0], dtype=torch.int64)
    order = torch.arange(T).flip(0) if reverse else torch.arange(T)  # index of each step
    hs = torch.randn(B, T, P, generator=g, dtype=torch.float64)
    dzh = torch.randn(B, T, G4, generator=g, dtype=torch.float64)
    steps = torch.argsort(order)[None, :, None]  # the step at each index
    hs = hs * (steps >= first[:, None, None])  # zeros before a row's first real step
    dzh = dzh * (steps >= first[:, None, None])  # as is d loss / d (h·U) there
    h0 = torch.randn(B, P, generator=g, dtype=torch.float64)
    expected = torch.zeros(P, G4, dtype=torch.float64)
    for b in range(B):
        for s in range(T):
            h_in = h0[b] if s <= first[b] else hs[b, order[s - 1]]
            expected += torch.outer(h_in, dzh[b, order[s]])
    at_first = dzh[torch.arange(B), order[first.clamp(max=T - 1)]]
    ours = triton_lstm._recurrent_kernel_grad(h0, hs, None, dzh, at_first, reverse)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-6, atol=1e-6)
    unmasked = triton_lstm._recurrent_kernel_grad(h0, hs, None, dzh, None, reverse)
    pairs = [
        (h0[b] if s == 0 else hs[b, order[s - 1]], dzh[b, order[s]])
        for b in range(B)
        for s in range(T)
    ]
    expected = sum(torch.outer(h, d) for h, d in pairs)
    torch.testing.assert_close(unmasked.double(), expected, rtol=1e-6, atol=1e-6)


def test_backward_inside_an_autocast_region():
    """A loss computed in fp32 and differentiated inside an autocast region (common in training
    loops; on the CPU backward then runs under it): the layer's own backward keeps x·W and its
    fp32 sums out of autocast (it failed on a bf16 GEMM against an fp32 one before). torch's
    built-in backward ops do follow the region, so the gradients move as the reference's do
    (measured 2.3e-3 here, the reference's own 3.2e-3)."""
    spec = LSTMSpec(20, peephole=True, proj_size=9)
    x, h0, c0, w, _ = problem(spec)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]

    def grads(inside: bool) -> tuple:
        out, h, c = triton_lstm.lstm(x, h0, c0, w, spec, config=SMALL)
        with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=inside):
            return torch.autograd.grad(out.sum() + h.sum() + c.sum(), leaves)

    for a, b in zip(grads(True), grads(False), strict=True):
        assert a.dtype == b.dtype and rel_err(a, b) < 2e-2


class _NewBuffers(TorchDispatchMode):
    """The sizes (elements, and bytes) of the storages that ops create while the mode is on
    (a storage freed is forgotten, so that a new one at its address counts)."""

    def __init__(self, existing):
        super().__init__()
        self.seen = {_storage(t) for t in existing}
        self.sizes = []
        self.nbytes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.numel() and _storage(t) not in self.seen:
                storage = t.untyped_storage()
                self.seen.add(storage.data_ptr())
                weakref.finalize(storage, self.seen.discard, storage.data_ptr())
                self.sizes.append(storage.nbytes() // t.element_size())
                self.nbytes.append(storage.nbytes())
        return out


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_backward_builds_one_buffer_as_large_as_the_states_the_gate_gradients(config, masked):
    """Of the buffers at least as large as every step's cell states (B·T·H), backward creates
    one (B, T, 4H) alone: x·W, then the recomputed gates over it, then dz over them. No second
    buffer for dz, no gradient of every state for h_T or c_T, no copy of every h_{t-1} for
    d loss / d U; with a mask, no gradient of masked outputs either (the kernels write the
    zeros before a row's first real step themselves)."""
    B, T, D, H = 8, 12, 4, 20  # B·T·H above the weights' P·4H
    spec = LSTMSpec(H)
    x, h0, c0, w, _ = problem(spec, B=B, T=T, D=D)
    mask = torch.rand(B, T, generator=torch.Generator().manual_seed(2)).to(DEVICE) < 0.7
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    with _NewBuffers(leaves) as new:
        outs = triton_lstm.lstm(x, h0, c0, w, spec, mask if masked else None, config=config)
        grads = [torch.randn_like(o) for o in outs]
        new.sizes.clear()
        torch.autograd.grad(outs, leaves, grads)
    assert sorted(n for n in new.sizes if n >= B * T * H) == [B * T * 4 * H]


@pytest.mark.parametrize("used", ["h_T", "outputs"])
@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_unused_outputs_get_no_gradient_buffers(config, used):
    """Where a model uses h_T alone (``return_sequences=False``, the seed model) or the
    outputs alone, backward is handed no gradient for the others: autograd makes no (B, T, P)
    buffer of zeros for the outputs, and the gradients are the reference's."""
    B, T, D, H = 8, 12, 4, 16
    spec = LSTMSpec(H)
    x, h0, c0, w, _ = problem(spec, B=B, T=T, D=D)
    mask = lengths_mask(B, T)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    pick = {"h_T": 1, "outputs": 0}[used]
    with _NewBuffers(leaves) as new:
        outs = triton_lstm.lstm(x, h0, c0, w, spec, mask, config=config)
        new.sizes.clear()
        grads = torch.autograd.grad(outs[pick].sum(), leaves)
    assert sorted(n for n in new.sizes if n >= B * T * H) == [B * T * 4 * H]
    ref = reference.lstm(x, h0, c0, w, spec, mask)
    for a, b in zip(grads, torch.autograd.grad(ref[pick].sum(), leaves), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_with_layer_norm_backward_builds_two_buffers_larger_than_the_states(config, no_tf32):
    """With layer norm, of the buffers larger than every step's cell states (B·T·H), backward
    creates three (B, T, 4H): x·W formed again (freed as LN(x·W) is formed over a buffer of
    its own: the gates, then dz over them); LN(h·U), then d loss / d (h·U) over it. The
    gradient through LN(x·W) is taken half the batch at a time (x·W and its gradient, 2·B·T·H
    each, per half); no gradient buffer of LN(c) exists."""
    B, T, D, H = 8, 12, 4, 20
    spec = LSTMSpec(H, layer_norm=True)
    x, h0, c0, w, _ = problem(spec, B=B, T=T, D=D)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    with _NewBuffers(leaves) as new:
        outs = triton_lstm.lstm(x, h0, c0, w, spec, config=config)
        grads = [torch.randn_like(o) for o in outs]
        new.sizes.clear()
        torch.autograd.grad(outs, leaves, grads)
    assert (
        sorted(n for n in new.sizes if n > B * T * H) == [B * T * 2 * H] * 4 + [B * T * 4 * H] * 3
    )


@pytest.mark.parametrize("config", [SMALL, SPLIT], ids=["persistent", "split"])
def test_under_bf16_autocast_backward_builds_bf16_gate_gradients_alone(config):
    """Under autocast, of the buffers at least as large as one fp32 buffer of every cell state,
    backward creates the gates-then-dz buffer alone, in bf16: d loss / d U takes products of
    the bf16 states and dz as they are, with no fp32 copy of either."""
    B, T, D, H = 8, 12, 4, 20
    spec = LSTMSpec(H)
    x, h0, c0, w, _ = problem(spec, B=B, T=T, D=D)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    with _NewBuffers(leaves) as new:
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            outs = triton_lstm.lstm(x, h0, c0, w, spec, config=config)
        grads = [torch.randn_like(o) for o in outs]
        new.nbytes.clear()
        torch.autograd.grad(outs, leaves, grads)
    assert sorted(n for n in new.nbytes if n >= B * T * H * 4) == [B * T * 4 * H * 2]


def gpu_errors(name, autocast_dtype=None, split=False, backwards=False):
    """Relative errors (‖ours − ref‖ / ‖ref‖) against the float64 reference, and those of the
    reference's own torch ops in the same precision (TF32 matmuls, or autocast); ``split``:
    ours in the split-hidden layout; ``backwards``: go_backwards (the reference over the
    flipped steps, `_BackwardsByFlips`)."""
    spec, mask_kind, training = GPU_VARIANTS[name]
    B, T, D = 64, 100, 32
    x, h0, c0, w, noise = problem(spec, B=B, T=T, D=D, training=training, device="cuda", long=True)
    mask = lengths_mask(B, T) if mask_kind else None
    ref_backend = _BackwardsByFlips if backwards else reference
    autocast = dict(dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    config = (
        triton_lstm.split_config(B, spec.units, sms)
        if split
        else triton_lstm.persistent_config(B, spec.units, spec.output_size)
    )
    with torch.autocast("cuda", **autocast):
        ours = outputs_and_grads(
            triton_lstm, x, h0, c0, w, spec, mask, noise, config=config, go_backwards=backwards
        )
    old, torch.backends.cuda.matmul.allow_tf32 = torch.backends.cuda.matmul.allow_tf32, True
    try:
        with torch.autocast("cuda", **autocast):
            peer = outputs_and_grads(ref_backend, x, h0, c0, w, spec, mask, noise)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old

    def f64(t):
        return None if t is None else t.detach().double().requires_grad_()

    w64 = LSTMWeights(*(f64(t) for t in w))
    noise64 = None if noise is None else LSTMNoise(*(f64(t) for t in noise))
    ref = outputs_and_grads(ref_backend, f64(x), f64(h0), f64(c0), w64, spec, mask, noise64)
    ours_err = {n: rel_err(a, b) for n, a, b in zip(names(w), ours, ref, strict=True)}
    peer_err = {n: rel_err(a, b) for n, a, b in zip(names(w), peer, ref, strict=True)}
    return ours_err, peer_err


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("name", GPU_VARIANTS)
def test_cuda_fp32_tf32_relative_error_below_1e_3(name):
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        assert rnn.fp32_precision == "tf32", "the test measures the default TF32 dots"
    errors, peer = gpu_errors(name)
    assert max(errors.values()) < 1e-3, (errors, peer)


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("name", GPU_VARIANTS)
def test_cuda_bf16_relative_error_below_1e_2(name):
    """The plain cell below 1e-2; a variant below 1e-2 or 1.5 x torch's own bf16 error."""
    errors, peer = gpu_errors(name, torch.bfloat16)
    bound = 1e-2 if name == "plain" else max(1e-2, 1.5 * max(peer.values()))
    assert max(errors.values()) < bound, (errors, peer)


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("name", GPU_VARIANTS)
def test_cuda_split_layout_relative_errors(name):
    """The split-hidden layout, one launch with a barrier per step: fp32 (TF32) below 1e-3,
    bf16 as the persistent kernels."""
    errors, peer = gpu_errors(name, split=True)
    assert max(errors.values()) < 1e-3, (errors, peer)
    errors, peer = gpu_errors(name, torch.bfloat16, split=True)
    bound = 1e-2 if name == "plain" else max(1e-2, 1.5 * max(peer.values()))
    assert max(errors.values()) < bound, (errors, peer)


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("split", [False, True], ids=["persistent", "split"])
@pytest.mark.parametrize("name", ["mask", "everything_h256"])
def test_cuda_go_backwards_relative_errors(name, split):
    """go_backwards in the compiled kernels at the benchmark shape, both layouts: fp32 (TF32)
    below 1e-3 against the reference over the flipped steps, bf16 as the forward direction."""
    errors, peer = gpu_errors(name, split=split, backwards=True)
    assert max(errors.values()) < 1e-3, (errors, peer)
    errors, peer = gpu_errors(name, torch.bfloat16, split=split, backwards=True)
    assert max(errors.values()) < max(1e-2, 1.5 * max(peer.values())), (errors, peer)


@pytest.mark.cuda
@cuda
def test_cuda_split_layout_takes_a_launch_per_step_when_the_grid_exceeds_the_sms(no_tf32):
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    spec = LSTMSpec(16 * (sms + 1), **SPLIT_VARIANTS)  # one program more than there are SMs
    assert not triton_split._synchronised((sms + 1, 1), torch.device("cuda"), False)
    x, h0, c0, w, noise = problem(spec, B=5, T=3, training=True)
    mask = lengths_mask(5, 3)
    ours = outputs_and_grads(triton_lstm, x, h0, c0, w, spec, mask, noise, config=SPLIT)
    ref = outputs_and_grads(reference, x, h0, c0, w, spec, mask, noise)
    for label, a, b in zip(names(w), ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5, msg=lambda m, n=label: f"{n}: {m}")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("autocast", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_cuda_training_memory_of_the_plain_cell_stays_below_cudnns(autocast):
    """The CUDA allocator's peak over one fwd+bwd (B=64 T=100 I=32 H=256, split layout), in
    units of one (B, T, H) fp32 buffer, beside cuDNN's (13.1 units fp32 and 7.4 under bf16
    autocast, H200): 6.77 / 3.69 measured. torch's sum over (batch, time) for the bias
    gradient once took 8 more units of scratch at backward's peak."""
    B, T, D, H = 64, 100, 32, 256
    spec = LSTMSpec(H)
    x, h0, c0, w, _ = problem(spec, B=B, T=T, D=D, long=True)
    leaves = [x, h0, c0, *(t for t in w if t is not None)]
    config = triton_lstm.SPLIT.config(B, H, H, torch.device("cuda"))

    grads = []  # made in the first call, outside the measured one (as `bench/kernels.py`)

    def fwd_bwd():
        with torch.autocast("cuda", dtype=autocast or torch.float32, enabled=bool(autocast)):
            outs = triton_lstm.lstm(x, h0, c0, w, spec, config=config)
        grads[:] = grads or [torch.ones_like(o) for o in outs]
        torch.autograd.grad(outs, leaves, grads)

    fwd_bwd()  # compiles, and leaves the first call's allocations out
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fwd_bwd()
    torch.cuda.synchronize()
    units = (torch.cuda.max_memory_allocated() - base) / (B * T * H * 4)
    assert units < (7.5 if autocast is None else 4.5), units


def test_interpreted_split_kernels_run_a_step_in_one_launch_where_a_tile_has_one_program():
    cpu = torch.device("cpu")
    assert triton_split._synchronised((1, 3), cpu, interpreted=True)
    assert not triton_split._synchronised((2, 1), cpu, interpreted=True)
    assert triton_split._launches(5, True, True, True, reverse=False) == [(0, 5, 15)]


@pytest.mark.parametrize("autocast", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_split_launchers_size_u_by_the_dtype_its_dots_take(monkeypatch, autocast):
    """Whether U is held on the SM depends on its bytes: both launchers pass `k_chunk` the
    element size of U as the kernels read it (2 under bf16 autocast, 4 in fp32)."""
    sizes = []
    k_chunk = triton_split.k_chunk

    def recorded(cfg, units, itemsize, dot_u, direction):
        sizes.append((direction, itemsize))
        return k_chunk(cfg, units, itemsize, dot_u, direction)

    monkeypatch.setattr(triton_split, "k_chunk", recorded)
    spec = LSTMSpec(16)
    x, h0, c0, w, _ = problem(spec)
    with torch.autocast(DEVICE, dtype=autocast or torch.float32, enabled=bool(autocast)):
        outs = triton_lstm.lstm(x, h0, c0, w, spec, config=SPLIT)
    torch.autograd.grad(outs[0].sum(), [x])
    itemsize = 4 if autocast is None else 2
    assert sizes == [("forward", itemsize), ("backward", itemsize)]


def test_split_kernels_hold_u_where_it_fits_and_stream_it_beyond():
    """A K chunk that covers the units holds U on the SM within each direction's budget of
    shared memory (U and the dot's left operand, both counted twice with three-product TF32
    dots); beyond, U streams in chunks of 32. Where 16-row tiles do not fit on the SMs, 32-row
    ones, or else 64-row ones, stream it."""
    fp32, bf16 = 4, 2
    cfg = triton_lstm.split_config(64, 512, 132)
    assert cfg == TritonConfig(16, 16, 512, 8, 1, split=True)
    assert triton_split.k_chunk(cfg, 512, fp32, "tf32", "forward") == (True, 512)
    assert triton_split.k_chunk(cfg, 512, fp32, "tf32", "backward") == (False, 32)
    assert triton_split.k_chunk(cfg, 512, bf16, "low", "backward") == (True, 512)
    cfg = triton_lstm.split_config(64, 256, 132)
    assert triton_split.k_chunk(cfg, 256, fp32, "tf32x3", "forward") == (True, 256)
    assert triton_split.k_chunk(cfg, 256, fp32, "tf32x3", "backward") == (False, 32)
    cfg = triton_lstm.split_config(64, 128, 132)
    assert triton_split.k_chunk(cfg, 128, fp32, "tf32x3", "backward") == (True, 128)
    assert triton_split.k_chunk(SPLIT, 20, fp32, "tf32", "forward") == (False, 16)
    short = TritonConfig(16, 16, 32, 4, 1, split=True)  # covers 20 units, but below 64
    assert triton_split.k_chunk(short, 20, fp32, "tf32", "forward") == (False, 32)
    assert triton_lstm.split_config(64, 1024, 132) == TritonConfig(32, 16, 32, 8, 1, split=True)
    assert triton_lstm.split_config(256, 256, 132) == TritonConfig(32, 16, 32, 8, 1, split=True)
    assert triton_lstm.split_config(256, 512, 132) == TritonConfig(64, 16, 32, 8, 1, split=True)
    rows64 = TritonConfig(64, 16, 256, 8, 1, split=True)  # the left operand takes 4x the room
    assert triton_split.k_chunk(rows64, 256, fp32, "tf32", "forward") == (True, 256)
    assert triton_split.k_chunk(rows64, 256, fp32, "tf32", "backward") == (False, 32)


@pytest.mark.parametrize(
    "budgets",
    [dict(forward=1 << 30, backward=0), dict(forward=0, backward=0)],
    ids=["forward_holds_backward_streams", "both_stream"],
)
def test_split_kernels_past_the_budget_stream_u_and_match_the_reference(
    monkeypatch, no_tf32, budgets
):
    """U streamed in the fallback's chunks of 32 (two per step at 40 units) where a config's
    chunk covers the units but the budget is spent, in either direction."""
    monkeypatch.setattr(triton_split, "HELD_BYTES", budgets)
    for direction, budget in budgets.items():
        held = triton_split.k_chunk(RESIDENT, 40, 4, "ieee", direction)
        assert held == ((True, 64) if budget else (False, 32))
    spec = LSTMSpec(40, **EVERYTHING)  # one batch tile: two are the cases' (`CASES`)
    x, h0, c0, w, noise = problem(spec, training=True)
    mask = mask_3x5()
    ours = outputs_and_grads(triton_lstm, x, h0, c0, w, spec, mask, noise, config=RESIDENT)
    ref = outputs_and_grads(reference, x, h0, c0, w, spec, mask, noise)
    for label, a, b in zip(names(w), ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5, msg=lambda m, n=label: f"{n}: {m}")


def test_default_launch_shape_follows_the_h200_measurements():
    """On CUDA the split-hidden layout, except in bf16/fp16 up to 128 units; the interpreter
    keeps the persistent kernels (one launch per call there)."""
    for units in (128, 512):
        cpu = triton_lstm.default_config(64, units, units, torch.device("cpu"))
        assert cpu == triton_lstm.persistent_config(64, units, units) and not cpu.split
    if CUDA:
        cuda = torch.device("cuda")
        assert triton_lstm.default_config(64, 128, 128, cuda).split
        assert not triton_lstm.default_config(64, 128, 128, cuda, torch.bfloat16).split
        assert triton_lstm.default_config(64, 256, 256, cuda, torch.float16).split


def test_each_layout_is_a_backend_that_dispatch_times(monkeypatch, no_tf32):
    """On CUDA, dispatch times the persistent and the split-hidden layouts as two backends;
    by its fixed rules it calls the kernels, whose `default_config` picks the layout."""
    spec = LSTMSpec(20, peephole=True)  # no cuDNN: the Triton kernels alone
    assert dispatch.candidates(spec, device="cuda") == ["triton-persistent", "triton-split"]
    assert dispatch.select_backend(spec, device="cuda") == "triton"
    x, h0, c0, w, _ = problem(spec, B=3, T=4)
    ref = reference.lstm(x, h0, c0, w, spec)
    configs = []
    kernel = triton_lstm.lstm
    monkeypatch.setattr(
        triton_lstm,
        "lstm",
        lambda *a, config, **k: configs.append(config) or kernel(*a, config=config, **k),
    )
    for name in ("triton-persistent", "triton-split"):
        ours = dispatch.lstm(x, h0, c0, w, spec, backend=name)
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert [c.split for c in configs] == [False, True]
