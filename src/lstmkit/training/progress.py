"""Keras-style progress display for `fit`, `evaluate` and `predict`.

``verbose=1`` on a terminal draws a rich progress bar per epoch::

    Epoch 3/20
    9/9 ━━━━━━━━━━━━━━━━━━━━ 0.4s 45ms/step - accuracy: 0.8125 - loss: 0.6013 - val_loss: 0.52

Metric values shown during an epoch are read from the device at most every
`REFRESH_SECONDS`, never per step, so the bar does not stall an accelerator. ``verbose=2``, or
output that is not a terminal, prints one line per epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from lstmkit.callbacks.base import Callback

REFRESH_SECONDS = 0.5


def format_logs(logs: Mapping[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if isinstance(v, (int, float)))


class ProgbarLogger(Callback):
    """Prints progress; ``live_logs`` reads the running metrics (one device sync per call)."""

    def __init__(self, verbose: int, live_logs: Callable[[], dict[str, float]]):
        super().__init__()
        self.verbose, self.live_logs = verbose, live_logs
        self.console = Console()
        self.progress: Progress | None = None
        self.task = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.last_refresh = time.perf_counter()
        self.steps_done = 0
        self.console.print(f"Epoch {epoch + 1}/{self.params.get('epochs')}", highlight=False)
        if self.verbose == 1 and self.console.is_terminal:
            self.progress = Progress(
                MofNCompleteColumn(),
                BarColumn(bar_width=20),
                TextColumn("{task.fields[timing]} {task.fields[metrics]}"),
                console=self.console,
            )
            self.task = self.progress.add_task(
                "", total=self.params.get("steps"), timing="", metrics=""
            )
            self.progress.start()

    def on_train_batch_end(self, batch, logs=None):
        self.steps_done = batch + 1
        if self.progress is None:
            return
        now = time.perf_counter()
        fields = {}
        if now - self.last_refresh >= REFRESH_SECONDS:
            self.last_refresh = now
            fields = {"timing": self._timing(now), "metrics": "- " + format_logs(self.live_logs())}
        self.progress.update(self.task, completed=self.steps_done, **fields)

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        text = f"{self._timing(now)} - {format_logs(logs or {})}"
        if self.progress is not None:
            self.progress.update(
                self.task, completed=self.steps_done, total=self.steps_done, timing=text, metrics=""
            )
            self.progress.stop()  # leaves the finished bar on screen, as Keras does
            self.progress = None
        else:
            line = f"{self.steps_done}/{self.steps_done} - {text}"
            self.console.print(line, highlight=False, soft_wrap=True)

    def on_train_end(self, logs=None):
        if self.progress is not None:  # fit stopped inside an epoch
            self.progress.stop()
            self.progress = None

    def _timing(self, now: float) -> str:
        elapsed = now - self.epoch_start
        per_step = elapsed / max(self.steps_done, 1)
        return f"{elapsed:.1f}s {per_step * 1000:.0f}ms/step"
