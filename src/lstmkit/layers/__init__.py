"""Keras-compatible layers (``from lstmkit.layers import LSTM, Dense``)."""

from lstmkit.layers.core import Activation, Dense, Dropout, Flatten, Input, InputLayer
from lstmkit.layers.layer import Layer
from lstmkit.layers.lstm import LSTM
from lstmkit.layers.masking import Embedding, Masking
from lstmkit.layers.wrappers import Bidirectional, RepeatVector, TimeDistributed

__all__ = [
    "LSTM",
    "Activation",
    "Bidirectional",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "Input",
    "InputLayer",
    "Layer",
    "Masking",
    "RepeatVector",
    "TimeDistributed",
]

# Layer classes that a saved model may name; loading looks classes up here and nowhere else.
REGISTRY: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (LSTM, Activation, Dense, Dropout, Embedding, Flatten, InputLayer, Masking)
}
REGISTRY.update({cls.__name__: cls for cls in (Bidirectional, RepeatVector, TimeDistributed)})
