"""Split-hidden LSTM kernels in Triton: several programs per batch tile, each owning a slice of
the hidden units (design §4), for every variant of `triton_lstm`.

Why. The persistent kernels of `triton_lstm` give one program a tile of batch rows and the
whole hidden width, so a layer of B=64 rows runs on 4 of the GPU's 132 SMs, and each program
walks all of U every step. Here a program owns BLOCK_B rows x BLOCK_H hidden units: per step
it computes its units' four gates from the whole h_{t-1} (h·U against its columns of U), its
part of c and h, and the programs of a tile then meet at a counter in global memory before the
next step reads h_t. c never leaves its program. What couples a row's units within a step
becomes another phase after another meeting: layer norm (Ba et al. 2016) of h·U and of c,
from every program's partial row statistics (Chan's merge), and a projection (Sak et al.
2014), h = (o ⊙ act(c))·W_hr, from every program's part of o ⊙ act(c). Backward runs the same
way in reverse: a program forms d loss / d h_t for its output units from the whole dz_{t+1}
(dz·Uᵀ), then its hidden units' gate gradients (layer norm: two more phases for the row sums
of its backward); the weight gradients stay the large GEMMs of `triton_lstm`.

Sync. On a GPU the whole time loop is one launch, and each phase ends at `_tile_barrier`,
which needs every program of a tile resident at once: the grid is checked against the SM
count, and where it does not fit (and under Triton's interpreter, which runs programs one
after another, unless a tile has one program) each phase of each step is its own launch
instead, with the same kernel code. Within one launch, a program with 16-row tiles hands its
own columns on from phase to phase in registers (CARRY); separate launches, and 64-row
tiles, carry them through scratch rows (in registers, 64-row tiles spilled 1 KB at H=1024,
sm_90a).
The exchanged tensors are read with ``.cg`` loads (L2, not the SM's own L1, which other SMs'
stores do not update); the launches use one pipeline stage, as software pipelining turns those
loads into L1-cached asynchronous copies (checked in the PTX for sm_90). What that pipelining
would give the dots that stream U in K chunks, they do by hand: each chunk's loads are issued
before the dot of the chunk before, so that the latency of L2 overlaps a dot rather than
adding to it (Triton's pipelining took a persistent kernel at H=1024 from 340 to 171 ms,
bench/RESULTS.md).

Dots. A program's products are small (16 rows), and Triton puts the warps of a 16 x 16 dot
along its rows, so that each warp would compute all of it. So h·U takes the program's columns
of all four gates in one dot (16 x 64), and dz·Uᵀ and the projection's products are dots
batched over four blocks, then summed. The program that computes a dot's left operand stores
it once as the dot takes it (`_store_operand`), for every reader; for the three TF32
products of layer norm's dots with U, in two parts, as U comes (`triton_lstm._operands`).
Where it fits (`k_chunk`), U stays in shared memory through the steps; else it streams in K
chunks.

The device functions imported from `triton_cell` are rebound to their wrapped versions by
`triton_lstm._triton()` on first use, which also sets ``tl`` and wraps the functions here
(`JIT_FUNCTIONS`) for the interpreter or with ``triton.jit``.
"""

from __future__ import annotations

import torch

from lstmkit.kernels.triton_cell import (
    _accumulate,
    _activation,
    _activation_grad,
    _add,
    _add_blocks,
    _add_gates,
    _carry_in,
    _cell_activation,
    _cell_backward,
    _cell_inputs,
    _cell_stats,
    _dot,
    _first_real_steps,
    _gate_blocks,
    _gates_and_cell,
    _keep_at,
    _normalized_gates,
    _outside_grad,
    _peephole_sums,
    _recomputed_cell,
    _round_tf32,
    _row_sum,
    _rows_times,
    _seen_through,
    _store,
    _store_gates,
    _time,
)

tl = None  # triton.language, set by `triton_lstm._triton()`

JIT_FUNCTIONS = (
    "_tile_barrier",
    "_b_tile",
    "_a_rows",
    "_gate_columns",
    "_gate_split",
    "_times_gate_columns",
    "_gate_columns_chunk",
    "_operand_rows",
    "_store_operand",
    "_operand_dot",
    "_four_blocks",
    "_four_blocks_dot",
    "_four_row_blocks",
    "_gate_blocks_times",
    "_u_t_chunk",
    "_quarters_times",
    "_store_pair",
    "_store_row_pair",
    "_program_pairs",
    "_sum_pairs",
    "_merge_pairs",
    "_pair_counts",
    "_row_stats",
    "_gate_stats",
    "_norm_grad",
    "_gained",
    "_store_operand_blocks",
    "_split_fwd_kernel",
    "_split_bwd_kernel",
)


def _tile_barrier(p_count, target):
    """Wait until the programs of this batch tile have arrived ``target`` times in all."""
    tl.debug_barrier()  # every thread of this program has issued its stores
    tl.atomic_add(p_count, 1, sem="release", scope="gpu")
    seen = tl.atomic_add(p_count, 0, sem="acquire", scope="gpu")
    while seen < target:
        seen = tl.atomic_add(p_count, 0, sem="acquire", scope="gpu")


def _b_tile(p_b, s_k, s_n, K, cols, m_cols, BLOCK_K: tl.constexpr):
    """The (BLOCK_K, len(cols)) tile of B whose element (k, n) is at p_b + k·s_k + cols[n]·s_n,
    k < K."""
    ks = tl.arange(0, BLOCK_K)
    p = p_b + ks[:, None] * s_k + cols[None, :] * s_n
    return tl.load(p, mask=(ks < K)[:, None] & m_cols[None, :], other=0.0)


def _a_rows(p_a, K, m_b, BLOCK_K: tl.constexpr):
    """The (BLOCK_B, BLOCK_K) block of the rows p_a of A (…, K), which other programs wrote
    (``.cg``), in fp32."""
    ks = tl.arange(0, BLOCK_K)
    m = m_b[:, None] & (ks < K)[None, :]
    b_a = tl.load(p_a[:, None] + ks[None, :], mask=m, other=0.0, cache_modifier=".cg")
    return b_a.to(tl.float32)


