"""CPU LSTM: a hand-written backward, and step loops compiled from C++ where a compiler is there.

Autograd through per-step ops (the reference) records about 20 nodes per step and replays them
one by one. This kernel is a `torch.autograd.Function` whose forward saves the gates and whose
backward does only the recurrence step by step. The steps run in C++ (`cpu_loops.cpp`, built
on first use by `cpu_compiled`) or, without a compiler, as torch ops from Python; both read and
write the same buffers, and the tests check both against the reference.

- The compiled steps split the batch rows between torch's threads: rows are independent through
  the whole recurrence, so each thread runs every step of its rows (a one-thread GEMM and one
  fused, vectorised pass over the gates) with no synchronisation. The gate derivatives of the
  backward are computed inside its step. Seed model (B=64, T=100, I=32, H=128), 2 AMD EPYC
  (Zen 4) CPUs, forward + backward: 23.2 ms against 30.3 for the torch-op steps and 32.6 for
  torch's oneDNN LSTM (2026-11-26).
- The torch-op steps: a forward step is one GEMM (``z += h U`` in place) and 8 pointwise ops;
  one sigmoid gives all four gates: the candidate-gate columns of W, U and b are doubled once
  per call and tanh(z) = 2σ(2z) - 1 (torch's CPU tanh costs 2.7 ns per element here, its
  sigmoid 0.5); the cell state is kept doubled, so tanh(c) is one more sigmoid. The compiled
  steps keep that layout. A backward step is one GEMM (dz Uᵀ) and 4 pointwise ops; the gate
  derivatives of a block of steps come from 11 larger ops.
- The input projection x W: in the compiled steps part of the step's GEMM ([x_t, h_{t-1}]
  against W stacked on U); in the torch-op steps one GEMM per block of steps, done just before
  the block so that its gates are still in cache. The weight gradients (and the input
  gradient, only when x needs one: never for a first layer) are one GEMM each over a block of
  steps (`BLOCK_ELEMENTS`, times `COMPILED_BLOCKS` for the compiled steps).
- Workspaces come from a pool (`cpu_buffers`): fresh ones cost 8,000 page faults per call,
  which made the forward twice as slow.
- bf16 (bf16 inputs, or bf16 autocast, on CPUs with bf16 instructions): the GEMMs run in
  bf16, the cell state and gates stay float32.
- Masks (per-sample lengths; Keras's semantics, as `kernels.reference`), zoneout (Krueger et
  al. 2017; keep masks in training, the rates' expectation at inference), peepholes (Gers &
  Schmidhuber 2000) and projection run on the compiled steps only. A masked step computes its
  gates like any other (so every saved value is finite) and then carries the states over; in
  the backward one rule carries what a masked or zoned-out step passes over unchanged, and
  the output's gradient is kept apart from the states' (see `cpu_loops.cpp`). Seed model,
  forward and backward against the reference (2026-11-26, same machine): lengths drawn from
  20-100, 24.8 against 107.2 ms; zoneout 0.1 on both states, 26.2 against 118.2; peepholes,
  24.9 against 111.8.
- Layer norm (Ba et al. 2016) has its own compiled steps (`forward_steps_ln`,
  `backward_steps_ln`: per-row norms of h U and of the cell, their input gradients in the
  step; the gains' gradients over a block here), without masks, zoneout, peepholes or
  projection: seed model 37-39 ms against 67 for the torch-op steps and 141 for the reference.
- Projection (Sak et al. 2014) runs on the compiled steps: one more GEMM per step and thread
  (o tanh(c_new) against W_hr, and back in the backward); seed model with P=64, 23.4 ms
  against 44.9 for torch's own LSTM, which runs it without oneDNN.

Without gradients torch's fused oneDNN forward is faster (seed model, 6.7 ms against 9.5; bf16
4.2 against 7.6), so dispatch sends inference there.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch

from lstmkit.kernels import cpu_compiled
from lstmkit.kernels.cpu_buffers import Lease
from lstmkit.kernels.reference import check_noise
from lstmkit.kernels.weights import LSTMNoise, LSTMWeights
from lstmkit.spec import LSTMSpec

LN_EPSILON = 1e-5  # as kernels.reference
BLOCK_ELEMENTS = 1 << 19  # a block of steps spans this many gate values (2 MiB of float32)
COMPILED_BLOCKS = 8  # the compiled steps' backward takes blocks this many times as long
_layer_norm_backward = torch.ops.aten.native_layer_norm_backward


def supports(spec: LSTMSpec, mask: torch.Tensor | None, noise: LSTMNoise | None) -> bool:
    """The tanh/sigmoid cell, plain or with layer norm and/or recurrent dropout; masks (per-step
    lengths), zoneout, peepholes and projection where the compiled steps run, and not with
    layer norm."""
    classic = spec.activation == "tanh" and spec.recurrent_activation == "sigmoid"
    compiled_only = (
        mask is not None or spec.zoneout_cell or spec.zoneout_hidden or spec.peephole
        or spec.proj_size
    )  # fmt: skip
    if compiled_only and (spec.layer_norm or cpu_compiled.loops() is None):
        return False
    return classic


def flavour(spec: LSTMSpec) -> str:
    """Which step loops would run ``spec``: "cpu c++" or "cpu torch-ops" (timings differ)."""
    return "cpu c++" if cpu_compiled.loops() is not None else "cpu torch-ops"


def bf16_requested(dtype: torch.dtype) -> bool:
    """Whether a call with inputs of ``dtype`` should multiply in bf16: bf16 inputs or bf16
    autocast, on a CPU with bf16 instructions (AVX512-BF16, AMX)."""
    autocast = (
        torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    )
    return (dtype == torch.bfloat16 or autocast) and _cpu_has_bf16()


@functools.cache
def _cpu_has_bf16() -> bool:
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check is not None and check())


class _Params(NamedTuple):
    """One call's forward weights. The candidate-gate block (third quarter of the 4H axis) is
    doubled so that one sigmoid gives all four gates, tanh(z) = 2σ(2z) - 1: in the kernel,
    recurrent kernel and bias of the plain cell; in the gains and bias with layer norm."""

    kernel: torch.Tensor  # (I, 4H) in the GEMM dtype
    recurrent: torch.Tensor  # (H, 4H) in the GEMM dtype
    bias: torch.Tensor | None  # (4H,)
    input_gamma: torch.Tensor | None  # (4H,) layer norm only from here on
    recurrent_gamma: torch.Tensor | None  # (4H,)
    cell_gamma: torch.Tensor | None  # (H,) 2 γ_c
    cell_beta: torch.Tensor | None  # (H,) 2 β_c
    peephole: torch.Tensor | None = None  # (3, H) rows i, f, o (compiled steps)
    projection: torch.Tensor | None = None  # (H, P) in the GEMM dtype (compiled steps)


def _doubled(t: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A copy of ``t`` (..., 4H) in ``dtype`` with its candidate-gate block doubled."""
    if t is None:
        return None
    out = t.detach().to(dtype, copy=True)
    H = out.shape[-1] // 4
    out[..., 2 * H : 3 * H] *= 2
    return out


