"""Where one Triton fwd+bwd spends its time on a GPU: wall time against the GPU's kernel time.

For a few (variant, dtype, H, layout) cases at B=64 T=100 I=32, prints the median wall time of
one forward+backward (CUDA events, as `bench/kernels.py` times it), the summed time of the CUDA
kernels it ran (torch.profiler, over five calls), and the kernels that took the most. Where the
wall time is well above the kernel time, the GPU waits on the host: launches and small torch
ops, not the recurrence; the host time per kernel launched is (wall − kernels) / launches
(`bench/host_ops.py` counts the torch ops and Triton launches without a GPU). Beside the wall
time it prints the host's own time to issue one forward+backward (a host clock around the
call, no synchronisation inside it), which is the wall time where the GPU waits on the host.

First it prices the host's pieces: µs of host time per tiny torch op on CUDA, per launch of a
Triton kernel with 2 arguments and with 40 (30 pointers, 10 constexprs, as many as the
recurrence kernels take), through `JITFunction` (what the kernels do now) and through the
compiled kernel's own launcher (Triton's ``CompiledKernel[grid](*args)``; what a launcher
that skipped the JIT's argument binding and cache lookup could save).

    PYTHONPATH=src python3 bench/gpu_time.py
"""

from __future__ import annotations

import time

import torch
import triton
import triton.language as tl
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

import kernels as bench  # bench/kernels.py, beside this script
from lstmkit.kernels import triton_lstm

B, T, D = 64, 100, 32
CASES = [  # variant, autocast dtype (None: fp32), H, layout
    ("plain", None, 128, "split"),
    ("plain", torch.bfloat16, 128, "persistent"),
    ("plain", None, 256, "split"),
    ("plain", torch.bfloat16, 256, "split"),
    ("mask", torch.bfloat16, 128, "persistent"),
    ("layer_norm", None, 128, "split"),
]
CALLS = 5
ISSUES = 400  # host-timed issues per probe


@triton.jit
def _two_args(p_x, n):
    offsets = tl.arange(0, 16)
    tl.store(p_x + offsets, tl.load(p_x + offsets, mask=offsets < n) + 1.0, mask=offsets < n)


@triton.jit
def _many_args(
    p_x, p01, p02, p03, p04, p05, p06, p07, p08, p09, p10, p11, p12, p13, p14, p15, p16, p17,
    p18, p19, p20, p21, p22, p23, p24, p25, p26, p27, p28, p29, n,
    C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr, C4: tl.constexpr,
    C5: tl.constexpr, C6: tl.constexpr, C7: tl.constexpr, C8: tl.constexpr, C9: tl.constexpr,
):  # fmt: skip
    offsets = tl.arange(0, 16)
    tl.store(p_x + offsets, tl.load(p_x + offsets, mask=offsets < n) + 1.0, mask=offsets < n)


def host_us(issue, issues: int = ISSUES) -> float:
    """Median µs of host time per call of ``issue``, after a warm-up that compiles; each call
    starts with the GPU idle, so that no full launch queue makes the host wait."""
    for _ in range(10):
        issue()
    times = []
    for _ in range(issues):
        torch.cuda.synchronize()
        start = time.perf_counter()
        issue()
        times.append(time.perf_counter() - start)
    torch.cuda.synchronize()
    return 1e6 * sorted(times)[len(times) // 2]


def host_costs() -> None:
    x = torch.zeros(16, device="cuda")
    pointers = [torch.zeros(16, device="cuda") for _ in range(29)]
    consts = {f"C{k}": k % 2 == 0 for k in range(10)}
    costs = {
        "torch op (x.add_(1))": lambda: x.add_(1),
        "Triton launch, 2 arguments": lambda: _two_args[(1,)](x, 16),
        "Triton launch, 40 arguments": lambda: _many_args[(1,)](x, *pointers, 16, **consts),
    }
    try:  # the compiled kernels' own launchers, without the JIT's binding (Triton >= 3.3)
        two = _two_args[(1,)](x, 16)
        many = _many_args[(1,)](x, *pointers, 16, **consts)
        flags = list(consts.values())
        before = x[0].item()
        costs["compiled launcher, 2 arguments"] = lambda: two[(1, 1, 1)](x, 16)
        costs["compiled launcher, 40 arguments"] = lambda: many[(1, 1, 1)](x, *pointers, 16, *flags)
        costs["compiled launcher, 2 arguments"]()
        costs["compiled launcher, 40 arguments"]()
        torch.cuda.synchronize()
        assert x[0].item() == before + 2, "the compiled launchers did not run"
    except Exception as exc:  # noqa: BLE001 - the launcher's API differs between versions
        print(f"compiled launchers not timed: {type(exc).__name__}: {exc}")
        costs.pop("compiled launcher, 2 arguments", None)
        costs.pop("compiled launcher, 40 arguments", None)
    print("host µs per issue (median):")
    for name, issue in costs.items():
        print(f"  {host_us(issue):7.1f}  {name}")


def fwd_bwd_of(name: str, autocast: torch.dtype | None, H: int, layout: str):
    spec, masked, training = bench.variants(H)[name]
    x, h0, c0, w, mask, noise = bench.problem(spec, B, T, D, masked, training, seed=3)
    inputs = [x, h0, c0, *(t for t in w if t is not None)]
    shape = triton_lstm.SPLIT if layout == "split" else triton_lstm.PERSISTENT
    config = shape.config(B, H, spec.output_size, torch.device("cuda"))
    grads = []

    def fwd_bwd():
        with torch.autocast("cuda", dtype=autocast or torch.float32, enabled=bool(autocast)):
            outs = triton_lstm.lstm(x, h0, c0, w, spec, mask, noise, config=config)
        grads[:] = grads or [torch.randn_like(o) for o in outs]
        return torch.autograd.grad(outs, inputs, grads, allow_unused=True)

    return fwd_bwd


def report(name: str, autocast: torch.dtype | None, H: int, layout: str) -> None:
    fwd_bwd = fwd_bwd_of(name, autocast, H, layout)
    for _ in range(3):
        fwd_bwd()  # compiles, warms the allocator
    wall_ms = bench.median_ms(fwd_bwd)
    issue_ms = host_us(fwd_bwd, 50) / 1000
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(CALLS):
            fwd_bwd()
        torch.cuda.synchronize()
    kernels = [k for k in prof.key_averages() if k.device_type == DeviceType.CUDA]
    gpu_ms = sum(k.self_device_time_total for k in kernels) / CALLS / 1000
    launched = sum(k.count for k in kernels) / CALLS
    label = f"{name} {'fp32' if autocast is None else 'bf16'} H={H} {layout}"
    print(
        f"\n{label}: wall {wall_ms:.3f} ms, the host's issue {issue_ms:.3f} ms, CUDA kernels "
        f"{gpu_ms:.3f} ms in {launched:.0f} launches; the host's "
        f"{1000 * (wall_ms - gpu_ms) / launched:.0f} µs per launch"
    )
    for k in sorted(kernels, key=lambda k: -k.self_device_time_total)[:6]:
        ms = k.self_device_time_total / CALLS / 1000
        print(f"  {ms:7.3f} ms  x{k.count // CALLS:<3d} {k.key[:80]}")


def main() -> int:
    if not torch.cuda.is_available():
        print("bench/gpu_time.py needs a CUDA GPU; none is visible here, nothing measured.")
        return 0
    bench.DEVICE = "cuda"
    versions = f"torch {torch.__version__}, triton {triton.__version__}"
    print(f"device: {torch.cuda.get_device_name()}, {versions}")
    host_costs()
    for case in CASES:
        report(*case)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
