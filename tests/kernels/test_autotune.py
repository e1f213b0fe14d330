"""Dispatch by timing: the fastest backend is measured once per kind of call and cached."""

import json

import pytest
import torch

from lstmkit.kernels import autotune, cpu, dispatch
from lstmkit.kernels.weights import LSTMWeights
from lstmkit.spec import LSTMSpec

SPEC = LSTMSpec(8)


@pytest.fixture
def tuning(tmp_path, monkeypatch):
    """Timing on, the cache in a fresh folder, and the in-memory cache emptied."""
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "1")
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(autotune, "_memory", {})
    monkeypatch.setattr(autotune, "_loaded_from", None)
    return tmp_path / autotune.CACHE_FILE


def call(batch=4, steps=5, grad=True):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, steps, 3, generator=g)
    h0, c0 = torch.zeros(batch, 8), torch.zeros(batch, 8)
    weights = LSTMWeights(
        kernel=(0.3 * torch.randn(3, 32, generator=g)).requires_grad_(grad),
        recurrent_kernel=(0.3 * torch.randn(8, 32, generator=g)).requires_grad_(grad),
        bias=torch.zeros(32).requires_grad_(grad),
    )
    return x, h0, c0, weights


def spy_on_timing(monkeypatch):
    """Count the backend runs made by timing."""
    runs = []
    original = autotune._time

    def counted(run, *args):
        runs.append(run)
        return original(run, *args)

    monkeypatch.setattr(autotune, "_time", counted)
    return runs


def test_first_call_times_candidates_then_cache_file_answers(tuning, monkeypatch):
    runs = spy_on_timing(monkeypatch)
    x, h0, c0, w = call()
    out, _, _ = dispatch.lstm(x, h0, c0, w, SPEC)
    assert len(runs) == 2 * (autotune.ROUNDS + 1)  # cpu and native, warm-up included
    stored = json.loads(tuning.read_text())
    assert len(stored) == 1 and next(iter(stored.values())) in ("cpu", "native")
    # a new process (empty memory) reads the file instead of timing again
    monkeypatch.setattr(autotune, "_memory", {})
    monkeypatch.setattr(autotune, "_loaded_from", None)
    again, _, _ = dispatch.lstm(*call(), SPEC)
    assert len(runs) == 2 * (autotune.ROUNDS + 1)
    torch.testing.assert_close(again, out, rtol=1e-5, atol=1e-6)


def test_cached_choice_is_used(tuning, monkeypatch):
    x, h0, c0, w = call()
    key = autotune.call_key(x, h0, SPEC, None, None, True, [cpu.flavour(SPEC), "native"])
    tuning.parent.mkdir(exist_ok=True)
    tuning.write_text(json.dumps({key: "native"}))
    used = []
    monkeypatch.setitem(dispatch.BACKENDS, "native", _Recording(dispatch.native, used))
    dispatch.lstm(x, h0, c0, w, SPEC)
    assert used == ["native"]


class _Recording:
    """A backend module stand-in that records its calls."""

    def __init__(self, module, log):
        self.module, self.log = module, log

    def supports(self, *args):
        return self.module.supports(*args)

    def lstm(self, *args):
        self.log.append(self.module.__name__.rsplit(".", 1)[-1])
        return self.module.lstm(*args)


def test_nearby_shapes_share_a_choice_and_others_do_not(tuning):
    fast = dispatch.candidates(SPEC)

    def key(batch, steps, grad=True):
        x, h0, *_ = call(batch, steps)
        return autotune.call_key(x, h0, SPEC, None, None, grad, fast)

    assert key(60, 90) == key(64, 100)
    assert key(64, 100) != key(65, 100)
    assert key(64, 100) != key(64, 100, grad=False)
    mask = torch.ones(4, 5, dtype=torch.bool)
    x, h0, *_ = call()
    assert autotune.call_key(x, h0, SPEC, mask, None, True, fast) != key(4, 5)
    assert autotune.call_key(x, h0, SPEC, None, None, True, fast, go_backwards=True) != key(4, 5)


def test_timing_leaves_graph_grads_and_random_stream_alone(tuning):
    x, h0, c0, w = call()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    out, h, _ = dispatch.lstm(x, h0, c0, w, SPEC)
    assert torch.equal(torch.rand(3), expected)
    assert all(t is None or t.grad is None for t in w)
    h.sum().backward()
    reference = call()[3]
    from lstmkit.kernels import reference as ref

    ref.lstm(x, h0, c0, reference, SPEC)[1].sum().backward()
    for ours, theirs in zip(w, reference, strict=True):
        if ours is not None:
            torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-5, atol=1e-6)


def test_no_timing_when_turned_off_or_one_candidate(tuning, monkeypatch):
    runs = spy_on_timing(monkeypatch)
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "0")
    dispatch.lstm(*call(), SPEC)
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "1")
    mask = torch.ones(4, 5, dtype=torch.bool)
    dispatch.lstm(*call(), SPEC, mask=mask)  # one backend runs masks on the CPU
    dispatch.lstm(*call(), SPEC, backend="cpu")  # forced
    assert runs == [] and not tuning.exists()


def test_unreadable_cache_warns_and_is_replaced(tuning):
    tuning.parent.mkdir(exist_ok=True)
    tuning.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable backend cache"):
        dispatch.lstm(*call(), SPEC)
    assert len(json.loads(tuning.read_text())) == 1


def test_unwritable_cache_folder_warns_and_still_runs(tmp_path, tuning, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="could not write the backend cache"):
        out, _, _ = dispatch.lstm(*call(), SPEC)
    assert out.shape == (4, 5, 8)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_plain_cell_times_cudnn_against_triton(tuning):
    x, h0, c0, w = call(batch=64, steps=100)
    x, h0, c0 = x.cuda(), h0.cuda(), c0.cuda()
    w = LSTMWeights(*(None if v is None else v.cuda() for v in w))
    layouts = ["triton-persistent", "triton-split"]
    assert dispatch.candidates(SPEC, device="cuda") == ["native", *layouts]
    dispatch.lstm(x, h0, c0, w, SPEC)
    assert list(json.loads(tuning.read_text()).values())[0] in ("native", *layouts)


def test_long_calls_are_timed_on_their_first_steps(tuning, monkeypatch):
    lengths = []
    original = autotune._time

    def spy(run, copies, spec, mask, noise, grad):
        lengths.append((copies[0].shape[1], None if mask is None else mask.shape[1]))
        return original(run, copies, spec, mask, noise, grad)

    monkeypatch.setattr(autotune, "_time", spy)
    monkeypatch.setattr(autotune, "TIMED_STEPS", 64)
    x, h0, c0, w = call(batch=2, steps=100)
    out, _, _ = dispatch.lstm(x, h0, c0, w, SPEC)
    assert out.shape == (2, 100, 8)  # the call itself runs in full
    assert set(lengths) == {(autotune.TIMED_STEPS, None)}


def test_a_backend_that_fails_while_timed_is_not_chosen(tuning, monkeypatch):
    def broken(*args):
        raise RuntimeError("no kernel for this shape")

    monkeypatch.setitem(dispatch.BACKENDS, "native", _Broken(broken))
    with pytest.warns(UserWarning, match="'native' failed while being timed"):
        out, _, _ = dispatch.lstm(*call(), SPEC)
    assert list(json.loads(tuning.read_text()).values()) == ["cpu"]
    assert out.shape == (4, 5, 8)


class _Broken:
    def __init__(self, lstm):
        self.lstm = lstm

    def supports(self, *args):
        return True
