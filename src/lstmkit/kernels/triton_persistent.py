"""The persistent LSTM kernels in Triton: one program per tile of BLOCK_B batch rows runs the
whole time loop of a layer over the whole hidden width, so programs never wait on each other.

Forward (`_lstm_fwd_kernel`): per step and tile it computes h·U chunk by chunk (BLOCK_H hidden
units, a K loop over BLOCK_P units of h), the gates, c and h, and stores the carried states;
with layer norm also the row mean and inverse deviation of h·U and c. Backward
(`_lstm_bwd_kernel`): the reverse recurrence for dh/dc and the gate gradients, writing dz over
the gates that `triton_cell._gates_kernel` recomputed. `triton_lstm._Recurrence` launches
them; the device functions imported from `triton_cell` are rebound to their wrapped versions
by `triton_lstm._triton()`, which wraps the functions here too (`JIT_FUNCTIONS`).

Bytes moved (fp32 buffers, per layer call; B=64, T=100, I=32, H=128, no projection):
  forward  reads zx B·T·4H·4 = 13.1 MB, writes c + h B·T·2H·4 = 6.6 MB;
  backward writes zx and then the gates over it (2 × 13.1 MB), reads them, h, c and dh, and
  writes dz B·T·4H·4 = 13.1 MB. The recurrent kernel U (H·4H, 128 KB in bf16) is re-read
  from L2 by every tile at every step: T·(B/BLOCK_B)·128 KB = 51 MB of L2 traffic, the term
  the split-hidden layout (`triton_split`) removes.
All DRAM traffic together (≈ 110 MB) is ≈ 40 µs at 3 TB/s, against cuDNN's 1.4 ms for the
forward+backward: the recurrence is bound by the latency of its T dependent steps (and by the
L2 re-reads of U at large H), not by DRAM bandwidth.
"""

from __future__ import annotations

from lstmkit.kernels.triton_cell import (
    _accumulate,
    _activation,
    _activation_grad,
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
    _h_times_u,
    _keep_at,
    _normalized_gates,
    _outside_grad,
    _peephole_terms,
    _recomputed_cell,
    _row_sum,
    _rows_times,
    _seen_through,
    _store,
    _store_gates,
    _time,
)

tl = None  # triton.language, set by `triton_lstm._triton()`

JIT_FUNCTIONS = (
    "_merge_stats",
    "_emit_hidden",
    "_finish_hidden",
    "_lstm_fwd_kernel",
    "_hidden_grad",
    "_lstm_bwd_kernel",
)


def _merge_stats(mean, m2, n_prev, x, m_x, n_x):
    """Chan's merge of a chunk's row mean and sum of squared deviations into running ones.
    x: (BLOCK_B, N) with m_x marking valid columns, n_x of them; n_prev columns seen so far."""
    c_mean = _row_sum(tl.where(m_x, x, 0.0)) / n_x
    d = tl.where(m_x, x - c_mean[:, None], 0.0)
    c_m2 = _row_sum(d * d)
    n = n_prev + n_x
    delta = c_mean - mean
    return mean + delta * (n_x / n), m2 + c_m2 + delta * delta * (n_prev * n_x / n)


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
    REVERSE: tl.constexpr, SAVE: tl.constexpr,
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
    rest from these (`_gates_kernel`, `_cell_activation`). Without SAVE (no backward to
    come) neither cs nor stats is stored.
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
            if SAVE:
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
            if SAVE and s == 0:
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
            if SAVE:
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
            if SAVE:
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