def _params(w: LSTMWeights, gemm: torch.dtype, state: torch.dtype) -> _Params:
    if w.cell_norm_gamma is None:
        peephole = None if w.peephole is None else w.peephole.detach().to(state).contiguous()
        projection = None if w.projection is None else w.projection.detach().to(gemm).contiguous()
        return _Params(
            _doubled(w.kernel, gemm), _doubled(w.recurrent_kernel, gemm), _doubled(w.bias, state),
            None, None, None, None, peephole, projection,
        )  # fmt: skip
    return _Params(
        w.kernel.detach().to(gemm),
        w.recurrent_kernel.detach().to(gemm),
        _doubled(w.bias, state),
        _doubled(w.input_norm_gamma, state),
        _doubled(w.recurrent_norm_gamma, state),
        2 * w.cell_norm_gamma.detach().to(state),
        2 * w.cell_norm_beta.detach().to(state),
    )


class Zoneout(NamedTuple):
    """Zoneout of one call (Krueger et al. 2017) for the compiled steps: keep masks (B, T, H),
    1 where the old value is kept (training), or None and the rates (their expectation)."""

    keep_c: torch.Tensor | None = None
    keep_h: torch.Tensor | None = None
    rate_c: float = 0.0
    rate_h: float = 0.0


NO_ZONEOUT = Zoneout()


