"""Fused persistent LSTM kernels in Triton: the whole time loop of one layer in one launch.

What is fused, and why. An LSTM layer is T small dependent steps; run as torch ops, each step is
a dozen launches and the backward is one autograd node per op and step. Here:

- forward: one GEMM (torch) computes the input projection of all steps, x·W (+ LN, + bias); one
  Triton launch then runs the recurrence, one program per tile of BLOCK_B batch rows, the time
  loop inside the kernel. Per step and tile it computes h·U chunk by chunk (BLOCK_H hidden
  units, a K loop over BLOCK_P units of h), the gates, c and h, and stores what backward needs:
  the carried states; with layer norm also the row mean and inverse deviation of h·U and c.
- backward: it first recomputes the gates of all steps at once, as every h_{t-1} and c_{t-1}
  is known: x·W (+ LN, + bias) again and one parallel launch (`_gates_kernel`). One Triton
  launch then runs the reverse recurrence for dh/dc and the gate gradients only, writing dz
  over the gates as it reads them; the weight gradients (dU, dW_hr, the peepholes) and dx,
  dW, db are then a few large GEMMs / reductions over all T·B rows at once (torch; the norm
  gains' are summed in the kernel). So each pass holds one (B, T, 4H) buffer at a time
  (forward zx, backward the gates and then dz); layer norm's backward one more, LN(h·U) and
  then its gradient over it.

Every variant of `LSTMSpec` except arbitrary activations is in the kernel: masks and
per-sample lengths, initial state, recurrent dropout, peepholes (Gers & Schmidhuber 2000),
zoneout (Krueger et al. 2017), projection (Sak et al. 2014) and layer norm (Ba et al. 2016).
Masks and zoneout share one mechanism: the carried state is ``keep·old + (1 − keep)·new`` with
``keep = 1 − real·(1 − zoneout)`` (1 at a masked step, the zoneout mask or rate at a real one),
and the outputs are the hidden states where a real step has been seen, zeros before: the
kernels write those zeros themselves, reading h0 as h_{t-1} up to each row's first real step.
Keras's go_backwards is a constexpr too (REVERSE): the kernels walk the steps from the last
input step to the first (`_time`) with x, the mask, the keeps and the outputs aligned with the
input steps, so no tensor is flipped, and `Bidirectional` takes its backward direction's
sequence in the input's order as it is.

Bytes moved (fp32 buffers, per layer call; B=64, T=100, I=32, H=128, no projection):
  forward  reads zx B·T·4H·4 = 13.1 MB, writes c + h B·T·2H·4 = 6.6 MB;
  backward writes zx and then the gates over it (2 × 13.1 MB), reads them, h, c and dh, and
  writes dz B·T·4H·4 = 13.1 MB. The recurrent kernel U (H·4H, 128 KB in bf16) is re-read
  from L2 by every tile at every step: T·(B/BLOCK_B)·128 KB = 51 MB of L2 traffic, the term
  the split-hidden layout (`triton_split`) removes.
All DRAM traffic together (≈ 110 MB) is ≈ 40 µs at 3 TB/s, against cuDNN's 1.4 ms for the
forward+backward: the recurrence is bound by the latency of its T dependent steps (and by the
L2 re-reads of U at large H), not by DRAM bandwidth.

Numerics. The state, the arithmetic and the statistics are fp32. Under autocast (bf16 /
fp16) the large buffers a layer keeps or hands on are in that dtype: zx, the outputs, the
cell states it keeps for backward, the gates and dz (cuDNN's bf16 layer, too, takes about
half its fp32 memory); the state itself is carried from step to step in fp32 (layer norm's
zx, gates and dz stay fp32 too). The dots take fp32 operands with TF32 on CUDA when
``torch.backends.cudnn.rnn.fp32_precision == "tf32"`` (torch's default, the rule cuDNN's LSTM
follows), true fp32 otherwise. TF32 operands are rounded to nearest (weights once per
forward, in one launch of `_operands_kernel`, kept for backward; activations in the kernels): the
tensor cores would drop their low 13 bits, a bias that adds up over the steps. Under
autocast (bf16 / fp16) or with low-precision inputs the operands of the dots are in that
dtype, the accumulation fp32, and outputs are returned in that dtype as cuDNN does.

Triton is imported on first use, never at import, and the device functions below are plain
functions that `_triton()` wraps in place on first use: for Triton's interpreter when
``TRITON_INTERPRET=1`` is set then (how the CPU-only CI runs them), else with ``triton.jit``.
This works even where triton was imported earlier in compiled mode (keras imports it), as the
kernels call no jitted helper of triton.language. ``TritonConfig(split=True)`` runs the
recurrence in the split-hidden layout of `triton_split` instead (every variant; opt-in until
it is measured on a GPU).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lstmkit.kernels import reference, triton_split
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
# Triton device functions and kernels (plain functions, wrapped by `_triton()` on first use).
# Names: p_ pointers, b_ loaded blocks, m_ masks, o_ offsets. Buffers are contiguous fp32
# unless said otherwise; G4 = 4H and gate k of a (…, 4H) row is at columns k·H … k·H + H.

_JIT_FUNCTIONS = (
    "_add",
    "_row_sum",
    "_sigmoid",
    "_activation",
    "_activation_grad",
    "_round_tf32",
    "_round_bf16",
    "_store",
    "_dot",
    "_merge_stats",
    "_h_times_u",
    "_rows_times",
    "_gate_blocks",
    "_normalized_gates",
    "_col_sum",
    "_accumulate",
    "_gates_and_cell",
    "_outside_grad",
    "_time",
    "_keep_at",
    "_seen_through",
    "_first_real_steps",
    "_emit_hidden",
    "_finish_hidden",
    "_cell_inputs",
    "_cell_stats",
    "_recomputed_cell",
    "_cell_activation",
    "_cell_backward",
    "_carry_in",
    "_hidden_grad",
    "_store_gates",
    "_peephole_terms",
    "_peephole_sums",
    "_sum_into",
    "_add_blocks",
    "_add_gates",
    "_lstm_fwd_kernel",
    "_gates_kernel",
    "_lstm_bwd_kernel",
    "_operand_block",
    "_operands_kernel",
)
_TRITON = None  # the triton module once `_triton()` has run
_INTERPRETED = None  # whether `_triton()` wrapped the kernels for the interpreter
tl = None  # triton.language once `_triton()` has run


# The kernels use only Triton builtins and the functions here, never triton.language's own
# jitted helpers (tl.zeros, tl.sum, tl.sigmoid): those are compiled-mode objects when triton was
# imported without TRITON_INTERPRET (by keras, say), while ours can still be wrapped for the
# interpreter.


def _add(a, b):
    return a + b


def _row_sum(x):
    return tl.reduce(x, 1, _add)


def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


def _activation(x, KIND: tl.constexpr):
    if KIND == 1:  # tanh, through the sigmoid so the interpreter and every target agree
        y = 2.0 * _sigmoid(2.0 * x) - 1.0
    elif KIND == 2:
        y = _sigmoid(x)
    elif KIND == 3:  # hard_sigmoid (Keras 3): relu6(x + 3) / 6
        y = tl.minimum(tl.maximum(x / 6.0 + 0.5, 0.0), 1.0)
    elif KIND == 4:
        y = tl.maximum(x, 0.0)
    elif KIND == 5:  # softsign
        y = x / (1.0 + tl.abs(x))
    else:
        y = x
    return y


def _activation_grad(y, KIND: tl.constexpr):
    """d act / dx written with the output y = act(x)."""
    if KIND == 1:
        d = 1.0 - y * y
    elif KIND == 2:
        d = y * (1.0 - y)
    elif KIND == 3:
        d = tl.where((y > 0.0) & (y < 1.0), 1.0 / 6.0, 0.0)
    elif KIND == 4:
        d = tl.where(y > 0.0, 1.0, 0.0)
    elif KIND == 5:
        d = (1.0 - tl.abs(y)) * (1.0 - tl.abs(y))
    else:
        d = y * 0.0 + 1.0
    return d


def _round_tf32(x):
    """x rounded to TF32's 10 mantissa bits, to nearest even; infinities and NaN kept."""
    bits = x.to(tl.uint32, bitcast=True)
    rounded = (bits + 0xFFF + ((bits >> 13) & 1)) & 0xFFFFE000
    return tl.where((bits & 0x7F800000) == 0x7F800000, x, rounded.to(tl.float32, bitcast=True))


def _round_bf16(x):
    """fp32 x rounded to bf16's 7 mantissa bits, to nearest even, still fp32: by hand, as the
    interpreter's casts to bf16 truncate."""
    bits = x.to(tl.uint32, bitcast=True)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.to(tl.float32, bitcast=True)


