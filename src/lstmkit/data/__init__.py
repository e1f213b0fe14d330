"""Data utilities: Keras-style sequence padding, one-hot labels and benchmark datasets."""

from lstmkit.data.datasets import load_japanese_vowels
from lstmkit.data.sequence import pad_sequences, to_categorical

__all__ = ["load_japanese_vowels", "pad_sequences", "to_categorical"]

from lstmkit.data.scalers import (  # noqa: E402
    InstanceScaler,
    MinMaxScaler,
    RobustScaler,
    StandardScaler,
)
from lstmkit.data.windows import (  # noqa: E402
    TimeseriesDataset,
    WindowDataset,
    sliding_windows,
    timeseries_dataset_from_array,
)

__all__ += [
    "InstanceScaler",
    "MinMaxScaler",
    "RobustScaler",
    "StandardScaler",
    "TimeseriesDataset",
    "WindowDataset",
    "sliding_windows",
    "timeseries_dataset_from_array",
]
