"""A model's steps replayed as CUDA graphs wherever their shapes repeat: fit's training step, the
evaluation steps of its validation and of `evaluate`, and `predict`'s steps.

On a GPU a small model's step is bound by the host: the seed model's takes about 2 ms of Python
and kernel launches around 0.6 ms of GPU work (bench/RESULTS.md). Captured once with
`torch.cuda.CUDAGraph`, the forward pass, loss, backward pass and optimizer update launch as one
graph; an evaluation step's forward pass and loss, and a prediction's forward pass, likewise.

How: the first `WARMUP_STEPS` steps of each set of batch shapes run eagerly on a side stream, as
torch's whole-network capture recipe asks (the allocator, cuDNN and lstmkit's backend choice
settle there); the next one is captured, and every later batch of those shapes replays it. The
learning rate is a constant of the captured update, so a new one (set by a callback) is
captured anew, up to `MAX_CAPTURES` captures per fit. A batch of other shapes (an epoch's
shorter last batch) runs eagerly, and so do metrics, weight constraints and callbacks, after
each replay.

Used where it is safe: on CUDA, with no stateful layer (its states would be the graph's) and no
CUDA autocast around the call (its cache of cast weights would outlive the updates); for the
training step also with torch's fused updates (Adam, AdamW, SGD: their step counts live on the
GPU). A step that cannot be captured makes the call go on eagerly, with one warning.
``LSTMKIT_CUDA_GRAPHS=0`` turns capture off.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

WARMUP_STEPS = 3
MAX_GRAPHS = 4  # sets of batch shapes captured per fit; others run eagerly
MAX_CAPTURES = 16  # captures per fit: a learning rate changed every few steps stops them

# (loss, y_pred, mask) of a training or evaluation step, (y_pred,) of a prediction step
StepOutputs = tuple[torch.Tensor | None, ...]
Step = Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], StepOutputs]


def enabled() -> bool:
    """Whether fit may capture its step (``LSTMKIT_CUDA_GRAPHS``, on unless set to 0)."""
    return os.environ.get("LSTMKIT_CUDA_GRAPHS", "1").strip().lower() not in ("0", "false", "no")


def eligible(
    device: torch.device, optimizer: torch.optim.Optimizer | None, modules: list[torch.nn.Module]
) -> bool:
    """Whether a step on ``device`` of these modules may capture: a training step with this
    torch optimizer, an evaluation step with None."""
    return (
        enabled()
        and device.type == "cuda"
        and not torch.is_autocast_enabled("cuda")  # its cache of cast weights would go stale
        and (optimizer is None or all(group.get("fused") for group in optimizer.param_groups))
        and not any(getattr(m, "stateful", False) for m in modules)
    )


def _shapes(*tensors: torch.Tensor | None) -> tuple:
    return tuple(None if t is None else (tuple(t.shape), t.dtype) for t in tensors)


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]
    outputs: StepOutputs
    learning_rates: tuple


class GraphedStep:
    """Runs ``step(x, y, sample_weight)`` eagerly at first, then by replaying its capture: a
    training step (forward, loss, backward and ``optimizer``'s update; the gradients are set to
    None before it, and the learning rates are constants of a capture) or, without an
    optimizer, an evaluation or prediction step under `torch.no_grad` (``kind`` names it in
    messages). A replay returns the graph's own output tensors, which the next replay
    overwrites."""

    def __init__(
        self, step: Step, optimizer: torch.optim.Optimizer | None = None, kind: str = "training"
    ):
        self.step = step
        self.optimizer = optimizer
        self.kind = kind
        self.warm: dict[tuple, int] = {}
        self.graphs: dict[tuple, _Captured] = {}
        self.broken = False
        self.captures = 0
        self.stream: torch.cuda.Stream | None = None  # the side stream of the eager steps

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor | None, sw: torch.Tensor | None
    ) -> StepOutputs:
        key = _shapes(x, y, sw)
        rates = tuple(group["lr"] for group in self._groups())
        captured = self.graphs.get(key)
        if captured is None or captured.learning_rates != rates:
            warm = self.warm.get(key, 0)
            room = (key in self.graphs or len(self.graphs) < MAX_GRAPHS) and (
                self.captures < MAX_CAPTURES
            )
            if self.broken or not room or warm < WARMUP_STEPS:
                self.warm[key] = warm + 1
                return self._eager(x, y, sw)
            captured = self._capture(x, y, sw, rates)
            self.captures += 1
            if captured is None:
                return self._eager(x, y, sw)
            self.graphs[key] = captured
        for static, batch in zip(captured.inputs, (x, y, sw), strict=True):
            if static is not None:
                static.copy_(batch)
        captured.graph.replay()
        return captured.outputs

    def _groups(self) -> list[dict]:
        return [] if self.optimizer is None else self.optimizer.param_groups

    def _zero_grad(self) -> None:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)

    def _eager(self, x, y, sw) -> StepOutputs:
        """One step on a side stream, ordered with the current stream on both sides."""
        current, side = torch.cuda.current_stream(), self._side_stream()
        side.wait_stream(current)
        with torch.cuda.stream(side):
            self._zero_grad()
            outputs = self.step(x, y, sw)
        current.wait_stream(side)
        for t in outputs:
            if t is not None:
                t.record_stream(current)  # read on the current stream after this
        return outputs

    def _side_stream(self) -> torch.cuda.Stream:
        if self.stream is None:
            self.stream = torch.cuda.Stream()
        return self.stream

    def _capture(self, x, y, sw, rates: tuple) -> _Captured | None:
        inputs = tuple(None if t is None else t.clone() for t in (x, y, sw))
        groups = self._groups()
        capturable = [group.get("capturable") for group in groups]
        self._zero_grad()
        graph = torch.cuda.CUDAGraph()
        try:
            for group in groups:
                if "capturable" in group:
                    group["capturable"] = True  # the fused updates keep their step on the GPU
            with torch.cuda.graph(graph):
                outputs = self.step(*inputs)
        except RuntimeError as exc:
            self.broken = True
            self._zero_grad()
            warnings.warn(
                f"the {self.kind} step could not be captured as a CUDA graph, so it runs "
                f"eagerly (set LSTMKIT_CUDA_GRAPHS=0 to skip the attempt): {exc}",
                stacklevel=3,
            )
            return None
        finally:
            for group, flag in zip(groups, capturable, strict=True):
                if flag is not None:
                    group["capturable"] = flag
        return _Captured(graph, inputs, outputs, rates)
