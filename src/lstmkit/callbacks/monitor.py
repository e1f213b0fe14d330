"""Shared logic of the callbacks that watch one logged quantity, as Keras's ``MonitorCallback``.

``mode="auto"`` infers the direction from the name, as Keras does for its built-in metrics:
accuracy-, AUC-, precision- and recall-like names are maximised, everything else (losses and
errors) is minimised. ``min_delta`` is taken as an absolute value and a new value improves on a
reference only if it beats it by more than ``min_delta``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from lstmkit.callbacks.base import Callback

MODES = ("auto", "min", "max")
_MAXIMISED = ("acc", "auc", "precision", "recall")


def maximises(monitor: str, mode: str) -> bool:
    """Whether ``monitor`` improves upwards under ``mode``; `ValueError` for an unknown mode."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got mode={mode!r}")
    if mode != "auto":
        return mode == "max"
    name = monitor.removeprefix("val_")
    return any(part in name for part in _MAXIMISED)


class MonitorCallback(Callback):
    """Base of `EarlyStopping`, `ModelCheckpoint` and `ReduceLROnPlateau`."""

    def __init__(
        self, monitor: str, mode: str, min_delta: float = 0.0, best: float | None = None
    ) -> None:
        super().__init__()
        self.monitor = monitor
        self.mode = mode
        self.maximise = maximises(monitor, mode)
        self.min_delta = abs(min_delta)
        self.best = best

    def is_improvement(self, current: float, reference: float | None) -> bool:
        """True if ``current`` beats ``reference`` by more than ``min_delta`` (or no reference)."""
        if reference is None:
            return True
        if self.maximise:
            return current - self.min_delta > reference
        return current + self.min_delta < reference

    def monitor_value(self, logs: Mapping[str, float] | None, action: str) -> float | None:
        """The monitored value in ``logs``, or None with a warning that it is missing."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__}: {action} is conditioned on metric `{self.monitor}`, "
                f"which is not available. Available metrics are: {', '.join(logs)}",
                stacklevel=2,
            )
        return value
