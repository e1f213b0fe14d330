"""`Trainer`: Keras's compile / fit / evaluate / predict for a `torch.nn.Module` model.

The loop keeps everything on the model's device: batches are slices of device tensors, the loss
and metrics accumulate there, and the host reads them only at the end of an epoch, when a
callback asks for batch logs, or when the progress bar refreshes (at most twice a second).
On CUDA, fit replays its training and validation steps, evaluate and predict their steps, as
CUDA graphs where that is safe (`cuda_graph`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch

from lstmkit import losses, optimizers
from lstmkit import metrics as metrics_lib
from lstmkit.callbacks.base import Callback, CallbackList, History, LazyLogs
from lstmkit.layers.layer import Layer
from lstmkit.training import cuda_graph
from lstmkit.training.cuda_graph import GraphedStep
from lstmkit.training.data import (
    ArrayData,
    Batch,
    IterableData,
    class_weights_to_sample_weights,
    is_iterable_source,
)
from lstmkit.training.progress import ProgbarLogger


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _verbosity(verbose: int | str) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto'; got {verbose!r}")
    return int(verbose)


def _batch_size(batch_size: Any) -> int:
    """Keras's default of 32 when None; otherwise a positive integer (NumPy ints welcome)."""
    if batch_size is None:
        return 32
    if not isinstance(batch_size, Integral) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    return int(batch_size)


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


