"""`LSTMSpec`: the frozen description of one LSTM cell variant.

Every layer produces a spec and every kernel receives one, so a variant is described in exactly
one place. Kernels read the activations and variant switches from it; dispatch reads it to
decide which backend can run the cell. Equations of each variant: `lstmkit.kernels.reference`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lstmkit import activations


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")


@dataclass(frozen=True)
class LSTMSpec:
    """One LSTM cell variant.

    Args:
        units: hidden (cell) size H.
        activation: Keras name of the cell/candidate activation (``tanh`` by default).
        recurrent_activation: Keras name of the gate activation (``sigmoid`` by default).
        use_bias: whether the gates have a bias vector.
        peephole: gates also see the cell state (Gers & Schmidhuber 2000).
        layer_norm: layer-normalise the input and recurrent projections and the cell state
            (Ba, Kiros & Hinton 2016).
        proj_size: if > 0, project the hidden state to this size (Sak et al. 2014); 0 for none.
        zoneout_cell, zoneout_hidden: probability of keeping each unit's previous cell /
            hidden value in training (Krueger et al. 2017); the expectation at inference.
        recurrent_dropout: rate of the per-sequence dropout mask on the hidden state before
            the recurrent projection (Gal & Ghahramani 2016), in training only.
    """

    units: int
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    use_bias: bool = True
    peephole: bool = False
    layer_norm: bool = False
    proj_size: int = 0
    zoneout_cell: float = 0.0
    zoneout_hidden: float = 0.0
    recurrent_dropout: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.units, int) or isinstance(self.units, bool) or self.units < 1:
            raise ValueError(f"units must be a positive integer; got {self.units!r}")
        object.__setattr__(self, "activation", activations.canonical_name(self.activation))
        object.__setattr__(
            self, "recurrent_activation", activations.canonical_name(self.recurrent_activation)
        )
        proj = self.proj_size
        if not isinstance(proj, int) or isinstance(proj, bool) or not 0 <= proj < self.units:
            raise ValueError(
                f"proj_size must be an integer in [0, units={self.units}) (0 for no "
                f"projection); got {proj!r}"
            )
        for name in ("zoneout_cell", "zoneout_hidden", "recurrent_dropout"):
            _check_rate(name, getattr(self, name))

    @property
    def output_size(self) -> int:
        """Size of the hidden state h and of the layer's output: proj_size, else units."""
        return self.proj_size or self.units

    @property
    def is_plain(self) -> bool:
        """True for the classic cell (tanh, sigmoid, no variant) that torch's own LSTM computes."""
        return (
            self.activation == "tanh"
            and self.recurrent_activation == "sigmoid"
            and not (self.peephole or self.layer_norm or self.proj_size)
            and not (self.zoneout_cell or self.zoneout_hidden or self.recurrent_dropout)
        )
