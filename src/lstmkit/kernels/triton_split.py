"""Split-hidden LSTM kernels in Triton: several programs per batch tile, each owning a slice of
the hidden units (design §4), for every variant without a whole-row coupling (not layer norm,
not projection).

Why. The persistent kernels of `triton_lstm` give one program a tile of batch rows and the
whole hidden width, so a layer of B=64 rows runs on 4 of the GPU's 132 SMs, and each program
walks all of U every step. Here a program owns BLOCK_B rows × BLOCK_H hidden units: per step
it computes its units' four gates from the whole h_{t-1} (h·U against its columns of U), its
part of c and h, and the programs of a tile then meet at a counter in global memory before the
next step reads h_t. c never leaves its program. Backward runs the same way in reverse: a
program forms dh_t for its units from the whole dz_{t+1} (dz·Uᵀ against its rows of U), then
its units' gate gradients; the weight gradients stay the large GEMMs of `triton_lstm`.

Sync. On a GPU the whole time loop is one launch, and a step ends at `_tile_barrier`, which
needs every program of a tile resident at once: the grid is checked against the SM count,
and where it does not fit (and under Triton's interpreter, which runs programs one after
another) each step is its own launch instead, with the same kernel code. The exchanged tensors
are read with ``.cg`` loads (L2, not the SM's own L1, which other SMs' stores do not update);
the launches use one pipeline stage, as software pipelining turns those loads into L1-cached
asynchronous copies (checked in the PTX for sm_90).

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
JIT_FUNCTIONS = ("_tile_barrier", "_dz_times_ut", "_split_fwd_kernel", "_split_bwd_kernel")


def supports(spec: LSTMSpec) -> bool:
    """Layer norm and projection couple all hidden units of a row within a step: not here."""
    return not spec.layer_norm and not spec.proj_size


def _tile_barrier(p_count, target):
    """Wait until the programs of this batch tile have arrived ``target`` times in all."""
    tl.debug_barrier()  # every thread of this program has issued its stores
    tl.atomic_add(p_count, 1, sem="release", scope="gpu")
    seen = tl.atomic_add(p_count, 0, sem="acquire", scope="gpu")
    while seen < target:
        seen = tl.atomic_add(p_count, 0, sem="acquire", scope="gpu")


def _dz_times_ut(
    p_dz_t, p_u, m_b, cols, m_h, H,
    DOT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Columns ``cols`` of dz_t·Uᵀ for rows p_dz_t (BLOCK_B,) of dz (…, 4H): K runs over 4H."""
    G4 = 4 * H
    acc = tl.full([BLOCK_B, BLOCK_H], 0.0, tl.float32)
    for k0 in range(0, G4, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        m_k = ks < G4
        b_dz = tl.load(
            p_dz_t[:, None] + ks[None, :],
            mask=m_b[:, None] & m_k[None, :],
            other=0.0,
            cache_modifier=".cg",
        )
        b_ut = tl.load(p_u + cols[None, :] * G4 + ks[:, None], mask=m_k[:, None] & m_h[None, :])
        acc = _dot(b_dz, b_ut, acc, DOT)
    return acc


def _split_fwd_kernel(
    p_zx, p_u, p_peep, p_rdrop,  # inputs
    p_keep_c, s_kc_b, s_kc_t, s_kc_u, p_keep_h, s_kh_b, s_kh_t, s_kh_u,  # strided keeps
    p_hs, p_cs, p_gates, p_act, p_count,  # outputs, saved, tile counters
    B, T, H, T_BEGIN, T_END,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, DOT: tl.constexpr,
    PEEPHOLE: tl.constexpr, RDROP: tl.constexpr, KEEP_C: tl.constexpr, KEEP_H: tl.constexpr,
    SYNC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Steps T_BEGIN … T_END − 1 of BLOCK_B rows × BLOCK_H units: program (units, tile).

    Buffers as `triton_lstm._lstm_fwd_kernel`'s, with P = H: zx (B, T, 4H); hs (B, T+1, H) and
    cs (B, T+1, H) holding h0, c0 at step 0; U (H, 4H); gates (B, T, 4H); act (B, T, H).
    """
    cols = tl.program_id(0) * BLOCK_H + tl.arange(0, BLOCK_H)
    tile = tl.program_id(1)
    rows = tile * BLOCK_B + tl.arange(0, BLOCK_B)
    m_b = rows < B
    m_h = cols < H
    m = m_b[:, None] & m_h[None, :]
    r64 = rows.to(tl.int64)
    G4 = 4 * H
    p_h_row = p_hs + r64 * (T + 1) * H
    p_c_row = p_cs + r64 * (T + 1) * H
    p_rd = p_rdrop + r64 * H
    b_c = tl.load(p_c_row[:, None] + T_BEGIN * H + cols[None, :], mask=m, other=0.0)
    for t in range(T_BEGIN, T_END):
        p_h_prev = p_h_row + t * H
        zi, zf, zg, zo = _h_times_u(
            p_h_prev, p_rd, p_u, m_b, cols, m_h, H, H, RDROP, DOT, ".cg", BLOCK_B, BLOCK_H, BLOCK_K
        )
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
        if KEEP_H:
            p_k = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + cols[None, :] * s_kh_u
            b_keep = tl.load(p_k, mask=m, other=1.0)
            b_old = tl.load(p_h_prev[:, None] + cols[None, :], mask=m, other=0.0)
            b_h = b_keep * b_old + (1.0 - b_keep) * b_h
        tl.store(p_h_row[:, None] + (t + 1) * H + cols[None, :], b_h, mask=m)
        if SYNC:
            _tile_barrier(p_count + tile, (t - T_BEGIN + 1) * tl.num_programs(0))


def _split_bwd_kernel(
    p_dhs, p_dcs, p_u, p_peep, p_rdrop,  # inputs
    p_keep_c, s_kc_b, s_kc_t, s_kc_u, p_keep_h, s_kh_b, s_kh_t, s_kh_u,  # strided keeps
    p_cs, p_gates, p_act,  # saved by the forward
    p_dz, p_dh, p_dc, p_count,  # outputs and carries, tile counters
    B, T, H, S_BEGIN, S_END,
    GATE_ACT: tl.constexpr, CELL_ACT: tl.constexpr, DOT: tl.constexpr,
    PEEPHOLE: tl.constexpr, RDROP: tl.constexpr, KEEP_C: tl.constexpr, KEEP_H: tl.constexpr,
    SYNC: tl.constexpr, FINISH: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Reverse steps t = T − 1 − s for s in S_BEGIN … S_END − 1, then (FINISH) dh0.

    dhs (B, T, H), dcs (B, T, H): gradients reaching hs[:, 1:], cs[:, 1:] from outside. Out:
    dz (B, T, 4H). dh (B, H) carries keep·(d loss / d h_t) to step t − 1 (zeros to start),
    and ends as dh0; dc (B, H) carries d loss / d c_{t-1} and ends as dc0.
    """
    cols = tl.program_id(0) * BLOCK_H + tl.arange(0, BLOCK_H)
    tile = tl.program_id(1)
    rows = tile * BLOCK_B + tl.arange(0, BLOCK_B)
    m_b = rows < B
    m_h = cols < H
    m = m_b[:, None] & m_h[None, :]
    r64 = rows.to(tl.int64)
    G4 = 4 * H
    p_dz_row = p_dz + r64 * T * G4
    p_dh_own = p_dh + r64[:, None] * H + cols[None, :]
    p_dc_row = p_dc + r64 * H
    p_rd = p_rdrop + r64[:, None] * H + cols[None, :]
    for s in range(S_BEGIN, S_END):
        t = T - 1 - s
        # d loss / d h_t for these units: from outside, kept from step t + 1, through U
        b_dh = tl.load(p_dhs + r64[:, None] * T * H + t * H + cols[None, :], mask=m, other=0.0)
        b_dh += tl.load(p_dh_own, mask=m, other=0.0)
        if t + 1 < T:
            b_du = _dz_times_ut(
                p_dz_row + (t + 1) * G4, p_u, m_b, cols, m_h, H, DOT, BLOCK_B, BLOCK_H, BLOCK_K
            )
            if RDROP:
                b_du = b_du * tl.load(p_rd, mask=m, other=0.0)
            b_dh += b_du
        if KEEP_H:
            p_k = p_keep_h + r64[:, None] * s_kh_b + t * s_kh_t + cols[None, :] * s_kh_u
            b_keep = tl.load(p_k, mask=m, other=1.0)
            tl.store(p_dh_own, b_keep * b_dh, mask=m)
            b_dh = (1.0 - b_keep) * b_dh
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
            _tile_barrier(p_count + tile, (s - S_BEGIN + 1) * tl.num_programs(0))
    if FINISH:  # dh0: what step 0 kept, and dz_0 through U
        b_dh = tl.load(p_dh_own, mask=m, other=0.0)
        if T > 0:
            b_du = _dz_times_ut(p_dz_row, p_u, m_b, cols, m_h, H, DOT, BLOCK_B, BLOCK_H, BLOCK_K)
            if RDROP:
                b_du = b_du * tl.load(p_rd, mask=m, other=0.0)
            b_dh += b_du
        tl.store(p_dh_own, b_dh, mask=m)


# --------------------------------------------------------------------------------------------
# Launchers, called by `triton_lstm._Recurrence` with its buffers.


def _grid(batch: int, units: int, cfg) -> tuple[int, int]:
    return (-(-units // cfg.block_h), -(-batch // cfg.block_b))


def _synchronised(grid: tuple[int, int], device: torch.device, interpreted: bool) -> bool:
    """One launch with a barrier per step where every program can be resident at once."""
    if interpreted or device.type != "cuda":
        return False
    return grid[0] * grid[1] <= torch.cuda.get_device_properties(device).multi_processor_count


def forward(zx, u, peep, rdrop, keep_c, keep_h, hs, cs, gates, act, consts, cfg, interpreted):
    """Run the recurrence of `triton_lstm._Recurrence.forward` in the split layout."""
    B, T, G4 = zx.shape
    grid = _grid(B, G4 // 4, cfg)
    sync = _synchronised(grid, zx.device, interpreted)
    count = torch.zeros(grid[1], dtype=torch.int32, device=zx.device)
    for begin, end in [(0, T)] if sync else [(t, t + 1) for t in range(T)]:
        # fmt: off
        _split_fwd_kernel[grid](
            zx, u, peep, rdrop, keep_c[0], *keep_c[1:], keep_h[0], *keep_h[1:],
            hs, cs, gates, act, count, B, T, G4 // 4, begin, end, **consts, SYNC=sync,
            num_warps=cfg.num_warps, num_stages=1,
        )
        # fmt: on


def backward(dhs, dcs, u, peep, rdrop, keep_c, keep_h, cs, gates, act, dz, consts, cfg,
             interpreted):  # fmt: skip
    """The reverse recurrence of `triton_lstm._Recurrence.backward` in the split layout;
    returns (dh0, dc0)."""
    B, T, G4 = gates.shape
    H = G4 // 4
    grid = _grid(B, H, cfg)
    sync = _synchronised(grid, gates.device, interpreted)
    dh = torch.zeros(B, H, device=gates.device, dtype=torch.float32)
    dc = torch.zeros(B, H, device=gates.device, dtype=torch.float32)
    count = torch.zeros(grid[1], dtype=torch.int32, device=gates.device)
    launches = [(0, T, True)] if sync else [(s, s + 1, False) for s in range(T)] + [(T, T, True)]
    for begin, end, finish in launches:
        # fmt: off
        _split_bwd_kernel[grid](
            dhs, dcs, u, peep, rdrop, keep_c[0], *keep_c[1:], keep_h[0], *keep_h[1:],
            cs, gates, act, dz, dh, dc, count, B, T, H, begin, end, **consts,
            SYNC=sync, FINISH=finish, num_warps=cfg.num_warps, num_stages=1,
        )
        # fmt: on
    return dh, dc
