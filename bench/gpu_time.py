"""Where one Triton fwd+bwd spends its time on a GPU: wall time against the GPU's kernel time.

For a few (variant, dtype, H, layout) cases at B=64 T=100 I=32, prints the median wall time of
one forward+backward (CUDA events, as `bench/kernels.py` times it), the summed time of the CUDA
kernels it ran (torch.profiler, over five calls), and the kernels that took the most. Where the
wall time is well above the kernel time, the GPU waits on the host: launches and small torch
ops, not the recurrence; the host time per kernel launched is (wall − kernels) / launches
(`bench/host_ops.py` counts the torch ops and Triton launches without a GPU).

    PYTHONPATH=src python3 bench/gpu_time.py
"""

from __future__ import annotations

import torch
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
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(CALLS):
            fwd_bwd()
        torch.cuda.synchronize()
    kernels = [k for k in prof.key_averages() if k.device_type == DeviceType.CUDA]
    gpu_ms = sum(k.self_device_time_total for k in kernels) / CALLS / 1000
    launched = sum(k.count for k in kernels) / CALLS
    label = f"{name} {'fp32' if autocast is None else 'bf16'} H={H} {layout}"
    print(
        f"\n{label}: wall {wall_ms:.3f} ms, CUDA kernels {gpu_ms:.3f} ms in {launched:.0f} "
        f"launches; the host's {1000 * (wall_ms - gpu_ms) / launched:.0f} µs per launch"
    )
    for k in sorted(kernels, key=lambda k: -k.self_device_time_total)[:6]:
        ms = k.self_device_time_total / CALLS / 1000
        print(f"  {ms:7.3f} ms  x{k.count // CALLS:<3d} {k.key[:80]}")


def main() -> int:
    if not torch.cuda.is_available():
        print("bench/gpu_time.py needs a CUDA GPU; none is visible here, nothing measured.")
        return 0
    bench.DEVICE = "cuda"
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    for case in CASES:
        report(*case)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
