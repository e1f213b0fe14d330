"""The reference kernel: float64 gradcheck and agreement with a hand-unrolled cell."""

import pytest
import torch

from lstmkit.kernels import LSTMWeights, reference
from lstmkit.spec import LSTMSpec


def random_problem(B=3, T=5, D=4, H=6, dtype=torch.float64, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return (torch.randn(*shape, generator=g, dtype=dtype) * 0.5).requires_grad_()

    x, h0, c0 = r(B, T, D), r(B, H), r(B, H)
    weights = LSTMWeights(r(D, 4 * H), r(H, 4 * H), r(4 * H) if bias else None)
    return x, h0, c0, weights


@pytest.mark.parametrize(
    "activation,recurrent_activation",
    [("tanh", "sigmoid"), ("relu", "hard_sigmoid"), ("softsign", "tanh"), ("linear", "sigmoid")],
)
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_float64(activation, recurrent_activation, bias):
    spec = LSTMSpec(6, activation, recurrent_activation, use_bias=bias)
    x, h0, c0, w = random_problem(bias=bias)
    inputs = (x, h0, c0, *(t for t in w if t is not None))

    def f(x, h0, c0, kernel, recurrent_kernel, b=None):
        return reference.lstm(x, h0, c0, LSTMWeights(kernel, recurrent_kernel, b), spec)

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


def test_matches_hand_written_step():
    spec = LSTMSpec(6)
    x, h0, c0, w = random_problem(T=2)
    out, h, c = reference.lstm(x, h0, c0, w, spec)
    hs, cs = h0, c0
    H = 6
    for t in range(2):
        z = x[:, t] @ w.kernel + hs @ w.recurrent_kernel + w.bias
        i = torch.sigmoid(z[:, :H])
        f = torch.sigmoid(z[:, H : 2 * H])
        g = torch.tanh(z[:, 2 * H : 3 * H])
        o = torch.sigmoid(z[:, 3 * H :])
        cs = f * cs + i * g
        hs = o * torch.tanh(cs)
        torch.testing.assert_close(out[:, t], hs)
    torch.testing.assert_close(h, hs)
    torch.testing.assert_close(c, cs)
