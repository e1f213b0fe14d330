"""Recurrence engines. Each backend module offers ``supports`` and ``lstm`` (see dispatch)."""

from lstmkit.kernels.dispatch import lstm, select_backend
from lstmkit.kernels.weights import LSTMNoise, LSTMWeights

__all__ = ["LSTMNoise", "LSTMWeights", "lstm", "select_backend"]
