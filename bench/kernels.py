"""The fused Triton LSTM kernels against cuDNN on one GPU: correctness first, then speed.

One run does everything, in this order:

1. correctness at B=64, T=100, I=32, H=128 (and H=256 for the everything-variant): relative
   error ‖ours − ref‖ / ‖ref‖ of outputs, h_T, c_T and every gradient against the float64
   reference, for fp32 (TF32 dots, torch's default for RNNs) and bf16 autocast; limits 1e-3
   and 1e-2 (bf16: or 1.5 x the error of the reference's own torch ops under autocast, for
   the variants whose conditioning makes 1e-2 unreachable for any bf16 code). torch's own
   error and cuDNN's are shown beside it.
2. the compiled kernels' registers and spills, as the driver reports them;
3. optionally (``--sweep``) launch configurations of ours at each hidden size;
4. speed: median milliseconds of forward and of forward+backward, with ratio columns and peak
   memory, for cuDNN fp32, cuDNN bf16 (autocast), ours fp32 / bf16 and each variant ours
   supports, in the persistent layout and the split-hidden one ("split",
   `triton_lstm.split_config`), over shapes B=64, T=100, I=32,
   H ∈ {128, 256, 512, 1024}; B=256; T=500. For cuDNN and our plain cell also the
   forward+backward replayed as a CUDA graph, as `fit` runs its steps: the GPU's time alone,
   without the host's launches and ops, for both sides.
   Its table is printed before the last section's.
5. a `Bidirectional` LSTM layer (concat) on our kernels, its backward direction run
   backwards inside them, against torch.nn.LSTM(bidirectional=True) holding the same
   weights, at the headline shape and H=256: outputs compared, fwd+bwd eager and graphed;
   ours with the two directions side by side on two CUDA streams, and one after the other.

    python bench/kernels.py                  # everything (estimate: 3-6 minutes on an H100)
    python bench/kernels.py --quick          # headline shape only
    python bench/kernels.py --quick --sweep  # launch configurations (≈ 100 compilations:
                                             # run it as a command of its own)
    python bench/kernels.py --json out.json  # also write every number
    python bench/kernels.py --warm --shape 64,100,32,512  # compile only (Triton's disk cache),
                                             # e.g. in parallel processes before a timed run
    python bench/kernels.py --cpu-smoke      # no GPU: the script itself, under the interpreter

On a machine without CUDA it says so and exits 0. ``--cpu-smoke`` instead runs every section
at a tiny shape on the CPU through Triton's interpreter (timings meaningless): a check that
the script itself works before GPU time is spent on it.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from lstmkit.kernels import reference  # noqa: E402
from lstmkit.kernels.weights import LSTMNoise, LSTMWeights  # noqa: E402
from lstmkit.spec import LSTMSpec  # noqa: E402

DEVICE = "cuda"  # "cpu" with --cpu-smoke
WARM = False  # --warm: run each contender once, time nothing
SPLIT = True  # --no-split: the persistent layout alone
HEADLINE = (64, 100, 32, 128)  # B, T, I, H
EXTRA_H = 256  # the everything-variant is also checked at this H (several hidden chunks)
SWEEP_H = (128, 256, 512, 1024)
SHAPES = [
    (64, 100, 32, 128),
    (64, 100, 32, 256),
    (64, 100, 32, 512),
    (64, 100, 32, 1024),
    (256, 100, 32, 128),
    (256, 100, 32, 256),
    (64, 500, 32, 128),
]


def variants(H: int) -> dict[str, tuple[LSTMSpec, bool, bool]]:
    """name: (spec, uses a mask, training noise) for ours; "plain" first."""
    return {
        "plain": (LSTMSpec(H), False, False),
        "mask": (LSTMSpec(H), True, False),
        "peephole": (LSTMSpec(H, peephole=True), False, False),
        "layer_norm": (LSTMSpec(H, layer_norm=True), False, False),
        "projection": (LSTMSpec(H, proj_size=H // 2), False, False),
        "zoneout": (LSTMSpec(H, zoneout_cell=0.1, zoneout_hidden=0.1), False, True),
        "recurrent_dropout": (LSTMSpec(H, recurrent_dropout=0.2), False, True),
        "everything": (
            LSTMSpec(
                H,
                peephole=True,
                layer_norm=True,
                proj_size=H // 2,
                zoneout_cell=0.1,
                zoneout_hidden=0.1,
                recurrent_dropout=0.2,
            ),
            True,
            True,
        ),
    }


# -- problems -------------------------------------------------------------------------------------


def problem(spec, B, T, D, masked, training, seed=0, dtype=torch.float32):
    """Inputs, state, weights (leaves), mask and noise on the GPU, drawn fresh per seed."""
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    H, P = spec.units, spec.output_size

    def r(*shape, scale=1.0):
        t = torch.randn(*shape, generator=g, device=DEVICE, dtype=torch.float64) * scale
        return t.to(dtype).requires_grad_()

    def gain(n, mean):
        return (mean * (1 + 0.1 * r(n))).detach().requires_grad_()

    w = LSTMWeights(
        kernel=r(D, 4 * H, scale=D**-0.5),
        recurrent_kernel=r(P, 4 * H, scale=P**-0.5),
        bias=r(4 * H, scale=0.1),
        peephole=r(3, H, scale=0.1) if spec.peephole else None,
        projection=r(H, P, scale=H**-0.5) if spec.proj_size else None,
        input_norm_gamma=gain(4 * H, 1.0) if spec.layer_norm else None,
        # γ_h = 1 makes this LN cell chaotic at T=100 (the fp32 reference's own gradients are
        # then off by 2e-3 and bf16's by 190%); at 0.5 the problem is well conditioned
        recurrent_norm_gamma=gain(4 * H, 0.5) if spec.layer_norm else None,
        cell_norm_gamma=gain(H, 1.0) if spec.layer_norm else None,
        cell_norm_beta=r(H, scale=0.1) if spec.layer_norm else None,
    )
    mask = None
    if masked:  # per-sample lengths in [T/2, T]
        lengths = torch.randint(T // 2, T + 1, (B,), generator=g, device=DEVICE)
        mask = torch.arange(T, device=DEVICE)[None, :] < lengths[:, None]
    noise = None
    if training:

        def keep(*shape, p):
            return (torch.rand(*shape, generator=g, device=DEVICE) < p).to(dtype)

        noise = LSTMNoise(
            recurrent_mask=keep(B, P, p=1 - spec.recurrent_dropout) / (1 - spec.recurrent_dropout)
            if spec.recurrent_dropout
            else None,
            zoneout_cell=keep(B, T, H, p=spec.zoneout_cell) if spec.zoneout_cell else None,
            zoneout_hidden=keep(B, T, P, p=spec.zoneout_hidden) if spec.zoneout_hidden else None,
        )
    return r(B, T, D), r(B, P, scale=0.5), r(B, H, scale=0.5), w, mask, noise


def leaves(x, h0, c0, w):
    return [x, h0, c0, *(t for t in w if t is not None)]


def cudnn_module(x, h0, c0, w, spec):
    """torch.nn.LSTM (cuDNN) holding the same weights, flattened once as users have them."""
    B, T, D = x.shape
    lstm = torch.nn.LSTM(D, spec.units, batch_first=True, device=DEVICE)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(w.kernel.t())
        lstm.weight_hh_l0.copy_(w.recurrent_kernel.t())
        lstm.bias_ih_l0.copy_(w.bias)
        lstm.bias_hh_l0.zero_()
    lstm.flatten_parameters()
    return lstm


def as_f64(t):
    return None if t is None else t.detach().double().requires_grad_()


def outputs_and_grads(module, x, h0, c0, w, spec, mask, noise, autocast=None, **kwargs):
    """(outputs, h_T, c_T), and the gradients of a fixed random linear loss for every leaf;
    ``kwargs`` go to ``module.lstm`` (ours: ``config``)."""
    with torch.autocast(DEVICE, dtype=autocast or torch.float32, enabled=bool(autocast)):
        outs = module.lstm(x, h0, c0, w, spec, mask, noise, **kwargs)
    g = torch.Generator(device=DEVICE).manual_seed(5)
    weights = [torch.randn(o.shape, generator=g, device=DEVICE, dtype=torch.float64) for o in outs]
    loss = sum((o.double() * wt).sum() for o, wt in zip(outs, weights, strict=True))
    return list(outs), list(torch.autograd.grad(loss, leaves(x, h0, c0, w)))


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


# -- timing ---------------------------------------------------------------------------------------


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def median_ms(fn, min_reps=10, max_reps=200, budget_ms=150.0):
    """Median of CUDA-event times after warm-up; enough repetitions to fill about budget_ms."""
    for _ in range(3):
        fn()
    sync()
    if DEVICE != "cuda":  # --cpu-smoke: a couple of host-timed runs
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    once = (time.perf_counter() - start) * 1e3
    reps = int(min(max_reps, max(min_reps, budget_ms / max(once, 1e-3))))
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def peak_mb(fn):
    if DEVICE != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def measure(forward, inputs):
    """forward() -> tuple of tensors; returns (fwd ms, fwd+bwd ms, peak MB of fwd+bwd, peak MB
    of the forward alone under ``torch.no_grad``, as inference runs it)."""
    grads = None

    def fwd():
        with torch.no_grad():
            return forward()

    def fwd_bwd():
        nonlocal grads
        outs = forward()
        if grads is None:
            grads = [torch.randn_like(o) for o in outs]
        return torch.autograd.grad(outs, inputs, grads, allow_unused=True)

    fwd_bwd()  # compiles, and fixes the output gradients
    if WARM:
        fwd()
        return float("nan"), float("nan"), float("nan"), float("nan")
    return median_ms(fwd), median_ms(fwd_bwd), peak_mb(fwd_bwd), peak_mb(fwd)


def graphed_ms(forward, inputs):
    """Median ms of one forward+backward captured once as a CUDA graph and replayed (warmed up
    on a side stream first, as torch's CUDA graph notes ask): what the GPU itself takes, as in
    `fit`'s captured steps, the host's launches and ops left out. NaN off CUDA, or where
    capture fails (the error is printed)."""
    if DEVICE != "cuda" or WARM:
        return float("nan")
    try:
        outs = forward()
        grads = [torch.randn_like(o) for o in outs]
        del outs
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                torch.autograd.grad(forward(), inputs, grads, allow_unused=True)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = torch.autograd.grad(forward(), inputs, grads, allow_unused=True)
        ms = median_ms(graph.replay)
        del captured, graph  # frees the graph's memory pool
        return ms
    except Exception as exc:  # noqa: BLE001
        print(f"graph capture failed: {type(exc).__name__}: {exc}")
        return float("nan")


# -- sections -------------------------------------------------------------------------------------


def layouts(tl_mod, spec, B):
    """Our contenders for ``spec``: the persistent kernels (default launch shape) and the
    split-hidden layout ("split"); name suffix and ``config``."""
    shape = (B, spec.units, spec.output_size, torch.device(DEVICE))
    persistent = ("", tl_mod.PERSISTENT.config(*shape))
    return [persistent, (" split", tl_mod.SPLIT.config(*shape))] if SPLIT else [persistent]


def correctness(tl_mod, console, results):
    from rich.table import Table

    B, T, D, H = HEADLINE
    table = Table(title=f"Correctness vs float64 reference, B={B} T={T} I={D}: max relative error")
    cols = ("case", "dtype", "outputs/h/c", "gradients", "worst", "torch's own", "limit", "verdict")
    for col in cols:
        table.add_column(col, justify="right" if col not in ("case", "verdict") else "left")
    cases = list(variants(H).items()) + [
        (f"everything_h{EXTRA_H}", variants(EXTRA_H)["everything"])
    ]
    failures = 0
    for name, (spec, masked, training) in cases:
        x, h0, c0, w, mask, noise = problem(spec, B, T, D, masked, training, seed=11)
        w64 = LSTMWeights(*(as_f64(t) for t in w))
        n64 = None if noise is None else LSTMNoise(*(as_f64(t) for t in noise))
        f64 = (as_f64(x), as_f64(h0), as_f64(c0), w64, spec, mask, n64)
        ref_o, ref_g = outputs_and_grads(reference, *f64)
        for label, ac, limit in (("fp32 tf32", None, 1e-3), ("bf16", torch.bfloat16, 1e-2)):
            # the peer: the reference's torch ops in the same precision (TF32 matmuls / autocast)
            tf32, torch.backends.cuda.matmul.allow_tf32 = (
                torch.backends.cuda.matmul.allow_tf32,
                ac is None,
            )
            o, gr = outputs_and_grads(reference, x, h0, c0, w, spec, mask, noise, autocast=ac)
            torch.backends.cuda.matmul.allow_tf32 = tf32
            peer = max(rel(a, b) for a, b in zip(o + gr, ref_o + ref_g, strict=True))
            bound = max(limit, 1.5 * peer) if ac is not None else limit
            for suffix, cfg in layouts(tl_mod, spec, B):
                try:
                    o, gr = outputs_and_grads(
                        tl_mod, x, h0, c0, w, spec, mask, noise, autocast=ac, config=cfg
                    )
                    eo = max(rel(a, b) for a, b in zip(o, ref_o, strict=True))
                    eg = max(rel(a, b) for a, b in zip(gr, ref_g, strict=True))
                    worst = max(eo, eg)
                    ok = worst < bound  # False for NaN
                except Exception as exc:  # noqa: BLE001 (report and go on)
                    eo = eg = worst = float("nan")
                    ok = False
                    console.print(f"[red]{name}{suffix} {label}: {type(exc).__name__}: {exc}")
                failures += not ok
                results["correctness"].append(
                    dict(
                        case=name + suffix,
                        dtype=label,
                        outputs=eo,
                        gradients=eg,
                        peer=peer,
                        bound=bound,
                        ok=ok,
                    )
                )
                verdict = "[green]ok" if ok else "[red]FAIL"
                table.add_row(
                    name + suffix,
                    label,
                    f"{eo:.1e}",
                    f"{eg:.1e}",
                    f"{worst:.1e}",
                    f"{peer:.1e}",
                    f"{bound:.1e}",
                    verdict,
                )
        if name == "plain":  # cuDNN beside it, same inputs
            lstm = cudnn_module(x, h0, c0, w, spec)
            for label, ac in (("cuDNN fp32", None), ("cuDNN bf16", torch.bfloat16)):
                if ac and DEVICE == "cpu":  # oneDNN's CPU LSTM refuses bf16 on some CPUs
                    continue
                with torch.autocast(DEVICE, dtype=ac or torch.float32, enabled=bool(ac)):
                    out, (hn, cn) = lstm(x, (h0[None], c0[None]))
                eo = max(rel(out, ref_o[0]), rel(hn[0], ref_o[1]), rel(cn[0], ref_o[2]))
                table.add_row("plain", label, f"{eo:.1e}", "", "", "", "", "(peer)")
    console.print(table)
    return failures


def kernel_report(tl_mod, console):
    """Registers and spills of every compiled specialization, as the driver reports them."""
    split, persistent = tl_mod.triton_split, tl_mod.triton_persistent
    for kernel in (
        persistent._lstm_fwd_kernel,
        persistent._lstm_bwd_kernel,
        tl_mod.triton_cell._gates_kernel,
        split._split_fwd_kernel,
        split._split_bwd_kernel,
    ):
        try:
            for cache in kernel.device_caches.values():
                for compiled in cache[0].values():
                    compiled._init_handles()
                    named = {}
                    for key, value in getattr(compiled.src, "constants", {}).items():
                        index = key[0] if isinstance(key, tuple) else key
                        if isinstance(index, int) and index < len(kernel.arg_names):
                            named[kernel.arg_names[index]] = value
                    flags = " ".join(
                        k if v is True else f"{k}={v}"
                        for k, v in named.items()
                        if v is not False and k.isupper()
                    )
                    console.print(
                        f"{kernel.__name__}: regs={compiled.n_regs} spills={compiled.n_spills} "
                        f"shared={compiled.metadata.shared} {flags}"
                    )
        except Exception as exc:  # noqa: BLE001 (Triton's internals differ between versions)
            console.print(f"{kernel.__name__}: no resource report ({type(exc).__name__}: {exc})")


def sweep(tl_mod, console, results):
    """Forward+backward of a few launch configurations: the plain cell at each hidden size and
    the everything-variant at the headline size, in fp32 (TF32) and bf16."""
    from rich.table import Table

    configs = [  # the split layout first (the last sweep ran out of time before its end)
        "split_config",  # per hidden size: U held on the SM up to 512 units, else chunks of 32
        *(
            tl_mod.TritonConfig(b, h, k, w, 1, split=True)
            for b, h, k, w in [
                (16, 16, 32, 4),  # U streamed in chunks of 32 (split_config beyond 512 units)
                (16, 16, 32, 8),
                (64, 16, 32, 8),  # split_config where 32-row tiles do not fit on the SMs
                (32, 16, 32, 8),  # split_config where 16-row ones do not: H=1024 at B=64
                (32, 16, 64, 8),  # the same, chunks of 64 (half the barriers; sm_90a no spills)
                (16, 16, 128, 8),  # chunks of 128: U held up to H=128
                (64, 16, 128, 8),
            ]
        ),
        tl_mod.TritonConfig(16, 64, 64, 8, 2),  # persistent_config
        tl_mod.TritonConfig(16, 64, 64, 8, 3),
        tl_mod.TritonConfig(16, 128, 32, 8, 2),
    ]
    B, T, D, H0 = HEADLINE
    cases = [(f"H={H}", LSTMSpec(H), False, False) for H in SWEEP_H]
    cases.append((f"H={H0} everything", *variants(H0)["everything"]))
    table = Table(title=f"Sweep: ours, forward+backward ms (B={B}, T={T}, I={D})")
    table.add_column("config")
    for name, *_ in cases:
        for dt in ("fp32", "bf16"):
            table.add_column(f"{name} {dt}", justify="right")
    sms = torch.cuda.get_device_properties(0).multi_processor_count if DEVICE == "cuda" else 1
    for config in configs:
        if config == "split_config":
            row = ["split_config"]
        else:
            cfg = config
            shape = f"b{cfg.block_b} h{cfg.block_h} p{cfg.block_p} w{cfg.num_warps}"
            row = [f"{shape} s{cfg.num_stages}" + (" split" if cfg.split else "")]
        for name, spec, masked, training in cases:
            if config == "split_config":
                cfg = tl_mod.split_config(B, spec.units, sms)
            x, h0, c0, w, mask, noise = problem(spec, B, T, D, masked, training)
            for dt in (None, torch.bfloat16):

                def fwd(spec=spec, x=x, h0=h0, c0=c0, w=w, mask=mask, noise=noise, dt=dt, cfg=cfg):
                    with torch.autocast(DEVICE, dtype=dt or torch.float32, enabled=bool(dt)):
                        return tl_mod.lstm(x, h0, c0, w, spec, mask, noise, config=cfg)

                try:
                    _, ms, _, _ = measure(fwd, leaves(x, h0, c0, w))
                    row.append(f"{ms:.3f}")
                except Exception as exc:  # noqa: BLE001
                    ms = float("nan")
                    row.append(f"[red]{type(exc).__name__}")
                results["sweep"].append(
                    dict(config=row[0], case=name, dtype=str(dt), fwd_bwd_ms=ms)
                )
        table.add_row(*row)
        console.print(row)
    console.print(table)


def speed(tl_mod, console, results, shapes, all_variants):
    from rich.table import Table

    table = Table(title="Forward and forward+backward, median ms; ratios of fwd+bwd (< 1: faster)")
    cols = [
        "B T I H",
        "contender",
        "fwd ms",
        "fwd+bwd ms",
        "÷ cuDNN fp32",
        "÷ cuDNN same dtype",
        "÷ ours plain",
        "peak MB",
        "no_grad fwd peak MB",
        "graphed fwd+bwd ms",
        "graphed ÷ cuDNN same dtype",
    ]
    for c in cols:
        table.add_column(c, justify="left" if c in ("B T I H", "contender") else "right")
    for shape in shapes:
        B, T, D, H = shape
        label = f"{B} {T} {D} {H}"
        base = {}
        rows = []
        spec = LSTMSpec(H)
        x, h0, c0, w, _, _ = problem(spec, B, T, D, False, False)
        lstm = cudnn_module(x, h0, c0, w, spec)
        for dt, name in ((None, "fp32"), (torch.bfloat16, "bf16")):

            def fwd(dt=dt, lstm=lstm, x=x, h0=h0, c0=c0):
                with torch.autocast(DEVICE, dtype=dt or torch.float32, enabled=bool(dt)):
                    out, (hn, cn) = lstm(x, (h0[None], c0[None]))
                return out, hn, cn

            if dt and DEVICE == "cpu":  # oneDNN's CPU LSTM refuses bf16 on some CPUs
                f = fb = mb = mf = g = float("nan")
            else:
                f, fb, mb, mf = measure(fwd, [x, h0, c0, *lstm.parameters()])
                g = graphed_ms(fwd, [x, h0, c0, *lstm.parameters()])
            base[f"cuDNN {name}"], base[f"cuDNN {name} graphed"] = fb, g
            rows.append((f"cuDNN {name}", name, f, fb, mb, mf, g))
        names = list(variants(H)) if all_variants or shape == HEADLINE else ["plain"]
        for vname in names:
            vspec, masked, training = variants(H)[vname]
            x, h0, c0, w, mask, noise = problem(vspec, B, T, D, masked, training)
            for (dt, name), (suffix, cfg) in itertools.product(
                ((None, "fp32"), (torch.bfloat16, "bf16")), layouts(tl_mod, vspec, B)
            ):

                def fwd(vspec=vspec, x=x, h0=h0, c0=c0, w=w, mask=mask, noise=noise, dt=dt, c=cfg):
                    with torch.autocast(DEVICE, dtype=dt or torch.float32, enabled=bool(dt)):
                        return tl_mod.lstm(x, h0, c0, w, vspec, mask, noise, config=c)

                who = f"ours {name} {vname}{suffix}"
                try:
                    f, fb, mb, mf = measure(fwd, leaves(x, h0, c0, w))
                except Exception as exc:  # noqa: BLE001
                    console.print(f"[red]{label} {who}: {type(exc).__name__}: {exc}")
                    continue
                g = graphed_ms(fwd, leaves(x, h0, c0, w)) if vname == "plain" else float("nan")
                if vname == "plain" and not suffix:
                    base[f"ours {name}"] = fb
                rows.append((who, name, f, fb, mb, mf, g))
        for who, name, f, fb, mb, mf, g in rows:
            r32 = fb / base["cuDNN fp32"]
            rsame = fb / base[f"cuDNN {name}"]
            rplain = fb / base[f"ours {name}"] if f"ours {name}" in base else float("nan")
            rgraphed = g / base[f"cuDNN {name} graphed"]
            mine = who.startswith("ours")
            table.add_row(
                label,
                who,
                f"{f:.3f}",
                f"{fb:.3f}",
                f"{r32:.2f}",
                f"{rsame:.2f}",
                f"{rplain:.2f}" if mine else "",
                f"{mb:.0f}",
                f"{mf:.0f}",
                f"{g:.3f}",
                f"{rgraphed:.2f}",
            )
            results["speed"].append(
                dict(
                    shape=shape,
                    contender=who,
                    fwd_ms=f,
                    fwd_bwd_ms=fb,
                    peak_mb=mb,
                    no_grad_fwd_peak_mb=mf,
                    vs_cudnn_fp32=r32,
                    vs_cudnn_same=rsame,
                    vs_ours_plain=rplain if mine else None,
                    graphed_fwd_bwd_ms=g,
                    graphed_vs_cudnn_same=rgraphed,
                )
            )
            console.print(f"{label:16s} {who:34s} fwd {f:8.3f}  fwd+bwd {fb:8.3f}  x{r32:.2f}")
        table.add_section()
    return table


def bidirectional(console, results, shapes):
    """A `Bidirectional` LSTM layer (concat, sequences) on the Triton kernels, its backward
    direction run backwards inside them, against torch.nn.LSTM(bidirectional=True) (cuDNN)
    holding the same weights: outputs compared, then fwd+bwd ms, eager and graphed, fp32
    and bf16; ours with the directions side by side on two streams where they fit
    (`kernels.streams`) and one after the other."""
    from rich.table import Table

    from lstmkit.kernels import dispatch, streams
    from lstmkit.layers import LSTM, Bidirectional

    table = Table(title="Bidirectional LSTM layer (concat), fwd+bwd median ms (< 1: faster)")
    for c in ("B T I H", "contender", "max |out − cuDNN's|", "fwd+bwd ms", "÷ cuDNN same dtype",
              "graphed ms", "graphed ÷ cuDNN same dtype"):  # fmt: skip
        table.add_column(c, justify="left" if c in ("B T I H", "contender") else "right")
    select, tune = dispatch.select_backend, os.environ.get("LSTMKIT_AUTOTUNE")
    side_by_side = streams.side_by_side
    dispatch.select_backend = lambda *args, **kwargs: "triton"  # ours, whatever cuDNN could run
    os.environ["LSTMKIT_AUTOTUNE"] = "0"
    try:
        for B, T, D, H in shapes:
            torch.manual_seed(0)
            x = torch.randn(B, T, D, device=DEVICE, requires_grad=True)
            ref = torch.nn.LSTM(D, H, batch_first=True, bidirectional=True, device=DEVICE)
            layer = Bidirectional(LSTM(H, return_sequences=True)).to(DEVICE)
            layer(x)  # builds the weights
            with torch.no_grad():  # cuDNN's weights into ours (gate order i, f, g, o in both)
                for ours, suffix in ((layer.forward_layer, ""), (layer.backward_layer, "_reverse")):
                    ours.kernel.copy_(getattr(ref, f"weight_ih_l0{suffix}").t())
                    ours.recurrent_kernel.copy_(getattr(ref, f"weight_hh_l0{suffix}").t())
                    ours.bias.copy_(
                        getattr(ref, f"bias_ih_l0{suffix}") + getattr(ref, f"bias_hh_l0{suffix}")
                    )

            def in_turn(layer=layer, x=x):
                streams.side_by_side = lambda *args: False
                try:
                    return (layer(x),)
                finally:
                    streams.side_by_side = side_by_side

            contenders = {
                "cuDNN": lambda ref=ref, x=x: (ref(x)[0],),
                "ours": lambda layer=layer, x=x: (layer(x),),
                "ours in turn": in_turn,
            }
            ours = list(layer.parameters())
            params = {"cuDNN": list(ref.parameters()), "ours": ours, "ours in turn": ours}
            base = {}
            for dt, dname in ((None, "fp32"), (torch.bfloat16, "bf16")):
                if dt and DEVICE == "cpu":
                    continue  # oneDNN's CPU LSTM refuses bf16 on some CPUs
                outs = {}
                for who, run in contenders.items():

                    def fwd(run=run, dt=dt):
                        with torch.autocast(DEVICE, dtype=dt or torch.float32, enabled=bool(dt)):
                            return run()

                    with torch.no_grad():
                        outs[who] = fwd()[0].float()
                    inputs = [x, *params[who]]
                    _, fb, _, _ = measure(fwd, inputs)
                    g = graphed_ms(fwd, inputs)
                    base.setdefault((dname, "eager"), fb)
                    base.setdefault((dname, "graphed"), g)
                    err = (outs[who] - outs["cuDNN"]).abs().max().item()
                    row = dict(
                        shape=(B, T, D, H), contender=f"{who} bidirectional {dname}",
                        max_abs_vs_cudnn=err, fwd_bwd_ms=fb, graphed_fwd_bwd_ms=g,
                        vs_cudnn_same=fb / base[dname, "eager"],
                        graphed_vs_cudnn_same=g / base[dname, "graphed"],
                    )  # fmt: skip
                    results["bidirectional"].append(row)
                    table.add_row(
                        f"{B} {T} {D} {H}", row["contender"], f"{err:.1e}", f"{fb:.3f}",
                        f"{row['vs_cudnn_same']:.2f}", f"{g:.3f}",
                        f"{row['graphed_vs_cudnn_same']:.2f}",
                    )  # fmt: skip
            table.add_section()
    finally:
        dispatch.select_backend = select
        if tune is None:
            os.environ.pop("LSTMKIT_AUTOTUNE")
        else:
            os.environ["LSTMKIT_AUTOTUNE"] = tune
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="headline shape only")
    parser.add_argument("--sweep", action="store_true", help="also try launch configurations")
    parser.add_argument(
        "--variants-everywhere",
        action="store_true",
        help="every variant at every shape (default: at the headline shape)",
    )
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument(
        "--shape",
        action="append",
        metavar="B,T,I,H",
        help="time this shape (repeatable) instead of the default list",
    )
    parser.add_argument("--no-split", action="store_true", help="leave out the split-hidden layout")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="compile only: run every contender once into Triton's disk cache, time nothing",
    )
    parser.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="tiny shapes on the CPU under Triton's interpreter: checks the script",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    global DEVICE, HEADLINE, EXTRA_H, SWEEP_H, SHAPES, WARM, SPLIT
    WARM, SPLIT = args.warm, not args.no_split
    if args.shape:
        try:
            SHAPES = [tuple(int(n) for n in s.split(",")) for s in args.shape]
        except ValueError:
            parser.error(f"--shape takes B,T,I,H as four integers, got {args.shape}")
        if any(len(s) != 4 for s in SHAPES):
            parser.error(f"--shape takes B,T,I,H as four integers, got {args.shape}")
    if args.cpu_smoke:
        os.environ["TRITON_INTERPRET"] = "1"  # before triton is first imported
        DEVICE, HEADLINE, EXTRA_H, SWEEP_H = "cpu", (3, 4, 4, 16), 20, (16,)
        SHAPES = SHAPES if args.shape else [HEADLINE, (5, 3, 4, 20)]
    elif not torch.cuda.is_available():
        print("bench/kernels.py needs a CUDA GPU; none is visible here, nothing measured.")
        return 0
    elif os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("TRITON_INTERPRET is set: unset it to benchmark compiled kernels.")
        return 0
    try:
        import triton
    except ImportError:
        print("triton is not installed (pip install 'lstmkit[dev]'); nothing measured.")
        return 0
    from rich.console import Console

    from lstmkit.kernels import triton_lstm as tl_mod

    console = Console(width=140)
    props = torch.cuda.get_device_properties(0) if DEVICE == "cuda" else None
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    precision = getattr(rnn, "fp32_precision", None) if rnn else torch.backends.cudnn.allow_tf32
    header = dict(
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        device=props.name if props else "cpu (interpreter smoke run)",
        sms=props.multi_processor_count if props else 0,
        torch=torch.__version__,
        cudnn=torch.backends.cudnn.version() if props else None,
        triton=triton.__version__,
        python=platform.python_version(),
        rnn_fp32_precision=str(precision),
    )
    console.print(header)
    results = dict(header=header, correctness=[], sweep=[], speed=[], bidirectional=[])
    shapes = [HEADLINE] if args.quick else SHAPES
    B, T, D, H = HEADLINE
    bidirectional_shapes = [HEADLINE] if args.quick else [HEADLINE, (B, T, D, EXTRA_H)]
    if WARM:
        speed(tl_mod, console, results, shapes, args.variants_everywhere)
        if HEADLINE in shapes:  # once among parallel --warm processes
            bidirectional(console, results, bidirectional_shapes)
        console.print(f"compiled the contenders of {shapes}")
        return 0
    failures = correctness(tl_mod, console, results)
    kernel_report(tl_mod, console)
    if args.sweep:
        sweep(tl_mod, console, results)
    table = speed(tl_mod, console, results, shapes, args.variants_everywhere)
    if failures:
        console.print(f"[red]{failures} correctness check(s) failed: see the first table")
    console.print(table)

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))

    save()  # the numbers so far, should the last section run out of time
    console.print(bidirectional(console, results, bidirectional_shapes))
    save()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
