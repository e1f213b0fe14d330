"""`LSTMSpec`: the frozen description of one LSTM cell variant.

Every layer produces a spec and every kernel receives one, so a variant is described in exactly
one place. Kernels read the activation functions from it; dispatch reads it to decide which
backend can run the cell.
"""

from __future__ import annotations

from dataclasses import dataclass

from lstmkit import activations


@dataclass(frozen=True)
class LSTMSpec:
    """One LSTM cell variant.

    Args:
        units: hidden size H.
        activation: Keras name of the cell/candidate activation (``tanh`` by default).
        recurrent_activation: Keras name of the gate activation (``sigmoid`` by default).
        use_bias: whether the gates have a bias vector.
    """

    units: int
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    use_bias: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.units, int) or isinstance(self.units, bool) or self.units < 1:
            raise ValueError(f"units must be a positive integer; got {self.units!r}")
        object.__setattr__(self, "activation", activations.canonical_name(self.activation))
        object.__setattr__(
            self, "recurrent_activation", activations.canonical_name(self.recurrent_activation)
        )

    @property
    def is_plain(self) -> bool:
        """True for the classic cell (tanh, sigmoid) that torch's own LSTM computes."""
        return self.activation == "tanh" and self.recurrent_activation == "sigmoid"
