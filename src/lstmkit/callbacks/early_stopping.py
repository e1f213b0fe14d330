"""`EarlyStopping`: stop `fit` when the monitored quantity stops improving (Keras 3 semantics)."""

from __future__ import annotations

import numpy as np

from lstmkit.callbacks.monitor import MonitorCallback


class EarlyStopping(MonitorCallback):
    """Stop training after ``patience`` epochs without improvement of ``monitor``.

    As in Keras: the first monitored epoch always becomes the best; with a ``baseline`` an
    improvement resets the patience counter only if it also beats the baseline; epochs before
    ``start_from_epoch`` are ignored; with ``restore_best_weights`` the weights of the best epoch
    are put back at the end of training, whether or not training was stopped early.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.on_train_begin()

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self.monitor_value(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self.is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                # Copied: a model may hand out arrays sharing memory with its live parameters.
                self.best_weights = [np.array(w, copy=True) for w in self.model.get_weights()]
            if self.baseline is None or self.is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    f"Restoring model weights from the end of the best epoch {self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)