def _gate_columns(H, BLOCK_H: tl.constexpr):
    """This program's columns of U (P, 4H) side by side, (4·BLOCK_H,): column j is unit
    j mod BLOCK_H of gate block j // BLOCK_H (i, f, g, o); and which units exist. One dot over
    all four lets the warps share out its columns: four (BLOCK_B, BLOCK_H) dots of 16 x 16 give
    every warp the same product to compute (Triton stacks the warps along the 16 rows)."""
    j = tl.arange(0, 4 * BLOCK_H)
    units = tl.program_id(0) * BLOCK_H + j % BLOCK_H
    return (j // BLOCK_H) * H + units, units < H


def _gate_split(z, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """The four gate blocks i, f, g, o (BLOCK_B, BLOCK_H) of z (BLOCK_B, 4·BLOCK_H), laid out
    as `_gate_columns`."""
    z = tl.permute(tl.reshape(z, (BLOCK_B, 2, 2, BLOCK_H)), (0, 3, 1, 2))  # (…, unit, j÷2, j%2)
    z_ig, z_fo = tl.split(z)
    z_i, z_g = tl.split(z_ig)
    z_f, z_o = tl.split(z_fo)
    return z_i, z_f, z_g, z_o


def _times_gate_columns(
    p_a, a_rest, p_u, u_cols, m_u, m_b, H, P,
    DOT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """A·U at this program's `_gate_columns` for the rows p_a (BLOCK_B,) of a dot operand
    (…, P) that other programs wrote (``.cg``, `_store_operand`, the rest a_rest further on);
    U (P, 4H) streamed in K chunks (its rest P·4H further on, `triton_lstm._operands`), each
    chunk's loads issued before the dot of the one before (module docstring, Sync)."""
    acc = tl.full([BLOCK_B, 4 * BLOCK_H], 0.0, tl.float32)
    a, a_r, u, u_r = _gate_columns_chunk(p_a, a_rest, p_u, u_cols, m_u, m_b, H, P, 0, DOT, BLOCK_K)
    for k0 in range(BLOCK_K, P, BLOCK_K):
        n_a, n_a_r, n_u, n_u_r = _gate_columns_chunk(
            p_a, a_rest, p_u, u_cols, m_u, m_b, H, P, k0, DOT, BLOCK_K
        )  # fmt: skip
        acc = _operand_dot(a, a_r, u, u_r, acc, DOT)
        a, a_r, u, u_r = n_a, n_a_r, n_u, n_u_r
    return _operand_dot(a, a_r, u, u_r, acc, DOT)


def _gate_columns_chunk(
    p_a, a_rest, p_u, u_cols, m_u, m_b, H, P, k0, DOT: tl.constexpr, BLOCK_K: tl.constexpr
):  # fmt: skip
    """The operands of `_times_gate_columns`' K chunk at k0: the rows' block and its rest,
    U's block and its rest (the same blocks again where DOT is not "tf32x3")."""
    ks = k0 + tl.arange(0, BLOCK_K)
    p_uk = p_u + ks[:, None] * (4 * H) + u_cols[None, :]
    m_uk = (ks < P)[:, None] & m_u[None, :]
    b_u = tl.load(p_uk, mask=m_uk, other=0.0)
    b_rest = b_u
    if DOT == "tf32x3":
        b_rest = tl.load(p_uk + P * 4 * H, mask=m_uk, other=0.0)
    b_a, b_a_rest = _operand_rows(p_a + k0, a_rest, P - k0, m_b, DOT, BLOCK_K)
    return b_a, b_a_rest, b_u, b_rest


def _operand_rows(p_a, rest, K, m_b, DOT: tl.constexpr, BLOCK_K: tl.constexpr):
    """`_a_rows` of a dot operand stored by `_store_operand`, and of its rest ("tf32x3"; else
    the same block again)."""
    b_a = _a_rows(p_a, K, m_b, BLOCK_K)
    b_rest = b_a
    if DOT == "tf32x3":
        b_rest = _a_rows(p_a + rest, K, m_b, BLOCK_K)
    return b_a, b_rest


def _store_operand(p, x, m, rest, DOT: tl.constexpr):
    """Store x at p as a dot with DOT takes its left operand: rounded to TF32 for "tf32"
    dots; for "tf32x3" dots x's TF32 part, and the TF32 part of the rest at p + rest, which
    the readers' three TF32 products take as they are (`_operand_dot`). The program that
    computes a value the other programs multiply stores it so, once: rounding or splitting
    where the dot reads it would repeat the work in every warp that reads a copy of it (all
    of them, for h·U; Triton's own "tf32x3" dots split both operands at every product)."""
    if DOT == "tf32x3":
        hi = _round_tf32(x)
        tl.store(p + rest, _round_tf32(x - hi), mask=m)
        x = hi
    if DOT == "tf32":
        x = _round_tf32(x)
    tl.store(p, x, mask=m)


def _operand_dot(a, a_rest, b, b_rest, acc, DOT: tl.constexpr):
    """`_dot` of an a stored by `_store_operand`. For "tf32x3" dots a and b are TF32 parts, and
    a_rest, b_rest the TF32 parts of their rests (`_operand_rows`, `triton_lstm._operands`):
    three TF32 products, a·b + a·b_rest + a_rest·b, fp32's accuracy. Other dots ignore the
    rests."""
    if DOT == "tf32":
        return tl.dot(a, b, acc, input_precision="tf32")
    if DOT == "tf32x3":
        acc = tl.dot(a_rest, b, acc, input_precision="tf32")
        acc = tl.dot(a, b_rest, acc, input_precision="tf32")
        return tl.dot(a, b, acc, input_precision="tf32")
    return _dot(a, b, acc, DOT)


def _four_blocks(p_b, s_j, s_k, s_n, width, K, cols, m_cols, BLOCK_K: tl.constexpr):
    """B (…, K) as four K blocks, (4, BLOCK_K, BLOCK_H): element (j, k, n) is at
    p_b + (j·s_j + k)·s_k + cols[n]·s_n, for k < width and j·s_j + k < K."""
    j = tl.arange(0, 4)[:, None, None]
    ks = tl.arange(0, BLOCK_K)[None, :, None]
    m = (ks < width) & (j * s_j + ks < K) & m_cols[None, None, :]
    return tl.load(p_b + (j * s_j + ks) * s_k + cols[None, None, :] * s_n, mask=m, other=0.0)


def _four_blocks_dot(
    p_a, a_rest, s_j, width, K, b, b_rest, acc, m_b,
    DOT: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """acc (4, BLOCK_B, BLOCK_H) + A·B batched over four blocks: A's blocks from
    `_four_row_blocks` (the same p_a, a_rest, s_j, width, K), B's from `_four_blocks` (b_rest:
    the rest of b, for `_operand_dot`). The sum over the blocks is the product: each warp
    takes a block of its own, where a plain dot of 16 x 16 gives every warp the same product
    to compute (Triton stacks the warps along its 16 rows)."""
    b_a, b_a_rest = _four_row_blocks(p_a, a_rest, s_j, width, K, m_b, DOT, BLOCK_K)
    return _operand_dot(b_a, b_a_rest, b, b_rest, acc, DOT)


def _four_row_blocks(p_a, a_rest, s_j, width, K, m_b, DOT: tl.constexpr, BLOCK_K: tl.constexpr):
    """The (4, BLOCK_B, BLOCK_K) blocks of the rows p_a (BLOCK_B,) of A (…, K) that other
    programs wrote (``.cg``) as `_store_operand` stores it, block j's element (b, k) at
    p_a[b] + j·s_j + k for k < width and j·s_j + k < K; and of its rest, a_rest further on
    ("tf32x3"; else the same blocks again)."""
    j = tl.arange(0, 4)[:, None, None]
    ks = tl.arange(0, BLOCK_K)[None, None, :]
    m = m_b[None, :, None] & (ks < width) & (j * s_j + ks < K)
    p = p_a[None, :, None] + j * s_j + ks
    b_a = tl.load(p, mask=m, other=0.0, cache_modifier=".cg")
    b_a_rest = b_a
    if DOT == "tf32x3":
        b_a_rest = tl.load(p + a_rest, mask=m, other=0.0, cache_modifier=".cg")
    return b_a, b_a_rest


def _gate_blocks_times(
    p_a, a_rest, p_u, u_t, u_t_rest, cols, m_cols, m_b, H, P,
    RESIDENT: tl.constexpr, DOT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """A·Uᵀ at the columns ``cols`` of Uᵀ, for the rows p_a (BLOCK_B,) of A (…, 4H), stored
    by `_store_operand` (its rest a_rest further on): one dot per K chunk, batched over the
    four gate blocks. RESIDENT: u_t (and u_t_rest, for "tf32x3") holds the whole of Uᵀ's
    columns (`_four_blocks`); else U (P, 4H) streams in chunks of BLOCK_K per block (its
    rest P·4H further on, `triton_lstm._operands`)."""
    acc = tl.full([4, BLOCK_B, BLOCK_H], 0.0, tl.float32)
    if RESIDENT:
        acc = _four_blocks_dot(
            p_a, a_rest, H, H, 4 * H, u_t, u_t_rest, acc, m_b, DOT, BLOCK_K
        )  # fmt: skip
    else:  # each chunk's loads issued before the dot of the one before (module docstring)
        a, a_r, u, u_r = _u_t_chunk(p_a, a_rest, p_u, 0, cols, m_cols, m_b, H, P, DOT, BLOCK_K)
        for k0 in range(BLOCK_K, H, BLOCK_K):
            n_a, n_a_r, n_u, n_u_r = _u_t_chunk(
                p_a, a_rest, p_u, k0, cols, m_cols, m_b, H, P, DOT, BLOCK_K
            )  # fmt: skip
            acc = _operand_dot(a, a_r, u, u_r, acc, DOT)
            a, a_r, u, u_r = n_a, n_a_r, n_u, n_u_r
        acc = _operand_dot(a, a_r, u, u_r, acc, DOT)
    return tl.reduce(acc, 0, _add)  # the four blocks' sum


def _u_t_chunk(
    p_a, a_rest, p_u, k0, cols, m_cols, m_b, H, P, DOT: tl.constexpr, BLOCK_K: tl.constexpr
):  # fmt: skip
    """The operands of `_gate_blocks_times`' streamed K chunk at k0: A's four blocks and
    their rest (`_four_row_blocks`), Uᵀ's and their rest (`_four_blocks`; U's rest P·4H
    further on)."""
    b = _four_blocks(p_u + k0, H, 1, 4 * H, H - k0, 4 * H, cols, m_cols, BLOCK_K)
    b_rest = b
    if DOT == "tf32x3":
        b_rest = _four_blocks(
            p_u + P * 4 * H + k0, H, 1, 4 * H, H - k0, 4 * H, cols, m_cols, BLOCK_K
        )  # fmt: skip
    a, a_r = _four_row_blocks(p_a + k0, a_rest, H, H - k0, 4 * H, m_b, DOT, BLOCK_K)
    return a, a_r, b, b_rest


def _quarters_times(
    p_a, K, b, m_b,
    DOT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, QUARTER: tl.constexpr,
):  # fmt: skip
    """A·B for the rows p_a (BLOCK_B,) of A (…, K) stored by `_store_operand`, K ≤ 4·QUARTER,
    and B held as its four K blocks of QUARTER rows (`_four_blocks`): the projection's
    products."""
    acc = tl.full([4, BLOCK_B, BLOCK_H], 0.0, tl.float32)
    acc = _four_blocks_dot(p_a, 0, QUARTER, QUARTER, K, b, b, acc, m_b, DOT, QUARTER)
    return tl.reduce(acc, 0, _add)  # the four blocks' sum


def _store_pair(p_part, a, b, m_b, BLOCK_H: tl.constexpr):
    """This program's two per-row partial results, into part (B, programs, 2)."""
    _store_row_pair(p_part + tl.program_id(0) * 2, a, b, m_b, BLOCK_H)


def _store_row_pair(p, a, b, m_b, BLOCK_H: tl.constexpr):
    """Per-row values a, b (BLOCK_B,) at p and p + 1 (p: BLOCK_B,), stored from the first two
    columns of a (BLOCK_B, BLOCK_H) tile. Row sums come laid out as the program's tiles; a
    store of them as they are would first move them between warps, through shared memory
    and a barrier (sm_90a code)."""
    j = tl.arange(0, BLOCK_H)[None, :]
    pair = tl.where(j == 0, a[:, None], b[:, None])
    tl.store(p[:, None] + j, pair, mask=m_b[:, None] & (j < 2))


def _program_pairs(p_part, first, m_b, BLOCK_H: tl.constexpr):
    """The partial pairs of programs first … first + BLOCK_H − 1 in part (B, programs, 2) for
    the rows p_part (BLOCK_B,), as two (BLOCK_B, BLOCK_H) tiles (zero past the programs), in
    the layout of the program's tiles: their sums need no move between warps (sm_90a)."""
    j = first + tl.arange(0, BLOCK_H)
    m = m_b[:, None] & (j < tl.num_programs(0))[None, :]
    p = p_part[:, None] + j[None, :] * 2
    a = tl.load(p, mask=m, other=0.0, cache_modifier=".cg")
    return a, tl.load(p + 1, mask=m, other=0.0, cache_modifier=".cg")


def _sum_pairs(p_part, m_b, BLOCK_H: tl.constexpr, PROGRAMS: tl.constexpr):
    """Per-row sums over the programs of the partial pairs in part (B, programs, 2): every
    program's loaded at once (`_program_pairs`, BLOCK_H at a time), one round trip to L2."""
    a, b = _program_pairs(p_part, 0, m_b, BLOCK_H)
    for first in tl.static_range(BLOCK_H, PROGRAMS, BLOCK_H):
        a_j, b_j = _program_pairs(p_part, first, m_b, BLOCK_H)
        a += a_j
        b += b_j
    return _row_sum(a), _row_sum(b)


def _pair_counts(first, N, FACTOR: tl.constexpr, BLOCK_H: tl.constexpr):
    """How many values the pairs of programs first … first + BLOCK_H − 1 are over, (1,
    BLOCK_H): FACTOR·(their units)."""
    j = first + tl.arange(0, BLOCK_H)
    return (FACTOR * tl.maximum(tl.minimum(N - j * BLOCK_H, BLOCK_H), 0).to(tl.float32))[None, :]


def _merge_pairs(
    p_part, m_b, N, FACTOR: tl.constexpr, BLOCK_H: tl.constexpr, PROGRAMS: tl.constexpr
):  # fmt: skip
    """Row mean and sum of squared deviations over N·FACTOR values from the programs' (mean,
    M2) pairs in part (B, programs, 2), each over FACTOR·(its units) values: Chan et al.'s
    merge in its parallel form, M2 = Σ M2_j + Σ n_j (mean_j − mean)². The pairs are read
    as `_sum_pairs` reads them, once for each of the two sums."""
    means, _ = _program_pairs(p_part, 0, m_b, BLOCK_H)
    weighted = means * _pair_counts(0, N, FACTOR, BLOCK_H)
    for first in tl.static_range(BLOCK_H, PROGRAMS, BLOCK_H):
        means, _ = _program_pairs(p_part, first, m_b, BLOCK_H)
        weighted += means * _pair_counts(first, N, FACTOR, BLOCK_H)
    mean = _row_sum(weighted) / (1.0 * FACTOR * N)
    spread = tl.full(weighted.shape, 0.0, tl.float32)
    for first in tl.static_range(0, PROGRAMS, BLOCK_H):
        means, m2s = _program_pairs(p_part, first, m_b, BLOCK_H)
        d = means - mean[:, None]
        spread += m2s + _pair_counts(first, N, FACTOR, BLOCK_H) * d * d
    return mean, _row_sum(spread)


def _row_stats(x, m, n):
    """Row mean and sum of squared deviations of x (BLOCK_B, N) over its n valid columns
    (mask m), in two passes."""
    mean = _row_sum(tl.where(m, x, 0.0)) / n
    d = tl.where(m, x - mean[:, None], 0.0)
    return mean, _row_sum(d * d)


def _gate_stats(zi, zf, zg, zo, m, n):
    """`_row_stats` of the four gate blocks side by side, each with n valid columns (mask m):
    the blocks are added before each row sum, two sums in all."""
    mean = _row_sum(tl.where(m, zi + zf + zg + zo, 0.0)) / (4.0 * n)
    di = zi - mean[:, None]
    df = zf - mean[:, None]
    dg = zg - mean[:, None]
    do = zo - mean[:, None]
    return mean, _row_sum(tl.where(m, di * di + df * df + dg * dg + do * do, 0.0))


def _split_fwd_kernel(
    p_zx, p_h0, p_c0, p_u, p_peep, p_wr, p_gamma_h, p_gamma_c, p_beta_c, p_rdrop,  # inputs
    p_real, s_r_b, s_r_t, p_first, p_h_last,  # the mask, each row's first real step, h_T
    p_keep_c, s_kc_b, s_kc_t, s_kc_u, p_keep_h, s_kh_b, s_kh_t, s_kh_u,  # strided keeps
    p_hs, p_cs, p_carry, p_stats,  # outputs and saved
    p_o, p_zhn, p_cn, p_m, p_part_a, p_part_b, p_count,  # scratch, tile counters
    p_hd,  # the dot operands (h ⊙ dropout) of the last two steps and of h0
    B, T, H, P, S_BEGIN, S_END,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, DOT: tl.constexpr, DOT_U: tl.constexpr,
    PEEPHOLE: tl.constexpr, LAYER_NORM: tl.constexpr, PROJ: tl.constexpr, RDROP: tl.constexpr,
    KEEP_C: tl.constexpr, KEEP_H: tl.constexpr, MASKED: tl.constexpr, REVERSE: tl.constexpr,
    SAVE: tl.constexpr, SYNC: tl.constexpr, PHASES: tl.constexpr,
    RESIDENT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
    PROGRAMS: tl.constexpr,
):  # fmt: skip
    """Steps S_BEGIN … S_END − 1 of BLOCK_B rows: program (slice, tile); with REVERSE step s
    is input step T − 1 − s (`triton_cell._time`).

    Buffers as `triton_persistent._lstm_fwd_kernel`'s: zx (B, T, 4H); h0 (B, P); c0 (B, H) fp32;
    real (B, T), first (B,) and h_last (B, P) with a mask; hs (B, T, P); cs (B, T+1, H) in hs's
    dtype (c0 stored in cs[:, 0] here; cs and stats only with SAVE); carry (B, H) fp32, the
    state between launches (c_T on exit; c0 is read from its own buffer; a program keeps its
    columns in registers between); U (parts, P, 4H), parts = 2 for "tf32x3" dots, else 1
    (`triton_lstm._operands`); W_hr (H, P); γ_h (4H), γ_c, β_c (H); with layer norm stats (B, T,
    4) and, where the phases of a step are separate launches, scratch rows that carry a
    program's own columns from one to the next: o (B, H), zhn (B, 4H), cn (B, H). m (B, H) holds
    o ⊙ act(c) before the projection (as `_store_operand` stores it); part_a, part_b (B,
    programs, 2) the programs' row statistics. hd (parts, 3, B, P) holds h ⊙ dropout of the last
    two steps as `_store_operand` stores it for the dots with U, and of h0 after them (made by
    the launcher). A step runs in phases, each needing what every program of the tile wrote in
    the one before (bit k of PHASES runs phase k; with SYNC all run in one launch, each
    followed by a barrier):
      0 (layer norm) raw h·U for this program's units, and its row statistics;
      1 the gates and the cell (with layer norm: raw c and its statistics);
      2 (layer norm) LN(c), act(c) and o ⊙ act(c);
      3 (projection) this program's output units of h = (o ⊙ act(c))·W_hr.
    The program's hidden units are its BLOCK_H columns; so are its output units. h·U is one
    dot over the program's columns of all four gates (`_gate_columns`). RESIDENT (see
    `k_chunk`): each dot is one block, and the program's columns of U, and W_hr as four K
    blocks, stay on the SM through the steps (Triton keeps them in shared memory).
    """
    cols = tl.program_id(0) * BLOCK_H + tl.arange(0, BLOCK_H)
    tile = tl.program_id(1)
    programs = tl.num_programs(0)
    rows = tile * BLOCK_B + tl.arange(0, BLOCK_B)
    m_b = rows < B
    m_h = cols < H
    m = m_b[:, None] & m_h[None, :]
    m_o = m_b[:, None] & (cols < P)[None, :]
    r64 = rows.to(tl.int64)
    G4 = 4 * H
    n_units = 1.0 * tl.minimum(H - tl.program_id(0) * BLOCK_H, BLOCK_H)
    p_h_row = p_hs + r64 * T * P
    p_c_row = p_cs + r64 * (T + 1) * H
    p_m_row = p_m + r64 * H
    p_rd = p_rdrop + r64 * P
    p_pa = p_part_a + r64 * programs * 2
    p_pb = p_part_b + r64 * programs * 2
    n_sync = 1 + 2 * LAYER_NORM + PROJ  # barriers per step
    p_real_row = p_real + r64 * s_r_b
    seen = rows < 0  # with a mask: whether a row has had a real step
    n_before = tl.full([BLOCK_B], 0, tl.int32)  # and how many steps came before it
    if MASKED:  # the steps of earlier launches
        for s in range(0, S_BEGIN):
            t = _time(s, T, REVERSE)
            seen, n_before = _seen_through(seen, n_before, p_real_row, s_r_t, t, m_b)
    p_c_own = p_carry + r64[:, None] * H + cols[None, :]  # the state, fp32, between launches
    p_c_start = p_c_own
    if PHASES & 2:  # the launch with the cell of the first step starts from c0
        p_c_start = tl.where(S_BEGIN == 0, p_c0 + r64[:, None] * H + cols[None, :], p_c_own)
    b_c = tl.load(p_c_start, mask=m, other=0.0)
    if SAVE and PHASES & 2:
        if S_BEGIN == 0:
            _store(p_c_row[:, None] + cols[None, :], b_c, m, DOT)  # cs[:, 0] = c0
    u_cols, m_u = _gate_columns(H, BLOCK_H)
    QUARTER: tl.constexpr = BLOCK_K // 4  # the projection's K blocks, held
    CARRY: tl.constexpr = PHASES if BLOCK_B == 16 else 0  # hand on in registers
    H_PHASE: tl.constexpr = 8 if PROJ else (4 if LAYER_NORM else 2)  # the phase that has h
    # h_{t−1} of this program's units, for masks and zoneout: in registers from step to step
    # where one launch runs them all (from h0), else read back from hs
    H_CARRIED: tl.constexpr = (CARRY & H_PHASE) if SYNC else 0
    b_h_old = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    if KEEP_H:
        if H_CARRIED:
            b_h_old = tl.load(p_h0 + r64[:, None] * P + cols[None, :], mask=m_o, other=0.0)
            b_h_old = b_h_old.to(tl.float32)
    if RESIDENT:
        u_all = _b_tile(p_u, G4, 1, P, u_cols, m_u, BLOCK_K)
        u_rest = u_all
        if DOT_U == "tf32x3":  # U's rest, P·4H further on (`triton_lstm._operands`)
            u_rest = _b_tile(p_u + P * G4, G4, 1, P, u_cols, m_u, BLOCK_K)
        if PROJ:
            w_r = _four_blocks(p_wr, QUARTER, P, 1, QUARTER, H, cols, cols < P, QUARTER)
    for s in range(S_BEGIN, S_END):
        t = _time(s, T, REVERSE)
        seen_before = s > 0
        if MASKED:
            seen_before = seen
            seen, n_before = _seen_through(seen, n_before, p_real_row, s_r_t, t, m_b)
        slot = tl.where(seen_before, (s + 1) % 2, 2)  # h_{t−1}'s, or h0's up to the first step
        p_hd_prev = p_hd + slot.to(tl.int64) * B * P + r64 * P
        o_z = r64[:, None] * T * G4 + t * G4 + cols[None, :]  # (B, T, 4H) offsets, gate i
        o_s = rows[:, None] * G4 + cols[None, :]  # (B, 4H) scratch offsets (int32), gate i
        o_c = rows[:, None] * H + cols[None, :]  # (B, H) scratch offsets
        p_stats_t = p_stats + (r64 * T + t) * 4
        done = n_sync * (s - S_BEGIN)  # barriers passed before this step
        b_h = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
        if PHASES & (2 - LAYER_NORM):  # h·U for this program's units (phase 0 with LN, else 1)
            if RESIDENT:
                b_hk, b_hk_rest = _operand_rows(p_hd_prev, 3 * B * P, P, m_b, DOT_U, BLOCK_K)
                zero = tl.full([BLOCK_B, 4 * BLOCK_H], 0.0, tl.float32)
                z = _operand_dot(b_hk, b_hk_rest, u_all, u_rest, zero, DOT_U)
            else:
                z = _times_gate_columns(
                    p_hd_prev, 3 * B * P, p_u, u_cols, m_u, m_b, H, P,
                    DOT_U, BLOCK_B, BLOCK_H, BLOCK_K,
                )  # fmt: skip
            zi, zf, zg, zo = _gate_split(z, BLOCK_B, BLOCK_H)
        if LAYER_NORM:
            if PHASES & 1:  # phase 0: raw h·U and its statistics
                if (CARRY & 2) == 0:  # phase 1 reads them back
                    tl.store(p_zhn + o_s, zi, mask=m)
                    tl.store(p_zhn + o_s + H, zf, mask=m)
                    tl.store(p_zhn + o_s + 2 * H, zg, mask=m)
                    tl.store(p_zhn + o_s + 3 * H, zo, mask=m)
                mean, m2 = _gate_stats(zi, zf, zg, zo, m, n_units)
                _store_pair(p_pa, mean, m2, m_b, BLOCK_H)
            if SYNC:
                _tile_barrier(p_count + tile, (done + 1) * programs)
        if PHASES & 2:  # phase 1: the gates and the cell
            if LAYER_NORM:
                mean, m2 = _merge_pairs(p_pa, m_b, H, 4, BLOCK_H, PROGRAMS)
                rstd = tl.math.rsqrt(m2 / G4 + 1e-5)
                if SAVE and tl.program_id(0) == 0:  # one program stores the row statistics
                    _store_row_pair(p_stats_t, mean, rstd, m_b, BLOCK_H)
                if (CARRY & 1) == 0:  # not in registers: from the scratch rows
                    zi, zf, zg, zo = _gate_blocks(p_zhn + o_s, m, H)
                zi, zf, zg, zo = _normalized_gates(
                    zi, zf, zg, zo, mean, rstd, p_gamma_h, p_zhn, cols, m_h, m, H, False
                )
            _, _, _, b_o, b_cnew = _gates_and_cell(
                zi, zf, zg, zo, p_zx + o_z, b_c, p_peep, cols, m_h, m, H,
                GATE_ACT, CELL_ACT, PEEPHOLE,
            )  # fmt: skip
            if KEEP_C:  # masks and zoneout: keep·old + (1 − keep)·new
                p_k = p_keep_c + r64[:, None] * s_kc_b + t * s_kc_t + cols[None, :] * s_kc_u
                b_keep = _keep_at(p_k, m, KEEP_C)
                b_c = b_keep * b_c + (1.0 - b_keep) * b_cnew
            else:
                b_c = b_cnew
            if SAVE:
                _store(p_c_row[:, None] + (s + 1) * H + cols[None, :], b_c, m, DOT)  # step order
            if LAYER_NORM:  # LN(c) needs the whole row: raw c's statistics
                if (CARRY & 4) == 0:  # phase 2 reads raw c and o back
                    tl.store(p_cn + o_c, b_cnew, mask=m)
                    tl.store(p_o + o_c, b_o, mask=m)
                mean, m2 = _row_stats(b_cnew, m, n_units)
                _store_pair(p_pb, mean, m2, m_b, BLOCK_H)
            else:
                b_h = b_o * _activation(b_cnew, CELL_ACT)
                if PROJ:  # o ⊙ act(c), for every program's output phase
                    _store_operand(p_m_row[:, None] + cols[None, :], b_h, m, 0, DOT)
        if SYNC and (LAYER_NORM or PROJ):
            _tile_barrier(p_count + tile, (done + 1 + LAYER_NORM) * programs)
        if LAYER_NORM:
            if PHASES & 4:  # phase 2: LN(c), act, o ⊙ act(c)
                mean, m2 = _merge_pairs(p_pb, m_b, H, 1, BLOCK_H, PROGRAMS)
                rstd = tl.math.rsqrt(m2 / H + 1e-5)
                if SAVE and tl.program_id(0) == 0:
                    _store_row_pair(p_stats_t + 2, mean, rstd, m_b, BLOCK_H)
                if (CARRY & 2) == 0:  # not in registers: from the scratch rows
                    b_cnew = tl.load(p_cn + o_c, mask=m, other=0.0)
                    b_o = tl.load(p_o + o_c, mask=m, other=0.0)
                b_x = (b_cnew - mean[:, None]) * rstd[:, None]
                b_a = _activation(
                    b_x * tl.load(p_gamma_c + cols, mask=m_h, other=0.0)[None, :]
                    + tl.load(p_beta_c + cols, mask=m_h, other=0.0)[None, :],
                    CELL_ACT,
                )
                b_h = b_o * b_a
                if PROJ:
                    _store_operand(p_m_row[:, None] + cols[None, :], b_h, m, 0, DOT)
            if SYNC and PROJ:
                _tile_barrier(p_count + tile, (done + 3) * programs)
        if PROJ and PHASES & 8:  # phase 3: h = m·W_hr for this program's output units
            if RESIDENT:
                b_h = _quarters_times(p_m_row, H, w_r, m_b, DOT, BLOCK_B, BLOCK_H, QUARTER)
            else:
                b_h = _rows_times(
                    p_m_row, H, p_wr, P, 1, cols, cols < P, m_b, DOT, BLOCK_B, BLOCK_H, BLOCK_K
                )
        if PHASES & H_PHASE:
            if KEEP_H:
                p_k = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + cols[None, :] * s_kh_u
                b_keep = _keep_at(p_k, m_o, KEEP_H)
                if H_CARRIED == 0:  # h_{t−1} from hs (h0 up to the first step)
                    p_h_prev = tl.where(
                        seen_before, p_h_row + _time(s - 1, T, REVERSE) * P, p_h0 + r64 * P
                    )
                    p_old = p_h_prev[:, None] + cols[None, :]
                    b_h_old = tl.load(p_old, mask=m_o, other=0.0, cache_modifier=".cg")
                b_h = b_keep * b_h_old.to(tl.float32) + (1.0 - b_keep) * b_h
                b_h_old = b_h  # masked steps keep h0 up to the first step
            b_hd = b_h
            if RDROP:
                b_hd = b_hd * tl.load(p_rd[:, None] + cols[None, :], mask=m_o, other=0.0)
            p_hd_t = p_hd + (s % 2) * B * P + r64[:, None] * P + cols[None, :]
            _store_operand(p_hd_t, b_hd, m_o, 3 * B * P, DOT_U)  # for the next step's h·U
            if MASKED:  # h_T, the state; zeros where no real step has been seen yet
                if s == T - 1:
                    _store(p_h_last + r64[:, None] * P + cols[None, :], b_h, m_o, DOT)
                b_h = tl.where(seen[:, None], b_h, 0.0)
            _store(p_h_row[:, None] + t * P + cols[None, :], b_h, m_o, DOT)
        if SYNC:
            _tile_barrier(p_count + tile, (done + n_sync) * programs)
    if PHASES & 2:  # c_T, or the state the next launch starts from
        tl.store(p_c_own, b_c, mask=m)
    if MASKED:  # each row's first real step, for backward (every launch that ends at T)
        if S_END == T:
            if tl.program_id(0) == 0:
                tl.store(p_first + rows, n_before, mask=m_b)


def _norm_grad(dx, x, rstd, t1, t2):
    """d loss / d (a row's input of a layer norm) from dx = d loss / d x̂, with x̂ the
    normalised input: rstd·(dx − mean(dx) − x̂·mean(dx ⊙ x̂)), given those two row means t1,
    t2 (Ba et al. 2016)."""
    return rstd[:, None] * (dx - t1[:, None] - x * t2[:, None])


def _gained(dzi, dzf, dzg, dzo, p_gamma_h, cols, m_h, H):
    """The four gate blocks of dz times their columns of γ_h (4H): d loss / d x̂ of LN(h·U)."""
    dxi = dzi * tl.load(p_gamma_h + cols, mask=m_h, other=0.0)[None, :]
    dxf = dzf * tl.load(p_gamma_h + H + cols, mask=m_h, other=0.0)[None, :]
    dxg = dzg * tl.load(p_gamma_h + 2 * H + cols, mask=m_h, other=0.0)[None, :]
    dxo = dzo * tl.load(p_gamma_h + 3 * H + cols, mask=m_h, other=0.0)[None, :]
    return dxi, dxf, dxg, dxo


def _store_operand_blocks(p, b_i, b_f, b_g, b_o, m, H, rest, DOT: tl.constexpr):
    """Four gate blocks at p (2-D, gate i; …, 4H) as `_store_operand` stores them."""
    _store_operand(p, b_i, m, rest, DOT)
    _store_operand(p + H, b_f, m, rest, DOT)
    _store_operand(p + 2 * H, b_g, m, rest, DOT)
    _store_operand(p + 3 * H, b_o, m, rest, DOT)


def _split_bwd_kernel(
    p_dhs, s_d_b, s_d_t, s_d_p, p_u, p_peep, p_wr, p_gamma_h, p_gamma_c, p_beta_c,  # inputs
    p_rdrop, p_first, p_keep_c, s_kc_b, s_kc_t, s_kc_u,
    p_keep_h, s_kh_b, s_kh_t, s_kh_u,  # strided keeps
    p_cs, p_stats, p_gates, p_zhn,  # saved by the forward, recomputed
    p_dz, p_dzh, p_dhn, p_dcn, p_dnorm, p_sums, s_sums, p_ms, p_at_first, p_m,  # outputs
    p_dh, p_dc, p_dh_T, s_dh_b, s_dh_p, p_dc_T, s_dc_b, s_dc_h,  # carries and their starts
    p_part_a, p_part_b, p_count,  # partial sums, tile counters
    p_dzd,  # the dot operands (d loss / d (h·U)) of the last two steps
    p_dhd,  # with a projection, the dot operand d loss / d h of the current step
    B, T, H, P, S_BEGIN, S_END,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, DOT: tl.constexpr, DOT_U: tl.constexpr,
    PEEPHOLE: tl.constexpr, LAYER_NORM: tl.constexpr, PROJ: tl.constexpr, RDROP: tl.constexpr,
    KEEP_C: tl.constexpr, KEEP_H: tl.constexpr, MASKED: tl.constexpr, DHS: tl.constexpr,
    START_H: tl.constexpr, START_C: tl.constexpr, BIAS_SUMS: tl.constexpr, REVERSE: tl.constexpr,
    SYNC: tl.constexpr, PHASES: tl.constexpr, FINISH: tl.constexpr,
    RESIDENT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
    PROGRAMS: tl.constexpr,
):  # fmt: skip
    """Reverse steps T − 1 − s for s in S_BEGIN … S_END − 1, then (FINISH) dh0; buffers and
    REVERSE as the forward's.

    dhs (B, T, P) strided: the gradient reaching the outputs hs from outside (none where DHS
    is false). In and out as
    `triton_persistent._lstm_bwd_kernel`'s: dz (B, T, 4H), which may be the gates' buffer; with
    layer norm dzh (B, T, 4H) = d loss / d (h·U) (else dzh is dz), which may be zhn's, and
    dnorm (tiles, 6H), where the programs of a tile sum their columns; dcn (B, H) is
    scratch for the current step; sums (B, s_sums) as there (the sums of a launch's steps
    added once), with a projection dhn
    (B, T, P) and ms (B, T, H), with a mask at_first (B, 4H). U and dzd (parts, 2, B, 4H),
    dzh of the last two steps as `_store_operand` stores it for the dots with Uᵀ, as the
    forward's U and hd.
    dh (B, P) carries keep·(d loss / d h_t) to step t − 1 and ends as dh0; dc (B, H) carries
    d loss / d c_{t-1} and ends as dc0; the first reverse step reads the gradients of h_T and
    c_T instead, dh_T (B, P) and dc_T (B, H) strided (none where START_H / START_C is false);
    m (B, H) scratch for d loss / d (o ⊙ act(c)); part_a, part_b (B, programs, 2) partial
    row sums. Phases, as the forward's:
      0 d loss / d h_t for this program's output units, from all of dzh_{t+1};
      1 (from all of dhn_t with a projection) the cell's gradients: without layer norm the
        gate gradients dz, with it d loss / d LN(c) and its row sums;
      2 (layer norm) through LN(c) to dz, and the row sums for LN(h·U);
      3 (layer norm) through LN(h·U) to dzh.
    RESIDENT (see `k_chunk`): the program's rows of U, as the four (H, BLOCK_H) gate blocks
    of Uᵀ, and W_hrᵀ as four K blocks stay on the SM through the steps. dz·Uᵀ is a dot
    batched over the gate blocks, held or streamed (`_gate_blocks_times`); a held W_hrᵀ's
    product one batched over its K blocks (`_quarters_times`), a streamed one a K loop.
    """
    cols = tl.program_id(0) * BLOCK_H + tl.arange(0, BLOCK_H)
    tile = tl.program_id(1)
    programs = tl.num_programs(0)
    rows = tile * BLOCK_B + tl.arange(0, BLOCK_B)
    m_b = rows < B
    m_h = cols < H
    m_p = cols < P
    m = m_b[:, None] & m_h[None, :]
    m_o = m_b[:, None] & m_p[None, :]
    r64 = rows.to(tl.int64)
    G4 = 4 * H
    p_dz_row = p_dz + r64 * T * G4
    p_dhn_row = p_dhn + r64 * T * P
    p_dh_own = p_dh + r64[:, None] * P + cols[None, :]
    p_dhd_own = p_dhd + r64[:, None] * P + cols[None, :]
    p_dc_row = p_dc + r64 * H
    p_dc_own = p_dc_row[:, None] + cols[None, :]
    p_dh_start = p_dh_T + r64[:, None] * s_dh_b + cols[None, :] * s_dh_p
    p_dc_start = p_dc_T + r64[:, None] * s_dc_b + cols[None, :] * s_dc_h
    p_m_own = p_m + r64[:, None] * H + cols[None, :]
    p_rd = p_rdrop + r64[:, None] * P + cols[None, :]
    p_pa = p_part_a + r64 * programs * 2
    p_pb = p_part_b + r64 * programs * 2
    n_sync = 1 + PROJ + 2 * LAYER_NORM  # barriers per step
    first = _first_real_steps(p_first, rows, m_b, MASKED)
    p_at_own = p_at_first + r64[:, None] * G4 + cols[None, :]  # gate i
    QUARTER: tl.constexpr = BLOCK_K // 4
    CARRY: tl.constexpr = PHASES if BLOCK_B == 16 else 0  # hand on in registers
    # the norms' gain and shift gradients, summed over the rows once the steps are done
    d_gain_i = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)  # γ_h, gate i
    d_gain_f = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    d_gain_g = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    d_gain_o = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    d_gain_c = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)  # γ_c
    d_shift_c = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)  # β_c
    d_peep_i = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)  # the peepholes, per row
    d_peep_f = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    d_peep_o = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    d_bias_i = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)  # dz, per row
    d_bias_f = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    d_bias_g = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    d_bias_o = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    u_t = p_u  # Uᵀ as its four gate blocks, element (j, k, n) U[n, j·H + k], if held
    u_t_rest = p_u  # and its rest ("tf32x3"), P·4H further on (`triton_lstm._operands`)
    if RESIDENT:
        u_t = _four_blocks(p_u, H, 1, G4, H, G4, cols, m_p, BLOCK_K)
        u_t_rest = u_t
        if DOT_U == "tf32x3":
            u_t_rest = _four_blocks(p_u + P * G4, H, 1, G4, H, G4, cols, m_p, BLOCK_K)
        if PROJ:  # W_hrᵀ as four K blocks
            w_rt = _four_blocks(p_wr, QUARTER, 1, P, QUARTER, P, cols, m_h, QUARTER)
    for s in range(S_BEGIN, S_END):
        step = T - 1 - s
        t = _time(step, T, REVERSE)
        m_at = m
        if MASKED:  # the rows whose dzh_t meets h0
            m_at = m & (step == tl.minimum(first, T - 1))[:, None]
        done = n_sync * (s - S_BEGIN)  # barriers passed before this step
        o_z = r64[:, None] * T * G4 + t * G4 + cols[None, :]  # (B, T, 4H) offsets, gate i
        o_c = r64[:, None] * H + cols[None, :]  # (B, H) scratch offsets
        p_dzd_t = p_dzd + (step % 2) * B * G4 + r64[:, None] * G4 + cols[None, :]  # gate i
        p_stats_t = p_stats + (r64 * T + t) * 4
        mean_c, rstd_c = _cell_stats(p_stats_t, m_b, LAYER_NORM, BLOCK_B)
        p_kc = p_keep_c + r64[:, None] * s_kc_b + t * s_kc_t + cols[None, :] * s_kc_u
        p_c_prev = p_cs + r64 * (T + 1) * H + step * H
        p_c_own = p_c_prev[:, None] + cols[None, :]
        b_dh = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
        if PHASES & 1:  # phase 0: from outside, kept from step t + 1, through U
            p_dhs_t = p_dhs + r64[:, None] * s_d_b + t * s_d_t + cols[None, :] * s_d_p
            b_dh = _outside_grad(p_dhs_t, m_o, step >= first, MASKED, DHS)
            b_dh += _carry_in(p_dh_own, p_dh_start, m_o, START_H, s == 0)
            if step + 1 < T:
                b_du = _gate_blocks_times(
                    p_dzd + ((step + 1) % 2) * B * G4 + r64 * G4, 2 * B * G4, p_u, u_t, u_t_rest,
                    cols, m_p, m_b, H, P, RESIDENT, DOT_U, BLOCK_B, BLOCK_H, BLOCK_K,
                )  # fmt: skip
                if RDROP:
                    b_du = b_du * tl.load(p_rd, mask=m_o, other=0.0)
                b_dh += b_du
            if KEEP_H:
                p_k = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + cols[None, :] * s_kh_u
                b_keep = _keep_at(p_k, m_o, KEEP_H)
                tl.store(p_dh_own, b_keep * b_dh, mask=m_o)
                b_dh = (1.0 - b_keep) * b_dh
            elif s == 0:  # the carry started as the gradient of h_T: taken, nothing kept
                tl.store(p_dh_own, b_dh * 0.0, mask=m_o)
            if PROJ:
                tl.store(p_dhn_row[:, None] + t * P + cols[None, :], b_dh, mask=m_o)
                _store_operand(p_dhd_own, b_dh, m_o, 0, DOT)  # for the product with W_hrᵀ
        if PROJ:
            if SYNC:
                _tile_barrier(p_count + tile, (done + 1) * programs)
            if PHASES & 2:  # d loss / d m = dhn_t·W_hrᵀ for this program's hidden units
                if RESIDENT:
                    b_dh = _quarters_times(
                        p_dhd + r64 * P, P, w_rt, m_b, DOT, BLOCK_B, BLOCK_H, QUARTER
                    )
                else:
                    b_dh = _rows_times(
                        p_dhd + r64 * P, P, p_wr, 1, P, cols, m_h, m_b, DOT,
                        BLOCK_B, BLOCK_H, BLOCK_K,
                    )  # fmt: skip
        if PHASES & 2:  # phase 1: the cell
            b_i, b_f, b_g, b_o, b_c = _cell_inputs(p_gates + o_z, p_c_own, m, H)
            b_x = _recomputed_cell(b_i, b_f, b_g, b_c, mean_c, rstd_c, LAYER_NORM)
            b_a = _cell_activation(b_x, p_gamma_c, p_beta_c, cols, m_h, CELL_ACT, LAYER_NORM)
            b_dcn = b_dh * b_o * _activation_grad(b_a, CELL_ACT)  # d / d act's input
            if PROJ:
                tl.store(p_ms + (r64[:, None] * T + t) * H + cols[None, :], b_o * b_a, mask=m)
            if LAYER_NORM:  # LN(c)'s backward needs two row sums first
                if (CARRY & 4) == 0:  # phase 2 reads them back
                    tl.store(p_dcn + o_c, b_dcn, mask=m)
                    tl.store(p_m_own, b_dh, mask=m)
                b_dx = b_dcn * tl.load(p_gamma_c + cols, mask=m_h, other=0.0)[None, :]
                _store_pair(p_pa, _row_sum(b_dx), _row_sum(b_dx * b_x), m_b, BLOCK_H)
            else:
                dzi, dzf, dzg, dzo = _cell_backward(
                    b_dcn, b_dh * b_a, b_i, b_f, b_g, b_o, b_c,
                    _carry_in(p_dc_own, p_dc_start, m, START_C, s == 0), p_dc_row, p_kc,
                    p_peep, p_dz_row + t * G4, cols, m_h, m, H,
                    GATE_ACT, CELL_ACT, PEEPHOLE, KEEP_C, DOT,
                )  # fmt: skip
                _store_operand_blocks(p_dzd_t, dzi, dzf, dzg, dzo, m, H, 2 * B * G4, DOT_U)
                if MASKED:
                    _store_gates(p_at_own, dzi, dzf, dzg, dzo, m_at, H, DOT)
                if BIAS_SUMS:
                    d_bias_i += dzi
                    d_bias_f += dzf
                    d_bias_g += dzg
                    d_bias_o += dzo
                if PEEPHOLE:
                    d_peep_i, d_peep_f, d_peep_o = _peephole_sums(
                        d_peep_i, d_peep_f, d_peep_o, dzi, dzf, dzo, b_i, b_f, b_g, b_c
                    )
        if SYNC:
            _tile_barrier(p_count + tile, (done + 1 + PROJ) * programs)
        if LAYER_NORM:
            if PHASES & 4:  # phase 2: through LN(c) to the gates
                s1, s2 = _sum_pairs(p_pa, m_b, BLOCK_H, PROGRAMS)
                if (CARRY & 2) == 0:  # not in registers: from the scratch rows
                    b_i, b_f, b_g, b_o, b_c = _cell_inputs(p_gates + o_z, p_c_own, m, H)
                    b_dcn = tl.load(p_dcn + o_c, mask=m, other=0.0)
                    b_dh = tl.load(p_m_own, mask=m, other=0.0)
                    b_x = _recomputed_cell(b_i, b_f, b_g, b_c, mean_c, rstd_c, LAYER_NORM)
                    b_a = _cell_activation(
                        b_x, p_gamma_c, p_beta_c, cols, m_h, CELL_ACT, LAYER_NORM
                    )  # fmt: skip
                d_gain_c += b_dcn * b_x
                d_shift_c += b_dcn
                b_dx = b_dcn * tl.load(p_gamma_c + cols, mask=m_h, other=0.0)[None, :]
                b_dch = tl.where(m, _norm_grad(b_dx, b_x, rstd_c, s1 / H, s2 / H), 0.0)
                dzi, dzf, dzg, dzo = _cell_backward(
                    b_dch, b_dh * b_a, b_i, b_f, b_g, b_o, b_c,
                    _carry_in(p_dc_own, p_dc_start, m, START_C, s == 0), p_dc_row, p_kc, p_peep,
                    p_dz_row + t * G4, cols, m_h, m, H, GATE_ACT, CELL_ACT, PEEPHOLE, KEEP_C, DOT,
                )  # fmt: skip
                if PEEPHOLE:
                    d_peep_i, d_peep_f, d_peep_o = _peephole_sums(
                        d_peep_i, d_peep_f, d_peep_o, dzi, dzf, dzo, b_i, b_f, b_g, b_c
                    )
                dxi, dxf, dxg, dxo = _gained(dzi, dzf, dzg, dzo, p_gamma_h, cols, m_h, H)
                xi, xf, xg, xo = _gate_blocks(p_zhn + o_z, m, H)  # x̂ of LN(h·U)
                t2 = _row_sum(dxi * xi + dxf * xf + dxg * xg + dxo * xo)
                _store_pair(p_pb, _row_sum(dxi + dxf + dxg + dxo), t2, m_b, BLOCK_H)
            if SYNC:
                _tile_barrier(p_count + tile, (done + 2 + PROJ) * programs)
            if PHASES & 8:  # phase 3: through LN(h·U)
                t1, t2 = _sum_pairs(p_pb, m_b, BLOCK_H, PROGRAMS)
                t1 = t1 / G4
                t2 = t2 / G4
                rstd = tl.load(p_stats_t + 1, mask=m_b, other=0.0)
                if (CARRY & 4) == 0:  # not in registers: dz and x̂ from memory
                    dzi, dzf, dzg, dzo = _gate_blocks(p_dz + o_z, m, H)
                    dxi, dxf, dxg, dxo = _gained(dzi, dzf, dzg, dzo, p_gamma_h, cols, m_h, H)
                    xi, xf, xg, xo = _gate_blocks(p_zhn + o_z, m, H)
                d_gain_i += dzi * xi
                d_gain_f += dzf * xf
                d_gain_g += dzg * xg
                d_gain_o += dzo * xo
                dzhi = _norm_grad(dxi, xi, rstd, t1, t2)  # x̂ read: dzh may be zhn's buffer
                dzhf = _norm_grad(dxf, xf, rstd, t1, t2)
                dzhg = _norm_grad(dxg, xg, rstd, t1, t2)
                dzho = _norm_grad(dxo, xo, rstd, t1, t2)
                p_dzh_t = p_dzh + o_z
                tl.store(p_dzh_t, dzhi, mask=m)
                tl.store(p_dzh_t + H, dzhf, mask=m)
                tl.store(p_dzh_t + 2 * H, dzhg, mask=m)
                tl.store(p_dzh_t + 3 * H, dzho, mask=m)
                if MASKED:
                    _store_gates(p_at_own, dzhi, dzhf, dzhg, dzho, m_at, H, DOT)
                _store_operand_blocks(p_dzd_t, dzhi, dzhf, dzhg, dzho, m, H, 2 * B * G4, DOT_U)
            if SYNC:
                _tile_barrier(p_count + tile, (done + 3 + PROJ) * programs)
    added = S_BEGIN > 0  # the sums below: the first launch stores them, the others add
    if LAYER_NORM:  # this launch's sums of the norms' gain and shift gradients, added once
        p_norm = p_dnorm + tile * 6 * H + cols
        if PHASES & 8:
            _accumulate(p_norm, d_gain_i, m_h, added)
            _accumulate(p_norm + H, d_gain_f, m_h, added)
            _accumulate(p_norm + 2 * H, d_gain_g, m_h, added)
            _accumulate(p_norm + 3 * H, d_gain_o, m_h, added)
        if PHASES & 4:
            _accumulate(p_norm + 4 * H, d_gain_c, m_h, added)
            _accumulate(p_norm + 5 * H, d_shift_c, m_h, added)
    DZ_PHASE: tl.constexpr = 4 if LAYER_NORM else 2  # the phase that forms dz
    if PHASES & DZ_PHASE:  # this launch's sums over its steps, added to the rows' once
        p_sum = p_sums + r64[:, None] * s_sums + cols[None, :]
        if BIAS_SUMS:
            _add_gates(p_sum, d_bias_i, d_bias_f, d_bias_g, d_bias_o, m, H, added)
            p_sum += G4
        if PEEPHOLE:
            _add_blocks(p_sum, d_peep_i, d_peep_f, d_peep_o, m, H, added)
    if FINISH:  # dh0: what step 0 kept, and dzh_0 through U
        b_dh = tl.load(p_dh_own, mask=m_o, other=0.0)
        if T > 0:
            b_du = _gate_blocks_times(
                p_dzd + r64 * G4, 2 * B * G4, p_u, u_t, u_t_rest, cols, m_p, m_b, H, P,
                RESIDENT, DOT_U, BLOCK_B, BLOCK_H, BLOCK_K,
            )  # fmt: skip
            if RDROP:
                b_du = b_du * tl.load(p_rd, mask=m_o, other=0.0)
            b_dh += b_du
        tl.store(p_dh_own, b_dh, mask=m_o)


