"""`CSVLogger`: write each epoch's logs as a row of a CSV file (Keras 3 semantics)."""

from __future__ import annotations

import csv
import os
from typing import IO


class _Dialect(csv.excel):
    """Keras writes with the ``excel`` dialect; only the delimiter changes."""


from lstmkit.callbacks.base import Callback  # noqa: E402
