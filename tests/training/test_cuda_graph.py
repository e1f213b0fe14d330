"""fit's CUDA-graph replay of the training step: where it is used, and (on a GPU) that it trains
exactly as the eager step does, through an epoch's shorter last batch, a learning-rate change
and validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmkit.callbacks import LearningRateScheduler
from lstmkit.layers import LSTM, Dense, Input
from lstmkit.models import Sequential
from lstmkit.training import cuda_graph
from lstmkit.utils import set_random_seed

CUDA = torch.cuda.is_available()


def model(optimizer="adam", device="cpu", stateful=False, **lstm):
    head = [Input(batch_shape=(8, 12, 3))] if stateful else [Input(shape=(12, 3))]
    m = Sequential([*head, LSTM(16, stateful=stateful, **lstm), Dense(4, activation="softmax")])
    m.compile(
        optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"], device=device
    )
    return m


def data(n=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12, 3)).astype("float32")
    y = np.eye(4, dtype="float32")[(x[:, :, 0].sum(1) > 0).astype(int) + 2 * (x[:, -1, 1] > 0)]
    return x, y


def built(m):
    x, y = data(8)
    m.train_on_batch(x, y)
    return m


@pytest.mark.parametrize(
    "optimizer, stateful, device, env, expected",
    [
        ("adam", False, "cuda", "1", True),
        ("adamw", False, "cuda", "1", True),
        ("sgd", False, "cuda", "1", True),
        ("rmsprop", False, "cuda", "1", False),  # foreach update: its step count on the host
        ("adam", True, "cuda", "1", False),  # stateful: the states would belong to the graph
        ("adam", False, "cpu", "1", False),
        ("adam", False, "cuda", "0", False),  # LSTMKIT_CUDA_GRAPHS=0
    ],
)
def test_eligible_only_where_replay_is_safe(
    monkeypatch, optimizer, stateful, device, env, expected
):
    monkeypatch.setenv("LSTMKIT_CUDA_GRAPHS", env)
    m = built(model(optimizer, stateful=stateful))
    torch_opt = m.optimizer.torch_optimizer
    # eligibility looks at the device named, the optimizer's update kind and the layers
    assert cuda_graph.eligible(torch.device(device), torch_opt, list(m.modules())) is expected
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda device_type=None: True)
    assert not cuda_graph.eligible(torch.device(device), torch_opt, list(m.modules()))


@pytest.mark.parametrize(
    "stateful, device, env, expected",
    [
        (False, "cuda", "1", True),
        (True, "cuda", "1", False),
        (False, "cpu", "1", False),
        (False, "cuda", "0", False),
    ],
)
def test_evaluation_steps_capture_with_any_optimizer(monkeypatch, stateful, device, env, expected):
    """An evaluation step (no optimizer) may capture where a training step with a fused update
    could, whatever the model's optimizer (here RMSprop, whose update cannot)."""
    monkeypatch.setenv("LSTMKIT_CUDA_GRAPHS", env)
    modules = list(built(model("rmsprop", stateful=stateful)).modules())
    assert cuda_graph.eligible(torch.device(device), None, modules) is expected


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize(
    "optimizer, lstm",
    [
        ("adam", {}),  # cuDNN
        ("sgd", {}),
        ("adam", dict(peephole=True, layer_norm=True, proj_size=8)),  # the Triton kernels
    ],
    ids=["adam", "sgd", "adam-triton-variants"],
)
def test_graphed_fit_trains_as_the_eager_fit(monkeypatch, optimizer, lstm, no_tf32):
    """Same seed, same data: the weights and the History after 3 epochs of 100 samples in
    batches of 16 (a last batch of 4 each epoch), the learning rate halved from epoch 2, with
    validation, agree between graph replay and eager steps (both on the same GPU; TF32 off)."""
    x, y = data()
    calls = []
    original = cuda_graph.GraphedStep._capture
    monkeypatch.setattr(
        cuda_graph.GraphedStep,
        "_capture",
        lambda self, *a, **k: calls.append(1) or original(self, *a, **k),
    )
    results = {}
    for env in ("0", "1"):
        monkeypatch.setenv("LSTMKIT_CUDA_GRAPHS", env)
        set_random_seed(3)
        m = model(optimizer, device="cuda", **lstm)
        calls.clear()
        history = m.fit(
            x,
            y,
            batch_size=16,
            epochs=3,
            shuffle=False,
            verbose=0,
            validation_data=data(20, seed=1),
            callbacks=[LearningRateScheduler(lambda epoch, lr: lr / 2 if epoch == 2 else lr)],
        )
        results[env] = (m.get_weights(), history.history, len(calls))
    (eager_w, eager_h, eager_captures), (graph_w, graph_h, graph_captures) = results.values()
    assert eager_captures == 0
    # the 16-sample step in epoch 0 (after 3 warm-up steps), and again when the rate changed;
    # the 4-sample batch, once an epoch, spends the 3 epochs warming up
    assert graph_captures == 2
    for a, b in zip(graph_w, eager_w, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in eager_h:
        np.testing.assert_allclose(graph_h[name], eager_h[name], rtol=1e-4, atol=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("lstm", [{}, dict(peephole=True)], ids=["cudnn", "triton"])
def test_graphed_evaluation_gives_the_eager_results(monkeypatch, lstm, no_tf32):
    """Validation in fit (8 batches of 8 a epoch and a last one of 4, for 2 epochs), evaluate
    and predict: the same History, results and predictions with their steps replayed as CUDA
    graphs as eagerly; one capture each (the validation's in its first epoch)."""
    x, y = data()
    validation = data(68, seed=1)
    captures = []
    original = cuda_graph.GraphedStep._capture
    monkeypatch.setattr(
        cuda_graph.GraphedStep,
        "_capture",
        lambda self, *a, **k: captures.append(self.kind) or original(self, *a, **k),
    )
    results = {}
    for env in ("0", "1"):
        monkeypatch.setenv("LSTMKIT_CUDA_GRAPHS", env)
        set_random_seed(5)
        m = model(device="cuda", **lstm)
        captures.clear()
        history = m.fit(
            x,
            y,
            batch_size=16,
            epochs=2,
            shuffle=False,
            verbose=0,
            validation_data=validation,
            validation_batch_size=8,
        )
        evaluated = m.evaluate(*validation, batch_size=8, verbose=0, return_dict=True)
        predicted = m.predict(validation[0], batch_size=8, verbose=0)
        results[env] = (history.history, evaluated, predicted, list(captures))
    (eager_h, eager_e, eager_p, eager_c), (graph_h, graph_e, graph_p, graph_c) = results.values()
    assert eager_c == []
    assert graph_c.count("evaluation") == 2  # fit's validation, then evaluate's own
    assert graph_c.count("prediction") == 1
    np.testing.assert_allclose(graph_p, eager_p, rtol=1e-5, atol=1e-6)
    for name in eager_h:
        np.testing.assert_allclose(graph_h[name], eager_h[name], rtol=1e-4, atol=1e-6)
    for name in eager_e:
        np.testing.assert_allclose(graph_e[name], eager_e[name], rtol=1e-4, atol=1e-6)
