"""The LSTM cell in Triton: the device functions that every kernel shares (activations, the gates
and the cell, masks and keeps, dots in TF32 or low precision, layer norm's row statistics, the
cell's backward), and the two kernels that both layouts launch around their recurrences:
`_gates_kernel` (backward's gates of all steps at once) and `_operands_kernel` (the weights,
and h0 ⊙ dropout, as the dots take them). The recurrences themselves are in
`triton_persistent` and `triton_split`.

These are plain functions: `triton_lstm._triton()` wraps them in place on first use (for
Triton's interpreter, or with ``triton.jit``) and rebinds the names the kernel modules import
from here to the wrapped ones. The kernels use only Triton builtins and these functions, never
triton.language's own jitted helpers (tl.zeros, tl.sum, tl.sigmoid): those are compiled-mode
objects when triton was imported without TRITON_INTERPRET (by keras, say), while ours can
still be wrapped for the interpreter.

Names: p_ pointers, b_ loaded blocks, m_ masks, o_ offsets. Buffers are contiguous fp32 unless
said otherwise; G4 = 4H and gate k of a (…, 4H) row is at columns k·H … k·H + H.
"""

from __future__ import annotations

tl = None  # triton.language, set by `triton_lstm._triton()`

JIT_FUNCTIONS = (
    "_add",
    "_row_sum",
    "_sigmoid",
    "_activation",
    "_activation_grad",
    "_round_tf32",
    "_round_bf16",
    "_store",
    "_dot",
    "_h_times_u",
    "_rows_times",
    "_gate_blocks",
    "_normalized_gates",
    "_col_sum",
    "_accumulate",
    "_gates_and_cell",
    "_keep_at",
    "_outside_grad",
    "_time",
    "_seen_through",
    "_first_real_steps",
    "_gates_kernel",
    "_operand_block",
    "_operands_kernel",
    "_cell_inputs",
    "_cell_stats",
    "_recomputed_cell",
    "_cell_activation",
    "_carry_in",
    "_cell_backward",
    "_store_gates",
    "_peephole_terms",
    "_peephole_sums",
    "_sum_into",
    "_add_blocks",
    "_add_gates",
)


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
    b already rounded by `triton_lstm._tf32` (the tensor cores would truncate them, a bias that
    grows over the steps); "low": a is cast to b's bf16/fp16; "emulate": the same rounding of
    a done in fp32 (the interpreter has no bf16 dot); "tf32x3": three TF32 products that
    recover fp32's accuracy (b unrounded)."""
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
