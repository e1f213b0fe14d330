"""Keras-compatible callbacks for `fit`."""

from lstmkit.callbacks.base import Callback, CallbackList, History
from lstmkit.callbacks.csv_logger import CSVLogger
from lstmkit.callbacks.early_stopping import EarlyStopping
from lstmkit.callbacks.model_checkpoint import ModelCheckpoint
from lstmkit.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from lstmkit.callbacks.simple import LambdaCallback, LearningRateScheduler, TerminateOnNaN

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "EarlyStopping",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "CSVLogger",
    "TerminateOnNaN",
    "LearningRateScheduler",
    "LambdaCallback",
]