class _Saved:
    """What the forward keeps for the backward, time-major, in buffers of ``lease``.

    ``X`` (T, B, I) the inputs and ``Hg`` (T+1, B, H) the hidden states (h0 first), both in
    the GEMM dtype, ``Hs`` the latter in the state dtype; ``G`` (T, B, 4H) the gates i, f,
    σ(2 z_g), o; ``C2`` (T+1, B, H) the doubled cell states (2 c0 first); ``S`` (T, B, H) σ of
    twice the output tanh's argument, the tanh being 2S - 1. With layer norm also ``XW``
    (T B, 4H) and ``HU`` (T, B, 4H), the projections before their norms, and ``stats``: mean
    and 1/σ of the norms of XW (T B, 1), HU and 2c (T, B, 1).
    """

    def __init__(self) -> None:
        self.lease = Lease()
        self.XW: torch.Tensor | None = None
        self.HU: torch.Tensor | None = None
        self.stats: list[torch.Tensor] = []
        self.steps: torch.Tensor | None = None  # with a mask: (B, T), 1 where a step is real
        self.O: torch.Tensor | None = None  # with a mask: the outputs (T, B, H)
        self.zoneout = NO_ZONEOUT
        self.peephole: torch.Tensor | None = None  # (3, H), in the state dtype
        self.Cn: torch.Tensor | None = None  # with peepholes: the doubled c_new (T, B, H)


def _forward(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    p: _Params,
    drop: torch.Tensor | None,
    steps: torch.Tensor | None = None,
    zoneout: Zoneout = NO_ZONEOUT,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, _Saved]:
    """The recurrence over ``x`` (B, T, I) from ``h0``, ``c0`` (B, H), in the state dtype of
    ``h0``: outputs (B, T, H), h_T, c_T and what the backward needs. ``steps`` (B, T), in the
    state dtype, is 1 where a step is real and 0 where it is masked; masks, ``zoneout``,
    peepholes and projection need the compiled steps."""
    gemm, state = p.recurrent.dtype, h0.dtype
    B, T, D = x.shape
    H, P = c0.shape[-1], h0.shape[-1]  # cell and hidden sizes (P < H with a projection)
    ln = p.cell_gamma is not None
    s = _Saved()
    empty = s.lease.empty
    s.X = X = empty(T, B, D, dtype=gemm)
    X.copy_(x.transpose(0, 1))
    s.G = G = empty(T, B, 4 * H, dtype=state)
    s.Hs = Hs = empty(T + 1, B, P, dtype=state)
    s.Hg = Hg = Hs if gemm == state else empty(T + 1, B, P, dtype=gemm)
    Hs[0] = h0
    Hg[0] = h0
    s.C2 = C2 = empty(T + 1, B, H, dtype=state)
    torch.mul(c0, 2, out=C2[0])
    s.S = S = empty(T, B, H, dtype=state)
    if ln:
        s.XW = empty(T * B, 4 * H, dtype=state)
        s.HU = HU = empty(T, B, 4 * H, dtype=state)
    U = p.recurrent
    compiled = cpu_compiled.loops()
    if compiled is not None and ln:  # the same steps in C++, x W normalised for all at once
        s.stats = _input_projection(s, p, slice(0, T))
        s.stats += [empty(T, B, 1, dtype=state) for _ in range(4)]  # of h U, of 2c
        compiled.forward_steps_ln(G, Hs, C2, S, U, drop, s.HU, p.recurrent_gamma, p.cell_gamma,
                                  p.cell_beta, *s.stats[2:], LN_EPSILON)  # fmt: skip
        return _forward_results(Hs, C2, T, s)
    if compiled is not None:  # the same steps in C++, x W + h U as one GEMM per step
        WU = torch.cat([p.kernel, U])
        if steps is not None:
            s.steps, s.O = steps, empty(T, B, P, dtype=state)
        s.zoneout = zoneout
        if p.peephole is not None:
            s.peephole, s.Cn = p.peephole, empty(T, B, H, dtype=state)
        compiled.forward_steps(G, X, WU, p.bias, Hs, Hg, C2, S, drop, steps, s.O, *zoneout,
                               s.peephole, s.Cn, p.projection)  # fmt: skip
        return _forward_results(Hs if steps is None else s.O, C2, T, s)
    if steps is not None or zoneout.rate_c or zoneout.rate_h or p.peephole is not None:
        raise ValueError(
            "masks, zoneout and peepholes need the compiled steps (see kernels.cpu_compiled)"
        )
    if p.projection is not None:
        raise ValueError("projection needs the compiled steps (see kernels.cpu_compiled)")
    h_in = torch.empty(B, H, dtype=gemm)  # h ⊙ mask, rounded once to the GEMM dtype
    hu = torch.empty(B, 4 * H, dtype=gemm)  # h U, where it cannot go straight to its target
    K = min(T, _block_steps(B, H))
    zs, hs, hgs, cs, ss = G.unbind(0), Hs.unbind(0), Hg.unbind(0), C2.unbind(0), S.unbind(0)
    i_s, f_s, g_s, o_s = (v.unbind(0) for v in G.view(T, B, 4, H).unbind(2))
    hus = HU.unbind(0) if ln else ()
    x_stats, stats = [], []  # layer norms' means and 1/σ
    for t in range(T):
        if t % K == 0:  # x W + b of the next block of steps, while it stays in cache
            x_stats += _input_projection(s, p, slice(t, min(t + K, T)))
        z, h = zs[t], hgs[t]  # z (B, 4H) holds x W + b
        if drop is not None:
            h = torch.mul(hs[t], drop, out=h_in)
        if ln:
            if gemm == state:
                torch.mm(h, U, out=hus[t])
            else:
                hus[t].copy_(torch.mm(h, U, out=hu))
            y, mean, rstd = torch.native_layer_norm(
                hus[t], (4 * H,), p.recurrent_gamma, None, LN_EPSILON
            )
            z.add_(y)
            stats += [mean, rstd]
        elif gemm == state:
            z.addmm_(h, U)
        else:
            z.add_(torch.mm(h, U, out=hu))
        z.sigmoid_()  # i, f, σ(2 z_g), o
        i, f, g, o = i_s[t], f_s[t], g_s[t], o_s[t]
        c = torch.mul(f, cs[t], out=cs[t + 1])  # 2c = f 2c + 2 i (2σ(2 z_g) - 1)
        c.addcmul_(i, g, value=4).sub_(i, alpha=2)
        if ln:  # LN(2c, 4ε) = LN(c, ε)
            y, mean, rstd = torch.native_layer_norm(
                c, (H,), p.cell_gamma, p.cell_beta, 4 * LN_EPSILON
            )
            sig = torch.sigmoid(y, out=ss[t])
            stats += [mean, rstd]
        else:
            sig = torch.sigmoid(c, out=ss[t])
        h = torch.mul(o, sig, out=hs[t + 1])  # o (2σ(2c) - 1) = o tanh(c)
        h.mul_(2).sub_(o)
        if Hg is not Hs:
            hgs[t + 1].copy_(h)
    if ln:  # of XW (T B, 1); of HU and 2c (T, B, 1)
        s.stats = [torch.cat(x_stats[0::2]), torch.cat(x_stats[1::2])]
        s.stats += [torch.stack(stats[k::4]) for k in range(4)]
    return _forward_results(Hs, C2, T, s)


