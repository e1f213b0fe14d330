"""Pick between backends that can all run a call by timing them, once per kind of call.

Where more than one backend supports a call (on the CPU: `cpu` and torch's fused LSTM; on
CUDA, the plain cell: cuDNN and `triton_lstm`), the first call of its kind runs each of them a
few times on that call's own tensors and keeps the fastest. The choice is cached in memory and
in a JSON file, so later processes on the same machine reuse it:
``$LSTMKIT_CACHE_DIR/backends.json`` (default ``~/.cache/lstmkit``, or under
``$XDG_CACHE_HOME``).

A kind of call is: the device (CPU model and thread count, or GPU name), torch and lstmkit
versions, the spec, dtype and autocast dtype, batch and steps rounded up to a power of two,
input and state sizes, whether gradients flow, whether there is a mask and which noise, and
whether the steps run backwards (dispatch flips around the backends that cannot).

Timing uses detached copies of the call's tensors (at most their first 512 steps) and draws
no random numbers, so it neither changes a user's autograd graph nor the random stream of a
seeded run.
``LSTMKIT_AUTOTUNE=0`` turns timing off: dispatch then follows its fixed rules.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

import lstmkit
from lstmkit.kernels.weights import LSTMNoise, LSTMWeights
from lstmkit.spec import LSTMSpec

CACHE_FILE = "backends.json"
ROUNDS = 3  # timed runs per backend, after one warm-up (which also compiles Triton kernels)
# Longer calls are timed on their first steps. Not fewer: oneDNN's LSTM takes 2.3x as long for
# 100 steps as for 64 (seed model: 33.8 against 14.6 ms), so short timings can mislead.
TIMED_STEPS = 512

_memory: dict[str, str] = {}
_loaded_from: Path | None = None

LSTMRunner = Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def enabled() -> bool:
    """Whether dispatch times backends (``LSTMKIT_AUTOTUNE``, on unless set to 0)."""
    return os.environ.get("LSTMKIT_AUTOTUNE", "1").strip().lower() not in ("0", "false", "no")


def cache_path() -> Path:
    """Where choices persist: ``$LSTMKIT_CACHE_DIR``, else the user's cache folder."""
    return _cache_path(os.environ.get("LSTMKIT_CACHE_DIR"), os.environ.get("XDG_CACHE_HOME"))


@functools.lru_cache(maxsize=8)
def _cache_path(folder: str | None, xdg: str | None) -> Path:
    if not folder:
        folder = Path(xdg or Path.home() / ".cache") / "lstmkit"
    return Path(folder) / CACHE_FILE


def call_key(
    x: torch.Tensor,
    h0: torch.Tensor,
    spec: LSTMSpec,
    mask: torch.Tensor | None,
    noise: LSTMNoise | None,
    grad: bool,
    candidates: Sequence[str],
    go_backwards: bool = False,
) -> str:
    """The kind of call (see the module docstring) as one string."""
    batch, steps, features = x.shape
    device = x.device
    autocast = (
        str(torch.get_autocast_dtype(device.type))
        if torch.is_autocast_enabled(device.type)
        else "none"
    )
    noises = [] if noise is None else [n for n, t in noise._asdict().items() if t is not None]
    return "|".join([
        _machine(device, torch.get_num_threads()),
        _spec_text(spec),
        f"{x.dtype} autocast {autocast}",
        f"B{_bucket(batch)} T{_bucket(steps)} I{features} H{h0.shape[-1]}",
        "grad" if grad else "no grad",
        "mask" if mask is not None else "no mask",
        "noise " + ",".join(noises),
        "of " + ",".join(candidates),
        *(["backwards"] if go_backwards else []),
    ])  # fmt: skip


@functools.lru_cache(maxsize=32)
def _machine(device: torch.device, threads: int) -> str:
    """The device (GPU name, or CPU model and threads) and the software versions."""
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{_cpu_name()} x{threads}"
    return f"{where}|torch {torch.__version__}|lstmkit {lstmkit.__version__}"


@functools.lru_cache(maxsize=64)
def _spec_text(spec: LSTMSpec) -> str:
    return repr(spec)


