"""The reference kernel's variants: float64 gradchecks, identities between variants, masks."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmkit.kernels import LSTMNoise, LSTMWeights, native, reference
from lstmkit.spec import LSTMSpec

B, T, D, H = 2, 4, 3, 5


def make(spec: LSTMSpec, dtype=torch.float64, seed=0, batch=B, steps=T):
    """Random inputs, states, weights and training noise for ``spec``."""
    g = torch.Generator().manual_seed(seed)
    P = spec.output_size

    def r(*shape):
        return (torch.randn(*shape, generator=g, dtype=dtype) * 0.5).requires_grad_()

    weights = LSTMWeights(
        kernel=r(D, 4 * H),
        recurrent_kernel=r(P, 4 * H),
        bias=r(4 * H) if spec.use_bias else None,
        peephole=r(3, H) if spec.peephole else None,
        projection=r(H, P) if spec.proj_size else None,
        input_norm_gamma=r(4 * H) if spec.layer_norm else None,
        recurrent_norm_gamma=r(4 * H) if spec.layer_norm else None,
        cell_norm_gamma=r(H) if spec.layer_norm else None,
        cell_norm_beta=r(H) if spec.layer_norm else None,
    )
    noise = LSTMNoise(
        recurrent_mask=(torch.rand(batch, P, generator=g) > 0.3).to(dtype) / 0.7
        if spec.recurrent_dropout
        else None,
        zoneout_cell=(torch.rand(batch, steps, H, generator=g) < 0.5).to(dtype)
        if spec.zoneout_cell
        else None,
        zoneout_hidden=(torch.rand(batch, steps, P, generator=g) < 0.5).to(dtype)
        if spec.zoneout_hidden
        else None,
    )
    return r(batch, steps, D), r(batch, P), r(batch, H), weights, noise


def gradcheck(spec, mask=None, training=True):
    x, h0, c0, w, noise = make(spec)
    names = [n for n in LSTMWeights._fields if getattr(w, n) is not None]
    leaves = (x, h0, c0, *(getattr(w, n) for n in names))

    def f(x, h0, c0, *tensors):
        weights = LSTMWeights(**dict(zip(names, tensors, strict=True)))
        return reference.lstm(x, h0, c0, weights, spec, mask, noise if training else None)

    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-5)


VARIANTS = {
    "peephole": LSTMSpec(H, peephole=True),
    "layer_norm": LSTMSpec(H, layer_norm=True),
    "projection": LSTMSpec(H, proj_size=2),
    "zoneout": LSTMSpec(H, zoneout_cell=0.3, zoneout_hidden=0.2),
    "recurrent_dropout": LSTMSpec(H, recurrent_dropout=0.3),
    "everything": LSTMSpec(
        H,
        "softsign",
        "hard_sigmoid",
        peephole=True,
        layer_norm=True,
        proj_size=3,
        zoneout_cell=0.2,
        zoneout_hidden=0.1,
        recurrent_dropout=0.25,
    ),
}


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_every_variant(name, training):
    gradcheck(VARIANTS[name], training=training)


def test_gradcheck_with_a_mask():
    mask = torch.tensor([[False, True, True, False], [True, True, False, True]])
    gradcheck(VARIANTS["everything"], mask=mask)


@settings(max_examples=8, deadline=None)
@given(
    peephole=st.booleans(),
    layer_norm=st.booleans(),
    proj=st.integers(0, H - 1),
    zoneout=st.sampled_from([0.0, 0.4]),
    dropout=st.sampled_from([0.0, 0.3]),
    bias=st.booleans(),
)
def test_gradcheck_random_combinations(peephole, layer_norm, proj, zoneout, dropout, bias):
    spec = LSTMSpec(
        H,
        use_bias=bias,
        peephole=peephole,
        layer_norm=layer_norm,
        proj_size=proj,
        zoneout_hidden=zoneout,
        recurrent_dropout=dropout,
    )
    gradcheck(spec)


def test_zero_peepholes_are_the_plain_cell():
    x, h0, c0, w, _ = make(VARIANTS["peephole"])
    with torch.no_grad():
        w.peephole.zero_()
    plain = reference.lstm(x, h0, c0, w._replace(peephole=None), LSTMSpec(H))
    for a, b in zip(reference.lstm(x, h0, c0, w, VARIANTS["peephole"]), plain, strict=True):
        torch.testing.assert_close(a, b)


def test_projection_matches_torch_lstm_proj_size():
    spec = VARIANTS["projection"]
    x, h0, c0, w, _ = make(spec)
    ours = reference.lstm(x, h0, c0, w, spec)
    theirs = native.lstm(x, h0, c0, w, spec)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


def test_zoneout_uses_the_expectation_at_inference_and_the_masks_in_training():
    spec = LSTMSpec(H, zoneout_cell=0.3, zoneout_hidden=0.6)
    x, h0, c0, w, _ = make(spec, steps=1)
    _, h_new, c_new = reference.lstm(x, h0, c0, w, LSTMSpec(H))  # the plain step
    _, h, c = reference.lstm(x, h0, c0, w, spec)
    torch.testing.assert_close(c, 0.3 * c0 + 0.7 * c_new)
    torch.testing.assert_close(h, 0.6 * h0 + 0.4 * h_new)
    keep = torch.zeros(B, 1, H, dtype=torch.float64)
    keep[0] = 1.0  # sample 0 keeps every old unit, sample 1 takes every new one
    _, h, c = reference.lstm(x, h0, c0, w, spec, noise=LSTMNoise(None, keep, keep))
    torch.testing.assert_close(c[0], c0[0])
    torch.testing.assert_close(c[1], c_new[1])
    torch.testing.assert_close(h[0], h0[0])


def test_recurrent_dropout_mask_multiplies_h_before_the_recurrent_projection():
    spec = LSTMSpec(H, recurrent_dropout=0.5)
    x, h0, c0, w, _ = make(spec)
    mask = torch.zeros(B, H, dtype=torch.float64)  # drop everything: h never feeds back
    dropped = reference.lstm(x, h0, c0, w, spec, noise=LSTMNoise(mask, None, None))
    no_recurrence = reference.lstm(
        x, h0, c0, w._replace(recurrent_kernel=w.recurrent_kernel * 0), LSTMSpec(H)
    )
    torch.testing.assert_close(dropped[0], no_recurrence[0])


def test_masked_steps_carry_the_state_and_repeat_the_output():
    spec = LSTMSpec(H)
    x, h0, c0, w, _ = make(spec)
    mask = torch.tensor([[False, True, False, True], [True, True, True, True]])
    out, h, c = reference.lstm(x, h0, c0, w, spec, mask)
    # sample 0 equals running only its real steps 1 and 3
    real_out, real_h, real_c = reference.lstm(x[:1, [1, 3]], h0[:1], c0[:1], w, spec)
    torch.testing.assert_close(out[0, 0], torch.zeros(H, dtype=torch.float64))  # nothing yet
    torch.testing.assert_close(out[0, 1], real_out[0, 0])
    torch.testing.assert_close(out[0, 2], real_out[0, 0])  # repeated at the masked step
    torch.testing.assert_close(out[0, 3], real_out[0, 1])
    torch.testing.assert_close(h[0], real_h[0])
    torch.testing.assert_close(c[0], real_c[0])
    full = reference.lstm(x[1:], h0[1:], c0[1:], w, spec)
    torch.testing.assert_close(out[1], full[0][0])


def test_fully_masked_rows_keep_the_initial_state():
    spec = LSTMSpec(H)
    x, h0, c0, w, _ = make(spec)
    out, h, c = reference.lstm(x, h0, c0, w, spec, torch.zeros(B, T, dtype=torch.bool))
    torch.testing.assert_close(h, h0)
    torch.testing.assert_close(c, c0)
    assert not out.any()


def test_training_without_the_zoneout_masks_is_an_error():
    spec = LSTMSpec(H, zoneout_cell=0.2)
    x, h0, c0, w, _ = make(spec)
    with pytest.raises(ValueError, match="zoneout_cell"):
        reference.lstm(x, h0, c0, w, spec, noise=LSTMNoise())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"proj_size": H}, "proj_size"),
        ({"proj_size": -1}, "proj_size"),
        ({"zoneout_cell": 1.0}, "zoneout_cell"),
        ({"zoneout_hidden": -0.1}, "zoneout_hidden"),
        ({"recurrent_dropout": 1.5}, "recurrent_dropout"),
    ],
)
def test_contradictory_specs_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LSTMSpec(H, **kwargs)
