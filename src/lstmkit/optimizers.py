"""Optimizers by Keras name and with Keras defaults, running torch's fused/foreach updates.

An lstmkit optimizer holds its hyperparameters until the model's parameters exist; `build`
then creates the torch optimizer. ``learning_rate`` can be read and assigned at any time
(callbacks such as `ReduceLROnPlateau` do), as with a Keras optimizer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class Optimizer:
    """Base class: ``torch_class`` plus a mapping from Keras hyperparameters to torch's."""

    torch_class: type[torch.optim.Optimizer]
    keras_name: str

    def __init__(
        self,
        learning_rate: float = 0.001,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
    ):
        if float(learning_rate) <= 0:
            raise ValueError(f"learning_rate must be positive; got {learning_rate!r}")
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError("Give at most one of clipnorm and global_clipnorm")
        self._learning_rate = float(learning_rate)
        self.clipnorm = clipnorm
        self.global_clipnorm = global_clipnorm
        self.torch_optimizer: torch.optim.Optimizer | None = None

    def torch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``torch_class`` besides params and lr."""
        raise NotImplementedError

    def build(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        params = [p for p in params if p.requires_grad]
        kwargs = self.torch_kwargs()
        if "fused" in kwargs:  # torch's fused kernels exist for CPU and CUDA parameters
            kwargs["fused"] = all(p.device.type in ("cpu", "cuda") for p in params)
        self.torch_optimizer = self.torch_class(params, lr=self._learning_rate, **kwargs)
        return self.torch_optimizer

    @property
    def built(self) -> bool:
        return self.torch_optimizer is not None

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = float(value)
        if self.torch_optimizer is not None:
            for group in self.torch_optimizer.param_groups:
                group["lr"] = self._learning_rate

    @property
    def clips(self) -> bool:
        """Whether gradients are clipped at all (the training step skips the call if not)."""
        return self.clipnorm is not None or self.global_clipnorm is not None

    def clip_gradients(self, params: list[torch.nn.Parameter]) -> None:
        if self.global_clipnorm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.global_clipnorm, foreach=True)
        elif self.clipnorm is not None:
            for p in params:
                torch.nn.utils.clip_grad_norm_([p], self.clipnorm)

    def get_config(self) -> dict[str, Any]:
        config = {
            k: v for k, v in vars(self).items() if not k.startswith("_") and k != "torch_optimizer"
        }
        return {"learning_rate": self._learning_rate, **config}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015); Keras defaults (epsilon 1e-7)."""

    torch_class, keras_name = torch.optim.Adam, "adam"

    def __init__(
        self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs
    ):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def torch_kwargs(self):
        return {
            "betas": (self.beta_1, self.beta_2),
            "eps": self.epsilon,
            "amsgrad": self.amsgrad,
            "fused": True,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019); Keras default decay 0.004."""

    torch_class, keras_name = torch.optim.AdamW, "adamw"

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        **kwargs,
    ):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, **kwargs)
        self.weight_decay = weight_decay

    def torch_kwargs(self):
        return {**super().torch_kwargs(), "weight_decay": self.weight_decay}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum; Keras default lr 0.01."""

    torch_class, keras_name = torch.optim.SGD, "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = momentum, nesterov

    def torch_kwargs(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov, "fused": True}


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e); Keras defaults rho 0.9, epsilon 1e-7."""

    torch_class, keras_name = torch.optim.RMSprop, "rmsprop"

    def __init__(
        self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs
    ):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def torch_kwargs(self):
        return {
            "alpha": self.rho,
            "momentum": self.momentum,
            "eps": self.epsilon,
            "centered": self.centered,
            "foreach": True,
        }


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Dozat 2016); Keras defaults."""

    torch_class, keras_name = torch.optim.NAdam, "nadam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def torch_kwargs(self):
        return {"betas": (self.beta_1, self.beta_2), "eps": self.epsilon, "foreach": True}


_BY_NAME: dict[str, type[Optimizer]] = {
    cls.keras_name: cls for cls in (Adam, AdamW, SGD, RMSprop, Nadam)
}


def get(identifier: str | Optimizer) -> Optimizer:
    """An optimizer from a Keras name (``"adam"``) or an lstmkit optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if not isinstance(identifier, str) or identifier.lower() not in _BY_NAME:
        raise ValueError(f"Unknown optimizer {identifier!r}; expected one of {sorted(_BY_NAME)}")
    return _BY_NAME[identifier.lower()]()


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    return {"class_name": optimizer.keras_name, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any]) -> Optimizer:
    return _BY_NAME[config["class_name"]](**config["config"])
