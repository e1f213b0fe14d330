"""Workspace buffers kept from call to call, so that a call does not fault in fresh pages.

glibc hands large freed blocks back to the system, so a fresh 13 MB gate buffer costs 3,300
page faults, each with the kernel zeroing its page: measured on the seed model, 8,000 faults per
forward, which took 40 ms instead of 19 (one thread). A `Lease` borrows buffers from a small
pool; they go back when the lease is garbage, which for a training call is when autograd frees
the graph.
"""

from __future__ import annotations

import math
import os
import threading
import weakref

import torch

MAX_FREE = 4  # free buffers kept per (size, dtype)

_free: dict[tuple[int, torch.dtype], list[torch.Tensor]] = {}
_lock = threading.Lock()


def _give_back(buffers: list[torch.Tensor]) -> None:
    with _lock:
        for flat in buffers:
            shelf = _free.setdefault((flat.numel(), flat.dtype), [])
            if len(shelf) < MAX_FREE:
                shelf.append(flat)


class Lease:
    """Buffers borrowed for as long as this object lives. Views of them must not outlive it."""

    def __init__(self) -> None:
        self.buffers: list[torch.Tensor] = []
        weakref.finalize(self, _give_back, self.buffers)

    def empty(self, *shape: int, dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised tensor of ``shape``, from the pool when one is free."""
        numel = math.prod(shape)
        with _lock:
            shelf = _free.get((numel, dtype))
            flat = shelf.pop() if shelf else None
        if flat is None:
            flat = torch.empty(numel, dtype=dtype)
        self.buffers.append(flat)
        return flat.view(shape)


def _forget_buffers() -> None:
    """A forked child starts with an empty pool and an unheld lock."""
    global _lock
    _free.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_buffers)
