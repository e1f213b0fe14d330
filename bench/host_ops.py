"""Host ops of one Triton fwd+bwd, counted on the CPU: torch ops that launch a kernel, and
Triton launches.

Where the kernels are short, a GPU waits on the host for each of them: on the H200 machine
about 50-60 µs per op or launch (bench/RESULTS.md, "Host ops per call"). This counts them
without a GPU, with the Triton kernels stubbed out (Triton's interpreter only wraps them), for
every variant of `bench/kernels.py`, in fp32 and under bf16 autocast, in both layouts, on
the paths the layer takes on CUDA (`as_on_cuda`), at a tiny shape (the counts do not depend
on it), and those of a `Bidirectional` layer's fwd+bwd (its backward direction runs
go_backwards inside the kernels).
`bench/gpu_time.py` counts the same on a GPU beside the wall and kernel times.

    TRITON_INTERPRET=1 PYTHONPATH=src .venv/bin/python bench/host_ops.py [variant ...]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported
os.environ["LSTMKIT_AUTOTUNE"] = "0"  # dispatch by its rules, which the counts hold to Triton

import torch
from rich.console import Console
from rich.table import Table
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

import kernels as bench  # bench/kernels.py, beside this script
from lstmkit.kernels import triton_lstm

# ops that launch no kernel: views, and allocations the caching allocator serves
NO_KERNEL = {
    torch.ops.aten.empty.memory_format,
    torch.ops.aten.empty_strided.default,
    torch.ops.aten.empty_like.default,
    torch.ops.aten._unsafe_view.default,
    torch.ops.aten.squeeze_.dim,
}


class KernelOps(TorchDispatchMode):
    """The names of the torch ops run while the mode is on that would launch a kernel. A GEMM
    with an fp32 output from bf16 / fp16 operands (``mm`` with ``out_dtype``, CUDA alone; into
    ``out`` or not) is counted as one and computed from the operands in fp32."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view and func not in NO_KERNEL:
            self.names.append(str(func))
        if func in (torch.ops.aten.mm.dtype, torch.ops.aten.mm.dtype_out):
            a, b, dtype = args
            return torch.mm(a.to(dtype), b.to(dtype), **(kwargs or {}))
        return func(*args, **(kwargs or {}))


def as_on_cuda(assign=setattr) -> None:
    """Take the paths the layer takes on CUDA (with ``assign``, a test's monkeypatch.setattr,
    so that it is undone): TF32 dots for fp32, the compute dtype's under autocast, and
    bf16 / fp16 GEMMs with fp32 outputs (`KernelOps` computes those)."""

    def dot_mode(dtype, device):
        return "tf32" if dtype == torch.float32 else "low"

    assign(triton_lstm, "_dot_mode", dot_mode)
    assign(triton_lstm, "_fp32_out", lambda t: True)


def stub_kernels(assign=setattr) -> list:
    """Replace every Triton kernel by a stub, with ``assign`` (a test's monkeypatch.setattr, so
    that it is undone); the returned list grows by one per launch. A stub sets the int32
    buffers it is given to 0, uncounted: the kernels' outputs that the host reads as indices
    (each row's first real step) then hold valid ones."""
    triton_lstm._triton()
    launches: list = []

    def launch(grid, *args, **kwargs):
        launches.append(grid)
        with _disable_current_modes():
            for arg in args:
                if isinstance(arg, torch.Tensor) and arg.dtype == torch.int32:
                    arg.zero_()

    class Stub:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: launch(grid, *args, **kwargs)

    for module in triton_lstm.KERNEL_MODULES:
        for name in module.JIT_FUNCTIONS:
            if name.endswith("_kernel"):
                assign(module, name, Stub())
    return launches


def count(name: str, bf16: bool, split: bool, launches: list) -> tuple[int, int, int, int]:
    """(ops, launches) of the forward, then of the backward, of one call."""
    H = 16  # one program per tile: the split layout runs all steps in one launch
    spec, masked, training = bench.variants(H)[name]
    x, h0, c0, w, mask, noise = bench.problem(spec, 3, 5, 4, masked, training, seed=3)
    inputs = [x, h0, c0, *(t for t in w if t is not None)]
    layout = triton_lstm.SPLIT if split else triton_lstm.PERSISTENT
    config = layout.config(3, H, spec.output_size, torch.device("cpu"))
    launches.clear()
    with KernelOps() as forward:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outs = triton_lstm.lstm(x, h0, c0, w, spec, mask, noise, config=config)
    forward_launches = len(launches)
    grads = [torch.ones_like(o) for o in outs]
    with KernelOps() as backward:
        torch.autograd.grad(outs, inputs, grads, allow_unused=True)
    return (
        len(forward.names),
        forward_launches,
        len(backward.names),
        len(launches) - forward_launches,
    )


def count_bidirectional(masked: bool, bf16: bool, split: bool, launches: list) -> int:
    """Ops and launches of one fwd+bwd of a `Bidirectional` LSTM layer (concat, sequences) on
    the Triton kernels: both directions' calls and the layer's own ops (the merge, and the
    flips of the backward direction where it has them)."""
    from lstmkit.kernels import dispatch
    from lstmkit.layers import LSTM, Bidirectional

    torch.manual_seed(0)
    layer = Bidirectional(LSTM(16, return_sequences=True))
    x = torch.randn(3, 5, 4)
    layer(x)  # builds the weights
    mask = torch.tensor([[1] * 5, [1, 1, 1, 0, 0], [0, 0, 1, 1, 1]], dtype=torch.bool)
    layout = triton_lstm.SPLIT if split else triton_lstm.PERSISTENT
    config = layout.config(3, 16, 16, torch.device("cpu"))
    select, default_config = dispatch.select_backend, triton_lstm.default_config
    dispatch.select_backend = lambda *args, **kwargs: "triton"
    triton_lstm.default_config = lambda *args: config
    try:
        launches.clear()
        with KernelOps() as ops:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = layer(x, mask=mask if masked else None, training=False)
            torch.autograd.grad(out, list(layer.parameters()), torch.ones_like(out))
    finally:
        dispatch.select_backend, triton_lstm.default_config = select, default_config
    return len(ops.names) + len(launches)


def main(names: list[str]) -> int:
    bench.DEVICE = "cpu"
    as_on_cuda()
    launches = stub_kernels()
    table = Table(title="torch ops + Triton launches per call (kernels stubbed)")
    for column in ("variant", "dtype", "layout", "forward", "backward", "total"):
        table.add_column(column)
    for name in names or list(bench.variants(16)):
        for bf16 in (False, True):
            for split in (True, False):
                f_ops, f_launch, b_ops, b_launch = count(name, bf16, split, launches)
                table.add_row(
                    name,
                    "bf16" if bf16 else "fp32",
                    "split" if split else "persistent",
                    f"{f_ops} + {f_launch}",
                    f"{b_ops} + {b_launch}",
                    str(f_ops + f_launch + b_ops + b_launch),
                )
    Console().print(table)
    table = Table(title="Bidirectional LSTM layer, fwd+bwd: torch ops + Triton launches")
    for column in ("mask", "dtype", "layout", "total"):
        table.add_column(column)
    for masked in (False, True):
        for bf16 in (False, True):
            for split in (True, False):
                total = count_bidirectional(masked, bf16, split, launches)
                layout = "split" if split else "persistent"
                table.add_row(str(masked), "bf16" if bf16 else "fp32", layout, str(total))
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
