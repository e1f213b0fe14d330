"""Peak memory of one Triton LSTM layer's forward+backward, counted on the CPU (or the GPU).

Runs the kernels under Triton's interpreter and counts the bytes of every torch storage that
an op creates while the layer runs, until the storage is freed (a finalizer on the storage),
the way `bench/kernels.py` measures a layer on the GPU: gradients for the outputs, h_T and
c_T, given beforehand and not counted. Prints the peak in units of one (B, T, H) fp32 buffer.
What the interpreter adds is left out: the reference cycles it leaves (collected after each
launch) and the tensors it re-wraps around storages it was given.

    python bench/memory_count.py [--shape B,T,I,H] [--autocast bf16] [--cuda]

With ``--autocast bf16`` the layer runs under autocast, as `bench/kernels.py` runs its bf16
rows (fp32 inputs and weights); the unit stays one (B, T, H) fp32 buffer. With ``--cuda`` the
compiled kernels run on the GPU, and beside each count is the peak that the CUDA allocator
saw for the same call (what `bench/kernels.py` reports): what lies between the two was
allocated outside torch ops.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import weakref

if "--cuda" not in sys.argv:
    os.environ["TRITON_INTERPRET"] = "1"  # before triton is first imported

import torch  # noqa: E402
import triton.runtime.interpreter as interpreter  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

import kernels as bench  # noqa: E402 (bench/kernels.py, beside this script)
from lstmkit.kernels import triton_lstm  # noqa: E402


class LiveStorages(TorchDispatchMode):
    """Counts the live bytes of the storages that ops create while the mode is on."""

    def __init__(self, existing):
        super().__init__()
        self.known = {t.untyped_storage().data_ptr() for t in existing}
        self.live = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if "set_" in str(func):  # the interpreter re-wrapping a storage it was given
            return out
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            if storage.nbytes() == 0 or storage.data_ptr() in self.known:
                continue
            self.known.add(storage.data_ptr())
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self.free, storage.data_ptr(), storage.nbytes())
        return out

    def free(self, ptr: int, nbytes: int) -> None:
        self.known.discard(ptr)
        self.live -= nbytes


def peak_bytes(spec, problem, config, autocast: torch.dtype | None) -> tuple[int, float]:
    """The peak of one forward+backward after a warm-up, as `bench/kernels.py` runs it:
    counted, and as the CUDA allocator saw it (NaN on the CPU)."""
    x, h0, c0, w, mask, noise = problem
    inputs = [x, h0, c0, *(t for t in w if t is not None)]
    given = [t for t in (mask, *(noise or ())) if t is not None]  # exist before, as on the GPU
    device = x.device.type

    def forward():
        with torch.autocast(device, dtype=autocast or torch.float32, enabled=bool(autocast)):
            return triton_lstm.lstm(x, h0, c0, w, spec, mask, noise, config=config)

    grads = [torch.randn_like(o) for o in forward()]
    torch.autograd.grad(forward(), inputs, grads, allow_unused=True)  # warm
    gc.collect()
    counter = LiveStorages([*grads, *inputs, *given])
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    with counter:
        torch.autograd.grad(forward(), inputs, grads, allow_unused=True)
    if device != "cuda":
        return counter.peak, float("nan")
    torch.cuda.synchronize()
    return counter.peak, torch.cuda.max_memory_allocated() - base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="16,24,8,64", help="B,T,I,H")
    parser.add_argument("--autocast", choices=["bf16"], help="run under autocast")
    parser.add_argument("--cuda", action="store_true", help="compiled kernels on the GPU")
    args = parser.parse_args()
    device = torch.device("cuda" if args.cuda else "cpu")
    if not args.cuda:
        launch = interpreter.GridExecutor.__call__

        def launch_and_collect(self, *a, **k):
            out = launch(self, *a, **k)
            gc.collect()  # the interpreter's reference cycles would keep buffers alive
            return out

        interpreter.GridExecutor.__call__ = launch_and_collect
    bench.DEVICE = device.type
    B, T, D, H = (int(n) for n in args.shape.split(","))
    unit = B * T * H * 4
    autocast = torch.bfloat16 if args.autocast else None
    title = f"Peak live bytes of fwd+bwd in (B, T, H) fp32 units ({unit / 2**20:.2f} MB)"
    title += f", B T I H = {B} {T} {D} {H}" + (f", autocast {args.autocast}" if autocast else "")
    title += ": counted" + (" / CUDA allocator" if args.cuda else "")
    table = Table(title=title)
    for col in ("variant", "persistent", "split"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, (spec, masked, training) in bench.variants(H).items():
        problem = bench.problem(spec, B, T, D, masked, training, seed=3)
        cells = []
        for layout in (triton_lstm.PERSISTENT, triton_lstm.SPLIT):
            config = layout.config(B, H, spec.output_size, device)
            counted, allocator = peak_bytes(spec, problem, config, autocast)
            cells.append(f"{counted / unit:.2f}" + (f" / {allocator / unit:.2f}" * args.cuda))
        table.add_row(name, *cells)
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