# --------------------------------------------------------------------------------------------
# Launchers, called by `triton_lstm._Recurrence` with its buffers.


def _grid(batch: int, units: int, cfg) -> tuple[int, int]:
    return (-(-units // cfg.block_h), -(-batch // cfg.block_b))


def programs(batch: int, units: int, cfg) -> int:
    """How many programs a launch of this layout over ``batch`` rows and ``units`` hidden
    units has."""
    per_tile, tiles = _grid(batch, units, cfg)
    return per_tile * tiles


def _programs_block(programs: int, block_h: int) -> int:
    """The width of the blocks over the programs of a tile (`_program_pairs`): a power of two
    and at least BLOCK_H, so that Triton lays them out as the programs' (BLOCK_B, BLOCK_H)
    tiles and their row sums need no move between warps (sm_90a code)."""
    return max(block_h, 1 << (programs - 1).bit_length())


def _synchronised(grid: tuple[int, int], device: torch.device, interpreted: bool) -> bool:
    """One launch with a barrier per step where every program of a tile can be resident at
    once: on a GPU where the grid fits on its SMs; under the interpreter, which runs the
    programs one after another, where each tile has one program."""
    if interpreted:
        return grid[0] == 1
    return grid[0] * grid[1] <= torch.cuda.get_device_properties(device).multi_processor_count


ALL_PHASES = 15


def _launches(steps: int, sync: bool, layer_norm: bool, proj: bool, reverse: bool) -> list:
    """(first step, end step, PHASES) of each launch: every step at once where the barrier
    can run, else each step in as many launches as it has phases that need the stores of the
    one before (forward 0, 1, 2, 3; backward 0 and 1 together without a projection)."""
    if sync:
        return [(0, steps, ALL_PHASES)]
    if reverse:
        groups = ([1, 2] if proj else [3]) + ([4, 8] if layer_norm else [])
    else:
        groups = [1, 2, 4] if layer_norm else [2]
        groups += [8] if proj else []
    return [(t, t + 1, phases) for t in range(steps) for phases in groups]


def h_operands(
    batch: int, output_size: int, device: torch.device, dtype: torch.dtype, dot_u: str
) -> torch.Tensor:  # fmt: skip
    """The forward's buffer of dot operands h ⊙ dropout (in `operand_dtype`), (parts, 3, B, P):
    those of the last two steps (the kernel's) and, in [:, 2], of h0 (the caller's)."""
    shape = (operand_parts(dot_u), 3, batch, output_size)
    return torch.empty(shape, device=device, dtype=dtype)


def tile_counters(batch: int, units: int, cfg, device: torch.device) -> torch.Tensor:
    """The barrier counters of each batch tile for both passes, (2, tiles) int32, row 0 the
    forward's, row 1 the backward's (`_tile_barrier`); the caller zeroes them."""
    return torch.empty(2, _grid(batch, units, cfg)[1], dtype=torch.int32, device=device)


def forward(
    buffers: tuple, shape: tuple, consts: dict, cfg, interpreted: bool, hd: torch.Tensor,
    count: torch.Tensor,
) -> None:  # fmt: skip
    """Run the recurrence of `triton_lstm._Recurrence.forward` in the split layout: buffers
    are `_split_fwd_kernel`'s pointer arguments up to m, shape (B, T, H, P); hd is
    `h_operands` with h0 ⊙ dropout in [:, 2] as the dots with U take it (rounded to TF32 for
    "tf32", in parts for "tf32x3", `triton_lstm._operands`), and U in buffers likewise;
    count the tiles' barrier counters, zeros (`tile_counters`)."""
    B, T, H, P = shape
    device = buffers[0].device
    grid = _grid(B, H, cfg)
    sync = _synchronised(grid, device, interpreted)
    part = torch.empty(2, B, grid[0], 2, device=device, dtype=torch.float32)
    ln, proj = consts["LAYER_NORM"], consts["PROJ"]
    u = buffers[3]  # after zx, h0, c0
    resident, block_k = k_chunk(cfg, H, u.element_size(), consts["DOT_U"], "forward")
    consts = {**consts, "BLOCK_K": block_k, "PROGRAMS": _programs_block(grid[0], cfg.block_h)}
    for begin, end, phases in _launches(T, sync, ln, proj, reverse=False):
        _split_fwd_kernel[grid](
            *buffers, part[0], part[1], count, hd, B, T, H, P, begin, end, **consts,
            SYNC=sync, PHASES=phases, RESIDENT=resident, num_warps=cfg.num_warps, num_stages=1,
        )  # fmt: skip


def backward(
    buffers: tuple, shape: tuple, consts: dict, cfg, interpreted: bool, carries: tuple,
    count: torch.Tensor,
) -> None:  # fmt: skip
    """The reverse recurrence of `triton_lstm._Recurrence.backward` in the split layout:
    buffers are `_split_bwd_kernel`'s arguments up to m (dhs and its three strides first,
    then U, …, W_hr), shape (B, T, H, P); carries its arguments from dh to s_dc_h: the
    carries dh (B, P) and dc (B, H), which end as dh0, dc0, then the gradients of h_T and
    c_T that start them, each with its two strides; count the tiles' barrier counters,
    zeros."""
    B, T, H, P = shape
    u, wr = buffers[4], buffers[6]
    device = u.device
    grid = _grid(B, H, cfg)
    sync = _synchronised(grid, device, interpreted)
    part = torch.empty(2, B, grid[0], 2, device=device, dtype=torch.float32)
    ln, proj = consts["LAYER_NORM"], consts["PROJ"]
    launches = [(*launch, sync) for launch in _launches(T, sync, ln, proj, reverse=True)]
    if not sync:
        launches.append((T, T, 0, True))  # dh0, once dzh_0 is complete
    resident, block_k = k_chunk(cfg, H, u.element_size(), consts["DOT_U"], "backward")
    consts = {**consts, "BLOCK_K": block_k, "PROGRAMS": _programs_block(grid[0], cfg.block_h)}
    dot_u = consts["DOT_U"]
    dtype = operand_dtype(u.dtype, dot_u)
    dzd = torch.empty(operand_parts(dot_u), 2, B, 4 * H, device=device, dtype=dtype)
    dhd = dzd  # with a projection, d loss / d h_t as the product with W_hrᵀ takes it
    if consts["PROJ"]:
        dhd = torch.empty(B, P, device=device, dtype=operand_dtype(wr.dtype, consts["DOT"]))
    for begin, end, phases, finish in launches:
        _split_bwd_kernel[grid](
            *buffers, *carries, part[0], part[1], count, dzd, dhd, B, T, H, P, begin, end,
            **consts,
            SYNC=sync, PHASES=phases, FINISH=finish, RESIDENT=resident,
            num_warps=cfg.num_warps, num_stages=1,
        )  # fmt: skip


def operand_parts(dot_u: str) -> int:
    """In how many parts the kernels keep U and the left operands of their dots with it: two
    (TF32 part and rest) for "tf32x3" dots, else one (`_store_operand`)."""
    return 2 if dot_u == "tf32x3" else 1


def operand_dtype(dot_dtype: torch.dtype, dot_u: str) -> torch.dtype:
    """The dtype in which the kernels keep the left operands of their dots with U, given U's
    as its dots take it: that (bf16 / fp16) for "low" dots, else fp32 (the interpreter's bf16
    stores truncate)."""
    return dot_dtype if dot_u == "low" else torch.float32


HELD_BYTES = {"forward": 160 * 1024, "backward": 128 * 1024}


def k_chunk(cfg, units: int, itemsize: int, dot_u: str, direction: str) -> tuple[bool, int]:
    """Whether a kernel holds its program's part of U on the SM through the steps, and its K
    chunk. It does where the config's chunk covers the units (and is at least 64: W_hr is
    held as four K blocks of a dot each) and what it then keeps in shared memory fits
    HELD_BYTES: its part of U, 4·H·BLOCK_H elements, and the left operand of its dot,
    BLOCK_B·H (forward) or BLOCK_B·4H (backward) elements, both counted twice for the
    three-product TF32 dots of layer norm (TF32 parts and rests). The budgets are where
    ptxas (sm_90a) began to spill or to ask for more shared memory than an H100 SM has,
    over the variants at H = 128-512 (bench/RESULTS.md; since then the fp32 all-variants
    forward at H=256 holds U and spills 88 bytes, against 2,762 instructions a step and 8
    dependent K chunks streamed). Where it does not hold U, a chunk that covers the units
    streams it in chunks of 32."""
    if cfg.block_p < max(units, 64):
        return False, cfg.block_p
    u_bytes = 4 * units * cfg.block_h * itemsize * operand_parts(dot_u)
    a_width = units if direction == "forward" else 4 * units
    a_bytes = cfg.block_b * a_width * (itemsize if dot_u == "low" else 4) * operand_parts(dot_u)
    if u_bytes + a_bytes <= HELD_BYTES[direction]:
        return True, cfg.block_p
    return False, 32