def _store(p, x, m, DOT: tl.constexpr):
    """Store fp32 x at p in p's dtype. Into bf16 the GPU rounds to nearest even, the interpreter
    truncates: under emulated dots (the interpreter's low precision) x is rounded here first."""
    if DOT == "emulate":
        if p.dtype.element_ty == tl.bfloat16:
            x = _round_bf16(x)
    tl.store(p, x, mask=m)


def _dot(a, b, acc, DOT: tl.constexpr):
    """acc + a·b with a fp32, b as stored: "ieee" fp32 dots; "tf32": a rounded to TF32 here and
    b already rounded by `_tf32` (the tensor cores would truncate them, a bias that grows over
    the steps); "low": a is cast to b's bf16/fp16; "emulate": the same rounding of a done in
    fp32 (the interpreter has no bf16 dot); "tf32x3": three TF32 products that recover fp32's
    accuracy (b unrounded)."""
    if DOT == "tf32":
        out = tl.dot(_round_tf32(a), b, acc, input_precision="tf32")
    elif DOT == "tf32x3":
        out = tl.dot(a, b, acc, input_precision="tf32x3")
    elif DOT == "low":
        out = tl.dot(a.to(b.dtype), b, acc)
    elif DOT == "emulate":
        if b.dtype == tl.bfloat16:
            a = _round_bf16(a)
        else:
            a = a.to(b.dtype).to(tl.float32)
        out = tl.dot(a, b.to(tl.float32), acc, input_precision="ieee")
    else:
        out = tl.dot(a, b.to(tl.float32), acc, input_precision=DOT)
    return out


def _merge_stats(mean, m2, n_prev, x, m_x, n_x):
    """Chan's merge of a chunk's row mean and sum of squared deviations into running ones.
    x: (BLOCK_B, N) with m_x marking valid columns, n_x of them; n_prev columns seen so far."""
    c_mean = _row_sum(tl.where(m_x, x, 0.0)) / n_x
    d = tl.where(m_x, x - c_mean[:, None], 0.0)
    c_m2 = _row_sum(d * d)
    n = n_prev + n_x
    delta = c_mean - mean
    return mean + delta * (n_x / n), m2 + c_m2 + delta * delta * (n_prev * n_x / n)


