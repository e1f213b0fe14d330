"""Split-hidden LSTM kernels in Triton: several programs per batch tile, each owning a slice of
the hidden units (design §4), for every variant but layer norm (whose statistics couple all
hidden units of a row within a step).

Why. The persistent kernels of `triton_lstm` give one program a tile of batch rows and the
whole hidden width, so a layer of B=64 rows runs on 4 of the GPU's 132 SMs, and each program
walks all of U every step. Here a program owns BLOCK_B rows x BLOCK_H hidden units: per step
it computes its units' four gates from the whole h_{t-1} (h·U against its columns of U), its
part of c and h, and the programs of a tile then meet at a counter in global memory before the
next step reads h_t. c never leaves its program. With a projection (Sak et al. 2014) a step
has a second phase after a second meeting: each program forms its slice of the output units,
h = (o ⊙ act(c))·W_hr, from every program's part. Backward runs the same way in reverse: a
program forms d loss / d h_t for its output units from the whole dz_{t+1} (dz·Uᵀ), then (after
a meeting, with a projection) its hidden units' gate gradients; the weight gradients stay the
large GEMMs of `triton_lstm`.

Sync. On a GPU the whole time loop is one launch, and each phase ends at `_tile_barrier`,
which needs every program of a tile resident at once: the grid is checked against the SM
count, and where it does not fit (and under Triton's interpreter, which runs programs one
after another) each phase of each step is its own launch instead, with the same kernel code.
The exchanged tensors are read with ``.cg`` loads (L2, not the SM's own L1, which other SMs'
stores do not update); the launches use one pipeline stage, as software pipelining turns those
loads into L1-cached asynchronous copies (checked in the PTX for sm_90).

Triton, ``tl`` and the device functions shared with `triton_lstm` (`_h_times_u`,
`_cell_backward`, `_activation`, `_activation_grad`, `_dot`) are set in this module by
`triton_lstm._triton()` on first use, which also wraps the functions here for the interpreter
or with ``triton.jit``.
"""

from __future__ import annotations

import torch

from lstmkit.spec import LSTMSpec

tl = None
_h_times_u = _cell_backward = _activation = _activation_grad = _dot = None
SHARED = ("_h_times_u", "_cell_backward", "_activation", "_activation_grad", "_dot")
JIT_FUNCTIONS = ("_tile_barrier", "_rows_times", "_split_fwd_kernel", "_split_bwd_kernel")


def supports(spec: LSTMSpec) -> bool:
    """Layer norm couples all hidden units of a row within a step: not here."""
    return not spec.layer_norm


def _tile_barrier(p_count, target):
    """Wait until the programs of this batch tile have arrived ``target`` times in all."""
    tl.debug_barrier()  # every thread of this program has issued its stores
    tl.atomic_add(p_count, 1, sem="release", scope="gpu")
    seen = tl.atomic_add(p_count, 0, sem="acquire", scope="gpu")
    while seen < target:
        seen = tl.atomic_add(p_count, 0, sem="acquire", scope="gpu")


