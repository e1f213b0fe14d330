"""`ModelCheckpoint`: save the model or its weights during `fit` (Keras 3 semantics)."""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping

from lstmkit.callbacks.monitor import MonitorCallback


class ModelCheckpoint(MonitorCallback):
    """Save the model (``save``) or its weights (``save_weights``) every epoch or every N batches.

    As in Keras: ``filepath`` is formatted with ``epoch`` (1-based), ``batch`` (1-based, batch-level
    saves only) and the keys of the logs, e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}.keras"``; with
    ``save_best_only`` a file is written only when ``monitor`` improves on the best value seen so
    far (initially ``initial_value_threshold``), and if ``monitor`` is missing from the logs a
    warning is given and the file is written anyway. ``save_freq`` is ``"epoch"`` or a number of
    batches, counted across epochs.
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__(monitor, mode, best=initial_value_threshold)
        if save_freq != "epoch" and (
            not isinstance(save_freq, int) or isinstance(save_freq, bool) or save_freq < 1
        ):
            raise ValueError(
                f"save_freq must be 'epoch' or a positive number of batches; got {save_freq!r}"
            )
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_since_save = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def format_path(self, epoch: int, batch: int | None, logs: Mapping[str, float] | None) -> str:
        """``filepath`` for 0-based ``epoch`` and ``batch``; logs are read only if named in it."""
        fields = {"epoch": epoch + 1}
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format_map(ChainMap(fields, {} if logs is None else logs))
        except KeyError as e:
            raise KeyError(
                f"Failed to format ModelCheckpoint filepath {self.filepath!r}: {e}"
            ) from e

    def _save(self, epoch: int, batch: int | None, logs: Mapping[str, float] | None) -> None:
        path = self.format_path(epoch, batch, logs)
        if not self._should_save(epoch, logs, path):
            return
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path, overwrite=True)
        else:
            self.model.save(path, overwrite=True)

    def _should_save(self, epoch: int, logs: Mapping[str, float] | None, path: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: saving model to {path}")
            return True
        current = self.monitor_value(logs, "Saving the best model only")
        if current is None:
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if not self.is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {best}")
            return False
        if self.verbose > 0:
            print(
                f"Epoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                f"saving model to {path}"
            )
        self.best = current
        return True