def _h_times_u(
    p_h, p_rd, p_u, m_b, cols, m_h, H, P,
    RDROP: tl.constexpr, DOT: tl.constexpr, CACHE: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Columns ``cols`` of the four gate blocks of (h ⊙ dropout)·U, for rows p_h (BLOCK_B,);
    h is loaded with the cache modifier CACHE ("" or ".cg" where other programs wrote it)."""
    acc_i = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    acc_f = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    acc_g = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    acc_o = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    for k0 in range(0, P, BLOCK_P):
        ks = k0 + tl.arange(0, BLOCK_P)
        m_bk = m_b[:, None] & (ks < P)[None, :]
        b_h = tl.load(p_h[:, None] + ks[None, :], mask=m_bk, other=0.0, cache_modifier=CACHE)
        b_h = b_h.to(tl.float32)
        if RDROP:
            b_h = b_h * tl.load(p_rd[:, None] + ks[None, :], mask=m_bk, other=0.0)
        p_uk = p_u + ks[:, None] * (4 * H) + cols[None, :]  # (BLOCK_P, BLOCK_H)
        m_u = (ks < P)[:, None] & m_h[None, :]
        acc_i = _dot(b_h, tl.load(p_uk, mask=m_u, other=0.0), acc_i, DOT)
        acc_f = _dot(b_h, tl.load(p_uk + H, mask=m_u, other=0.0), acc_f, DOT)
        acc_g = _dot(b_h, tl.load(p_uk + 2 * H, mask=m_u, other=0.0), acc_g, DOT)
        acc_o = _dot(b_h, tl.load(p_uk + 3 * H, mask=m_u, other=0.0), acc_o, DOT)
    return acc_i, acc_f, acc_g, acc_o


def _rows_times(
    p_a, K, p_b, s_bk, s_bn, cols, m_cols, m_b,
    DOT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """A·B for the rows p_a (BLOCK_B,) of A (…, K) and the columns ``cols`` of B, whose element
    (k, n) is at p_b + k·s_bk + n·s_bn. A is read from L2 (``.cg``): in the split layout other
    programs wrote it."""
    acc = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        m_k = ks < K
        b_a = tl.load(
            p_a[:, None] + ks[None, :],
            mask=m_b[:, None] & m_k[None, :],
            other=0.0,
            cache_modifier=".cg",
        ).to(tl.float32)
        b_b = tl.load(
            p_b + ks[:, None] * s_bk + cols[None, :] * s_bn,
            mask=m_k[:, None] & m_cols[None, :],
            other=0.0,
        )
        acc = _dot(b_a, b_b, acc, DOT)
    return acc


def _gate_blocks(p, m, H):
    """The four gate blocks of a chunk at p (2-D, gate i), in fp32."""
    b_i = tl.load(p, mask=m, other=0.0).to(tl.float32)
    b_f = tl.load(p + H, mask=m, other=0.0).to(tl.float32)
    b_g = tl.load(p + 2 * H, mask=m, other=0.0).to(tl.float32)
    b_o = tl.load(p + 3 * H, mask=m, other=0.0).to(tl.float32)
    return b_i, b_f, b_g, b_o


def _normalized_gates(
    zi, zf, zg, zo, mean, rstd, p_gamma_h, p_xhat, cols, m_h, m, H, SAVE: tl.constexpr
):  # fmt: skip
    """γ_h·LN(h·U) of one chunk from its four raw gate blocks of h·U and the row statistics;
    with SAVE the normalised x̂ (before γ_h) is stored at p_xhat (2-D, gate i)."""
    zi = (zi - mean[:, None]) * rstd[:, None]
    zf = (zf - mean[:, None]) * rstd[:, None]
    zg = (zg - mean[:, None]) * rstd[:, None]
    zo = (zo - mean[:, None]) * rstd[:, None]
    if SAVE:
        tl.store(p_xhat, zi, mask=m)
        tl.store(p_xhat + H, zf, mask=m)
        tl.store(p_xhat + 2 * H, zg, mask=m)
        tl.store(p_xhat + 3 * H, zo, mask=m)
    zi = zi * tl.load(p_gamma_h + cols, mask=m_h, other=0.0)[None, :]
    zf = zf * tl.load(p_gamma_h + H + cols, mask=m_h, other=0.0)[None, :]
    zg = zg * tl.load(p_gamma_h + 2 * H + cols, mask=m_h, other=0.0)[None, :]
    zo = zo * tl.load(p_gamma_h + 3 * H + cols, mask=m_h, other=0.0)[None, :]
    return zi, zf, zg, zo


def _col_sum(x):
    return tl.reduce(x, 0, _add)


def _accumulate(p, x, m_cols, added):
    """`_sum_into` of the column sums of x (BLOCK_B, N) at p (N,)."""
    _sum_into(p, _col_sum(x), m_cols, added)


def _gates_and_cell(
    zi, zf, zg, zo, p_x, b_c, p_peep, cols, m_h, m, H,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, PEEPHOLE: tl.constexpr,
):  # fmt: skip
    """From the recurrent part of the gates' inputs, the x part at p_x (2-D, gate i) and the
    last cell b_c: the gates and the new cell, (i, f, g, o, c_new)."""
    zi += tl.load(p_x, mask=m, other=0.0).to(tl.float32)
    zf += tl.load(p_x + H, mask=m, other=0.0).to(tl.float32)
    zg += tl.load(p_x + 2 * H, mask=m, other=0.0).to(tl.float32)
    zo += tl.load(p_x + 3 * H, mask=m, other=0.0).to(tl.float32)
    if PEEPHOLE:
        zi += tl.load(p_peep + cols, mask=m_h, other=0.0)[None, :] * b_c
        zf += tl.load(p_peep + H + cols, mask=m_h, other=0.0)[None, :] * b_c
    b_i = _activation(zi, GATE_ACT)
    b_f = _activation(zf, GATE_ACT)
    b_g = _activation(zg, CELL_ACT)
    b_cnew = b_f * b_c + b_i * b_g
    if PEEPHOLE:
        zo += tl.load(p_peep + 2 * H + cols, mask=m_h, other=0.0)[None, :] * b_cnew
    b_o = _activation(zo, GATE_ACT)
    return b_i, b_f, b_g, b_o, b_cnew


def _keep_at(p, m, KEEP: tl.constexpr):
    """A state's keep (fp32) at p (2-D): the keep itself (KEEP 1), or from a mask alone, True
    where a step is real (KEEP 2), 1 at its masked steps and 0 at its real ones; 1 outside
    m (no change)."""
    if KEEP == 2:
        return 1.0 - tl.load(p, mask=m, other=0).to(tl.float32)
    return tl.load(p, mask=m, other=1.0).to(tl.float32)


def _emit_hidden(
    b_new, seen, p_h_prev, p_h_next, p_h_last, last, p_keep, cols, m,
    KEEP_H: tl.constexpr, MASKED: tl.constexpr, DOT: tl.constexpr,
):  # fmt: skip
    """Store the next hidden state: keep·h_{t-1} + (1 − keep)·h_new (mask and zoneout), and
    with a mask 0 in the rows that have not ``seen`` a real step yet (their state is h0);
    with a mask, at the ``last`` step the state itself as h_T too (p_h_last, row starts)."""
    if KEEP_H:
        b_keep = _keep_at(p_keep, m, KEEP_H)
        b_old = tl.load(p_h_prev[:, None] + cols[None, :], mask=m, other=0.0).to(tl.float32)
        b_new = b_keep * b_old + (1.0 - b_keep) * b_new
    if MASKED:
        if last:
            _store(p_h_last[:, None] + cols[None, :], b_new, m, DOT)
        b_new = tl.where(seen[:, None], b_new, 0.0)
    _store(p_h_next[:, None] + cols[None, :], b_new, m, DOT)


def _outside_grad(p, m, seen, MASKED: tl.constexpr, DHS: tl.constexpr):
    """The gradient reaching the outputs from outside at p (2-D), fp32: zeros where none came
    (DHS false: the outputs were not used) and before a row's first real step, where the
    outputs are constant zeros."""
    if DHS:
        if MASKED:
            m = m & seen[:, None]
        b = tl.load(p, mask=m, other=0.0).to(tl.float32)
    else:
        b = tl.where(m, 0.0, 0.0)
    return b


def _time(step, T, REVERSE: tl.constexpr):
    """The time index of a processing step in the (B, T, ·) buffers, which are aligned with
    the inputs: with REVERSE (Keras's go_backwards) step 0 is the last input step."""
    t = step
    if REVERSE:
        t = T - 1 - step
    return t


def _seen_through(seen, n_before, p_real_row, s_r_t, t, m_b):
    """With a mask (B, T) bool at p_real_row (row starts) + t·s_r_t: whether each row has had
    a real step up to and including step t, and how many steps came before its first (T
    where none: the rows' ``first``), from those up to step t − 1."""
    seen = seen | (tl.load(p_real_row + t * s_r_t, mask=m_b, other=0) != 0)
    return seen, n_before + tl.where(seen, 0, 1)


def _first_real_steps(p_first, rows, m_b, MASKED: tl.constexpr):
    """Each row's first real step (T where none) with a mask; 0 without one."""
    first = 0
    if MASKED:
        first = tl.load(p_first + rows, mask=m_b, other=0)
    return first


def _finish_hidden(
    b_cn, b_o, p_m, seen, p_h_prev, p_h_next, p_h_last, last, p_keep, cols, m,
    CELL_ACT: tl.constexpr, PROJ: tl.constexpr, KEEP_H: tl.constexpr, MASKED: tl.constexpr,
    DOT: tl.constexpr,
):  # fmt: skip
    """From the (normalised) cell and the output gate: store o ⊙ act(c), either as the next
    hidden state or, with a projection, into the scratch row that gets projected."""
    b_a = _activation(b_cn, CELL_ACT)
    if PROJ:
        tl.store(p_m[:, None] + cols[None, :], b_o * b_a, mask=m)
    else:
        _emit_hidden(
            b_o * b_a, seen, p_h_prev, p_h_next, p_h_last, last, p_keep, cols, m,
            KEEP_H, MASKED, DOT,
        )  # fmt: skip


def _lstm_fwd_kernel(
    p_zx, p_h0, p_c0, p_u, p_peep, p_wr, p_gamma_h, p_gamma_c, p_beta_c, p_rdrop,  # inputs
    p_real, s_r_b, s_r_t, p_first, p_h_last,  # the mask, each row's first real step, h_T
    p_keep_c, s_kc_b, s_kc_t, s_kc_u, p_keep_h, s_kh_b, s_kh_t, s_kh_u,  # strided keeps
    p_hs, p_cs, p_carry, p_stats, p_o, p_zhn, p_cn, p_m,  # outputs, saved, scratch
    B, T, H, P,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, DOT: tl.constexpr, DOT_U: tl.constexpr,
    PEEPHOLE: tl.constexpr, LAYER_NORM: tl.constexpr, PROJ: tl.constexpr,
    RDROP: tl.constexpr, KEEP_C: tl.constexpr, KEEP_H: tl.constexpr, MASKED: tl.constexpr,
    REVERSE: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """One program: BLOCK_B batch rows through all T steps.

    In: zx (B, T, 4H) = x·W (+LN, +b); h0 (B, P); c0 (B, H) fp32; U (P, 4H);
    optional peep (3, H), W_hr (H, P), γ_h (4H), γ_c/β_c (H), dropout (B, P), keep_c /
    keep_h strided (B, T, H / P), bool or fp32; with a mask (MASKED) real (B, T) bool,
    strided: up to each row's first real step the carried state is h0 and the outputs are
    zeros, and first (B,) int32 gets that step (T if none), h_last (B, P) the last state.
    Out: hs (B, T, P), the outputs; cs (B, T+1, H), c0 and every step's state, in hs's dtype
    (the state itself is carried in fp32, in carry, which ends as c_T); with layer norm stats
    (B, T, 4), the row mean and inverse deviation of h·U and of c~. Backward recomputes the
    rest from these (`_gates_kernel`, `_cell_activation`).
    With REVERSE the steps run from the last input step to the first (`_time`): every
    (B, T, ·) buffer stays aligned with the inputs, cs alone is in the order of the steps.
    Scratch, one row per batch row: with layer norm o (B, H), the output gate, zhn (B, 4H) =
    raw h·U and cn (B, H) = raw c~ of the current step; m (B, H) o ⊙ act(c) before the
    projection.
    """
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    m_b = rows < B
    r64 = rows.to(tl.int64)
    G4 = 4 * H
    o_z = r64 * T * G4  # row starts in (B, T, 4H)
    p_rd = p_rdrop + r64 * P
    p_m_row = p_m + r64 * H
    p_o_t = p_o + r64 * H  # layer norm's scratch rows
    p_zhn_t = p_zhn + r64 * G4
    p_cn_t = p_cn + r64 * H
    p_c_own = p_carry + r64 * H
    p_real_row = p_real + r64 * s_r_b
    p_h_last_row = p_h_last + r64 * P
    seen = rows < 0  # with a mask: whether a row has had a real step
    n_before = tl.full([BLOCK_B], 0, tl.int32)  # and how many steps came before it
    p_h_row = p_hs + r64 * T * P
    for s in range(T):
        t = _time(s, T, REVERSE)
        p_c_in = tl.where(s == 0, p_c0 + r64 * H, p_c_own)  # c_{t-1}
        p_h_next = p_h_row + t * P
        seen_before = s > 0
        if MASKED:
            seen_before = seen
            seen, n_before = _seen_through(seen, n_before, p_real_row, s_r_t, t, m_b)
        p_h_prev = tl.where(  # h0 up to the first real step
            seen_before, p_h_row + _time(s - 1, T, REVERSE) * P, p_h0 + r64 * P
        )
        p_c_next = p_cs + r64 * (T + 1) * H + (s + 1) * H
        p_zx_t = p_zx + o_z + t * G4
        p_stats_t = p_stats + (r64 * T + t) * 4

        # 1. layer norm of h·U needs the whole row: stash raw h·U, gather its statistics.
        mean = tl.full([BLOCK_B], 0.0, tl.float32)
        m2 = tl.full([BLOCK_B], 0.0, tl.float32)
        rstd_h = tl.full([BLOCK_B], 0.0, tl.float32)
        if LAYER_NORM:
            for j0 in range(0, H, BLOCK_H):
                cols = j0 + tl.arange(0, BLOCK_H)
                m_h = cols < H
                m = m_b[:, None] & m_h[None, :]
                zi, zf, zg, zo = _h_times_u(
                    p_h_prev, p_rd, p_u, m_b, cols, m_h, H, P, RDROP, DOT_U, "",
                    BLOCK_B, BLOCK_H, BLOCK_P,
                )  # fmt: skip
                p_z = p_zhn_t[:, None] + cols[None, :]
                tl.store(p_z, zi, mask=m)
                tl.store(p_z + H, zf, mask=m)
                tl.store(p_z + 2 * H, zg, mask=m)
                tl.store(p_z + 3 * H, zo, mask=m)
                n_x = 4.0 * tl.minimum(H - j0, BLOCK_H)
                c_mean = _row_sum(zi + zf + zg + zo) / n_x
                d_i = tl.where(m, zi - c_mean[:, None], 0.0)
                d_f = tl.where(m, zf - c_mean[:, None], 0.0)
                d_g = tl.where(m, zg - c_mean[:, None], 0.0)
                d_o = tl.where(m, zo - c_mean[:, None], 0.0)
                c_m2 = _row_sum(d_i * d_i + d_f * d_f + d_g * d_g + d_o * d_o)
                n_prev = 4.0 * j0
                delta = c_mean - mean
                mean = mean + delta * (n_x / (n_prev + n_x))
                m2 = m2 + c_m2 + delta * delta * (n_prev * n_x / (n_prev + n_x))
            rstd_h = tl.math.rsqrt(m2 / (4.0 * H) + 1e-5)
            tl.store(p_stats_t, mean, mask=m_b)
            tl.store(p_stats_t + 1, rstd_h, mask=m_b)
            tl.debug_barrier()

        # 2. the cell, chunk by chunk of hidden units.
        mean_c = tl.full([BLOCK_B], 0.0, tl.float32)
        m2_c = tl.full([BLOCK_B], 0.0, tl.float32)
        for j0 in range(0, H, BLOCK_H):
            cols = j0 + tl.arange(0, BLOCK_H)
            m_h = cols < H
            m = m_b[:, None] & m_h[None, :]
            if LAYER_NORM:
                zi, zf, zg, zo = _gate_blocks(p_zhn_t[:, None] + cols[None, :], m, H)
                zi, zf, zg, zo = _normalized_gates(
                    zi, zf, zg, zo, mean, rstd_h, p_gamma_h, p_zhn_t, cols, m_h, m, H, False
                )
            else:
                zi, zf, zg, zo = _h_times_u(
                    p_h_prev, p_rd, p_u, m_b, cols, m_h, H, P, RDROP, DOT_U, "",
                    BLOCK_B, BLOCK_H, BLOCK_P,
                )  # fmt: skip
            b_c = tl.load(p_c_in[:, None] + cols[None, :], mask=m, other=0.0)
            if s == 0:
                _store(p_c_next[:, None] - H + cols[None, :], b_c, m, DOT)  # cs[:, 0] = c0
            _, _, _, b_o, b_cnew = _gates_and_cell(
                zi, zf, zg, zo, p_zx_t[:, None] + cols[None, :], b_c, p_peep, cols, m_h, m, H,
                GATE_ACT, CELL_ACT, PEEPHOLE,
            )  # fmt: skip
            b_cstate = b_cnew
            if KEEP_C:
                p_k = p_keep_c + r64[:, None] * s_kc_b + t * s_kc_t + cols[None, :] * s_kc_u
                b_keep = _keep_at(p_k, m, KEEP_C)
                b_cstate = b_keep * b_c + (1.0 - b_keep) * b_cnew
            tl.store(p_c_own[:, None] + cols[None, :], b_cstate, mask=m)  # read before, here
            _store(p_c_next[:, None] + cols[None, :], b_cstate, m, DOT)
            p_kh = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + cols[None, :] * s_kh_u
            if LAYER_NORM:  # LN(c) needs the whole row: stash raw c and o, gather c's stats
                tl.store(p_cn_t[:, None] + cols[None, :], b_cnew, mask=m)
                tl.store(p_o_t[:, None] + cols[None, :], b_o, mask=m)
                mean_c, m2_c = _merge_stats(
                    mean_c, m2_c, 1.0 * j0, b_cnew, m, 1.0 * tl.minimum(H - j0, BLOCK_H)
                )
            else:
                _finish_hidden(
                    b_cnew,
                    b_o,
                    p_m_row,
                    seen,
                    p_h_prev,
                    p_h_next,
                    p_h_last_row,
                    s == T - 1,
                    p_kh,
                    cols,
                    m,
                    CELL_ACT,
                    PROJ,
                    KEEP_H,
                    MASKED,
                    DOT,
                )

        # 3. layer norm of the cell, then o ⊙ act(γ_c·LN(c) + β_c).
        if LAYER_NORM:
            rstd_c = tl.math.rsqrt(m2_c / H + 1e-5)
            tl.store(p_stats_t + 2, mean_c, mask=m_b)
            tl.store(p_stats_t + 3, rstd_c, mask=m_b)
            tl.debug_barrier()
            for j0 in range(0, H, BLOCK_H):
                cols = j0 + tl.arange(0, BLOCK_H)
                m_h = cols < H
                m = m_b[:, None] & m_h[None, :]
                p_n = p_cn_t[:, None] + cols[None, :]
                b_x = (tl.load(p_n, mask=m, other=0.0) - mean_c[:, None]) * rstd_c[:, None]
                b_cn = (
                    b_x * tl.load(p_gamma_c + cols, mask=m_h, other=0.0)[None, :]
                    + tl.load(p_beta_c + cols, mask=m_h, other=0.0)[None, :]
                )
                b_o = tl.load(p_o_t[:, None] + cols[None, :], mask=m, other=0.0)
                p_kh = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + cols[None, :] * s_kh_u
                _finish_hidden(
                    b_cn,
                    b_o,
                    p_m_row,
                    seen,
                    p_h_prev,
                    p_h_next,
                    p_h_last_row,
                    s == T - 1,
                    p_kh,
                    cols,
                    m,
                    CELL_ACT,
                    PROJ,
                    KEEP_H,
                    MASKED,
                    DOT,
                )

        # 4. projection: h_new = (o ⊙ act(c))·W_hr, chunk by chunk of output units.
        if PROJ:
            tl.debug_barrier()
            for p0 in range(0, P, BLOCK_P):
                pcols = p0 + tl.arange(0, BLOCK_P)
                m_p = pcols < P
                acc = _rows_times(
                    p_m_row, H, p_wr, P, 1, pcols, m_p, m_b, DOT, BLOCK_B, BLOCK_P, BLOCK_H
                )
                m = m_b[:, None] & m_p[None, :]
                p_kh = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + pcols[None, :] * s_kh_u
                _emit_hidden(
                    acc, seen, p_h_prev, p_h_next, p_h_last_row, s == T - 1, p_kh, pcols, m,
                    KEEP_H, MASKED, DOT,
                )  # fmt: skip
        tl.debug_barrier()  # h_t and c_t are read by the whole program at the next step
    if MASKED:  # each row's first real step, for backward
        tl.store(p_first + rows, n_before, mask=m_b)


def _gates_kernel(
    p_z, p_h0, p_hs, p_cs, p_u, p_peep, p_rdrop, p_first, p_gamma_h, p_stats, p_zhn,
    B, T, H, P,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, DOT: tl.constexpr, DOT_U: tl.constexpr,
    PEEPHOLE: tl.constexpr, LAYER_NORM: tl.constexpr, RDROP: tl.constexpr, MASKED: tl.constexpr,
    REVERSE: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """The gates of every step at once, for backward: the forward kept hs and cs, which hold
    every step's h_{t-1} and c_{t-1}, so no step waits for another. Program (row block, unit
    block) of the B·T rows (b, t) flattened.

    z (B, T, 4H) holds zx = x·W + b (with layer norm γ_x LN(x·W) + b) on entry and the gates
    i, f, g, o on exit, formed by the forward's own functions (`_h_times_u`,
    `_normalized_gates`, `_gates_and_cell`) from h0 (B, P), hs (B, T, P), cs (B, T+1, H), U
    (P, 4H), peep (3, H), dropout (B, P), first (B,) (h_{t-1} is h0 up to it); with layer
    norm from γ_h (4H) and the forward's stats (B, T, 4) too, storing x̂ = LN(h·U) before γ_h
    in zhn (B, T, 4H). With REVERSE, (b, t) is step T − 1 − t (`_time`)."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    m_b = rows < B * T
    m_h = cols < H
    m = m_b[:, None] & m_h[None, :]
    r64 = rows.to(tl.int64)
    b = r64 // T
    step = _time(r64 % T, T, REVERSE)
    first = _first_real_steps(p_first, b, m_b, MASKED)
    p_h_prev = tl.where(  # h0 up to the first real step
        step > first, p_hs + (b * T + _time(step - 1, T, REVERSE)) * P, p_h0 + b * P
    )
    zi, zf, zg, zo = _h_times_u(
        p_h_prev, p_rdrop + b * P, p_u, m_b, cols, m_h, H, P, RDROP, DOT_U, "",
        BLOCK_B, BLOCK_H, BLOCK_P,
    )  # fmt: skip
    o_g = r64[:, None] * (4 * H) + cols[None, :]
    if LAYER_NORM:
        mean = tl.load(p_stats + r64 * 4, mask=m_b, other=0.0)
        rstd = tl.load(p_stats + r64 * 4 + 1, mask=m_b, other=0.0)
        zi, zf, zg, zo = _normalized_gates(
            zi, zf, zg, zo, mean, rstd, p_gamma_h, p_zhn + o_g, cols, m_h, m, H, True
        )
    p_c_prev = p_cs + (b * (T + 1) + step) * H  # cs in the order of the steps
    b_c = tl.load(p_c_prev[:, None] + cols[None, :], mask=m, other=0.0)
    b_c = b_c.to(tl.float32)
    b_i, b_f, b_g, b_o, _ = _gates_and_cell(
        zi, zf, zg, zo, p_z + o_g, b_c, p_peep, cols, m_h, m, H, GATE_ACT, CELL_ACT, PEEPHOLE
    )
    _store(p_z + o_g, b_i, m, DOT)  # over zx, every load of which came first
    _store(p_z + o_g + H, b_f, m, DOT)
    _store(p_z + o_g + 2 * H, b_g, m, DOT)
    _store(p_z + o_g + 3 * H, b_o, m, DOT)


def _operand_block(
    p_x, p_out, N, REST, start, p_scale, SCALED: tl.constexpr, BLOCK: tl.constexpr,
    TF32: tl.constexpr, DOT: tl.constexpr,
):  # fmt: skip
    """Elements start … start + BLOCK − 1 of one job of `_operands_kernel`."""
    offs = start + tl.arange(0, BLOCK)
    m = offs < N
    x = tl.load(p_x + offs, mask=m).to(tl.float32)
    if SCALED:
        x = x * tl.load(p_scale + offs, mask=m)
    if TF32:
        hi = _round_tf32(x)
        tl.store(p_out + offs, hi, mask=m)
        if REST > 0:
            tl.store(p_out + REST + offs, _round_tf32(x - hi), mask=m)
    else:
        _store(p_out + offs, x, m, DOT)


def _operands_kernel(
    p_x1, p_out1, N1, REST1, p_scale, p_x2, p_out2, N2, REST2, p_x3, p_out3, N3, REST3,
    p_zero, N_ZERO,
    BLOCK: tl.constexpr, TF32: tl.constexpr, DOT: tl.constexpr, SCALED: tl.constexpr,
):  # fmt: skip
    """Three jobs, each by its own programs in turn: out_k = x_k (N_k elements) as the dots
    take it, job 1 times scale (N1, fp32) where SCALED (h0 ⊙ dropout): with TF32 rounded to
    TF32 (`_round_tf32`) and, where REST_k > 0, REST_k elements further on the TF32 part of
    the rest x − out (the two parts that three-product TF32 dots take,
    `triton_split._operand_dot`); else in out's dtype (`_store`). Program 0 also sets
    N_ZERO ≤ BLOCK int32 at p_zero to 0 (the split layout's barrier counters)."""
    pid = tl.program_id(0)
    blocks1 = (N1 + BLOCK - 1) // BLOCK  # not tl.cdiv, a jitted helper (see above)
    blocks2 = (N2 + BLOCK - 1) // BLOCK
    if pid < blocks1:
        _operand_block(p_x1, p_out1, N1, REST1, pid * BLOCK, p_scale, SCALED, BLOCK, TF32, DOT)
    elif pid < blocks1 + blocks2:
        start = (pid - blocks1) * BLOCK
        _operand_block(p_x2, p_out2, N2, REST2, start, p_scale, False, BLOCK, TF32, DOT)
    else:
        start = (pid - blocks1 - blocks2) * BLOCK
        _operand_block(p_x3, p_out3, N3, REST3, start, p_scale, False, BLOCK, TF32, DOT)
    if pid == 0:
        offs = tl.arange(0, BLOCK)
        tl.store(p_zero + offs, tl.full([BLOCK], 0, tl.int32), mask=offs < N_ZERO)


def _cell_inputs(p_g, p_c, m, H):
    """What backward reads of one chunk's step: the gates i, f, g, o at p_g (2-D, gate i) and
    c_{t-1} at p_c."""
    b_i, b_f, b_g, b_o = _gate_blocks(p_g, m, H)
    return b_i, b_f, b_g, b_o, tl.load(p_c, mask=m, other=0.0).to(tl.float32)


def _cell_stats(p_stats_t, m_b, LAYER_NORM: tl.constexpr, BLOCK_B: tl.constexpr):
    """c~'s row mean and inverse deviation at one step, from the forward's stats (zeros
    without layer norm)."""
    mean_c = tl.full([BLOCK_B], 0.0, tl.float32)
    rstd_c = tl.full([BLOCK_B], 0.0, tl.float32)
    if LAYER_NORM:
        mean_c = tl.load(p_stats_t + 2, mask=m_b, other=0.0)
        rstd_c = tl.load(p_stats_t + 3, mask=m_b, other=0.0)
    return mean_c, rstd_c


def _recomputed_cell(b_i, b_f, b_g, b_c, mean_c, rstd_c, LAYER_NORM: tl.constexpr):
    """A chunk's new cell as the forward formed it, from the gates and c_{t-1}: c~ = f ⊙ c_{t-1}
    + i ⊙ g, or with layer norm x̂ = LN(c~) before γ_c/β_c, from c~'s row statistics."""
    b_x = b_f * b_c + b_i * b_g
    if LAYER_NORM:
        b_x = (b_x - mean_c[:, None]) * rstd_c[:, None]
    return b_x


def _cell_activation(
    b_x, p_gamma_c, p_beta_c, cols, m_h, CELL_ACT: tl.constexpr, LAYER_NORM: tl.constexpr
):  # fmt: skip
    """act of `_recomputed_cell`'s b_x: act(c~), or with layer norm act(γ_c x̂ + β_c)."""
    if LAYER_NORM:
        b_x = (
            b_x * tl.load(p_gamma_c + cols, mask=m_h, other=0.0)[None, :]
            + tl.load(p_beta_c + cols, mask=m_h, other=0.0)[None, :]
        )
    return _activation(b_x, CELL_ACT)


def _carry_in(p_carry, p_start, m, START: tl.constexpr, at_start):
    """A block of a reverse carry (fp32, at p_carry): at the first reverse step (``at_start``)
    the gradient of h_T or c_T instead, read as it came (p_start: any strides, any float
    dtype; zeros where that output was not used, START false), so that no copy of it starts
    the carry."""
    if at_start:
        if START:
            b = tl.load(p_start, mask=m, other=0.0).to(tl.float32)
        else:
            b = tl.where(m, 0.0, 0.0)
    else:
        b = tl.load(p_carry, mask=m, other=0.0)
    return b


def _hidden_grad(
    p_cur, p_start, s_start, p_next, p_dhs, s_d_p, p_keep, cols, m, seen, at_start,
    START_H: tl.constexpr, KEEP_H: tl.constexpr, MASKED: tl.constexpr, DHS: tl.constexpr,
):  # fmt: skip
    """d loss / d h_t of the chunk ``cols`` (row starts p_…): what step t + 1 handed on
    (`_carry_in`, from p_cur, or at the start p_start with its column stride) and what came
    from outside (`_outside_grad`). Stores at p_next what the carry keeps for step t − 1
    (keep·it with masks and zoneout, else 0) and returns the rest, which reached h_new."""
    b = _carry_in(
        p_cur[:, None] + cols[None, :], p_start[:, None] + cols[None, :] * s_start, m, START_H,
        at_start,
    )  # fmt: skip
    b += _outside_grad(p_dhs[:, None] + cols[None, :] * s_d_p, m, seen, MASKED, DHS)
    p_n = p_next[:, None] + cols[None, :]
    if KEEP_H:
        b_keep = _keep_at(p_keep, m, KEEP_H)
        tl.store(p_n, b_keep * b, mask=m)
        b = (1.0 - b_keep) * b
    else:
        tl.store(p_n, b * 0.0, mask=m)
    return b


def _cell_backward(
    b_dch, b_do, b_i, b_f, b_g, b_o, b_c, b_dc, p_dc_nxt, p_kc, p_peep, p_dz_t,
    cols, m_h, m, H,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, PEEPHOLE: tl.constexpr, KEEP_C: tl.constexpr,
    DOT: tl.constexpr,
):  # fmt: skip
    """Gate gradients of one chunk from the gradient reaching c~ through h (b_dch) and the
    output gate's (b_do), given `_cell_inputs` and the carried d loss / d c_t (b_dc,
    `_carry_in`); stores dz (4 gate blocks) and the carried dc_{t-1}."""
    if KEEP_C:
        b_keep = _keep_at(p_kc, m, KEEP_C)
        b_dc_prev = b_keep * b_dc
        b_dcnew = (1.0 - b_keep) * b_dc + b_dch
    else:
        b_dc_prev = b_dc * 0.0
        b_dcnew = b_dc + b_dch
    dzo = b_do * _activation_grad(b_o, GATE_ACT)
    if PEEPHOLE:
        b_dcnew += dzo * tl.load(p_peep + 2 * H + cols, mask=m_h, other=0.0)[None, :]
    dzi = b_dcnew * b_g * _activation_grad(b_i, GATE_ACT)
    dzf = b_dcnew * b_c * _activation_grad(b_f, GATE_ACT)
    dzg = b_dcnew * b_i * _activation_grad(b_g, CELL_ACT)
    b_dc_prev += b_dcnew * b_f
    if PEEPHOLE:
        b_dc_prev += dzi * tl.load(p_peep + cols, mask=m_h, other=0.0)[None, :]
        b_dc_prev += dzf * tl.load(p_peep + H + cols, mask=m_h, other=0.0)[None, :]
    _store_gates(p_dz_t[:, None] + cols[None, :], dzi, dzf, dzg, dzo, m, H, DOT)
    tl.store(p_dc_nxt[:, None] + cols[None, :], b_dc_prev, mask=m)
    return dzi, dzf, dzg, dzo


def _store_gates(p, x_i, x_f, x_g, x_o, m, H, DOT: tl.constexpr):
    """Store four gate blocks at p (2-D), p + H, p + 2H, p + 3H (`_store`)."""
    _store(p, x_i, m, DOT)
    _store(p + H, x_f, m, DOT)
    _store(p + 2 * H, x_g, m, DOT)
    _store(p + 3 * H, x_o, m, DOT)


def _peephole_terms(dzi, dzf, dzo, b_i, b_f, b_g, b_c):
    """One step's terms of d loss / d peepholes (Gers & Schmidhuber, 2000), from
    `_cell_backward`'s gate gradients and `_cell_inputs`: dz_i ⊙ c_{t-1}, dz_f ⊙ c_{t-1},
    dz_o ⊙ c~_t, c~ = f ⊙ c_{t-1} + i ⊙ g the cell before zoneout and layer norm."""
    return dzi * b_c, dzf * b_c, dzo * (b_f * b_c + b_i * b_g)


def _peephole_sums(s_i, s_f, s_o, dzi, dzf, dzo, b_i, b_f, b_g, b_c):
    """Running sums (s_i, s_f, s_o) of `_peephole_terms`, with this step's added."""
    d_i, d_f, d_o = _peephole_terms(dzi, dzf, dzo, b_i, b_f, b_g, b_c)
    return s_i + d_i, s_f + d_f, s_o + d_o


def _sum_into(p, x, m, added):
    """Store x at p plus, where ``added``, what p holds: a running sum that this program alone
    updates and whose first term is stored, so that p needs no zeros first."""
    if added:
        x += tl.load(p, mask=m, other=0.0)
    tl.store(p, x, mask=m)


def _add_blocks(p, x_i, x_f, x_o, m, H, added):
    """`_sum_into` for three (BLOCK_B, BLOCK_H) blocks at p (2-D), p + H and p + 2H."""
    _sum_into(p, x_i, m, added)
    _sum_into(p + H, x_f, m, added)
    _sum_into(p + 2 * H, x_o, m, added)


def _add_gates(p, x_i, x_f, x_g, x_o, m, H, added):
    """`_sum_into` for four gate blocks at p (2-D), …, p + 3H."""
    _add_blocks(p, x_i, x_f, x_g, m, H, added)
    _sum_into(p + 3 * H, x_o, m, added)


def _lstm_bwd_kernel(
    p_dhs, s_d_b, s_d_t, s_d_p, p_u, p_peep, p_wr, p_gamma_h, p_gamma_c, p_beta_c,  # inputs
    p_rdrop, p_first, p_keep_c, s_kc_b, s_kc_t, s_kc_u,
    p_keep_h, s_kh_b, s_kh_t, s_kh_u,  # strided keeps
    p_cs, p_stats, p_gates, p_zhn,  # saved by the forward, recomputed
    p_dz, p_dzh, p_dhn, p_dcn, p_dnorm, p_sums, s_sums, p_ms, p_at_first,  # outputs
    p_dh, p_dc, p_m,  # carries, scratch
    p_dh_T, s_dh_b, s_dh_p, p_dc_T, s_dc_b, s_dc_h,  # the gradients of h_T and c_T, strided
    B, T, H, P,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, DOT: tl.constexpr, DOT_U: tl.constexpr,
    PEEPHOLE: tl.constexpr, LAYER_NORM: tl.constexpr, PROJ: tl.constexpr,
    RDROP: tl.constexpr, KEEP_C: tl.constexpr, KEEP_H: tl.constexpr, MASKED: tl.constexpr,
    DHS: tl.constexpr, START_H: tl.constexpr, START_C: tl.constexpr, BIAS_SUMS: tl.constexpr,
    REVERSE: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Reverse recurrence of one program's BLOCK_B rows.

    In: dhs (B, T, P) strided, the gradient reaching the outputs hs from outside (none where
    DHS is false; ignored before a row's first real step, first (B,), where the outputs are
    zeros); cs and (layer norm)
    stats as the forward saved them; the gates (B, T, 4H) and (layer norm) zhn (B, T, 4H) = x̂
    of LN(h·U) as `_gates_kernel` recomputed them. Out: dz (B, T, 4H) = d loss / d z (also
    d loss / d zx), which may be the gates' buffer itself (each step's gates are read before
    its dz is stored over them, by the same program); with layer norm dzh (B, T, 4H) =
    d loss / d (h·U), which may be zhn's buffer (the same holds), and in dnorm (programs, 6H)
    this program's sums of dz ⊙ x̂ (for γ_h), of dcn ⊙ LN(c~) and of dcn (for γ_c, β_c),
    dcn = d loss / d (γ_c LN(c~) + β_c); in sums (B, s_sums) each row's sums over its steps:
    with BIAS_SUMS (not with layer norm) of dz (4H, for the bias), then with peepholes of
    `_peephole_terms` (3H); with a projection dhn (B, T, P) = d loss / d h_new and ms
    (B, T, H) every step's m = o ⊙ act(c~), for d loss / d W_hr; with a mask at_first
    (B, 4H), each row's dzh at its first real step (at T − 1 if none, where it is 0), which
    meets h0 in d loss / d U.
    dh (2, B, P) and dc (2, B, H) are ping-pong carries (each step writes the other slot
    before reading it): the first reverse step reads the gradients of h_T and c_T themselves
    (dh_T (B, P), dc_T (B, H), strided, none where START_H / START_C is false), the others
    slot s % 2; after step 0 they hold dh0 and dc0 in slot T % 2.
    Scratch: m (B, H) for d loss / d (o ⊙ act(c)), dcn (B, H) for the current step's dcn.
    Steps and buffers with REVERSE as the forward's (`_time`).
    """
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    m_b = rows < B
    r64 = rows.to(tl.int64)
    G4 = 4 * H
    o_z = r64 * T * G4
    o_p = r64 * T * P
    p_rd = p_rdrop + r64 * P
    p_m_row = p_m + r64 * H
    p_dcn_t = p_dcn + r64 * H  # scratch row
    p_sums_row = p_sums + r64 * s_sums  # dz's sums, then the peepholes'
    p_peep_sums = p_sums_row
    if BIAS_SUMS:
        p_peep_sums = p_sums_row + G4
    p_dnorm_own = p_dnorm + tl.program_id(0) * 6 * H
    first = _first_real_steps(p_first, rows, m_b, MASKED)
    p_at_row = p_at_first + r64 * G4
    for s in range(T):
        step = T - 1 - s
        t = _time(step, T, REVERSE)
        seen = step >= first
        at_first = step == tl.minimum(first, T - 1)  # with a mask: the rows whose dzh meets h0
        cur = s % 2
        p_dh_cur = p_dh + cur * B * P + r64 * P
        p_dh_nxt = p_dh + (1 - cur) * B * P + r64 * P
        p_dc_cur = p_dc + cur * B * H + r64 * H
        p_dc_nxt = p_dc + (1 - cur) * B * H + r64 * H
        p_dh_start = p_dh_T + r64 * s_dh_b
        p_dc_start = p_dc_T + r64 * s_dc_b
        p_dhs_t = p_dhs + r64 * s_d_b + t * s_d_t
        p_dhn_t = p_dhn + o_p + t * P
        p_c_prev = p_cs + r64 * (T + 1) * H + step * H
        p_g_t = p_gates + o_z + t * G4
        p_zhn_t = p_zhn + o_z + t * G4
        p_dz_t = p_dz + o_z + t * G4
        p_dzh_t = p_dzh + o_z + t * G4
        p_stats_t = p_stats + (r64 * T + t) * 4
        mean_c, rstd_c = _cell_stats(p_stats_t, m_b, LAYER_NORM, BLOCK_B)

        # 1. with a projection: dh_new for all output units first (dm needs the whole row).
        if PROJ:
            for p0 in range(0, P, BLOCK_P):
                pcols = p0 + tl.arange(0, BLOCK_P)
                m = m_b[:, None] & (pcols < P)[None, :]
                p_k = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + pcols[None, :] * s_kh_u
                b_dh = _hidden_grad(
                    p_dh_cur, p_dh_start, s_dh_p, p_dh_nxt, p_dhs_t, s_d_p, p_k, pcols, m, seen,
                    s == 0, START_H, KEEP_H, MASKED, DHS,
                )  # fmt: skip
                tl.store(p_dhn_t[:, None] + pcols[None, :], b_dh, mask=m)
            tl.debug_barrier()

        # 2. through h = o ⊙ act(c̃) to the gates, chunk by chunk of hidden units.
        s1 = tl.full([BLOCK_B], 0.0, tl.float32)
        s2 = tl.full([BLOCK_B], 0.0, tl.float32)
        for j0 in range(0, H, BLOCK_H):
            cols = j0 + tl.arange(0, BLOCK_H)
            m_h = cols < H
            m = m_b[:, None] & m_h[None, :]
            if PROJ:  # dm = dh_new · W_hrᵀ
                b_dm = _rows_times(
                    p_dhn_t, P, p_wr, 1, P, cols, m_h, m_b, DOT, BLOCK_B, BLOCK_H, BLOCK_P
                )
            else:  # P == H: the hidden state's own chunk
                p_k = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + cols[None, :] * s_kh_u
                b_dm = _hidden_grad(
                    p_dh_cur, p_dh_start, s_dh_p, p_dh_nxt, p_dhs_t, s_d_p, p_k, cols, m, seen,
                    s == 0, START_H, KEEP_H, MASKED, DHS,
                )  # fmt: skip
            b_i, b_f, b_g, b_o, b_c = _cell_inputs(
                p_g_t[:, None] + cols[None, :], p_c_prev[:, None] + cols[None, :], m, H
            )
            b_x = _recomputed_cell(b_i, b_f, b_g, b_c, mean_c, rstd_c, LAYER_NORM)
            b_a = _cell_activation(b_x, p_gamma_c, p_beta_c, cols, m_h, CELL_ACT, LAYER_NORM)
            b_dcn = b_dm * b_o * _activation_grad(b_a, CELL_ACT)  # d / d act's input
            if PROJ:
                tl.store(p_ms + (r64[:, None] * T + t) * H + cols[None, :], b_o * b_a, mask=m)
            p_kc = p_keep_c + r64[:, None] * s_kc_b + t * s_kc_t + cols[None, :] * s_kc_u
            if LAYER_NORM:  # LN(c)'s backward needs two row sums first
                tl.store(p_dcn_t[:, None] + cols[None, :], b_dcn, mask=m)
                tl.store(p_m_row[:, None] + cols[None, :], b_dm, mask=m)
                b_dx = b_dcn * tl.load(p_gamma_c + cols, mask=m_h, other=0.0)[None, :]
                s1 += _row_sum(b_dx)
                s2 += _row_sum(b_dx * b_x)
            else:
                b_dc = _carry_in(
                    p_dc_cur[:, None] + cols[None, :],
                    p_dc_start[:, None] + cols[None, :] * s_dc_h, m, START_C, s == 0,
                )  # fmt: skip
                dzi, dzf, dzg, dzo = _cell_backward(
                    b_dcn, b_dm * b_a, b_i, b_f, b_g, b_o, b_c, b_dc, p_dc_nxt, p_kc,
                    p_peep, p_dz_t, cols, m_h, m, H, GATE_ACT, CELL_ACT, PEEPHOLE, KEEP_C, DOT,
                )  # fmt: skip
                if MASKED:
                    p_at = p_at_row[:, None] + cols[None, :]
                    _store_gates(p_at, dzi, dzf, dzg, dzo, m & at_first[:, None], H, DOT)
                if BIAS_SUMS:
                    p_sum = p_sums_row[:, None] + cols[None, :]
                    _add_gates(p_sum, dzi, dzf, dzg, dzo, m, H, s > 0)
                if PEEPHOLE:
                    d_i, d_f, d_o = _peephole_terms(dzi, dzf, dzo, b_i, b_f, b_g, b_c)
                    p_sum = p_peep_sums[:, None] + cols[None, :]
                    _add_blocks(p_sum, d_i, d_f, d_o, m, H, s > 0)

        # 3. layer norm: finish LN(c)'s backward, then LN(h·U)'s.
        if LAYER_NORM:
            tl.debug_barrier()
            rstd = tl.load(p_stats_t + 1, mask=m_b, other=0.0)
            s1 = s1 / H
            s2 = s2 / H
            t1 = tl.full([BLOCK_B], 0.0, tl.float32)
            t2 = tl.full([BLOCK_B], 0.0, tl.float32)
            for j0 in range(0, H, BLOCK_H):
                cols = j0 + tl.arange(0, BLOCK_H)
                m_h = cols < H
                m = m_b[:, None] & m_h[None, :]
                b_i, b_f, b_g, b_o, b_c = _cell_inputs(
                    p_g_t[:, None] + cols[None, :], p_c_prev[:, None] + cols[None, :], m, H
                )
                b_dcn = tl.load(p_dcn_t[:, None] + cols[None, :], mask=m, other=0.0)
                b_x = _recomputed_cell(b_i, b_f, b_g, b_c, mean_c, rstd_c, LAYER_NORM)
                _accumulate(p_dnorm_own + 4 * H + cols, b_dcn * b_x, m_h, s > 0)
                _accumulate(p_dnorm_own + 5 * H + cols, b_dcn, m_h, s > 0)
                b_dx = b_dcn * tl.load(p_gamma_c + cols, mask=m_h, other=0.0)[None, :]
                b_dch = rstd_c[:, None] * (b_dx - s1[:, None] - b_x * s2[:, None])
                b_dch = tl.where(m, b_dch, 0.0)
                b_do = tl.load(
                    p_m_row[:, None] + cols[None, :], mask=m, other=0.0
                ) * _cell_activation(b_x, p_gamma_c, p_beta_c, cols, m_h, CELL_ACT, LAYER_NORM)
                p_kc = p_keep_c + r64[:, None] * s_kc_b + t * s_kc_t + cols[None, :] * s_kc_u
                b_dc = _carry_in(
                    p_dc_cur[:, None] + cols[None, :],
                    p_dc_start[:, None] + cols[None, :] * s_dc_h, m, START_C, s == 0,
                )  # fmt: skip
                dzi, dzf, dzg, dzo = _cell_backward(
                    b_dch, b_do, b_i, b_f, b_g, b_o, b_c, b_dc, p_dc_nxt, p_kc, p_peep,
                    p_dz_t, cols, m_h, m, H, GATE_ACT, CELL_ACT, PEEPHOLE, KEEP_C, DOT,
                )  # fmt: skip
                if PEEPHOLE:
                    d_i, d_f, d_o = _peephole_terms(dzi, dzf, dzo, b_i, b_f, b_g, b_c)
                    p_sum = p_peep_sums[:, None] + cols[None, :]
                    _add_blocks(p_sum, d_i, d_f, d_o, m, H, s > 0)
                p_x = p_zhn_t[:, None] + cols[None, :]
                p_gh = p_gamma_h + cols
                dxi = dzi * tl.load(p_gh, mask=m_h, other=0.0)[None, :]
                dxf = dzf * tl.load(p_gh + H, mask=m_h, other=0.0)[None, :]
                dxg = dzg * tl.load(p_gh + 2 * H, mask=m_h, other=0.0)[None, :]
                dxo = dzo * tl.load(p_gh + 3 * H, mask=m_h, other=0.0)[None, :]
                t1 += _row_sum(dxi + dxf + dxg + dxo)
                t2 += _row_sum(
                    dxi * tl.load(p_x, mask=m, other=0.0)
                    + dxf * tl.load(p_x + H, mask=m, other=0.0)
                    + dxg * tl.load(p_x + 2 * H, mask=m, other=0.0)
                    + dxo * tl.load(p_x + 3 * H, mask=m, other=0.0)
                )
            t1 = t1 / G4
            t2 = t2 / G4
            tl.debug_barrier()
            for j0 in range(0, G4, BLOCK_H):  # dzh over the 4H row, gate blocks not needed
                cols = j0 + tl.arange(0, BLOCK_H)
                m_g = cols < G4
                m = m_b[:, None] & m_g[None, :]
                b_dz = tl.load(p_dz_t[:, None] + cols[None, :], mask=m, other=0.0)
                b_x = tl.load(p_zhn_t[:, None] + cols[None, :], mask=m, other=0.0)
                _accumulate(p_dnorm_own + cols, b_dz * b_x, m_g, s > 0)
                b_dx = b_dz * tl.load(p_gamma_h + cols, mask=m_g, other=0.0)[None, :]
                b_dzh = rstd[:, None] * (b_dx - t1[:, None] - b_x * t2[:, None])
                tl.store(p_dzh_t[:, None] + cols[None, :], b_dzh, mask=m)
                if MASKED:
                    p_at = p_at_row[:, None] + cols[None, :]
                    tl.store(p_at, b_dzh, mask=m & at_first[:, None])
        tl.debug_barrier()

        # 4. dh_{t-1} += (dzh · Uᵀ) ⊙ dropout, chunk by chunk of output units.
        for p0 in range(0, P, BLOCK_P):
            pcols = p0 + tl.arange(0, BLOCK_P)
            m_p = pcols < P
            acc = tl.full([BLOCK_B, BLOCK_P], 0.0, tl.float32)
            for j0 in range(0, H, BLOCK_H):
                cols = j0 + tl.arange(0, BLOCK_H)
                m_h = cols < H
                m = m_b[:, None] & m_h[None, :]
                p_d = p_dzh_t[:, None] + cols[None, :]
                p_ut = p_u + pcols[None, :] * G4 + cols[:, None]  # (BLOCK_H, BLOCK_P) of Uᵀ
                m_u = m_h[:, None] & m_p[None, :]
                for k in tl.static_range(4):
                    b_d = tl.load(p_d + k * H, mask=m, other=0.0).to(tl.float32)
                    acc = _dot(b_d, tl.load(p_ut + k * H, mask=m_u, other=0.0), acc, DOT_U)
            m = m_b[:, None] & m_p[None, :]
            if RDROP:
                acc = acc * tl.load(p_rd[:, None] + pcols[None, :], mask=m, other=0.0)
            p_n = p_dh_nxt[:, None] + pcols[None, :]
            tl.store(p_n, tl.load(p_n, mask=m, other=0.0) + acc, mask=m)
        tl.debug_barrier()  # the carries are read by the whole program at the next step


def _triton():
    """Import triton, and wrap the device functions and kernels above in place: for Triton's
    interpreter when ``TRITON_INTERPRET=1`` is set now, else with ``triton.jit``."""
    global _TRITON, _INTERPRETED
    if _TRITON is None:
        import triton
        import triton.language

        module = sys.modules[__name__]
        module.tl = triton.language
        _INTERPRETED = interpreter_requested()
        if _INTERPRETED:
            from triton.runtime.interpreter import InterpretedFunction as wrap
        else:
            wrap = triton.jit
        for name in _JIT_FUNCTIONS:
            setattr(module, name, wrap(getattr(module, name)))
        triton_split.tl = triton.language
        for name in triton_split.SHARED:
            setattr(triton_split, name, getattr(module, name))
        for name in triton_split.JIT_FUNCTIONS:
            setattr(triton_split, name, wrap(getattr(triton_split, name)))
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
    """One launch of `_operands_kernel` for up to three jobs (x, out (parts, …) with out[0]
    contiguous, scale or None; a scaled job first): x (times scale) into out as the dots take
    it, for "tf32" dots rounded to TF32 (10 mantissa bits, to nearest even, as
    `_round_tf32`) and with two parts the TF32 part of the rest into out[1], else in out's
    dtype. ``zero``: int32 counters (at most 1024) set to 0 in the same launch."""
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
    _operands_kernel[(max(blocks, 1),)](
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
    dots; all that needs a rounding or a cast in one launch of `_operands_kernel` (two where
    a cast of U and a rounding of W_hr meet). Returns U as the recurrence kernels take it, U
    as `_gates_kernel` takes it, and W_hr (or None).

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
    from zx and the states (`_gates_kernel`), into a buffer of backward's own that the reverse
    kernel overwrites with dz; act(c~) (`_cell_activation`). With layer norm also LN(h·U),
    into a second buffer that becomes d loss / d (h·U). zx is made here, without a graph, and
    backward gives the gradients of x, W, b (and γ_x) from dz itself (`_input_projection_grad`,
    `_normalized_input_grad`), so that LN(x·W) is never kept and the bias gradient is not
    torch's sum over (batch, time), whose scratch took 8 more units of (B, T, H) fp32 at
    backward's peak (B=64 T=100 H=256, H200): the reverse kernels sum dz over each row's
    steps as they form it, and backward sums those rows.

    With ``reverse`` (go_backwards) the steps run from T − 1 to 0, every (B, T, ·) buffer
    aligned with x; cs alone is in the steps' order (c0 first, c_T last)."""

    @staticmethod
    def forward(ctx, x, kernel, bias, gain_x, h0, c0, u, peep, wr, gamma_h, gamma_c, beta_c,
                rdrop, keep_c, keep_h, real, reverse, spec, cfg, dot_dtype):  # fmt: skip
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
        cs = torch.empty(B, T + 1, H, device=zx.device, dtype=h0.dtype)  # the kernels store c0
        carry = torch.empty(B, H, **f32)  # the state itself, to c_T
        # with a mask: each row's first real step (T where none; zeros are output before it)
        # and h_T, which the kernels find and store
        first = None if real is None else torch.empty(B, device=zx.device, dtype=torch.int32)
        h_last = None if real is None else torch.empty(B, P, device=zx.device, dtype=h0.dtype)
        masked = (*_real_args(real, zx), _or(first, zx), _or(h_last, zx))
        ln = spec.layer_norm
        stats = torch.empty(B, T, 4, **f32) if ln else None
        o = torch.empty(B, H, **f32) if ln else None  # scratch rows of one step
        zhn = torch.empty(B, G4, **f32) if ln else None
        cn = torch.empty(B, H, **f32) if ln else None
        scratch = torch.empty(B, H, **f32) if (ln or wr is not None) else None
        buffers = [_or(t, zx) for t in (stats, o, zhn, cn, scratch)]
        consts = _constexprs(spec, wr, rdrop, keep_c, keep_h, first, reverse, dot, cfg)
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
                    *_keep_args(keep_c, zx), *_keep_args(keep_h, zx), hs, cs, carry, *buffers,
                ),
                (B, T, H, P), _split_constexprs(consts), cfg, _INTERPRETED, hd, ctx.counters[0],
            )
        else:
            u_parts, u_dot, wr_dot = _operands(u, wr, dot_dtype, dot, dot_u)
            _lstm_fwd_kernel[(triton.cdiv(B, cfg.block_b),)](
                zx, h0, c0, u_parts, _or(peep, zx), _or(wr_dot, zx), _or(gamma_h, zx),
                _or(gamma_c, zx), _or(beta_c, zx), _or(rdrop, zx), *masked,
                *_keep_args(keep_c, zx), *_keep_args(keep_h, zx), hs, cs, carry, *buffers,
                B, T, H, P, **consts, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
            )
        # fmt: on
        ctx.spec, ctx.cfg, ctx.dot_dtype, ctx.device_type = spec, cfg, dot_dtype, zx.device.type
        ctx.reverse = reverse
        ctx.set_materialize_grads(False)  # an unused output's gradient is no buffer of zeros
        saved = (h0, hs, cs, stats, x, kernel, bias, gain_x)  # None where not needed
        # the dot operands of U and W_hr as the kernels took them, for backward's kernels
        operands = (u_dot, None if u_parts is u_dot else u_parts, wr_dot)
        ctx.save_for_backward(
            *saved, *operands, u, peep, wr, gamma_h, gamma_c, beta_c, rdrop, keep_c, keep_h, first
        )
        if h_last is None:  # without a mask h_T is the last step's output
            h_last = hs[:, 0 if reverse else T - 1]
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
            _lstm_bwd_kernel[(triton.cdiv(B, cfg.block_b),)](
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
            *(None,) * 8,
        )  # fmt: skip


def _start_args(grad: torch.Tensor | None, dummy: torch.Tensor) -> tuple:
    """The gradient of h_T or c_T (B, N) and its two strides as the reverse kernels take it
    (`_carry_in`), a dummy where that output was not used."""
    return (dummy, 0, 0) if grad is None else (grad, *grad.stride())


def _recompute_gates(
    z, h0, hs, cs, rdrop, first, u_dot, peep, consts, gamma_h=None, stats=None, zhn=None
) -> None:  # fmt: skip
    """Overwrite z = zx (B, T, 4H) with the gates the forward formed (`_gates_kernel`); with
    layer norm (γ_h, the forward's stats, zhn given) store LN(h·U) before γ_h in zhn."""
    B, T, G4 = z.shape
    H, P = G4 // 4, hs.shape[2]
    block_b, block_h, block_p = 64, 32, 32  # 8 warps: 128-168 registers, no spills (sm_90a)
    grid = (-(-B * T // block_b), -(-H // block_h))
    kinds = (
        "GATE_ACT", "CELL_ACT", "DOT", "DOT_U", "PEEPHOLE", "LAYER_NORM", "RDROP", "MASKED",
        "REVERSE",
    )  # fmt: skip
    _gates_kernel[grid](
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
    and form keep = not real themselves (`_keep_kind`, `_keep_at`), with no op here."""
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
    return _Recurrence.apply(
        x, w.kernel, w.bias, gain_x, h0, c0.float().contiguous(), w.recurrent_kernel, peep,
        proj, *norms, rdrop, keep_c, keep_h, real, bool(go_backwards), spec, cfg, cdtype,
    )  # fmt: skip