def _forward_results(
    outputs: torch.Tensor, C2: torch.Tensor, T: int, s: _Saved
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, _Saved]:
    """Outputs (B, T, H) from ``outputs`` (Hs, or O with a mask), h_T, c_T as new tensors
    (the buffers go back to the pool), and s."""
    out = outputs[-T:].transpose(0, 1).clone(memory_format=torch.contiguous_format)
    return out, s.Hs[T].clone(), C2[T] * 0.5, s


def _input_projection(s: _Saved, p: _Params, steps: slice) -> list[torch.Tensor]:
    """Fill the gates of ``steps`` with x W + b, or LN(x W) γ_x + b with layer norm; return
    that norm's mean and 1/σ (T' B, 1), if any."""
    X, G = s.X[steps], s.G[steps]
    n, B, D = X.shape
    X2, G2 = X.view(n * B, D), G.view(n * B, -1)
    gemm, state = X.dtype, G.dtype
    if p.cell_gamma is not None:
        XW = s.XW[steps.start * B : steps.stop * B]
        if gemm == state:
            torch.mm(X2, p.kernel, out=XW)
        else:
            XW.copy_(torch.mm(X2, p.kernel))
        y, mean, rstd = torch.native_layer_norm(
            XW, G2.shape[-1:], p.input_gamma, p.bias, LN_EPSILON
        )
        G2.copy_(y)
        return [mean, rstd]
    if gemm != state:
        G2.copy_(torch.mm(X2, p.kernel))
        if p.bias is not None:
            G2.add_(p.bias)
    elif p.bias is not None:
        torch.addmm(p.bias, X2, p.kernel, out=G2)
    else:
        torch.mm(X2, p.kernel, out=G2)
    return []


