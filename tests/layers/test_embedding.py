"""`Embedding`'s checks of its ids: on the CPU, where they cost no device sync, non-integer and
out-of-range ids get a clear error and float ids holding integers work as integer ids."""

import pytest
import torch

from lstmkit.layers import Embedding


def layer():
    torch.manual_seed(0)
    emb = Embedding(10, 3)
    emb.build((2, 4))
    return emb


def test_float_ids_holding_integers_look_up_as_integer_ids():
    emb = layer()
    ids = torch.tensor([[0, 3, 9, 1], [2, 2, 5, 0]])
    torch.testing.assert_close(emb(ids.float()), emb(ids), rtol=0, atol=0)


@pytest.mark.parametrize(
    "ids, message",
    [
        (torch.tensor([[0.0, 1.5]]), "expects integer ids; got torch.float32"),
        (torch.tensor([[0.0, float("nan")]]), "expects integer ids"),
        (torch.tensor([[1 + 0j, 2 + 0j]]), "expects integer ids; got torch.complex64"),
        (torch.tensor([[0, 10]]), r"expects ids in \[0, 10\); got ids from 0 to 10"),
        (torch.tensor([[-1, 3]]), r"expects ids in \[0, 10\); got ids from -1 to 3"),
    ],
)
def test_bad_ids_get_a_clear_error(ids, message):
    with pytest.raises(ValueError, match=message):
        layer()(ids)
