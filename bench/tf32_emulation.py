"""TF32 accuracy of the Triton kernels without a GPU: the GPU accuracy test's cases
(tests/kernels/test_triton_lstm.py, ``GPU_VARIANTS``: B=64, T=100, I=32, same inputs) run under
Triton's interpreter with each dot's operands cut to TF32's 10 mantissa bits, then multiplied
exactly. Relative errors ‖ours − ref‖ / ‖ref‖ against the float64 reference, as the test
measures them.

- ``trunc``: operands truncated, what tensor cores do with raw fp32 operands (the kernels
  before they rounded; on an H200 they measured 9.4e-4 plain, 1.7e-3 projection);
- ``round``: the kernels now: operands rounded to nearest even, and the dots with U of
  layer-norm cells as three TF32 products (``tf32x3``, fp32 accuracy: computed exactly here).

    TRITON_INTERPRET=1 python bench/tf32_emulation.py round plain,projection
    (about 1-2 minutes per case at H=128 and 11 at H=256 on one CPU core)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "1"
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "kernels")]

import test_triton_lstm as cases  # noqa: E402
import triton.language as tl  # noqa: E402

from lstmkit.kernels import reference, triton_lstm  # noqa: E402
from lstmkit.kernels.weights import LSTMNoise, LSTMWeights  # noqa: E402


def _cut(x, ROUND: tl.constexpr):
    bits = x.to(tl.uint32, bitcast=True)
    if ROUND:
        bits = bits + 0xFFF + ((bits >> 13) & 1)
    return (bits & 0xFFFFE000).to(tl.float32, bitcast=True)


def _emulated_dot(a, b, acc, DOT: tl.constexpr):
    """Stands in for `triton_cell._dot`: both operands cut to TF32, exact products; tf32x3
    exact."""
    if DOT == "tf32x3":
        out = tl.dot(a, b.to(tl.float32), acc)
    else:
        out = tl.dot(_cut(a, DOT == "tf32"), _cut(b.to(tl.float32), DOT == "tf32"), acc)
    return out


def main() -> None:
    mode, names = sys.argv[1], sys.argv[2].split(",")
    if mode not in ("trunc", "round"):
        raise SystemExit("mode must be trunc or round")
    for module in triton_lstm.KERNEL_MODULES:  # triton_cell's, and where kernels import it
        if hasattr(module, "_dot"):
            module._dot = _emulated_dot
    # "tf32_trunc" is no mode of the kernels: U unrounded, no tf32x3, as they were
    triton_lstm._dot_mode = lambda dtype, device: "tf32" if mode == "round" else "tf32_trunc"
    for name in names:
        spec, mask_kind, training = cases.GPU_VARIANTS[name]
        B, T, D = 64, 100, 32
        x, h0, c0, w, noise = cases.problem(spec, B, T, D, training, device="cpu", long=True)
        mask = cases.lengths_mask(B, T) if mask_kind else None
        start = time.time()
        ours = cases.outputs_and_grads(triton_lstm, x, h0, c0, w, spec, mask, noise)

        def f64(t):
            return None if t is None else t.detach().double().requires_grad_()

        w64 = LSTMWeights(*(f64(t) for t in w))
        n64 = None if noise is None else LSTMNoise(*(f64(t) for t in noise))
        ref = cases.outputs_and_grads(reference, f64(x), f64(h0), f64(c0), w64, spec, mask, n64)
        errors = {n: cases.rel_err(a, b) for n, a, b in zip(cases.names(w), ours, ref, strict=True)}
        worst = max(errors, key=errors.get)
        print(
            f"{name:18s} {mode}: max {errors[worst]:.2e} ({worst}), outputs "
            f"{errors['outputs']:.2e}  [{time.time() - start:.0f} s]",
            flush=True,
        )


if __name__ == "__main__":
    main()
