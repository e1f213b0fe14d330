"""`CSVLogger`: write each epoch's logs as a row of a CSV file (Keras 3 semantics)."""

from __future__ import annotations

import csv
import os
from typing import IO

from lstmkit.callbacks.base import Callback


class CSVLogger(Callback):
    """Stream the epoch logs to ``filename``, one row per epoch, flushed as each epoch ends.

    As in Keras: the columns are ``epoch`` (0-based) then the sorted keys of the first epoch's
    logs, plus a ``val_`` twin of each key when there is no validation key (missing values are
    written as ``NA``); ``append=True`` keeps an existing file and writes no header if the file
    already has one.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.csv_file: IO[str] | None = None
        self.writer: csv.DictWriter | None = None
        self.keys: list[str] = []
        self.write_header = True

    def on_train_begin(self, logs=None):
        self.on_train_end()
        self.write_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                self.write_header = not f.readline()
        # Kept open for the whole of training and closed by `on_train_end`.
        self.csv_file = open(
            self.filename, "a" if self.append else "w", newline="", encoding="utf-8"
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.writer is None:
            keys = sorted(logs)
            if keys and not any(k.startswith("val_") for k in keys):
                keys += [f"val_{k}" for k in keys]
            self.keys = keys
            self.writer = csv.DictWriter(
                self.csv_file, fieldnames=["epoch", *keys], delimiter=self.sep
            )
            if self.write_header:
                self.writer.writeheader()
        row = {"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}}
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
