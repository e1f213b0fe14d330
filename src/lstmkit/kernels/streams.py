"""Two recurrences side by side on one GPU: the directions of a `Bidirectional` layer on two
CUDA streams.

Why. A recurrence is bound by the latency of its T dependent steps, and at small batches it
leaves most of the GPU idle: the split layout's grid at B=64 is 32 programs at H=128 and 64
at H=256 on an H100's 132 SMs; the persistent kernels take B/16. The other direction fits
beside it and needs nothing from it, so on a second stream it runs in the time of the first.
Eagerly the host, issuing one direction's ops after the other's, bounds what this gains; in a
CUDA graph (`fit`'s captured step) the two streams are two branches that run at once.

Safety. The split layout's barriers need every program of a launch resident at once
(`triton_split` checks a grid against the SM count); two launches side by side need it of
both together. So the directions run side by side only where the split layout's grids, as
`triton_lstm.split_config` chooses them for the whole GPU, fit on its SMs together, whatever
backend dispatch then picks: on 132 SMs at B=64, up to H=256. Our persistent kernels wait on
no other program of their launch. cuDNN's persistent RNN kernels do synchronise their blocks;
that cuDNN launches them so that the blocks are resident together beside another stream's work
is assumed here, not checked (torch runs cuDNN LSTMs on several streams routinely).

Streams. Autograd runs each backward op on the stream of its forward op (PyTorch's stream
semantics of backward passes), so the two backward passes run side by side too. A tensor made
on one stream and read on the other is recorded on the reader (`Tensor.record_stream`), so
that the caching allocator does not hand its memory on while the reader may still use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lstmkit.kernels import triton_split
from lstmkit.kernels.triton_lstm import split_config

_side_streams: dict[int, torch.cuda.Stream] = {}


def fit_together(batch: int, units: Sequence[int], sms: int) -> bool:
    """Whether recurrences of ``units`` hidden units over ``batch`` rows can run at once on a
    GPU of ``sms`` SMs: their split layout's grids fit on the SMs together."""
    programs = (triton_split.programs(batch, n, split_config(batch, n, sms)) for n in units)
    return sum(programs) <= sms


def side_by_side(x: torch.Tensor, units: Sequence[int]) -> bool:
    """Whether recurrences over ``x`` with ``units`` hidden units each run side by side."""
    if not x.is_cuda:
        return False
    sms = torch.cuda.get_device_properties(x.device).multi_processor_count
    return fit_together(x.shape[0], units, sms)


def side_stream(device: torch.device) -> torch.cuda.Stream:
    """The second stream of ``device``, made on first use and kept."""
    index = torch.device(device).index
    if index is None:
        index = torch.cuda.current_device()
    if index not in _side_streams:
        _side_streams[index] = torch.cuda.Stream(device=index)
    return _side_streams[index]


def read_on(stream: torch.cuda.Stream, *values: Any) -> None:
    """Record the CUDA tensors among ``values`` (and in lists or tuples of them) as read on
    ``stream``."""
    for value in values:
        if isinstance(value, (list, tuple)):
            read_on(stream, *value)
        elif isinstance(value, torch.Tensor) and value.is_cuda:
            value.record_stream(stream)
