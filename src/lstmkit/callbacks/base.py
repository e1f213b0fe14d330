"""`Callback`: Keras's hook names, called by `fit`, `evaluate` and `predict`.

Batch-level ``logs`` are a `LazyLogs` mapping: the metric values are copied from the device only
if a callback reads them, so callbacks that ignore batch logs cost no synchronisation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class LazyLogs(Mapping):
    """A read-only mapping whose values are computed on first access."""

    def __init__(self, compute: Callable[[], dict[str, float]]):
        self._compute = compute
        self._values: dict[str, float] | None = None

    def _resolved(self) -> dict[str, float]:
        if self._values is None:
            self._values = self._compute()
        return self._values

    def __getitem__(self, key: str) -> float:
        return self._resolved()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolved())

    def __len__(self) -> int:
        return len(self._resolved())


class Callback:
    """Base class for callbacks; ``self.model`` and ``self.params`` are set by the training loop.

    Override any of the ``on_*`` hooks. ``logs`` maps metric names to floats (``loss``,
    ``accuracy``, ``val_loss`` ...). Setting ``self.model.stop_training = True`` ends `fit`
    after the current batch.
    """

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...


_HOOKS = [name for name in vars(Callback) if name.startswith("on_")]


class CallbackList(Callback):
    """Calls each hook on every callback in order; hooks nobody overrides cost nothing."""

    def __init__(self, callbacks: list[Callback], model: Any, params: dict[str, Any]):
        super().__init__()
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        for hook in _HOOKS:
            bound = [
                getattr(cb, hook)
                for cb in self.callbacks
                if getattr(type(cb), hook) is not getattr(Callback, hook)
            ]
            setattr(self, hook, _fan_out(bound))


def _fan_out(hooks: list[Callable[..., None]]) -> Callable[..., None]:
    if not hooks:
        return lambda *args, **kwargs: None

    def call_all(*args: Any, **kwargs: Any) -> None:
        for hook in hooks:
            hook(*args, **kwargs)

    return call_all


class History(Callback):
    """Records the epoch logs; `fit` returns it. ``history.history["val_loss"]`` and so on."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
