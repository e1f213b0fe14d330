"""lstmkit: the Keras way of writing LSTM networks, on PyTorch.

``from lstmkit.models import Sequential`` and ``from lstmkit.layers import LSTM, Dense`` run
the Keras recipe unchanged; ``import lstmkit as lk; lk.Sequential([...])`` works too.
"""

from lstmkit import callbacks, layers, losses, metrics, models, optimizers, utils
from lstmkit.layers import LSTM, Dense, Dropout, Input
from lstmkit.models import Model, Sequential, load_model
from lstmkit.spec import LSTMSpec

__version__ = "0.1.0"

__all__ = [
    "LSTM",
    "Dense",
    "Dropout",
    "Input",
    "LSTMSpec",
    "Model",
    "Sequential",
    "callbacks",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "utils",
]
