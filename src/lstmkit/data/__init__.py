"""Data utilities: Keras-style sequence padding, one-hot labels and benchmark datasets."""

from lstmkit.data.datasets import load_japanese_vowels
from lstmkit.data.sequence import pad_sequences, to_categorical

__all__ = ["load_japanese_vowels", "pad_sequences", "to_categorical"]
