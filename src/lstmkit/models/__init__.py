"""Models: `Sequential`, the `Model` base class, and `load_model`."""

from lstmkit.models.model import Model
from lstmkit.models.saving import load_model
from lstmkit.models.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model"]
