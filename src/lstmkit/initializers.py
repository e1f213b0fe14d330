"""Weight initializers by Keras name, for weights in Keras layout (fan_in, ..., fan_out).

Each initializer is a small `Named` object: ``init(shape) -> torch.Tensor`` (float32, on the
CPU, drawn from torch's global generator so `lstmkit.utils.set_random_seed` makes it
repeatable) whose config round-trips through `get` and `serialize`.
"""

from __future__ import annotations

import math

import torch

from lstmkit.named import Named, registry, resolve, serialize

__all__ = ["Initializer", "get", "serialize"]

# stddev of a unit normal truncated to [-2, 2] (Keras's VarianceScaling correction)
_TRUNCATED_STD = 0.87962566103423978


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer(Named):
    """Base class: subclasses implement ``__call__(shape)``; keyword args form the config."""

    def __call__(self, shape: tuple[int, ...]) -> torch.Tensor:
        raise NotImplementedError


class Zeros(Initializer):
    keras_name = "zeros"

    def __call__(self, shape):
        return torch.zeros(shape)


class Ones(Initializer):
    keras_name = "ones"

    def __call__(self, shape):
        return torch.ones(shape)


class Constant(Initializer):
    keras_name = "constant"

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape):
        return torch.full(shape, self.value)


class RandomNormal(Initializer):
    keras_name = "random_normal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape):
        return torch.randn(shape) * self.stddev + self.mean


class RandomUniform(Initializer):
    keras_name = "random_uniform"

    def __init__(self, minval: float = -0.05, maxval: float = 0.05):
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape):
        return torch.empty(shape).uniform_(self.minval, self.maxval)


class TruncatedNormal(Initializer):
    keras_name = "truncated_normal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape):
        t = torch.empty(shape)
        torch.nn.init.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0)
        return t * self.stddev + self.mean


class VarianceScaling(Initializer):
    """Keras's VarianceScaling: variance ``scale / n`` with n the fan_in, fan_out or their mean."""

    keras_name = "variance_scaling"

    def __init__(
        self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal"
    ):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode must be 'fan_in', 'fan_out' or 'fan_avg'; got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "distribution must be 'truncated_normal', 'untruncated_normal' or 'uniform'; "
                f"got {distribution!r}"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape):
        fan_in, fan_out = _fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return torch.empty(shape).uniform_(-limit, limit)
        if self.distribution == "untruncated_normal":
            return torch.randn(shape) * math.sqrt(variance)
        t = torch.empty(shape)
        torch.nn.init.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0)
        return t * (math.sqrt(variance) / _TRUNCATED_STD)


class Orthogonal(Initializer):
    """Orthogonal matrix (Saxe et al. 2014) via QR of a normal draw, as Keras computes it."""

    keras_name = "orthogonal"

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def __call__(self, shape):
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = torch.randn(max(rows, cols), min(rows, cols))
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))
        if rows < cols:
            q = q.t()
        return self.gain * q.reshape(shape)


class Identity(Initializer):
    keras_name = "identity"

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def __call__(self, shape):
        if len(shape) != 2:
            raise ValueError(f"identity initializer needs a 2D shape; got {tuple(shape)}")
        return self.gain * torch.eye(*shape)


def _scaled(name: str, scale: float, mode: str, distribution: str) -> type[VarianceScaling]:
    """A fixed VarianceScaling under its own Keras name (``glorot_uniform`` ...)."""

    class Scaled(VarianceScaling):
        keras_name = name

        def __init__(self):
            super().__init__(scale, mode, distribution)

        def get_config(self):
            return {}

    Scaled.__name__ = Scaled.__qualname__ = "".join(w.title() for w in name.split("_"))
    return Scaled


GlorotUniform = _scaled("glorot_uniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _scaled("glorot_normal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _scaled("he_uniform", 2.0, "fan_in", "uniform")
HeNormal = _scaled("he_normal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _scaled("lecun_uniform", 1.0, "fan_in", "uniform")
LecunNormal = _scaled("lecun_normal", 1.0, "fan_in", "truncated_normal")

_BY_NAME = registry(
    Zeros,
    Ones,
    Constant,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Orthogonal,
    Identity,
    GlorotUniform,
    GlorotNormal,
    HeUniform,
    HeNormal,
    LecunUniform,
    LecunNormal,
)
_BY_NAME.update(uniform=RandomUniform, normal=RandomNormal)  # Keras's short aliases


def get(identifier: str | dict | Initializer) -> Initializer:
    """An initializer from a Keras name, a ``{"class_name", "config"}`` dict or an instance."""
    return resolve("initializer", identifier, _BY_NAME)