def _block_steps(B: int, H: int) -> int:
    """Steps per block of the backward, whose scratch then stays in cache. Seed model, one
    thread: 16 steps 45.2 ms forward+backward, 4 steps 46.3, all 100 at once 52.9."""
    return max(2, BLOCK_ELEMENTS // (B * 4 * H))


def _gate_derivatives(
    gates: torch.Tensor, c2_prev: torch.Tensor, S: torch.Tensor, A: torch.Tensor, M: torch.Tensor
) -> torch.Tensor:
    """Fill ``A`` (n, B, 4, H) so that dz = (dc, dc, dc, dh) ⊙ A, from the saved ``gates``
    (n, B, 4, H), doubled previous cell states ``c2_prev`` and ``S`` (n, B, H); ``M`` is
    scratch. Returns Bc (in M's last gate) such that dc += dh ⊙ Bc: o (1 - tanh²)."""
    i, sg, o = gates[:, :, 0], gates[:, :, 2], gates[:, :, 3]
    torch.mul(gates, gates, out=A)
    torch.sub(gates, A, out=A)  # σ' = σ (1 - σ) of each gate
    torch.mul(sg, 2, out=M[:, :, 0]).sub_(1)  # di = dc g σ'(z_i)
    torch.mul(c2_prev, 0.5, out=M[:, :, 1])  # df = dc c_{t-1} σ'(z_f)
    torch.mul(i, 4, out=M[:, :, 2])  # dg = dc i (1 - g²), 1 - g² = 4 σ(2 z_g) (1 - σ(2 z_g))
    tanh = torch.mul(S, 2, out=M[:, :, 3]).sub_(1)  # do = dh tanh σ'(z_o)
    A.mul_(M)
    Bc = torch.mul(tanh, tanh, out=M[:, :, 3])
    return torch.addcmul(o, Bc, o, value=-1, out=Bc)  # o (1 - tanh²)


def _backward(
    s: _Saved,
    w: LSTMWeights,
    drop: torch.Tensor | None,
    d_out: torch.Tensor | None,
    d_h: torch.Tensor | None,
    d_c: torch.Tensor | None,
    needs: tuple[bool, ...],
) -> list[torch.Tensor | None]:
    """Gradients from those of the outputs (B, T, H) and final states (B, H) (None: zero), in
    the order x, h0, c0 and `_GRAD_FIELDS`; ``needs`` says which are wanted (others: None).

    Runs backwards in blocks of a few steps: the gate derivatives of a block, its steps, then
    its share of the weight gradients, all while the block's data is in cache."""
    G, state, gemm = s.G, s.G.dtype, s.X.dtype
    T, B, H4 = G.shape
    H, D = H4 // 4, s.X.shape[-1]
    ln = w.cell_norm_gamma is not None
    compiled = cpu_compiled.loops()
    # the compiled steps gain from fewer, larger weight-gradient GEMMs more than from cache
    K = min(T, _block_steps(B, H) * (COMPILED_BLOCKS if compiled is not None else 1))
    empty = Lease().empty  # scratch, back to the pool on return
    if compiled is None:  # gate derivatives of a block, for the torch-op steps
        A, M = empty(K, B, 4, H, dtype=state), empty(K, B, 4, H, dtype=state)
    dZ = empty(K, B, 4 * H, dtype=state if ln else gemm)  # d z of the block's steps
    dZ3, dZo = dZ.view(K, B, 4, H)[:, :, :3], dZ.view(K, B, 4, H)[:, :, 3]
    gates, f = G.view(T, B, 4, H), G.view(T, B, 4, H)[:, :, 1]
    U_t = w.recurrent_kernel.detach().to(gemm).t()  # (4H, H)
    W_t = w.kernel.detach().to(gemm).t()  # (4H, I)
    douts = None if d_out is None else d_out.unbind(1)  # (B, H) each
    P = s.Hs.shape[-1]  # the hidden state's size (the projection's, or H)
    dh = torch.zeros(B, P, dtype=state) if d_h is None else d_h.to(state, copy=True)
    dc = torch.zeros(B, H, dtype=state) if d_c is None else d_c.to(state, copy=True)
    dc_gates = dc.unsqueeze(1)  # (B, 1, H), a view: dc broadcast over the gates i, f, g
    if douts is not None and compiled is None:  # the compiled steps keep d out apart
        dh.add_(douts[T - 1])
    d_output = torch.zeros(B, P, dtype=state)  # compiled steps: gradient of the output o_t
    projection_t = None if w.projection is None else w.projection.detach().to(gemm).t()  # (P, H)
    DHN = None if w.projection is None else empty(K, B, P, dtype=state)  # d h_new, projected
    back = torch.empty(B, H, dtype=gemm)  # dz Uᵀ
    Hm = None if drop is None else empty(K, B, P, dtype=gemm)  # h ⊙ mask
    dx = torch.empty(B, T, D, dtype=state) if needs[0] else None
    grads = {
        name: torch.zeros(getattr(w, name).shape, dtype=state)
        for name, need in zip(_GRAD_FIELDS, needs[3:], strict=True)
        if need
    }
    norms = None
    if ln:
        _, _, h_mean, h_rstd, c_mean, c_rstd = s.stats
        gh = w.recurrent_norm_gamma.detach().to(state)
        gc2 = 2 * w.cell_norm_gamma.detach().to(state)
        norms = (w.input_norm_gamma.detach().to(state), gh, gc2)
        DY = empty(K, B, H, dtype=state)  # d of the output tanh's argument
        cs, hus = s.C2.unbind(0), s.HU.unbind(0)
        R = empty(K, B, 4 * H, dtype=state) if compiled is not None else None  # d (h U)
    rec = None  # d (h_in U) of the step after: dz, or its layer norm's input gradient
    d_out_state = None if d_out is None or compiled is None else d_out.to(state).contiguous()
    for t0 in range((T - 1) // K * K, -1, -K):
        n = min(K, T - t0)
        if compiled is not None and ln:  # the same steps with their norms, in C++
            compiled.backward_steps_ln(dZ[:n], R[:n], DY[:n], G, s.C2, s.S, s.HU, h_mean,
                                       h_rstd, c_mean, c_rstd, gh, gc2, dh, dc, d_output, U_t,
                                       rec, d_out_state, drop, t0, n)  # fmt: skip
            rec = R[0]
            _block_grads(s, grads, dx, W_t, norms, t0, dZ[:n], list(R[:n]), DY[:n], drop, Hm)
            continue
        if compiled is not None:  # the same steps, gate derivatives included, in C++
            bias_grad = grads.get("bias")
            dhn = None if DHN is None else DHN[:n]
            compiled.backward_steps(dZ[:n], G, s.C2, s.S, dh, dc, d_output, U_t, rec,
                                    d_out_state, drop, s.steps, *s.zoneout, s.peephole, s.Cn,
                                    bias_grad, grads.get("peephole"), projection_t, dhn, t0,
                                    n)  # fmt: skip
            rec = dZ[0]
            _block_grads(s, grads, dx, W_t, norms, t0, dZ[:n], [], None, drop, Hm, bias=False)
            if "projection" in grads:  # Σ (o tanh c_new)ᵀ d h_new over the block
                gates = G[t0 : t0 + n].view(n * B, 4, H)
                tanh = s.S[t0 : t0 + n].reshape(n * B, H) * 2 - 1
                grads["projection"].addmm_((gates[:, 3] * tanh).t(), dhn.view(n * B, P))
            continue
        Bc = _gate_derivatives(
            gates[t0 : t0 + n], s.C2[t0 : t0 + n], s.S[t0 : t0 + n], A[:n], M[:n]
        )
        A3s, Aos, Bcs = A[:n, :, :3].unbind(0), A[:n, :, 3].unbind(0), Bc.unbind(0)
        dz3s, dzos, dzs, f_s = (
            dZ3[:n].unbind(0),
            dZo[:n].unbind(0),
            dZ[:n].unbind(0),
            f[t0 : t0 + n].unbind(0),
        )
        recs = []
        for j in reversed(range(n)):
            t = t0 + j
            if rec is not None:  # dh_t = d out_t + dz_{t+1} Uᵀ (⊙ mask)
                rec = rec if rec.dtype == gemm else rec.to(gemm)
                if drop is None and gemm == state:
                    if douts is None:
                        torch.mm(rec, U_t, out=dh)
                    else:
                        torch.addmm(douts[t], rec, U_t, out=dh)
                else:
                    r = torch.mm(rec, U_t, out=back)
                    if drop is not None:
                        r = r * drop if douts is None else torch.addcmul(douts[t], r, drop)
                    elif douts is not None:
                        r = r + douts[t]
                    dh.copy_(r)
            if ln:
                dy = torch.mul(dh, Bcs[j], out=DY[j])
                dc.add_(_layer_norm_backward(
                    dy, cs[t + 1], (H,), c_mean[t], c_rstd[t], gc2, None, (True, False, False)
                )[0])  # fmt: skip
            else:
                dc.addcmul_(dh, Bcs[j])
            torch.mul(A3s[j], dc_gates, out=dz3s[j])
            torch.mul(dh, Aos[j], out=dzos[j])
            rec = dzs[j]
            if ln:
                rec = _layer_norm_backward(
                    rec, hus[t], (4 * H,), h_mean[t], h_rstd[t], gh, None, (True, False, False)
                )[0]
                recs.append(rec)
            dc.mul_(f_s[j])
        dy = DY[:n] if ln else None
        _block_grads(s, grads, dx, W_t, norms, t0, dZ[:n], recs[::-1], dy, drop, Hm)
    d_h0 = None
    if needs[1]:
        d_h0 = torch.mm(rec.to(gemm), U_t).to(state)
        if drop is not None:
            d_h0.mul_(drop)
        if compiled is not None:  # what h_0 gets besides dz_0 Uᵀ (masked or zoned-out steps)
            d_h0 += dh
    return [dx, d_h0, dc if needs[2] else None, *(grads.get(name) for name in _GRAD_FIELDS)]


def _block_grads(
    s: _Saved,
    grads: dict[str, torch.Tensor],
    dx: torch.Tensor | None,
    W_t: torch.Tensor,
    norms: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    t0: int,
    dZ: torch.Tensor,
    recs: list[torch.Tensor],
    DY: torch.Tensor | None,
    drop: torch.Tensor | None,
    Hm: torch.Tensor | None,
    bias: bool = True,
) -> None:
    """Add the share of steps t0 .. t0+n-1 to the weight gradients in ``grads`` and write
    their input gradients into ``dx``: one GEMM each over the block's n B rows. ``dZ`` (n, B,
    4H) is d z; with layer norm (``norms``: γ_x, γ_h, 2 γ_c) ``recs`` holds each step's
    d (h_in U) and ``DY`` (n, B, H) the d of the output tanh's argument. ``bias=False``: the
    bias gradient was summed already (by the compiled steps)."""
    state, gemm = s.G.dtype, s.X.dtype
    n, B, H4 = dZ.shape
    H, D = H4 // 4, s.X.shape[-1]
    rows, steps = slice(t0 * B, (t0 + n) * B), slice(t0, t0 + n)  # of the (T B, .) and (T, .)
    dZ2 = dZ.view(n * B, H4)
    dXW, rec = dZ2, dZ2  # d (x W) and d (h_in U)
    if norms is not None:
        gx, gh, gc2 = norms
        x_mean, x_rstd, h_mean, h_rstd, c_mean, c_rstd = s.stats
        rec = torch.stack(recs).view(n * B, H4)
        dXW, dg, _ = _layer_norm_backward(
            dZ2, s.XW[rows], (H4,), x_mean[rows], x_rstd[rows], gx, None,
            (True, "input_norm_gamma" in grads, False),
        )  # fmt: skip
        if dg is not None:
            grads["input_norm_gamma"] += dg
        if "recurrent_norm_gamma" in grads:
            hu, mean, rstd = (t[steps].reshape(n * B, -1) for t in (s.HU, h_mean, h_rstd))
            grads["recurrent_norm_gamma"] += _layer_norm_backward(
                dZ2, hu, (H4,), mean, rstd, gh, None, (False, True, False)
            )[1]
        c2 = s.C2[t0 + 1 : t0 + n + 1].reshape(n * B, H)
        mean, rstd = c_mean[steps].reshape(n * B, 1), c_rstd[steps].reshape(n * B, 1)
        _, dg, db = _layer_norm_backward(
            DY.view(n * B, H), c2, (H,), mean, rstd, gc2, gc2,
            (False, "cell_norm_gamma" in grads, "cell_norm_beta" in grads),
        )  # fmt: skip
        if dg is not None:
            grads["cell_norm_gamma"] += dg
        if db is not None:
            grads["cell_norm_beta"] += db
    dXW = dXW.to(gemm)
    if "recurrent_kernel" in grads:
        h_in = s.Hg[steps] if drop is None else torch.mul(s.Hs[steps], drop, out=Hm[:n])
        _add_product(grads["recurrent_kernel"], h_in.reshape(n * B, -1).t(), rec.to(gemm))
    if "kernel" in grads:
        _add_product(grads["kernel"], s.X[steps].view(n * B, D).t(), dXW)
    if bias and "bias" in grads:
        grads["bias"] += dZ2.sum(0, dtype=state)
    if dx is not None:
        dx[:, steps] = (dXW @ W_t).view(n, B, D).transpose(0, 1)


def _add_product(total: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """total += a b; in one GEMM when the dtypes agree."""
    if a.dtype == total.dtype:
        total.addmm_(a, b)
    else:
        total += a @ b


_GRAD_FIELDS = ("kernel", "recurrent_kernel", "bias", "input_norm_gamma", "recurrent_norm_gamma",
                "cell_norm_gamma", "cell_norm_beta", "peephole", "projection")  # fmt: skip


class _LSTM(torch.autograd.Function):
    """The recurrence with its hand-written backward; see the module's docstring."""

    @staticmethod
    def forward(ctx, gemm, drop, steps, zoneout, x, h0, c0, *weights):
        w = LSTMWeights(**dict(zip(_GRAD_FIELDS, weights, strict=True)))
        out, h_T, c_T, saved = _run(x, h0, c0, w, gemm, drop, steps, zoneout)
        ctx.set_materialize_grads(False)
        ctx.saved, ctx.drop = saved, drop  # freed, back to the pool, with the graph
        ctx.dtypes = [t.dtype for t in (x, h0, c0)]
        ctx.save_for_backward(*weights)
        return out, h_T, c_T

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_h, d_c):
        weights = ctx.saved_tensors
        w = LSTMWeights(**dict(zip(_GRAD_FIELDS, weights, strict=True)))
        with torch.autocast("cpu", enabled=False):
            grads = _backward(ctx.saved, w, ctx.drop, d_out, d_h, d_c, ctx.needs_input_grad[4:])
        dtypes = ctx.dtypes + [None if t is None else t.dtype for t in weights]
        return (
            None,
            None,
            None,
            None,
            *(g if g is None else g.to(d) for g, d in zip(grads, dtypes, strict=True)),
        )


def _run(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    w: LSTMWeights,
    gemm: torch.dtype,
    drop: torch.Tensor | None,
    steps: torch.Tensor | None = None,
    zoneout: Zoneout = NO_ZONEOUT,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, _Saved]:
    """The forward with GEMMs in ``gemm``; outputs in the input's dtype."""
    state = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast("cpu", enabled=False):
        p = _params(w, gemm, state)
        out, h_T, c_T, saved = _forward(
            x.detach(), h0.detach().to(state), c0.detach().to(state), p, drop, steps, zoneout
        )
    return out.to(x.dtype), h_T.to(x.dtype), c_T.to(x.dtype), saved


def lstm(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weights: LSTMWeights,
    spec: LSTMSpec,
    mask: torch.Tensor | None = None,
    noise: LSTMNoise | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same contract as `lstmkit.kernels.reference.lstm`. GEMMs run in bf16 when ``x`` is bf16
    or bf16 autocast is on (on CPUs that have bf16 instructions, and without layer norm); the
    state stays float32. Without gradients the forward alone runs, and its buffers go straight
    back to the pool."""
    if not supports(spec, mask, noise):
        raise ValueError(f"the cpu kernel cannot run {spec} with this mask/noise")
    state = torch.float64 if x.dtype == torch.float64 else torch.float32
    # not with layer norm: its normalised bf16 projections lose several % on small cells,
    # torch's own autocast alike
    gemm = torch.bfloat16 if bf16_requested(x.dtype) and not spec.layer_norm else state
    drop = None if noise is None else noise.recurrent_mask
    drop = None if drop is None else drop.detach().to(state).contiguous()  # (B, H)
    steps = None if mask is None else mask.detach().to(state).contiguous()  # (B, T)
    zoneout = _zoneout(spec, noise, state)
    tensors = [getattr(weights, name) for name in _GRAD_FIELDS]
    if torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, h0, c0, *tensors)
    ):
        return _LSTM.apply(gemm, drop, steps, zoneout, x, h0, c0, *tensors)
    out, h_T, c_T, _ = _run(x, h0, c0, weights, gemm, drop, steps, zoneout)
    return out, h_T, c_T


def _zoneout(spec: LSTMSpec, noise: LSTMNoise | None, state: torch.dtype) -> Zoneout:
    """The call's zoneout: its keep masks in training (``noise``), its rates at inference."""
    check_noise(spec, noise)

    def keep(rate: float, mask: torch.Tensor | None) -> torch.Tensor | None:
        return None if not rate or mask is None else mask.detach().to(state).contiguous()

    return Zoneout(
        keep(spec.zoneout_cell, noise and noise.zoneout_cell),
        keep(spec.zoneout_hidden, noise and noise.zoneout_hidden),
        float(spec.zoneout_cell),
        float(spec.zoneout_hidden),
    )
