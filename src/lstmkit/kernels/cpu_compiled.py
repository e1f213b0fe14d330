"""The CPU kernel's per-step loops compiled from C++ (`cpu_loops.cpp`), when a compiler is there.

`kernels.cpu` spends most of a step's time outside its GEMM on the dispatch of small torch ops
called from Python. `cpu_loops.cpp` runs the same steps, on the same buffers, as one GEMM and
one fused, vectorised pass over the batch. It is compiled on first use with torch's extension
builder for this machine's CPU (a C++ compiler and ninja are needed), then cached under
``$TORCH_EXTENSIONS_DIR`` (by default ``~/.cache/torch_extensions``). The build takes a minute
or more on 2 cores, most of it parsing torch's headers; a spinner says so on a terminal.

Without a compiler, or with ``LSTMKIT_CPU_LOOPS=0``, `loops()` returns None and the kernel runs
its torch-op loops: same results (tests check both against the reference), slower.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import warnings
from pathlib import Path

import torch
from rich.console import Console

SOURCE = Path(__file__).with_name("cpu_loops.cpp")
FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp"]

log = logging.getLogger("lstmkit")


def enabled() -> bool:
    """Whether to use the compiled loops (``LSTMKIT_CPU_LOOPS``, on unless set to 0)."""
    return os.environ.get("LSTMKIT_CPU_LOOPS", "1").strip().lower() not in ("0", "false", "no")


def loops():
    """The compiled loops (``torch.ops.lstmkit_cpu``), or None where they cannot be built."""
    return _build() if enabled() else None


@functools.cache
def _build():
    from torch.utils import cpp_extension

    # -march=native code only runs where it was built: the name carries the CPU and sources
    stamp = hashlib.sha1(
        SOURCE.read_bytes() + _cpu_flags().encode() + torch.__version__.encode()
    ).hexdigest()[:12]
    if shutil.which("ninja") is None:  # pip's ninja package, outside an activated venv
        try:
            import ninja

            os.environ["PATH"] = f"{ninja.BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
        except ImportError:
            pass
    message = "lstmkit: loading its CPU LSTM loops (compiled the first time on a machine)"
    log.info(message)
    try:
        with Console(stderr=True).status(message):  # a spinner on a terminal, else silent
            cpp_extension.load(
                name=f"lstmkit_cpu_loops_{stamp}",
                sources=[str(SOURCE)],
                extra_cflags=FLAGS,
                extra_ldflags=["-fopenmp"],  # libgomp.so.1: the one torch has loaded already
                is_python_module=False,
                verbose=False,
            )
    except Exception as error:  # no compiler, no ninja, unwritable cache ...
        warnings.warn(
            f"lstmkit could not compile its CPU LSTM loops ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[-1] if str(error).strip() else ''}); training "
            "on the CPU uses the slower torch-op loops. Set LSTMKIT_CPU_LOOPS=0 to skip trying.",
            stacklevel=3,
        )
        return None
    return torch.ops.lstmkit_cpu


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next((line for line in info if line.startswith("flags")), "")
    except OSError:
        return ""