def _rows_times(
    p_a, K, p_b, s_bk, s_bn, cols, m_cols, m_b,
    DOT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """A·B for the rows p_a (BLOCK_B,) of A (…, K), which other programs wrote (``.cg``), and
    the columns ``cols`` of B, whose element (k, n) is at p_b + k·s_bk + n·s_bn."""
    acc = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        m_k = ks < K
        b_a = tl.load(
            p_a[:, None] + ks[None, :],
            mask=m_b[:, None] & m_k[None, :],
            other=0.0,
            cache_modifier=".cg",
        )
        b_b = tl.load(
            p_b + ks[:, None] * s_bk + cols[None, :] * s_bn,
            mask=m_k[:, None] & m_cols[None, :],
            other=0.0,
        )
        acc = _dot(b_a, b_b, acc, DOT)
    return acc


def _split_fwd_kernel(
    p_zx, p_u, p_peep, p_wr, p_rdrop,  # inputs
    p_keep_c, s_kc_b, s_kc_t, s_kc_u, p_keep_h, s_kh_b, s_kh_t, s_kh_u,  # strided keeps
    p_hs, p_cs, p_gates, p_act, p_m, p_count,  # outputs, saved, scratch, tile counters
    B, T, H, P, T_BEGIN, T_END,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, DOT: tl.constexpr,
    PEEPHOLE: tl.constexpr, PROJ: tl.constexpr, RDROP: tl.constexpr,
    KEEP_C: tl.constexpr, KEEP_H: tl.constexpr,
    SYNC: tl.constexpr, CELL: tl.constexpr, OUT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Steps T_BEGIN … T_END − 1 of BLOCK_B rows: program (slice, tile).

    Buffers as `triton_lstm._lstm_fwd_kernel`'s: zx (B, T, 4H); hs (B, T+1, P) and cs
    (B, T+1, H) holding h0, c0 at step 0; U (P, 4H); W_hr (H, P); gates (B, T, 4H); act
    (B, T, H); m (B, H) scratch for o ⊙ act(c) before the projection. A step has two phases:
    CELL, the gates and cell of the program's BLOCK_H hidden units, and, with a projection,
    OUT, the program's BLOCK_H output units of h = m·W_hr, which needs every program's m
    first. With SYNC both run in one launch with a barrier after each; without, a launch runs
    the phases asked for.
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
    p_h_row = p_hs + r64 * (T + 1) * P
    p_c_row = p_cs + r64 * (T + 1) * H
    p_m_row = p_m + r64 * H
    p_rd = p_rdrop + r64 * P
    b_c = tl.load(p_c_row[:, None] + T_BEGIN * H + cols[None, :], mask=m, other=0.0)
    for t in range(T_BEGIN, T_END):
        p_h_prev = p_h_row + t * P
        b_h = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
        if CELL:
            zi, zf, zg, zo = _h_times_u(
                p_h_prev, p_rd, p_u, m_b, cols, m_h, H, P, RDROP, DOT, ".cg",
                BLOCK_B, BLOCK_H, BLOCK_K,
            )  # fmt: skip
            p_x = p_zx + r64[:, None] * T * G4 + t * G4 + cols[None, :]
            zi += tl.load(p_x, mask=m, other=0.0)
            zf += tl.load(p_x + H, mask=m, other=0.0)
            zg += tl.load(p_x + 2 * H, mask=m, other=0.0)
            zo += tl.load(p_x + 3 * H, mask=m, other=0.0)
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
            b_a = _activation(b_cnew, CELL_ACT)
            p_g = p_gates + r64[:, None] * T * G4 + t * G4 + cols[None, :]
            tl.store(p_g, b_i, mask=m)
            tl.store(p_g + H, b_f, mask=m)
            tl.store(p_g + 2 * H, b_g, mask=m)
            tl.store(p_g + 3 * H, b_o, mask=m)
            tl.store(p_act + r64[:, None] * T * H + t * H + cols[None, :], b_a, mask=m)
            if KEEP_C:  # masks and zoneout: keep·old + (1 − keep)·new
                p_k = p_keep_c + r64[:, None] * s_kc_b + t * s_kc_t + cols[None, :] * s_kc_u
                b_keep = tl.load(p_k, mask=m, other=1.0)
                b_c = b_keep * b_c + (1.0 - b_keep) * b_cnew
            else:
                b_c = b_cnew
            tl.store(p_c_row[:, None] + (t + 1) * H + cols[None, :], b_c, mask=m)
            b_h = b_o * b_a
            if PROJ:
                tl.store(p_m_row[:, None] + cols[None, :], b_h, mask=m)
        if PROJ:
            if SYNC:
                _tile_barrier(p_count + tile, (2 * (t - T_BEGIN) + 1) * programs)
            if OUT:  # h = m·W_hr for this program's output units
                b_h = _rows_times(
                    p_m_row, H, p_wr, P, 1, cols, cols < P, m_b, DOT, BLOCK_B, BLOCK_H, BLOCK_K
                )
        if OUT:
            if KEEP_H:
                p_k = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + cols[None, :] * s_kh_u
                b_keep = tl.load(p_k, mask=m_o, other=1.0)
                b_old = tl.load(p_h_prev[:, None] + cols[None, :], mask=m_o, other=0.0)
                b_h = b_keep * b_old + (1.0 - b_keep) * b_h
            tl.store(p_h_row[:, None] + (t + 1) * P + cols[None, :], b_h, mask=m_o)
        if SYNC:
            _tile_barrier(p_count + tile, (1 + PROJ) * (t - T_BEGIN + 1) * programs)


def _split_bwd_kernel(
    p_dhs, p_dcs, p_u, p_peep, p_wr, p_rdrop,  # inputs
    p_keep_c, s_kc_b, s_kc_t, s_kc_u, p_keep_h, s_kh_b, s_kh_t, s_kh_u,  # strided keeps
    p_cs, p_gates, p_act,  # saved by the forward
    p_dz, p_dhn, p_dh, p_dc, p_count,  # outputs and carries, tile counters
    B, T, H, P, S_BEGIN, S_END,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, DOT: tl.constexpr,
    PEEPHOLE: tl.constexpr, PROJ: tl.constexpr, RDROP: tl.constexpr,
    KEEP_C: tl.constexpr, KEEP_H: tl.constexpr,
    SYNC: tl.constexpr, CELL: tl.constexpr, OUT: tl.constexpr, FINISH: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Reverse steps t = T − 1 − s for s in S_BEGIN … S_END − 1, then (FINISH) dh0.

    dhs (B, T, P), dcs (B, T, H): gradients reaching hs[:, 1:], cs[:, 1:] from outside. Out:
    dz (B, T, 4H); with a projection dhn (B, T, P) = d loss / d h_new. dh (B, P) carries
    keep·(d loss / d h_t) to step t − 1 (zeros to start) and ends as dh0; dc (B, H) carries
    d loss / d c_{t-1} and ends as dc0. The phases mirror the forward's: OUT, the gradient
    reaching the program's output units of h_t (needs all of dz_{t+1}), then CELL, its hidden
    units' gate gradients (with a projection, from all of dhn_t).
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
    p_dc_row = p_dc + r64 * H
    p_rd = p_rdrop + r64[:, None] * P + cols[None, :]
    for s in range(S_BEGIN, S_END):
        t = T - 1 - s
        b_dh = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
        if OUT:  # d loss / d h_t: from outside, kept from step t + 1, through U
            p_dhs_t = p_dhs + r64[:, None] * T * P + t * P + cols[None, :]
            b_dh = tl.load(p_dhs_t, mask=m_o, other=0.0) + tl.load(p_dh_own, mask=m_o, other=0.0)
            if t + 1 < T:
                b_du = _rows_times(
                    p_dz_row + (t + 1) * G4, G4, p_u, 1, G4, cols, m_p, m_b, DOT,
                    BLOCK_B, BLOCK_H, BLOCK_K,
                )  # fmt: skip
                if RDROP:
                    b_du = b_du * tl.load(p_rd, mask=m_o, other=0.0)
                b_dh += b_du
            if KEEP_H:
                p_k = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + cols[None, :] * s_kh_u
                b_keep = tl.load(p_k, mask=m_o, other=1.0)
                tl.store(p_dh_own, b_keep * b_dh, mask=m_o)
                b_dh = (1.0 - b_keep) * b_dh
            if PROJ:
                tl.store(p_dhn_row[:, None] + t * P + cols[None, :], b_dh, mask=m_o)
        if PROJ:
            if SYNC:
                _tile_barrier(p_count + tile, (2 * (s - S_BEGIN) + 1) * programs)
            if CELL:  # d loss / d m = dhn_t·W_hrᵀ for this program's hidden units
                b_dh = _rows_times(
                    p_dhn_row + t * P, P, p_wr, 1, P, cols, m_h, m_b, DOT,
                    BLOCK_B, BLOCK_H, BLOCK_K,
                )  # fmt: skip
        if CELL:
            p_g_t = p_gates + r64 * T * G4 + t * G4
            b_o = tl.load(p_g_t[:, None] + 3 * H + cols[None, :], mask=m, other=0.0)
            b_a = tl.load(p_act + r64[:, None] * T * H + t * H + cols[None, :], mask=m, other=0.0)
            _cell_backward(
                b_dh * b_o * _activation_grad(b_a, CELL_ACT),
                b_dh * b_a,
                p_dcs + r64 * T * H + t * H,
                p_dc_row,
                p_dc_row,
                p_keep_c + r64[:, None] * s_kc_b + t * s_kc_t + cols[None, :] * s_kc_u,
                p_g_t,
                p_cs + r64 * (T + 1) * H + t * H,
                p_peep,
                p_dz_row + t * G4,
                cols,
                m_h,
                m,
                H,
                GATE_ACT,
                CELL_ACT,
                PEEPHOLE,
                KEEP_C,
            )
        if SYNC:
            _tile_barrier(p_count + tile, (1 + PROJ) * (s - S_BEGIN + 1) * programs)
    if FINISH:  # dh0: what step 0 kept, and dz_0 through U
        b_dh = tl.load(p_dh_own, mask=m_o, other=0.0)
        if T > 0:
            b_du = _rows_times(
                p_dz_row, G4, p_u, 1, G4, cols, m_p, m_b, DOT, BLOCK_B, BLOCK_H, BLOCK_K
            )
            if RDROP:
                b_du = b_du * tl.load(p_rd, mask=m_o, other=0.0)
            b_dh += b_du
        tl.store(p_dh_own, b_dh, mask=m_o)


# --------------------------------------------------------------------------------------------
# Launchers, called by `triton_lstm._Recurrence` with its buffers.


def _grid(batch: int, units: int, cfg) -> tuple[int, int]:
    return (-(-units // cfg.block_h), -(-batch // cfg.block_b))


def _synchronised(grid: tuple[int, int], device: torch.device, interpreted: bool) -> bool:
    """One launch with a barrier per step where every program can be resident at once."""
    if interpreted or device.type != "cuda":
        return False
    return grid[0] * grid[1] <= torch.cuda.get_device_properties(device).multi_processor_count


def _phases(steps: int, sync: bool, proj: bool, reverse: bool) -> list[tuple[int, int, bool, bool]]:
    """The launches (first step, end step, CELL, OUT): all steps at once with a barrier, else
    each step, in two launches where a projection splits it (CELL then OUT forward, OUT then
    CELL backward)."""
    if sync:
        return [(0, steps, True, True)]
    if not proj:
        return [(t, t + 1, True, True) for t in range(steps)]
    order = ((False, True), (True, False)) if reverse else ((True, False), (False, True))
    return [(t, t + 1, *phase) for t in range(steps) for phase in order]


def forward(zx, u, peep, wr, rdrop, keep_c, keep_h, hs, cs, gates, act, m, consts, cfg,
            interpreted):  # fmt: skip
    """Run the recurrence of `triton_lstm._Recurrence.forward` in the split layout."""
    B, T, G4 = zx.shape
    P = hs.shape[2]
    grid = _grid(B, G4 // 4, cfg)
    sync = _synchronised(grid, zx.device, interpreted)
    count = torch.zeros(grid[1], dtype=torch.int32, device=zx.device)
    for begin, end, cell, out in _phases(T, sync, consts["PROJ"], reverse=False):
        # fmt: off
        _split_fwd_kernel[grid](
            zx, u, peep, wr, rdrop, *keep_c, *keep_h, hs, cs, gates, act, m, count,
            B, T, G4 // 4, P, begin, end, **consts, SYNC=sync, CELL=cell, OUT=out,
            num_warps=cfg.num_warps, num_stages=1,
        )
        # fmt: on


def backward(dhs, dcs, u, peep, wr, rdrop, keep_c, keep_h, cs, gates, act, dz, dhn, consts,
             cfg, interpreted):  # fmt: skip
    """The reverse recurrence of `triton_lstm._Recurrence.backward` in the split layout;
    returns (dh0, dc0)."""
    B, T, G4 = gates.shape
    H, P = G4 // 4, dhs.shape[2]
    grid = _grid(B, H, cfg)
    sync = _synchronised(grid, gates.device, interpreted)
    dh = torch.zeros(B, P, device=gates.device, dtype=torch.float32)
    dc = torch.zeros(B, H, device=gates.device, dtype=torch.float32)
    count = torch.zeros(grid[1], dtype=torch.int32, device=gates.device)
    launches = [(*launch, sync) for launch in _phases(T, sync, consts["PROJ"], reverse=True)]
    if not sync:
        launches.append((T, T, False, False, True))  # dh0, once dz_0 is complete
    for begin, end, cell, out, finish in launches:
        # fmt: off
        _split_bwd_kernel[grid](
            dhs, dcs, u, peep, wr, rdrop, *keep_c, *keep_h, cs, gates, act, dz, dhn, dh, dc,
            count, B, T, H, P, begin, end, **consts,
            SYNC=sync, CELL=cell, OUT=out, FINISH=finish, num_warps=cfg.num_warps, num_stages=1,
        )
        # fmt: on
    return dh, dc