@functools.cache
def _cpu_name() -> str:
    """The CPU's model name (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _bucket(n: int) -> int:
    """``n`` rounded up to a power of two: nearby batch sizes and lengths share a choice."""
    return 1 << max(0, int(n) - 1).bit_length()


def fastest(
    runners: dict[str, LSTMRunner],
    key: str,
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    weights: LSTMWeights,
    spec: LSTMSpec,
    mask: torch.Tensor | None,
    noise: LSTMNoise | None,
    grad: bool,
) -> str:
    """Name of the fastest of ``runners`` for this call: cached, or timed now and cached."""
    choice = _lookup(key)
    if choice in runners:
        return choice
    best: dict[str, float | None] = {name: float("inf") for name in runners}
    x, mask, noise = _first_steps(x, mask, noise, TIMED_STEPS)
    copies = _detached(x, h0, c0, weights, grad)
    for round_ in range(ROUNDS + 1):
        for name, run in runners.items():
            if best[name] is None:
                continue
            try:
                seconds = _time(run, copies, spec, mask, noise, grad)
            except Exception as error:  # a backend that fails here is not chosen
                warnings.warn(f"backend {name!r} failed while being timed: {error}", stacklevel=4)
                best[name] = None
                continue
            if round_:  # round 0 warms up
                best[name] = min(best[name], seconds)
    timed = {name: seconds for name, seconds in best.items() if seconds is not None}
    if not timed:
        raise RuntimeError(f"every backend failed on this call: {sorted(runners)}")
    choice = min(timed, key=timed.__getitem__)
    _store(key, choice)
    return choice


def _first_steps(
    x: torch.Tensor, mask: torch.Tensor | None, noise: LSTMNoise | None, steps: int
) -> tuple[torch.Tensor, torch.Tensor | None, LSTMNoise | None]:
    """The call cut to its first ``steps`` time steps, so that a very long sequence costs no
    longer to time than ``steps`` of it."""
    if x.shape[1] <= steps:
        return x, mask, noise
    if noise is not None:  # zoneout masks have a time axis; recurrent dropout's has none
        noise = noise._replace(**{
            name: t[:, :steps]
            for name, t in noise._asdict().items()
            if t is not None and name != "recurrent_mask"
        })  # fmt: skip
    return x[:, :steps], None if mask is None else mask[:, :steps], noise


def _detached(x, h0, c0, weights: LSTMWeights, grad: bool) -> tuple:
    """Copies of the call's tensors outside any graph; the same ones need gradients."""

    def leaf(t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        return t.detach().requires_grad_(grad and t.requires_grad)

    return leaf(x), leaf(h0), leaf(c0), LSTMWeights(*(leaf(t) for t in weights))


def _time(run: LSTMRunner, copies: tuple, spec, mask, noise, grad: bool) -> float:
    x, h0, c0, weights = copies
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    with torch.set_grad_enabled(grad):
        out, h, c = run(x, h0, c0, weights, spec, mask, noise)
        if grad:
            out.float().sum().backward()
    sync()
    seconds = time.perf_counter() - start
    for t in (x, h0, c0, *weights):
        if t is not None:
            t.grad = None
    return seconds


# -- the cache --------------------------------------------------------------------------------
def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):  # nothing cached yet
        return {}
    except (OSError, ValueError) as error:
        warnings.warn(f"ignoring unreadable backend cache {path}: {error}", stacklevel=3)
        return {}
    if not isinstance(data, dict):
        warnings.warn(f"ignoring backend cache {path}: not a JSON object", stacklevel=3)
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _lookup(key: str) -> str | None:
    global _loaded_from
    path = cache_path()
    if _loaded_from != path:  # first use, or the cache folder changed
        _memory.clear()
        _memory.update(_read(path))
        _loaded_from = path
    return _memory.get(key)


def _store(key: str, choice: str) -> None:
    """Remember ``choice``; merge it into the file (others may have written) atomically."""
    _memory[key] = choice
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**_read(path), key: choice}
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=".backends-", suffix=".tmp", delete=False
        ) as tmp:
            json.dump(merged, tmp, indent=1, sort_keys=True)
        try:
            os.replace(tmp.name, path)
        finally:
            Path(tmp.name).unlink(missing_ok=True)
    except OSError as error:
        warnings.warn(
            f"could not write the backend cache {path} ({error}); choices last for this "
            "process only (set LSTMKIT_CACHE_DIR to a writable folder)",
            stacklevel=3,
        )
