"""Building the CPU kernel's C++ loops: where it cannot, the kernel still runs, on torch ops."""

import pytest
import torch
from torch.utils import cpp_extension

from lstmkit.kernels import cpu, cpu_compiled, reference
from lstmkit.kernels.weights import LSTMWeights
from lstmkit.spec import LSTMSpec


def test_without_a_compiler_one_warning_then_the_torch_op_loops(monkeypatch):
    def no_compiler(**kwargs):
        raise RuntimeError("Error building extension\ncc: command not found")

    monkeypatch.setenv("LSTMKIT_CPU_LOOPS", "1")
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    cpu_compiled._build.cache_clear()
    try:
        with pytest.warns(UserWarning, match="could not compile its CPU LSTM loops"):
            assert cpu_compiled.loops() is None
        assert cpu_compiled.loops() is None  # tried once per process
        g = torch.Generator().manual_seed(0)
        x, h0, c0 = (torch.randn(*s, generator=g) for s in ((2, 4, 3), (2, 5), (2, 5)))
        w = LSTMWeights(
            kernel=torch.randn(3, 20, generator=g).requires_grad_(),
            recurrent_kernel=torch.randn(5, 20, generator=g).requires_grad_(),
            bias=torch.zeros(20),
        )
        ours, ref = cpu.lstm(x, h0, c0, w, LSTMSpec(5)), reference.lstm(x, h0, c0, w, LSTMSpec(5))
        torch.testing.assert_close(ours, ref)
    finally:
        cpu_compiled._build.cache_clear()


def test_turned_off_by_environment(monkeypatch):
    monkeypatch.setenv("LSTMKIT_CPU_LOOPS", "0")
    assert cpu_compiled.loops() is None
