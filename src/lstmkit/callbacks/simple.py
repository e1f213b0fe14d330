"""Small Keras callbacks: `TerminateOnNaN`, `LearningRateScheduler` and `LambdaCallback`."""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real
from typing import Any

from lstmkit.callbacks.base import Callback


class TerminateOnNaN(Callback):
    """Stop training when a batch's ``loss`` is NaN or infinite, as Keras does.

    With ``raise_error=True`` a `RuntimeError` is raised at once instead (Keras 3 option).
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}: loss={loss}")
        print(f"Batch {batch}: invalid loss, terminating training")
        self.model.stop_training = True


class LearningRateScheduler(Callback):
    """Set the learning rate to ``schedule(epoch, lr)`` as each epoch begins (0-based epoch).

    As in Keras, the rate in force is added to the epoch logs as ``"learning_rate"``.
    """

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = self.schedule(epoch, float(optimizer.learning_rate))
        if not isinstance(lr, Real) or isinstance(lr, bool):
            raise ValueError(f"The output of schedule must be a float; got {lr!r}")
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


Hook = Callable[..., Any]


class LambdaCallback(Callback):
    """Build a callback from plain functions, as Keras's ``LambdaCallback``.

    ``on_epoch_begin``/``on_epoch_end`` take ``(epoch, logs)``, ``on_train_begin``/
    ``on_train_end`` take ``(logs)``, ``on_train_batch_begin``/``on_train_batch_end`` take
    ``(batch, logs)``. Every hook is defined on the class so that `CallbackList` calls it.
    """

    def __init__(
        self,
        on_epoch_begin: Hook | None = None,
        on_epoch_end: Hook | None = None,
        on_train_begin: Hook | None = None,
        on_train_end: Hook | None = None,
        on_train_batch_begin: Hook | None = None,
        on_train_batch_end: Hook | None = None,
    ) -> None:
        super().__init__()
        self._hooks: dict[str, Hook | None] = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
        }

    def _call(self, name: str, *args: Any) -> None:
        hook = self._hooks[name]
        if hook is not None:
            hook(*args)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)