class Trainer:
    """Mixin giving a model Keras's training API. The model must be a `torch.nn.Module`."""

    optimizer: optimizers.Optimizer | None = None
    loss: losses.Loss | None = None

    # -- compile --------------------------------------------------------------------------
    def compile(
        self,
        optimizer: str | optimizers.Optimizer = "rmsprop",
        loss: str | losses.Loss | None = None,
        metrics: Sequence[str] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        """Configure training, as Keras's ``Model.compile``.

        Args:
            optimizer: name (``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"``, ``"nadam"``) or an
                `lstmkit.optimizers` instance, e.g. ``Adam(learning_rate=3e-4)``.
            loss: Keras alias (``"categorical_crossentropy"``, ``"mse"`` ...) or a loss object.
            metrics: names such as ``["accuracy"]`` (resolved from the label shape, as Keras).
            device: where to train; by default CUDA when available, else the CPU.
        """
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='categorical_crossentropy'")
        if isinstance(metrics, str):
            raise ValueError(f"metrics must be a list of names, e.g. [{metrics!r}]")
        for name in metrics or []:
            metrics_lib.check(name)
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metric_names = list(metrics or [])
        self.device = torch.device(device) if device is not None else default_device()
        self.to(self.device)
        self.stop_training = False
        self._metrics: list[metrics_lib.Mean] = []

    def _require_compiled(self) -> None:
        if self.loss is None:
            raise RuntimeError("The model must be compiled first: call model.compile(...)")

    # -- data -----------------------------------------------------------------------------
    def _adapt(self, x: Any, y: Any = None, sample_weight: Any = None) -> ArrayData | IterableData:
        if is_iterable_source(x):
            if y is not None or sample_weight is not None:
                raise ValueError(
                    "when x is an iterable of batches, y and sample_weight must be None"
                )
            return IterableData(x, self.device)
        return ArrayData(x, y, sample_weight, self.device)

    @torch.no_grad()
    def _output_shape(self, x: torch.Tensor) -> tuple[int | None, ...]:
        """Output shape (batch axis None) from one sample, or from one batch of a stateful
        model's fixed size, whose carried states are left as they were; builds the model on
        first use."""
        stateful = [m for m in self.modules() if getattr(m, "stateful", False)]
        rows = max([m.batch_size or 1 for m in stateful], default=1)
        carried = [m.states for m in stateful]
        try:
            return (None, *self.eval()(x[:rows]).shape[1:])
        finally:
            for m, states in zip(stateful, carried, strict=True):
                m.states = states

    def _prepare(self, first: Batch) -> None:
        """Build the model on a first batch, check the targets fit the loss, make metrics."""
        x, y, _ = first
        if y is None:
            raise ValueError("fit() and evaluate() need targets y")
        self.to(self.device)
        output_shape = self._output_shape(x)
        if not self.optimizer.built:
            self.optimizer.build(self.parameters())
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        self._regularized = [m for m in layers if m.weight_regularizers or m.activity_regularizer]
        self._constrained = [m for m in layers if m.weight_constraints]
        self.loss.check_targets(y, output_shape)
        self._metrics = [
            metrics_lib.get(name, tuple(y.shape), (y.shape[0], *output_shape[1:]))
            for name in self.metric_names
        ]

    def _first_batch(self, data: ArrayData | IterableData) -> Batch:
        if isinstance(data, ArrayData):
            if len(data) == 0:
                raise ValueError("x is empty: expected at least one sample")
            return data.x, data.y, data.sample_weight
        try:
            return next(iter(data.batches(0)))
        except StopIteration:
            raise ValueError("the batch iterable is empty") from None

    # -- steps ----------------------------------------------------------------------------
    def _train_step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        sw: torch.Tensor | None,
        graphed: GraphedStep | None = None,
    ) -> None:
        """One training step: eagerly, or through ``graphed`` (a CUDA graph of `_update`)."""
        if graphed is not None:
            loss, y_pred, mask = graphed(x, y, sw)
        else:
            self.optimizer.torch_optimizer.zero_grad(set_to_none=True)
            loss, y_pred, mask = self._update(x, y, sw)
        for layer in self._constrained:
            layer.apply_constraints()
        self._track(loss, y, y_pred, sw, mask)

    def _update(self, x: torch.Tensor, y: torch.Tensor, sw: torch.Tensor | None):
        """Forward, loss, backward and the optimizer's update (the caller sets the gradients to
        None first); returns (loss, y_pred, mask), detached."""
        torch_opt = self.optimizer.torch_optimizer
        y_pred, mask = self.call_with_mask(x)
        loss = self._total_loss(y, y_pred, sw, mask)
        loss.backward()
        if self.optimizer.clips:
            self.optimizer.clip_gradients([p for g in torch_opt.param_groups for p in g["params"]])
        torch_opt.step()
        return loss.detach(), y_pred.detach(), mask  # the autograd graph can go now

    def _test_step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        sw: torch.Tensor | None,
        graphed: GraphedStep | None = None,
    ) -> None:
        """One evaluation step: eagerly, or through ``graphed`` (a CUDA graph of `_evaluate`)."""
        if graphed is not None:
            loss, y_pred, mask = graphed(x, y, sw)
        else:
            loss, y_pred, mask = self._evaluate(x, y, sw)
        self._track(loss, y, y_pred, sw, mask)

    def _evaluate(self, x: torch.Tensor, y: torch.Tensor, sw: torch.Tensor | None):
        """Forward and loss of an evaluation step: (loss, y_pred, mask)."""
        y_pred, mask = self.call_with_mask(x)
        return self._total_loss(y, y_pred, sw, mask), y_pred, mask

    def _predict(self, x: torch.Tensor, y: None = None, sw: None = None) -> tuple[torch.Tensor]:
        """Forward of a prediction step: (y_pred,)."""
        return (self(x),)

    def _graphed(self, step, kind: str, optimizer=None) -> GraphedStep | None:
        """The CUDA-graph replay of ``step`` where it is safe (`cuda_graph`): `_update` with the
        torch optimizer, or `_evaluate` or `_predict` without one."""
        if not cuda_graph.eligible(torch.device(self.device), optimizer, list(self.modules())):
            return None
        return GraphedStep(step, optimizer, kind)

    def call_with_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The model's output and its step mask (None here; `Sequential` propagates masks)."""
        return self(x), None

    def _total_loss(self, y, y_pred, sw, mask) -> torch.Tensor:
        """The compiled loss plus the layers' regularization terms, as Keras reports it."""
        loss = self.loss(y, y_pred, sw, mask)
        for layer in self._regularized:
            for term in layer.losses:
                loss = loss + term
        return loss

    @property
    def losses(self) -> list[torch.Tensor]:
        """Every regularization term of the model's layers (Keras's ``model.losses``)."""
        return [term for m in self.modules() if isinstance(m, Layer) for term in m.losses]

    def _track(self, loss, y, y_pred, sw, mask) -> None:
        self._loss_mean.update_scalar(loss.detach(), y.shape[0])
        for m in self._metrics:
            m.update_state(y, y_pred.detach(), sw, mask)

    def _reset_metrics(self) -> None:
        self._loss_mean = metrics_lib.Mean("loss")
        for m in self._metrics:
            m.reset_state()

    def _logs(self, prefix: str = "") -> dict[str, float]:
        values = [self._loss_mean, *self._metrics]
        return {prefix + m.name: m.result() for m in values}

    # -- fit ------------------------------------------------------------------------------
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: Sequence[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
    ) -> History:
        """Train for ``epochs`` epochs, as Keras's ``Model.fit``; returns the `History`."""
        self._require_compiled()
        verbose = _verbosity(verbose)
        batch_size = _batch_size(batch_size)
        if not isinstance(validation_freq, Integral) or validation_freq < 1:
            raise ValueError(f"validation_freq must be a positive integer; got {validation_freq!r}")
        data = self._adapt(x, y, sample_weight)
        if class_weight is not None:
            if not isinstance(data, ArrayData) or data.y is None:
                raise ValueError("class_weight needs array targets y")
            weights = class_weights_to_sample_weights(data.y, class_weight)
            data.sample_weight = (
                weights if data.sample_weight is None else data.sample_weight * weights
            )
        val_data = None
        if validation_split:
            if not isinstance(data, ArrayData):
                raise ValueError(
                    "validation_split needs array inputs; pass validation_data instead"
                )
            data, val_data = data.split(validation_split)
        if validation_data is not None:
            val_data = self._validation_source(validation_data)
        self._prepare(self._first_batch(data))
        if val_data is not None:
            vx, vy, _ = self._first_batch(val_data)
            if vy is None:
                raise ValueError("validation_data needs targets: (x_val, y_val)")
            self.loss.check_targets(vy, self._output_shape(vx))

        steps = steps_per_epoch or data.steps(batch_size)
        self.history = History()
        user_callbacks = list(callbacks or [])
        progress = [ProgbarLogger(verbose, lambda: self._logs())] if verbose else []
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        # Keras's order: the user's callbacks first, so that what they add to the epoch logs
        # (e.g. "learning_rate") reaches the progress bar and the History
        cbs = CallbackList([*user_callbacks, *progress, self.history], self, params)
        self.stop_training = False
        graphed = self._graphed(self._update, "training", self.optimizer.torch_optimizer)
        graphed_validation = (
            None if val_data is None else self._graphed(self._evaluate, "evaluation")
        )
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            self.train()
            self._reset_metrics()
            cbs.on_epoch_begin(epoch)
            for step, (xb, yb, swb) in enumerate(data.batches(batch_size, shuffle)):
                if steps_per_epoch is not None and step >= steps_per_epoch:
                    break
                cbs.on_train_batch_begin(step)
                self._train_step(xb, yb, swb, graphed)
                cbs.on_train_batch_end(step, LazyLogs(self._logs))
                if self.stop_training:
                    break
            logs = self._logs()
            if val_data is not None and (epoch + 1) % validation_freq == 0:
                logs.update(
                    self._run_evaluation(
                        val_data,
                        validation_batch_size or batch_size,
                        prefix="val_",
                        callbacks=cbs,
                        graphed=graphed_validation,
                    )
                )
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        self.eval()
        cbs.on_train_end()
        return self.history

    def _validation_source(self, validation_data: Any) -> ArrayData | IterableData:
        if is_iterable_source(validation_data):
            return IterableData(validation_data, self.device)
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight)"
            )
        return ArrayData(*validation_data, device=self.device, name="x_val")

    # -- evaluate / predict ---------------------------------------------------------------
    @torch.no_grad()
    def _run_evaluation(
        self, data, batch_size: int, prefix: str = "", callbacks=None, graphed=None
    ) -> dict[str, float]:
        self.eval()
        self._reset_metrics()
        cbs = callbacks or CallbackList([], self, {})
        cbs.on_test_begin()
        for step, (xb, yb, swb) in enumerate(data.batches(batch_size)):
            cbs.on_test_batch_begin(step)
            self._test_step(xb, yb, swb, graphed)
            cbs.on_test_batch_end(step, LazyLogs(self._logs))
        logs = self._logs(prefix)
        cbs.on_test_end(logs)
        return logs

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        sample_weight: Any = None,
        callbacks: Sequence[Callback] | None = None,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """Loss and metrics on the given data, as Keras's ``Model.evaluate``."""
        self._require_compiled()
        _verbosity(verbose)
        batch_size = _batch_size(batch_size)
        data = self._adapt(x, y, sample_weight)
        self._prepare(self._first_batch(data))
        cbs = CallbackList(list(callbacks or []), self, {"steps": data.steps(batch_size)})
        graphed = self._graphed(self._evaluate, "evaluation")
        logs = self._run_evaluation(data, batch_size, callbacks=cbs, graphed=graphed)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    @torch.no_grad()
    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        callbacks: Sequence[Callback] | None = None,
    ) -> np.ndarray:
        """Model outputs for ``x`` as a NumPy array, batch by batch (Keras's ``Model.predict``)."""
        _verbosity(verbose)
        batch_size = _batch_size(batch_size)
        self._ensure_device()
        data = self._adapt(x)
        self.eval()
        cbs = CallbackList(list(callbacks or []), self, {"steps": data.steps(batch_size)})
        cbs.on_predict_begin()
        graphed = self._graphed(self._predict, "prediction")
        outputs = []
        for step, (xb, _, _) in enumerate(data.batches(batch_size)):
            cbs.on_predict_batch_begin(step)
            if graphed is None:
                outputs.append(self(xb))
            else:  # a replay's output is the graph's, overwritten by the next
                outputs.append(graphed(xb, None, None)[0].clone())
            cbs.on_predict_batch_end(step, {"outputs": outputs[-1]})
        cbs.on_predict_end()
        if not outputs:
            raise ValueError("x is empty: expected at least one sample")
        return _to_numpy(torch.cat(outputs))

    def _ensure_device(self) -> None:
        if getattr(self, "device", None) is None:
            self.device = default_device()
        device = torch.device(self.device)
        # moving costs more than a small model's predict at batch 1: look at the first weight
        # (layers built later are built on the model's device)
        first = next(itertools.chain(self.parameters(), self.buffers()), None)
        if (
            first is None
            or first.device.type != device.type
            or (device.index not in (None, first.device.index))
        ):
            self.to(device)

    # -- single batches -------------------------------------------------------------------
    def train_on_batch(
        self,
        x: Any,
        y: Any,
        sample_weight: Any = None,
        class_weight: dict[int, float] | None = None,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """One gradient step on one batch; returns that batch's loss (and metrics)."""
        self._require_compiled()
        data = ArrayData(x, y, sample_weight, self.device)
        if class_weight is not None:
            weights = class_weights_to_sample_weights(data.y, class_weight)
            data.sample_weight = (
                weights if data.sample_weight is None else data.sample_weight * weights
            )
        self._prepare(self._first_batch(data))
        self.train()
        self._reset_metrics()
        self._train_step(data.x, data.y, data.sample_weight)
        return self._batch_result(return_dict)

    @torch.no_grad()
    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None, return_dict: bool = False):
        """Loss (and metrics) of one batch without updating the weights."""
        self._require_compiled()
        data = ArrayData(x, y, sample_weight, self.device)
        self._prepare(self._first_batch(data))
        self.eval()
        self._reset_metrics()
        self._test_step(data.x, data.y, data.sample_weight)
        return self._batch_result(return_dict)

    @torch.no_grad()
    def predict_on_batch(self, x: Any) -> np.ndarray:
        """Model outputs for one batch as a NumPy array: `predict` without batching or
        callbacks, so that a stateful model stepped one time step per call (streaming) pays
        little beyond the layers themselves."""
        self._ensure_device()
        data = ArrayData(x, device=self.device)
        if len(data) == 0:
            raise ValueError("x is empty: expected at least one sample")
        self.eval()
        return _to_numpy(self(data.x))

    def _batch_result(self, return_dict: bool):
        logs = self._logs()
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values
