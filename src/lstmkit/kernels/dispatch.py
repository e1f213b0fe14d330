"""Choose the backend that runs a layer call: the fastest one that supports it.

Every backend module offers ``supports(spec, mask, noise)`` and ``lstm(x, h0, c0, weights,
spec, mask, noise)`` with the contract of `lstmkit.kernels.reference.lstm`, which supports
everything and is the fallback.

- CPU: float32 and bfloat16 calls that `cpu` supports go there, except where torch's fused
  LSTM (oneDNN) applies and is faster: without gradients, and in bf16 (measurements in
  `lstmkit.kernels.cpu`).
- CUDA: torch's fused LSTM (cuDNN) runs what it can, being faster there (bench/RESULTS.md);
  the Triton kernels (`lstmkit.kernels.triton_lstm`) run masks and variants, in the layout
  its `default_config` picks.
- Elsewhere torch's fused LSTM takes what it can.

``go_backwards`` (Keras's) runs the steps from the last to the first with every time axis,
the outputs' too, aligned with the inputs: the Triton kernels do that themselves
(`RUNS_BACKWARDS`), the others run on flipped inputs and flip their outputs back
(`_flipped`).

Those are the fixed rules (`select_backend`). Where several backends can run a call, `lstm`
instead times them on the first call of its kind and keeps the fastest (`autotune`), so that
the choice follows the machine it runs on; on CUDA the two layouts of the Triton kernels are
timed as two backends ("triton-persistent", "triton-split").
"""

from __future__ import annotations

import functools
from types import ModuleType

import torch

from lstmkit.kernels import autotune, cpu, native, reference, triton_lstm
from lstmkit.kernels.weights import LSTMNoise, LSTMWeights
from lstmkit.spec import LSTMSpec

BACKENDS: dict[str, ModuleType | triton_lstm.Layout] = {
    "cpu": cpu,
    "native": native,
    "reference": reference,
    "triton": triton_lstm,  # its layout by `triton_lstm.default_config`
    "triton-persistent": triton_lstm.PERSISTENT,
    "triton-split": triton_lstm.SPLIT,
}
# the backends that take go_backwards themselves
RUNS_BACKWARDS = frozenset({"triton", "triton-persistent", "triton-split"})
CPU_DTYPES = (torch.float32, torch.bfloat16)
GPU_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def candidates(
    spec: LSTMSpec,
    mask: torch.Tensor | None = None,
    noise: LSTMNoise | None = None,
    allow_native: bool = True,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> list[str]:
    """The fast backends (not the reference) that can run this call."""
    kind = torch.device(device).type
    names = []
    if kind == "cpu" and dtype in CPU_DTYPES and cpu.supports(spec, mask, noise):
        names.append("cpu")
    if allow_native and native.supports(spec, mask, noise):
        names.append("native")
    if kind == "cuda" and dtype in GPU_DTYPES and triton_lstm.supports(spec, mask, noise):
        names += ["triton-persistent", "triton-split"]
    return names


def select_backend(
    spec: LSTMSpec,
    mask: torch.Tensor | None = None,
    noise: LSTMNoise | None = None,
    allow_native: bool = True,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    grad: bool = True,
) -> str:
    """By fixed rules, the fastest backend that supports this call on ``device`` with inputs of
    ``dtype``, with or without gradients (``allow_native=False``: not torch's fused LSTM, as
    Keras's ``use_cudnn=False`` asks)."""
    fast = candidates(spec, mask, noise, allow_native, device, dtype)
    if "cpu" in fast:
        bf16 = cpu.bf16_requested(dtype)
        return "native" if "native" in fast and (not grad or bf16) else "cpu"
    # cuDNN is faster for what it runs (bench/RESULTS.md); the Triton kernels take the rest, in
    # the layout that `triton_lstm.default_config` picks
    if not fast:
        return "reference"
    return "triton" if fast[0].startswith("triton") else fast[0]


def lstm(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weights: LSTMWeights,
    spec: LSTMSpec,
    mask: torch.Tensor | None = None,
    noise: LSTMNoise | None = None,
    backend: str | None = None,
    allow_native: bool = True,
    go_backwards: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run one LSTM layer; ``backend`` forces a backend by name (for tests and benchmarks).

    With ``go_backwards`` the steps run from the last to the first, x, mask and the zoneout
    masks of ``noise`` being aligned with the input steps, and so are the outputs: outputs[:, t]
    is the state after input step t (Keras's go_backwards returns them flipped), h_T and c_T
    those after input step 0."""
    grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, h0, c0, *weights)
    )
    name = backend
    if name is None:
        fast = candidates(spec, mask, noise, allow_native, x.device, x.dtype)
        if len(fast) > 1 and autotune.enabled():
            labels = [cpu.flavour(spec) if n == "cpu" else n for n in fast]
            key = autotune.call_key(x, h0, spec, mask, noise, grad, labels, go_backwards)
            runners = {n: _runner(n, go_backwards) for n in fast}
            name = autotune.fastest(runners, key, x, h0, c0, weights, spec, mask, noise, grad)
        else:
            name = select_backend(spec, mask, noise, allow_native, x.device, x.dtype, grad)
    if name not in BACKENDS:
        raise ValueError(f"Unknown LSTM backend {name!r}; expected one of {sorted(BACKENDS)}")
    module = BACKENDS[name]
    if not module.supports(spec, mask, noise):
        raise ValueError(f"The {name!r} LSTM backend cannot run {spec} with this mask/noise")
    return _runner(name, go_backwards)(x, h0, c0, weights, spec, mask, noise)


def _runner(name: str, go_backwards: bool) -> autotune.LSTMRunner:
    """Backend ``name``'s ``lstm``, running the steps backwards where asked."""
    run = BACKENDS[name].lstm
    if not go_backwards:
        return run
    if name in RUNS_BACKWARDS:
        return functools.partial(run, go_backwards=True)
    return _flipped(run)


def _flip(steps: torch.Tensor | None) -> torch.Tensor | None:
    return None if steps is None else steps.flip(1)


def _flipped(run: autotune.LSTMRunner) -> autotune.LSTMRunner:
    """``run`` over the steps in reverse: on x, the mask and the zoneout masks flipped in
    time, its outputs flipped back."""

    def backwards(x, h0, c0, weights, spec, mask=None, noise=None):
        if noise is not None:
            noise = noise._replace(
                zoneout_cell=_flip(noise.zoneout_cell), zoneout_hidden=_flip(noise.zoneout_hidden)
            )
        outputs, h, c = run(x.flip(1), h0, c0, weights, spec, _flip(mask), noise)
        return outputs.flip(1), h, c

    return backwards
