"""Fused LSTM kernels in Triton: the whole time loop of one layer in one launch. This module is
their host side: launch shapes (`TritonConfig`), availability, the autograd function and its
launches. The kernels: `triton_cell` (device functions every kernel shares; the gates and
operands kernels), `triton_persistent` (one program per batch tile) and `triton_split`
(several programs per batch tile, meeting at a barrier each step).

What is fused, and why. An LSTM layer is T small dependent steps; run as torch ops, each step is
a dozen launches and the backward is one autograd node per op and step. Here:

- forward: one GEMM (torch) computes the input projection of all steps, x·W (+ LN, + bias); one
  Triton launch then runs the recurrence, the time loop inside the kernel, and stores what
  backward needs: the carried states; with layer norm also the row statistics of h·U and c.
- backward: it first recomputes the gates of all steps at once, as every h_{t-1} and c_{t-1}
  is known: x·W (+ LN, + bias) again and one parallel launch (`triton_cell._gates_kernel`).
  One Triton launch then runs the reverse recurrence for dh/dc and the gate gradients only,
  writing dz over the gates as it reads them; the weight gradients (dU, dW_hr, the
  peepholes) and dx, dW, db are then a few large GEMMs / reductions over all T·B rows at once
  (torch; the norm gains' are summed in the kernel). So each pass holds one (B, T, 4H)
  buffer at a time (forward zx, backward the gates and then dz); layer norm's backward one
  more, LN(h·U) and then its gradient over it.

Every variant of `LSTMSpec` except arbitrary activations is in the kernel: masks and
per-sample lengths, initial state, recurrent dropout, peepholes (Gers & Schmidhuber 2000),
zoneout (Krueger et al. 2017), projection (Sak et al. 2014) and layer norm (Ba et al. 2016).
Masks and zoneout share one mechanism: the carried state is ``keep·old + (1 − keep)·new`` with
``keep = 1 − real·(1 − zoneout)`` (1 at a masked step, the zoneout mask or rate at a real one),
and the outputs are the hidden states where a real step has been seen, zeros before: the
kernels write those zeros themselves, reading h0 as h_{t-1} up to each row's first real step.
Keras's go_backwards is a constexpr too (REVERSE): the kernels walk the steps from the last
input step to the first (`triton_cell._time`) with x, the mask, the keeps and the outputs
aligned with the input steps, so no tensor is flipped, and `Bidirectional` takes its backward
direction's sequence in the input's order as it is.

Numerics. The state, the arithmetic and the statistics are fp32. Under autocast (bf16 /
fp16) the large buffers a layer keeps or hands on are in that dtype: zx, the outputs, the
cell states it keeps for backward, the gates and dz (cuDNN's bf16 layer, too, takes about
half its fp32 memory); the state itself is carried from step to step in fp32 (layer norm's
zx, gates and dz stay fp32 too). The dots take fp32 operands with TF32 on CUDA when
``torch.backends.cudnn.rnn.fp32_precision == "tf32"`` (torch's default, the rule cuDNN's LSTM
follows), true fp32 otherwise. TF32 operands are rounded to nearest (weights once per
forward, in one launch of `triton_cell._operands_kernel`, kept for backward; activations in
the kernels): the tensor cores would drop their low 13 bits, a bias that adds up over the
steps. Under
autocast (bf16 / fp16) or with low-precision inputs the operands of the dots are in that
dtype, the accumulation fp32, and outputs are returned in that dtype as cuDNN does.

Triton is imported on first use, never at import, and the kernel modules' device functions
are plain functions that `_triton()` wraps in place on first use: for Triton's interpreter when
``TRITON_INTERPRET=1`` is set then (how the CPU-only CI runs them), else with ``triton.jit``.
This works even where triton was imported earlier in compiled mode (keras imports it), as the
kernels call no jitted helper of triton.language. `default_config` picks the layout of a call
(`Layout` holds one, for dispatch to time them against each other).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lstmkit.kernels import reference, triton_cell, triton_persistent, triton_split
from lstmkit.kernels.weights import LSTMNoise, LSTMWeights
from lstmkit.spec import LSTMSpec

# Activations the kernels know, by Keras name: id passed to the kernels as a constexpr.
# Each one's derivative is a function of its output, so backward needs no pre-activations.
_layer_norm_backward = torch.ops.aten.native_layer_norm_backward

ACTIVATIONS = {"linear": 0, "tanh": 1, "sigmoid": 2, "hard_sigmoid": 3, "relu": 4, "softsign": 5}


@dataclass(frozen=True)
class TritonConfig:
    """Launch shape: batch rows per program, hidden / output units per chunk, warps and
    software-pipelining stages of the K loops. ``split``: the split-hidden layout of
    `triton_split`, where a program owns ``block_h`` hidden units of ``block_b`` rows and
    ``block_p`` is the K chunk of its dots."""

    block_b: int = 16
    block_h: int = 32
    block_p: int = 32
    num_warps: int = 4
    num_stages: int = 2
    split: bool = False

    def __post_init__(self) -> None:
        for name in ("block_b", "block_h", "block_p"):
            value = getattr(self, name)
            if value < 16 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= 16; got {value!r}")


def default_config(
    batch: int,
    units: int,
    output_size: int,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> TritonConfig:
    """The launch shape used when none is given, for a call computing in ``dtype``. On CUDA:
    the split-hidden layout, except in bf16/fp16 up to 128 hidden units, where the persistent
    kernels were faster at B=64 and B=256 (bench/RESULTS.md, H200); from H=256 the split layout
    took 0.14-0.86x their time. Elsewhere (Triton's interpreter) the persistent kernels, which
    run a call in one launch there."""
    on_cuda = device is not None and device.type == "cuda"
    layout = SPLIT if on_cuda and (units > 128 or dtype == torch.float32) else PERSISTENT
    return layout.config(batch, units, output_size, device)


def persistent_config(batch: int, units: int, output_size: int) -> TritonConfig:
    """The persistent kernels' launch shape: one program per 16 batch rows, 64-unit chunks
    with 8 warps, the fastest in 9 of the 10 columns of a sweep on an H200 (fp32 and bf16,
    H = 128-1024 and the everything-variant; bench/RESULTS.md)."""

    def pow2(n: int, cap: int) -> int:
        return min(cap, max(16, 1 << (n - 1).bit_length()))

    return TritonConfig(16, pow2(units, 64), pow2(output_size, 64), 8, 2)


def split_config(batch: int, units: int, sms: int) -> TritonConfig:
    """Launch shape of the split-hidden layout, 16 hidden units per program. Rows of 16 where
    the grid fits on ``sms`` SMs (one launch for the whole time loop): up to 512 units the K
    chunk covers them all, so the forward holds its columns of U on the SM through the steps
    (8 warps; `triton_split.k_chunk` says when the backward does too), beyond it K chunks of
    32 (4 warps). Else the rows of 32, or else 64, whose grid fits, K chunks of 32, 8 warps
    (held U with 64 rows spills, ptxas for sm_90a; where even the 64-row grid exceeds the SMs,
    one launch per phase per step). 32-row tiles took 0.76x / 0.88x (fp32 / bf16) of the
    64-row ones' time at B=64 H=1024 (H200, 2026-11-27; not timed at B=256 H=256, the other
    shape where they now apply). From H200 runs (bench/RESULTS.md): at H = 256-1024 the shapes
    with 32 units per program and K chunks of 16 took 1.3-1.7x as long; at H=128, K chunks of
    32 took 1.1-1.7x as long as the whole U at B=256 and T=500 (two runs, cuDNN within 9% in
    both). Whole U took 0.88x / 0.95x (fp32 / bf16) of the time of chunks of 32 with 4 warps
    at H=256, 0.88x / 0.83x at H=512 (sweep, H200, 2026-11-27)."""
    programs = -(-units // 16)
    if -(-batch // 16) * programs > sms:
        rows = 32 if -(-batch // 32) * programs <= sms else 64
        return TritonConfig(rows, 16, 32, 8, 1, split=True)
    whole_k = max(64, 1 << (units - 1).bit_length())
    block_k, warps = (whole_k, 8) if whole_k <= 512 else (32, 4)
    return TritonConfig(16, 16, block_k, warps, 1, split=True)


class Layout:
    """The kernels held to one layout: a backend of its own, so that dispatch can time the two
    layouts against each other (and cuDNN) on the first call of each kind."""

    def __init__(self, split: bool):
        self.split = split

    def __repr__(self) -> str:
        return f"triton_lstm.{'SPLIT' if self.split else 'PERSISTENT'}"

    def config(
        self, batch: int, units: int, output_size: int, device: torch.device | None = None
    ) -> TritonConfig:
        """This layout's launch shape for a call on ``device``."""
        if not self.split:
            return persistent_config(batch, units, output_size)
        if device is not None and device.type == "cuda":
            sms = torch.cuda.get_device_properties(device).multi_processor_count
        else:
            sms = 1  # the interpreter runs a launch per phase per step anyway
        return split_config(batch, units, sms)

    @staticmethod
    def supports(spec: LSTMSpec, mask: torch.Tensor | None, noise: LSTMNoise | None) -> bool:
        return supports(spec, mask, noise)

    def lstm(
        self,
        x: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor,
        weights: LSTMWeights,
        spec: LSTMSpec,
        mask: torch.Tensor | None = None,
        noise: LSTMNoise | None = None,
        *,
        go_backwards: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`lstm` in this layout, at its launch shape."""
        config = self.config(x.shape[0], spec.units, spec.output_size, x.device)
        return lstm(x, h0, c0, weights, spec, mask, noise, config=config, go_backwards=go_backwards)


PERSISTENT, SPLIT = Layout(split=False), Layout(split=True)


# --------------------------------------------------------------------------------------------
# Availability. Nothing here imports triton.


def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def interpreter_requested() -> bool:
    """True when ``TRITON_INTERPRET=1`` asks for Triton's CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def interpreter_ready() -> bool:
    """The interpreter is requested, triton is installed, and the kernels are (or will be)
    wrapped for the interpreter."""
    return interpreter_requested() and _triton_installed() and _INTERPRETED is not False


def _device_ok(device: torch.device) -> bool:
    if device.type == "cuda":
        return True
    return device.type == "cpu" and interpreter_ready()


def supports(spec: LSTMSpec, mask: torch.Tensor | None, noise: LSTMNoise | None) -> bool:
    """Every variant with activations in `ACTIVATIONS`, on CUDA (on the CPU only under
    ``TRITON_INTERPRET=1``). Without a mask or noise tensor to show the device, it answers
    for CUDA if a GPU is present, else for the interpreter; check ``x.is_cuda`` too."""
    if not _triton_installed():
        return False
    if spec.activation not in ACTIVATIONS or spec.recurrent_activation not in ACTIVATIONS:
        return False
    tensors = [t for t in (mask, *(noise or ())) if t is not None]
    if tensors:
        return all(_device_ok(t.device) for t in tensors)
    return torch.cuda.is_available() or interpreter_ready()


# --------------------------------------------------------------------------------------------
# Triton, imported and the kernel modules wrapped on first use.

_TRITON = None  # the triton module once `_triton()` has run
_INTERPRETED = None  # whether `_triton()` wrapped the kernels for the interpreter
KERNEL_MODULES = (triton_cell, triton_persistent, triton_split)  # `triton_cell` first


def _triton():
    """Import triton, and wrap the device functions and kernels of `KERNEL_MODULES` in place
    (each module's ``JIT_FUNCTIONS``): for Triton's interpreter when ``TRITON_INTERPRET=1`` is
    set now, else with ``triton.jit``. The names a kernel module imported from `triton_cell`
    are rebound to the wrapped functions."""
    global _TRITON, _INTERPRETED
    if _TRITON is None:
        import triton
        import triton.language

        _INTERPRETED = interpreter_requested()
        if _INTERPRETED:
            from triton.runtime.interpreter import InterpretedFunction as wrap
        else:
            wrap = triton.jit
        plain = {name: getattr(triton_cell, name) for name in triton_cell.JIT_FUNCTIONS}
        for module in KERNEL_MODULES:
            module.tl = triton.language
            for name in module.JIT_FUNCTIONS:
                setattr(module, name, wrap(getattr(module, name)))
            for name, function in plain.items():  # imported from triton_cell before wrapping
                if getattr(module, name, None) is function:
                    setattr(module, name, getattr(triton_cell, name))
        _TRITON = triton
    return _TRITON


# --------------------------------------------------------------------------------------------
# Launchers and autograd.


def _dot_mode(dtype: torch.dtype, device: torch.device) -> str:
    if dtype in (torch.bfloat16, torch.float16):
        return "emulate" if device.type == "cpu" else "low"
    if device.type == "cpu":
        return "ieee"
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        return "tf32" if rnn.fp32_precision == "tf32" else "ieee"
    return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"


def _operands_into(jobs: list[tuple], dot: str, zero: torch.Tensor | None = None) -> None:
    """One launch of `triton_cell._operands_kernel` for up to three jobs (x, out (parts, …)
    with out[0] contiguous, scale or None; a scaled job first): x (times scale) into out as the
    dots take it, for "tf32" dots rounded to TF32 (10 mantissa bits, to nearest even, as
    `triton_cell._round_tf32`) and with two parts the TF32 part of the rest into out[1], else
    in out's dtype. ``zero``: int32 counters (at most 1024) set to 0 in the same launch."""
    _triton()
    block = 1024
    x1 = jobs[0][0]
    args, blocks = [], 0
    for k in range(3):
        x, out, scale = jobs[k] if k < len(jobs) else (x1[:0], x1[None], None)
        assert scale is None or k == 0, "only the first job is scaled"
        rest = out.stride(0) if out.shape[0] == 2 else 0
        args.append((x, out[0], x.numel(), rest))
        blocks += -(-x.numel() // block)
    scale = jobs[0][2]
    n_zero = 0 if zero is None else zero.numel()
    assert n_zero <= block, n_zero
    triton_cell._operands_kernel[(max(blocks, 1),)](
        *args[0], x1 if scale is None else scale, *args[1], *args[2],
        x1 if zero is None else zero, n_zero,
        BLOCK=block, TF32=dot == "tf32", DOT=dot, SCALED=scale is not None,
    )  # fmt: skip


def _tf32(x: torch.Tensor, parts: int = 1) -> torch.Tensor:
    """fp32 ``x`` rounded to TF32; with ``parts`` 2 (2, …): that and the TF32 part of the
    rest, which three-product TF32 dots take as they are (`triton_split._store_operand`)."""
    out = torch.empty((parts, *x.shape), device=x.device, dtype=torch.float32)
    _operands_into([(x.contiguous(), out, None)], "tf32")
    return out if parts == 2 else out[0]


def _u_dot_mode(dot: str, spec: LSTMSpec) -> str:
    """The dots with U: TF32 ones as three TF32 products (fp32 accuracy) in layer-norm cells,
    where LN(h·U) divides TF32's error by the small spread of h·U (all-variants cell at T=100:
    1.02e-3 relative error with one TF32 product, emulated; the bound is 1e-3)."""
    return "tf32x3" if dot == "tf32" and spec.layer_norm else dot


def _operands(u, wr, dot_dtype, dot, dot_u, h0=None, zero=None) -> tuple:
    """U and W_hr as the kernels' dots take them: in dot_dtype, rounded to TF32 for "tf32"
    dots; all that needs a rounding or a cast in one launch of `triton_cell._operands_kernel`
    (two where a cast of U and a rounding of W_hr meet). Returns U as the recurrence kernels
    take it, U as `triton_cell._gates_kernel` takes it, and W_hr (or None).

    The persistent kernels split U themselves for "tf32x3" dots. The split layout
    (``h0`` = (h0, dropout or None, its operand buffer (parts, B, P)), ``zero`` its barrier
    counters) takes U in parts rounded here, (2, P, 4H) for "tf32x3" dots, and h0 ⊙ dropout
    likewise in the same launch, the counters zeroed too."""
    split = h0 is not None
    u_in = u.detach().contiguous()
    u_round = dot_u == "tf32" or (split and dot_u == "tf32x3")
    parts = triton_split.operand_parts(dot_u) if split else 1
    jobs = []  # (x, out, scale, rounded)
    u_out = u_in[None]
    if u_round or u_in.dtype != dot_dtype:
        u_out = torch.empty(parts, *u.shape, device=u.device, dtype=dot_dtype)
        jobs.append((u_in, u_out, None, u_round))
    wr_dot = None if wr is None else wr.detach().contiguous()
    if wr_dot is not None and (dot == "tf32" or wr_dot.dtype != dot_dtype):
        wr_out = torch.empty(1, *wr.shape, device=wr.device, dtype=dot_dtype)
        jobs.append((wr_dot, wr_out, None, dot == "tf32"))
        wr_dot = wr_out[0]
    if split:
        h0, rdrop, h0_out = h0
        jobs.insert(0, (h0, h0_out, rdrop, u_round))
    cast = "ieee" if dot == "tf32" else dot  # the mode of the jobs that are not rounded
    for rounded in dict.fromkeys(job[3] for job in jobs):  # the zeros with the first launch
        group = [job[:3] for job in jobs if job[3] == rounded]
        _operands_into(group, "tf32" if rounded else cast, zero)
        zero = None
    u_first = u_out[0]
    u_gates = u_in.to(dot_dtype) if parts == 2 else u_first  # unrounded for "tf32x3"
    return u_out if parts == 2 else u_first, u_gates, wr_dot


def _real_args(real: torch.Tensor | None, dummy: torch.Tensor) -> tuple:
    """The mask (B, T) bool (or a dummy) and its two strides, as the forward kernels take it."""
    return (dummy, 0, 0) if real is None else (real, *real.stride())


def _keep_args(keep: torch.Tensor | None, dummy: torch.Tensor) -> tuple:
    """A keep tensor (or a dummy) and its three strides, as the kernels take them."""
    return (dummy, 0, 0, 0) if keep is None else (keep, *keep.stride())


class _Recurrence(torch.autograd.Function):
    """x (B, T, I), W, b, h0 (B, P) as the layer holds them, c0 (B, H) fp32 → the hidden
    states of every step (B, T, P), contiguous, the last one (B, P) and the last cell state
    (B, H), all three in the compute dtype ``dot_dtype`` (bf16 / fp16 under autocast: zx, dz,
    the outputs and the cell states kept for backward then take half the memory; the state is
    carried in fp32). x, W, b and h0 are cast here, not by autograd, so that backward gives
    their gradients in their own dtypes without a cast after (`_product`). Returning these
    alone (not the (B, T+1, H) buffer of cell states) keeps autograd from materialising
    gradient buffers of every cell state, or of every hidden state for h_T alone: backward
    starts its carries from those of h_T, c_T.

    What backward needs beyond hs and cs (and, with layer norm, the row statistics) is
    recomputed, not saved: zx from x, W, b (and γ_x), the operands it was made from; the gates
    from zx and the states (`triton_cell._gates_kernel`), into a buffer of backward's own that
    the reverse kernel overwrites with dz; act(c~) (`triton_cell._cell_activation`). With
    layer norm also LN(h·U), into a second buffer that becomes d loss / d (h·U). zx is made
    here, without a graph, and backward gives the gradients of x, W, b (and γ_x) from dz
    itself (`_input_projection_grad`, `_normalized_input_grad`), so that LN(x·W) is never kept
    and the bias gradient is not torch's sum over (batch, time), whose scratch took 8 more
    units of (B, T, H) fp32 at backward's peak (B=64 T=100 H=256, H200): the reverse kernels
    sum dz over each row's steps as they form it, and backward sums those rows. Where no
    backward can follow (``save`` False: `lstm` found gradients off, or no input that needs
    one) the kernels store neither cs nor the statistics, and c_T is the state they carried.

    With ``reverse`` (go_backwards) the steps run from T − 1 to 0, every (B, T, ·) buffer
    aligned with x; cs alone is in the steps' order (c0 first, c_T last)."""

    @staticmethod
    def forward(ctx, x, kernel, bias, gain_x, h0, c0, u, peep, wr, gamma_h, gamma_c, beta_c,
                rdrop, keep_c, keep_h, real, reverse, save, spec, cfg, dot_dtype):  # fmt: skip
        triton = _triton()
        # the leaves' dtypes, which backward's gradients take without a cast of autograd's
        ctx.dtypes = (x.dtype, kernel.dtype, None if bias is None else bias.dtype, h0.dtype)
        x, kernel, h0 = x.to(dot_dtype), kernel.to(dot_dtype), h0.to(dot_dtype).contiguous()
        if gain_x is None and bias is not None:  # layer norm's shift stays fp32
            bias = bias.to(dot_dtype)
        zx = _input_projection(x, kernel, gain_x, bias)
        B, T, G4 = zx.shape
        H, P = G4 // 4, spec.output_size
        f32 = dict(device=zx.device, dtype=torch.float32)
        dot = _dot_mode(dot_dtype, zx.device)
        hs = torch.empty(B, T, P, device=zx.device, dtype=h0.dtype)
        # the kernels store c0 too; only for a backward
        cs = torch.empty(B, T + 1, H, device=zx.device, dtype=h0.dtype) if save else None
        carry = torch.empty(B, H, **f32)  # the state itself, to c_T
        # with a mask: each row's first real step (T where none; zeros are output before it)
        # and h_T, which the kernels find and store
        first = None if real is None else torch.empty(B, device=zx.device, dtype=torch.int32)
        h_last = None if real is None else torch.empty(B, P, device=zx.device, dtype=h0.dtype)
        masked = (*_real_args(real, zx), _or(first, zx), _or(h_last, zx))
        ln = spec.layer_norm
        stats = torch.empty(B, T, 4, **f32) if ln and save else None
        o = torch.empty(B, H, **f32) if ln else None  # scratch rows of one step
        zhn = torch.empty(B, G4, **f32) if ln else None
        cn = torch.empty(B, H, **f32) if ln else None
        scratch = torch.empty(B, H, **f32) if (ln or wr is not None) else None
        buffers = [_or(t, zx) for t in (stats, o, zhn, cn, scratch)]
        consts = _constexprs(spec, wr, rdrop, keep_c, keep_h, first, reverse, dot, cfg)
        consts["SAVE"] = save
        cs_arg = _or(cs, zx)
        # fmt: off
        dot_u = consts["DOT_U"]
        if cfg.split:
            dtype = triton_split.operand_dtype(dot_dtype, dot_u)
            hd = triton_split.h_operands(B, P, zx.device, dtype, dot_u)
            # the counters of both passes, zeroed with the operands; a scratch buffer, kept out
            # of the saved tensors
            ctx.counters, ctx.counted = triton_split.tile_counters(B, H, cfg, zx.device), False
            u_parts, u_dot, wr_dot = _operands(
                u, wr, dot_dtype, dot, dot_u, (h0, rdrop, hd[:, 2]), ctx.counters
            )
            triton_split.forward(
                (
                    zx, h0, c0, u_parts, _or(peep, zx), _or(wr_dot, zx), _or(gamma_h, zx),
                    _or(gamma_c, zx), _or(beta_c, zx), _or(rdrop, zx), *masked,
                    *_keep_args(keep_c, zx), *_keep_args(keep_h, zx), hs, cs_arg, carry, *buffers,
                ),
                (B, T, H, P), _split_constexprs(consts), cfg, _INTERPRETED, hd, ctx.counters[0],
            )
        else:
            u_parts, u_dot, wr_dot = _operands(u, wr, dot_dtype, dot, dot_u)
            triton_persistent._lstm_fwd_kernel[(triton.cdiv(B, cfg.block_b),)](
                zx, h0, c0, u_parts, _or(peep, zx), _or(wr_dot, zx), _or(gamma_h, zx),
                _or(gamma_c, zx), _or(beta_c, zx), _or(rdrop, zx), *masked,
                *_keep_args(keep_c, zx), *_keep_args(keep_h, zx), hs, cs_arg, carry, *buffers,
                B, T, H, P, **consts, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
            )
        # fmt: on
        if h_last is None:  # without a mask h_T is the last step's output
            h_last = hs[:, 0 if reverse else T - 1]
        if not save:  # no backward to come: c_T is the carried state
            return hs, h_last, carry.to(hs.dtype)
        ctx.spec, ctx.cfg, ctx.dot_dtype, ctx.device_type = spec, cfg, dot_dtype, zx.device.type
        ctx.reverse = reverse
        ctx.set_materialize_grads(False)  # an unused output's gradient is no buffer of zeros
        saved = (h0, hs, cs, stats, x, kernel, bias, gain_x)  # None where not needed
        # the dot operands of U and W_hr as the kernels took them, for backward's kernels
        operands = (u_dot, None if u_parts is u_dot else u_parts, wr_dot)
        ctx.save_for_backward(
            *saved, *operands, u, peep, wr, gamma_h, gamma_c, beta_c, rdrop, keep_c, keep_h, first
        )
        return hs, h_last, cs[:, T]  # c_T as the kernels stored it, in hs's dtype

    @staticmethod
    def backward(ctx, dhs, dh_last, dc_last):
        # a backward called inside an autocast region (on the CPU it runs in the caller's
        # thread) must not turn x·W or the fp32 weight-gradient sums into bf16 ones
        with torch.autocast(ctx.device_type, enabled=False):
            return _Recurrence.backward_pass(ctx, dhs, dh_last, dc_last)

    @staticmethod
    def backward_pass(ctx, dhs, dh_last, dc_last):
        triton = _triton()
        h0, hs, cs, stats, x, kernel, bias, gain_x, u_dot, u_parts, wr_dot, *rest = (
            ctx.saved_tensors
        )
        u, peep, wr, gamma_h, gamma_c, beta_c, rdrop, keep_c, keep_h, first = rest
        spec, cfg = ctx.spec, ctx.cfg
        B, T, P = hs.shape
        H = spec.units
        f32 = dict(device=hs.device, dtype=torch.float32)
        dot = _dot_mode(ctx.dot_dtype, hs.device)
        wr_dot = u_dot if wr_dot is None else wr_dot
        consts = _constexprs(spec, wr, rdrop, keep_c, keep_h, first, ctx.reverse, dot, cfg)
        consts["DHS"] = dhs is not None  # None where the outputs were not used
        consts["START_H"], consts["START_C"] = dh_last is not None, dc_last is not None
        ln = spec.layer_norm
        need = ctx.needs_input_grad
        # the bias gradient as the kernels' sums of dz over each row's steps (with layer norm
        # of x·W it comes from that norm's backward, which takes dz anyway)
        consts["BIAS_SUMS"] = bias_sums = bias is not None and need[2] and not ln
        # the gates, which the reverse kernel overwrites with dz as it reads them (in zx's
        # dtype; fp32 with layer norm); LN(h·U) likewise with d loss / d (h·U)
        if ln:  # with the rows' statistics of x·W, for its gradient below
            dz, mean_x, rstd_x = _normalized_input(x, kernel, gain_x, bias)
        else:
            dz = _input_projection(x, kernel, gain_x, bias)
        zhn = torch.empty_like(dz) if ln else None
        norm = (gamma_h, stats, zhn) if ln else ()
        _recompute_gates(dz, h0, hs, cs, rdrop, first, u_dot, peep, consts, *norm)
        del norm  # zhn's buffer is freed with dzh below
        dzh = dz if zhn is None else zhn
        dhn = torch.empty(B, T, P, **f32) if wr is not None else dz
        ms = torch.empty(B, T, H, **f32) if wr is not None else dz
        # each row's sums over its steps: of dz (4H), then of the peepholes' terms (3H)
        n_sums = 4 * H * bias_sums + 3 * H * (peep is not None)
        sums = torch.empty(B, n_sums, **f32) if n_sums else dz
        # with a mask each row's dzh at its first real step, for d loss / d U
        at_first = None if first is None else torch.empty(B, 4 * H, **{**f32, "dtype": dzh.dtype})
        dcn = torch.empty(B, H, **f32) if ln else dz  # scratch
        scratch = torch.empty(B, H, **f32) if ln else dz
        dnorm = torch.empty(triton.cdiv(B, cfg.block_b), 6 * H, **f32) if ln else dz
        dhs_args = (hs, 0, 0, 0) if dhs is None else (dhs, *dhs.stride())
        inputs = (
            *dhs_args, u_dot, _or(peep, dz), wr_dot, _or(gamma_h, dz), _or(gamma_c, dz),
            _or(beta_c, dz), _or(rdrop, dz), _or(first, dz),
            *_keep_args(keep_c, dz), *_keep_args(keep_h, dz),
            cs, _or(stats, dz), dz, dzh,
        )  # fmt: skip
        # the kernels start the carries from the gradients of h_T and c_T as they came
        starts = (*_start_args(dh_last, dz), *_start_args(dc_last, dz))
        if cfg.split:  # one carry each
            d_h0, d_c0 = torch.empty(B, P, **f32), torch.empty(B, H, **f32)
            u_parts = u_dot if u_parts is None else u_parts
            if ctx.counted:  # a second backward (retain_graph): the counters start again
                ctx.counters[1].zero_()
            ctx.counted = True
            triton_split.backward(
                (
                    *inputs[:4], u_parts, *inputs[5:], dz, dzh, dhn, dcn, dnorm, sums, n_sums, ms,
                    _or(at_first, dz), scratch,
                ),
                (B, T, H, P),
                _split_constexprs(consts), cfg, _INTERPRETED, (d_h0, d_c0, *starts),
                ctx.counters[1],
            )  # fmt: skip
        else:  # ping-pong carries (each slot is written before it is read)
            dh, dc = torch.empty(2, B, P, **f32), torch.empty(2, B, H, **f32)
            triton_persistent._lstm_bwd_kernel[(triton.cdiv(B, cfg.block_b),)](
                *inputs, dz, dzh, dhn, dcn, dnorm, sums, n_sums, ms, _or(at_first, dz), dh, dc,
                scratch,
                *starts,
                B, T, H, P, **consts, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
            )  # fmt: skip
            d_h0, d_c0 = dh[T % 2], dc[T % 2]
        x_dtype, w_dtype, b_dtype, h0_dtype = ctx.dtypes
        d_b = d_u = d_peep = d_wr = d_gx = d_gh = d_gc = d_bc = None
        if n_sums:  # the sums over the rows too, in one op
            totals = sums.sum(0)
            if bias_sums:
                d_b = totals[: 4 * H].to(b_dtype)
            if peep is not None:
                d_peep = totals[4 * H * bias_sums :].view(3, H).to(peep.dtype)
        if wr is not None:  # Σ mᵀ·dhn over every row and step
            d_wr = (ms.view(-1, H).t() @ dhn.view(-1, P)).to(wr.dtype)
        del inputs, sums, ms, dhn  # before d loss / d U's operands are formed
        if need[6]:
            d_u = _recurrent_kernel_grad(h0, hs, rdrop, dzh, at_first, ctx.reverse).to(u.dtype)
        del dzh, zhn, at_first  # d loss / d (h·U), with layer norm a buffer of its own
        if ln:
            d_gh, d_gc, d_bc = dnorm.sum(0).split([4 * H, H, H])
            d_gh, d_gc, d_bc = d_gh.to(gamma_h.dtype), d_gc.to(gamma_c.dtype), d_bc.to(beta_c.dtype)
            d_x, d_w, d_gx, d_b = _normalized_input_grad(
                dz, x, kernel, gain_x, bias, mean_x, rstd_x, (need[0], need[1], need[3], need[2]),
                (x_dtype, w_dtype),
            )  # fmt: skip
        else:
            d_x, d_w = _input_projection_grad(dz, x, kernel, need[:2], (x_dtype, w_dtype))
        # the gradients of x, W, b, γ_x, h0, c0, U, peepholes, W_hr, γ_h, γ_c, β_c; none for
        # the rest
        return (
            d_x, d_w, d_b, d_gx, d_h0.to(h0_dtype), d_c0, d_u, d_peep, d_wr, d_gh, d_gc, d_bc,
            *(None,) * 9,
        )  # fmt: skip


def _start_args(grad: torch.Tensor | None, dummy: torch.Tensor) -> tuple:
    """The gradient of h_T or c_T (B, N) and its two strides as the reverse kernels take it
    (`triton_cell._carry_in`), a dummy where that output was not used."""
    return (dummy, 0, 0) if grad is None else (grad, *grad.stride())


def _recompute_gates(
    z, h0, hs, cs, rdrop, first, u_dot, peep, consts, gamma_h=None, stats=None, zhn=None
) -> None:  # fmt: skip
    """Overwrite z = zx (B, T, 4H) with the gates the forward formed
    (`triton_cell._gates_kernel`); with layer norm (γ_h, the forward's stats, zhn given) store
    LN(h·U) before γ_h in zhn."""
    B, T, G4 = z.shape
    H, P = G4 // 4, hs.shape[2]
    block_b, block_h, block_p = 64, 32, 32  # 8 warps: 128-168 registers, no spills (sm_90a)
    grid = (-(-B * T // block_b), -(-H // block_h))
    kinds = (
        "GATE_ACT", "CELL_ACT", "DOT", "DOT_U", "PEEPHOLE", "LAYER_NORM", "RDROP", "MASKED",
        "REVERSE",
    )  # fmt: skip
    triton_cell._gates_kernel[grid](
        z, h0, hs, cs, u_dot, _or(peep, z), _or(rdrop, z), _or(first, z),
        _or(gamma_h, z), _or(stats, z), _or(zhn, z), B, T, H, P, **{k: consts[k] for k in kinds},
        BLOCK_B=block_b, BLOCK_H=block_h, BLOCK_P=block_p, num_warps=8,
    )  # fmt: skip


# The weight gradients: sums over every row and step, taken where their operands would be
# copies over a slice of the batch at a time, so that those never exist for all rows.


def _batch_slices(batch: int, chunks: int) -> list[slice]:
    step = -(-batch // chunks)
    return [slice(b, b + step) for b in range(0, batch, step)]


def _recurrent_kernel_grad(
    h0: torch.Tensor,
    hs: torch.Tensor,
    rdrop: torch.Tensor | None,
    dzh: torch.Tensor,
    at_first: torch.Tensor | None,
    reverse: bool = False,
) -> torch.Tensor:
    """d loss / d U = Σ (h_{t-1} ⊙ dropout)ᵀ · dzh_t in fp32, h_{t-1} being h0 then hs[:, :-1]
    (h0 again at a row's first real step, where hs holds zeros before it; dzh is 0 at the
    masked steps before), over the rows taken flat (`_shifted_rows_grad`), with a mask from
    each row's dzh at its first real step (``at_first``, as the reverse kernels stored it).
    With dropout, hs and h0 dropped again as the forward dropped them (in fp32, then dzh's
    dtype), and where dzh is fp32 beside bf16 states (layer norm), hs in fp32: one copy of
    every state, made in one op."""
    if rdrop is not None:
        hs, h0 = hs * rdrop[:, None, :], h0 * rdrop
    hs, h0 = hs.to(dzh.dtype), h0.to(dzh.dtype)
    return _shifted_rows_grad(h0, hs, at_first, dzh, reverse)


def _shifted_rows_grad(h0, hs, at_first, dzh, reverse=False) -> torch.Tensor:
    """`_recurrent_kernel_grad` from hs and h0 as the dots took them, with no copy of h_{t-1}
    shifted by a step: over the (B·T) rows of hs and dzh taken flat, row r of hs meets row
    r + 1 of dzh, which pairs hs[b, t-1] with dzh[b, t]; the pairs across rows (hs[b, T-1],
    dzh[b+1, 0]) are taken out again, and h0 meets dzh at each row's first real step,
    ``at_first`` (B, 4H) (hs holds zeros before it, dzh at the masked steps before; dzh[:, 0]
    without a mask). Three products, summed in fp32 (`_add_product`). With ``reverse`` (the
    steps run from T − 1 to 0) all of it mirrored: row r of dzh meets row r + 1 of hs."""
    B, T, P = hs.shape
    hs_rows, dzh_rows = hs.view(-1, P), dzh.view(-1, dzh.shape[2])
    first, last = (T - 1, 0) if reverse else (0, T - 1)
    if at_first is None:
        at_first = dzh[:, first]
    if reverse:
        total = _product(hs_rows[1:].t(), dzh_rows[:-1], torch.float32)
        total = _add_product(total, hs[1:, last].t(), dzh[:-1, first], alpha=-1)
    else:
        total = _product(hs_rows[:-1].t(), dzh_rows[1:], torch.float32)
        total = _add_product(total, hs[:-1, last].t(), dzh[1:, first], alpha=-1)
    return _add_product(total, h0.t(), at_first)


# bf16 / fp16 products with fp32 results: torch ≥ 2.8 has GEMMs that write fp32 from such
# operands on CUDA (``out_dtype``, into a given ``out`` too); elsewhere the product is rounded
# to the operands' dtype first, as autograd's own bf16 matmul gives it, and then cast.
_FP32_OUT = all(hasattr(torch.ops.aten.mm, name) for name in ("dtype", "dtype_out"))


def _fp32_out(t: torch.Tensor) -> bool:
    return _FP32_OUT and t.device.type == "cuda"


def _product(
    a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, out: torch.Tensor | None = None
) -> torch.Tensor:  # fmt: skip
    """a·b (2-D, one dtype, fp32 accumulation) in ``dtype``, written into ``out`` where given:
    a gradient in its leaf's dtype, fp32 from bf16 operands under autocast in one GEMM where
    `_fp32_out`, no cast or copy after it (each is one more op the GPU waits for,
    bench/host_ops.py)."""
    if a.dtype != dtype and dtype == torch.float32 and _fp32_out(a):
        return torch.mm(a, b, out_dtype=dtype, out=out)
    if a.dtype == dtype and out is not None:
        return torch.mm(a, b, out=out)
    product = (a @ b).to(dtype)
    return product if out is None else out.copy_(product)


def _add_product(
    total: torch.Tensor, a: torch.Tensor, b: torch.Tensor, alpha: float = 1.0
) -> torch.Tensor:  # fmt: skip
    """total (fp32) + alpha·a·b, a·b as `_product` forms it; in place where a is fp32."""
    if a.dtype == total.dtype:
        return total.addmm_(a, b, alpha=alpha)
    return total.add_(_product(a, b, total.dtype), alpha=alpha)


def _or(tensor: torch.Tensor | None, dummy: torch.Tensor) -> torch.Tensor:
    return dummy if tensor is None else tensor


def _constexprs(spec, wr, rdrop, keep_c, keep_h, first, reverse, dot, cfg) -> dict:
    return dict(
        GATE_ACT=ACTIVATIONS[spec.recurrent_activation],
        CELL_ACT=ACTIVATIONS[spec.activation],
        PEEPHOLE=spec.peephole,
        LAYER_NORM=spec.layer_norm,
        PROJ=wr is not None,
        RDROP=rdrop is not None,
        KEEP_C=_keep_kind(keep_c),
        KEEP_H=_keep_kind(keep_h),
        MASKED=first is not None,
        REVERSE=reverse,
        DOT=dot,
        DOT_U=_u_dot_mode(dot, spec),
        BLOCK_B=cfg.block_b,
        BLOCK_H=cfg.block_h,
        BLOCK_P=cfg.block_p,
    )


def _split_constexprs(consts: dict) -> dict:
    """`_constexprs` for the split-hidden kernels, whose K chunk is ``block_p``."""
    split = {k: v for k, v in consts.items() if k != "BLOCK_P"}
    return {**split, "BLOCK_K": consts["BLOCK_P"]}


def _keeps(
    spec: LSTMSpec,
    noise: LSTMNoise,
    real: torch.Tensor | None,
    shape: tuple[int, int, int],
    device: torch.device,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """keep_c, keep_h: the weights of the old cell and hidden state, (B, T, H) and (B, T, P)
    views, broadcast with zero strides where they do not vary; None where every weight is 0.
    keep = z at a real step and 1 at a masked one, mask and zoneout together: z is the
    training mask (B, T, N), the rate at inference, 0 without zoneout, fp32; with zoneout
    keep = max(z, not real), one op (1 − real·(1 − z) took three and a cast). A mask alone
    is passed as it is, bool, for both states: the kernels take a bool keep for the mask
    and form keep = not real themselves (`_keep_kind`, `triton_cell._keep_at`), with no op here."""
    B, T, H = shape
    P = spec.output_size
    steps = None if real is None else real[:, :, None]  # (B, T, 1)
    masked = None  # the masked steps, shared by both states' zoneout keeps
    if steps is not None and (spec.zoneout_cell or spec.zoneout_hidden):
        masked = ~steps
    keep_c = _keep(spec.zoneout_cell, noise.zoneout_cell, steps, masked, device)
    keep_h = _keep(spec.zoneout_hidden, noise.zoneout_hidden, steps, masked, device)
    return (
        None if keep_c is None else keep_c.expand(B, T, H),
        None if keep_h is None else keep_h.expand(B, T, P),
    )


def _keep_kind(keep: torch.Tensor | None) -> int:
    """The kernels' KEEP_C / KEEP_H: 0 without a keep, 1 for fp32 keeps, 2 for a mask alone
    (bool, True where a step is real; `_keeps`)."""
    if keep is None:
        return 0
    return 2 if keep.dtype == torch.bool else 1


def _keep(
    rate: float,
    zoneout: torch.Tensor | None,
    steps: torch.Tensor | None,
    masked: torch.Tensor | None,
    device: torch.device,
) -> torch.Tensor | None:
    """One state's keep (`_keeps`) before its broadcast: without zoneout the mask itself
    (``steps`` (B, T, 1) bool, True where real) or None; with it from z and the masked steps
    (``masked``, not ``steps``), or z alone without a mask."""
    if not rate:
        return steps
    z = (
        zoneout.to(device, torch.float32)
        if zoneout is not None
        else torch.full((1, 1, 1), float(rate), device=device)
    )
    return z if masked is None else torch.maximum(z, masked)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype of the dots and of the outputs: autocast's for fp32 inputs, else x's."""
    if x.dtype == torch.float32 and torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def _input_projection(x, kernel, gain, shift) -> torch.Tensor:
    """zx = x·W + b (B, T, 4H), contiguous in x's dtype; with γ_x given γ_x LN(x·W) + b in
    fp32 (`_normalized_input`). b may be None."""
    if gain is not None:
        return _normalized_input(x, kernel, gain, shift)[0]
    return F.linear(x, kernel.t(), shift).contiguous()


def _input_projection_grad(dz, x, kernel, need, dtypes) -> tuple:
    """d loss / d (x, W) of zx = x·W + b from dz = d loss / d zx, x, W and dz in the compute
    dtype, each gradient in its leaf's dtype (``dtypes``, `_product`); None where ``need``
    (two flags, in that order) is false. b's is the reverse kernels' sum of dz (a sum of
    torch's over (batch, time) took 50 MiB of scratch at B=64 T=100 H=256, H200)."""
    dz_rows = dz.view(-1, dz.shape[2])
    x_dtype, w_dtype = dtypes
    d_x = d_w = None
    if need[0]:
        d_x = _product(dz_rows, kernel.t(), x_dtype).view(*x.shape)
    if need[1]:
        d_w = _product(x.reshape(-1, x.shape[2]).t(), dz_rows, w_dtype)
    return d_x, d_w


def _normalized_input(x, kernel, gain, shift) -> tuple:
    """zx = γ_x LN(x·W) + b (B, T, 4H) in fp32, b may be None, and the rows' mean and inverse
    deviation of x·W (B, T, 1); x and W (the compute dtype's) multiply into fp32
    (`_x_times_w`). For every row at once: x·W and zx (8 units of (B, T, H) fp32) live
    together only here, below backward's peak, and a slice at a time took a dozen more host
    ops per slice."""
    shift = None if shift is None else shift.float()
    xw = _x_times_w(x, kernel)
    return torch.native_layer_norm(xw, (xw.shape[2],), gain.float(), shift, reference.LN_EPSILON)


def _x_times_w(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """x·W (B, T, 4H) in fp32 for layer norm, from x and W in the compute dtype: under bf16 /
    fp16 autocast one GEMM with an fp32 output where `_fp32_out` (no rounding of x·W to bf16
    before the norm, and no cast after), else the rounded product cast (`_product`)."""
    rows = _product(x.reshape(-1, x.shape[2]), kernel, torch.float32)
    return rows.view(*x.shape[:2], kernel.shape[1])


def _normalized_input_grad(dz, x, kernel, gain, shift, mean, rstd, need, dtypes) -> tuple:
    """d loss / d (x, W, γ_x, b) of `_normalized_input` from dz = d loss / d zx and the rows'
    mean and rstd it gave: torch's own layer-norm backward, half the batch at a time (x·W
    formed again per half); None where ``need`` (four flags, in that order) is false. x's and
    W's gradients in ``dtypes``, their leaves'; W's, γ_x's and b's are fp32 sums."""
    G4 = dz.shape[2]
    x_dtype, w_dtype = dtypes
    shift = None if shift is None else shift.float()
    mask = [True, need[2], need[3] and shift is not None]
    d_x = torch.empty(x.shape, device=x.device, dtype=x_dtype) if need[0] else None
    d_w = d_gain = d_shift = None  # fp32 sums, from the first half on

    def add(total, term):
        return term if total is None else total.add_(term)

    for rows in _batch_slices(dz.shape[0], 2):
        xw = _x_times_w(x[rows], kernel)
        d_xw, d_g, d_s = _layer_norm_backward(
            dz[rows], xw, (G4,), mean[rows], rstd[rows], gain.float(), shift, mask
        )
        del xw
        if d_x is not None:
            d_xw_rows = d_xw.to(x.dtype).view(-1, G4)
            _product(d_xw_rows, kernel.t(), x_dtype, out=d_x[rows].view(-1, x.shape[2]))
        if need[1]:
            x_t, d_rows = x[rows].reshape(-1, x.shape[2]).t().float(), d_xw.reshape(-1, G4)
            d_w = x_t @ d_rows if d_w is None else d_w.addmm_(x_t, d_rows)
        d_gain, d_shift = add(d_gain, d_g), add(d_shift, d_s)
    return (
        d_x,
        None if d_w is None else d_w.to(w_dtype),
        None if d_gain is None else d_gain.to(gain.dtype),
        None if d_shift is None else d_shift.to(shift.dtype),
    )


def lstm(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weights: LSTMWeights,
    spec: LSTMSpec,
    mask: torch.Tensor | None = None,
    noise: LSTMNoise | None = None,
    *,
    config: TritonConfig | None = None,
    go_backwards: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same contract as `lstmkit.kernels.reference.lstm`; ``config`` overrides the launch shape.
    ``go_backwards`` runs the steps from the last to the first inside the kernels, with x,
    mask, noise and the outputs aligned with the input steps (no flips; the contract of
    `lstmkit.kernels.dispatch.lstm`).

    x (B, T, I) float32, bfloat16 or float16 (float32 under autocast computes in autocast's
    dtype); h0 (B, P); c0 (B, H); mask (B, T) bool, True where a step is real. Returns
    ``(outputs (B, T, P), h_T (B, P), c_T (B, H))`` in the compute dtype.
    """
    if not supports(spec, mask, noise):
        raise ValueError(f"the triton kernel cannot run {spec} with this mask/noise")
    if not _device_ok(x.device):
        raise ValueError(
            f"the triton kernel runs on CUDA tensors (on the CPU only with TRITON_INTERPRET=1 set "
            f"before triton is imported); got x on {x.device}"
        )
    if x.dim() != 3:
        raise ValueError(f"x must have shape (batch, time, features); got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"x must be float32, bfloat16 or float16; got {x.dtype}")
    reference.check_noise(spec, noise)
    B, T, _ = x.shape
    H, P = spec.units, spec.output_size
    if T == 0:
        return x.new_zeros(B, 0, P), h0, c0
    cdtype = _compute_dtype(x)
    w = weights
    real = None if mask is None else mask.to(device=x.device, dtype=torch.bool)
    noise = noise or LSTMNoise()
    keep_c, keep_h = _keeps(spec, noise, real, (B, T, H), x.device)
    rdrop = None if noise.recurrent_mask is None else noise.recurrent_mask.float().contiguous()
    proj = w.projection if spec.proj_size else None
    peep = w.peephole.contiguous() if spec.peephole else None
    norms = (
        (w.recurrent_norm_gamma, w.cell_norm_gamma, w.cell_norm_beta)
        if spec.layer_norm
        else (None, None, None)
    )
    gain_x = w.input_norm_gamma if spec.layer_norm else None
    cfg = config or default_config(B, H, P, x.device, cdtype)
    inputs = (x, h0, c0, *(t for t in weights if t is not None))
    save = torch.is_grad_enabled() and any(t.requires_grad for t in inputs)  # for a backward
    return _Recurrence.apply(
        x, w.kernel, w.bias, gain_x, h0, c0.float().contiguous(), w.recurrent_kernel, peep,
        proj, *norms, rdrop, keep_c, keep_h, real, bool(go_backwards), save, spec, cfg, cdtype,
    )  # fmt: skip
