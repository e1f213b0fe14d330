"""Recurrence engines. Each backend module offers `lstm(x, h0, c0, weights, spec)`."""

from lstmkit.kernels.dispatch import lstm, select_backend
from lstmkit.kernels.weights import LSTMWeights

__all__ = ["LSTMWeights", "lstm", "select_backend"]
