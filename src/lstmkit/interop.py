"""PyTorch interop: convert a `torch.nn.LSTM` to an lstmkit `Sequential` and back.

Weights map one to one (gate order i, f, c, o is shared): ``kernel = weight_ih.T``,
``recurrent_kernel = weight_hh.T``, ``bias = bias_ih + bias_hh``, ``projection = weight_hr.T``
(see `lstmkit.kernels.weights`). Each layer of the torch module becomes an
``LSTM(return_sequences=True)`` or, for a bidirectional module, a
``Bidirectional(..., merge_mode="concat")``: both concatenate the forward and the backward
output of every step, as torch does.

Dropout: torch's ``dropout`` (between layers, in training only) becomes a `Dropout` layer
between the recurrent layers, and such `Dropout` layers become torch's ``dropout`` again, so
both directions keep training behaviour. An LSTM layer's own ``dropout`` /
``recurrent_dropout`` has no torch equivalent: `to_torch_lstm` drops it with a warning, which
changes training only (at inference both are off).

lstmkit models are batch-first: the model from `from_torch_lstm` always takes
(batch, time, features), whatever the module's ``batch_first``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

from lstmkit.layers import LSTM, Bidirectional, Dropout, Layer
from lstmkit.models import Sequential

Recurrent = LSTM | Bidirectional


def _suffix(layer: int, reverse: bool) -> str:
    return f"_l{layer}" + ("_reverse" if reverse else "")


@torch.no_grad()
def from_torch_lstm(module: torch.nn.LSTM) -> Sequential:
    """An lstmkit `Sequential` computing the same sequence output as ``module``.

    The model takes (batch, time, input_size) inputs, also when ``module.batch_first`` is
    False (then feed it ``x.transpose(0, 1)``), and returns the module's ``output`` in
    batch-first order: (batch, time, D · (proj_size or hidden_size)), D = 2 if bidirectional.
    """
    if not isinstance(module, torch.nn.LSTM):
        raise TypeError(f"from_torch_lstm expects a torch.nn.LSTM; got {type(module).__name__}")
    layers: list[Layer] = []
    for k in range(module.num_layers):
        if k and module.dropout:
            layers.append(Dropout(module.dropout))
        cell = LSTM(
            module.hidden_size,
            return_sequences=True,
            use_bias=module.bias,
            proj_size=module.proj_size,
        )
        layers.append(Bidirectional(cell) if module.bidirectional else cell)
    model = Sequential(layers)
    model.build((None, None, module.input_size))
    weight = next(module.parameters())
    model.to(weight.device)
    model.device = weight.device
    recurrent = [layer for layer in model.layers if not isinstance(layer, Dropout)]
    for k, layer in enumerate(recurrent):
        if isinstance(layer, Bidirectional):
            _copy_from_torch(layer.forward_layer, module, _suffix(k, False))
            _copy_from_torch(layer.backward_layer, module, _suffix(k, True))
        else:
            _copy_from_torch(layer, module, _suffix(k, False))
    return model


def _copy_from_torch(cell: LSTM, module: torch.nn.LSTM, suffix: str) -> None:
    def param(name: str) -> torch.Tensor:
        return getattr(module, name + suffix)

    cell.kernel.copy_(param("weight_ih").T)  # (I, 4H)
    cell.recurrent_kernel.copy_(param("weight_hh").T)  # (P, 4H)
    if module.bias:
        cell.bias.copy_(param("bias_ih") + param("bias_hh"))  # (4H,)
    if module.proj_size:
        cell.projection.copy_(param("weight_hr").T)  # (H, P)


@torch.no_grad()
def to_torch_lstm(
    model_or_layers: Sequential | Iterable[Layer], batch_first: bool = True
) -> torch.nn.LSTM:
    """A `torch.nn.LSTM` whose ``output`` equals the model's output.

    ``model_or_layers`` is a built `Sequential`, or a list of built layers: `LSTM` or
    ``Bidirectional(LSTM, merge_mode="concat")`` layers (all one kind), all with
    ``return_sequences=True``, the classic tanh/sigmoid cell (no peephole, layer_norm or
    zoneout), one ``units``, ``proj_size`` and ``use_bias``, not stateful, and optionally one
    `Dropout` of a common rate between every two of them. The bias goes to ``bias_ih``;
    ``bias_hh`` is zero. Raises `ValueError` for anything else.
    """
    if isinstance(model_or_layers, Sequential):
        model_or_layers = model_or_layers.layers
    layers = list(model_or_layers)
    recurrent, dropout = _split_stack(layers)
    bidirectional = isinstance(recurrent[0], Bidirectional)
    cells: list[list[LSTM]] = []
    for layer in recurrent:
        if isinstance(layer, Bidirectional) != bidirectional:
            raise ValueError(
                "Cannot convert a mix of LSTM and Bidirectional layers: torch.nn.LSTM is "
                "bidirectional in every layer or in none"
            )
        cells.append(_directions(layer))
    first = cells[0][0]
    for k, directions in enumerate(cells):
        for cell in directions:
            _check_cell(cell, first)
        if k and cells[k][0].kernel.shape[0] != len(cells[0]) * first.spec.output_size:
            raise ValueError(
                f"Layer {recurrent[k].name!r} takes {cells[k][0].kernel.shape[0]} features; "
                f"the layer before it outputs {len(cells[0]) * first.spec.output_size}"
            )
    module = torch.nn.LSTM(
        input_size=first.kernel.shape[0],
        hidden_size=first.units,
        num_layers=len(cells),
        bias=first.spec.use_bias,
        batch_first=batch_first,
        dropout=dropout,
        bidirectional=bidirectional,
        proj_size=first.spec.proj_size,
        device=first.kernel.device,
        dtype=first.kernel.dtype,
    )
    for k, directions in enumerate(cells):
        for reverse, cell in enumerate(directions):
            _copy_to_torch(cell, module, _suffix(k, bool(reverse)))
    return module


def _split_stack(layers: list[Layer]) -> tuple[list[Recurrent], float]:
    """The recurrent layers and the rate of the `Dropout` between them (0 if none)."""
    recurrent: list[Recurrent] = []
    gaps: list[float] = []  # the dropout rate before each recurrent layer but the first
    pending: float | None = None
    for layer in layers:
        if isinstance(layer, LSTM | Bidirectional):
            if recurrent:
                gaps.append(pending or 0.0)
            recurrent.append(layer)
            pending = None
        elif isinstance(layer, Dropout):
            if not recurrent or pending is not None:
                raise ValueError(
                    f"Dropout layer {layer.name!r} is not alone between two recurrent layers; "
                    "torch.nn.LSTM only has dropout between its layers"
                )
            pending = layer.rate
        else:
            raise ValueError(
                f"Cannot convert layer {layer.name!r} ({type(layer).__name__}) to torch.nn.LSTM; "
                "expected LSTM, Bidirectional(LSTM) and Dropout layers only"
            )
    if not recurrent:
        raise ValueError("Cannot convert to torch.nn.LSTM: there is no LSTM layer")
    if pending is not None:
        raise ValueError(
            "Cannot convert a Dropout after the last recurrent layer: torch.nn.LSTM only has "
            "dropout between its layers"
        )
    if len(set(gaps)) > 1:
        raise ValueError(
            f"torch.nn.LSTM has one dropout rate between all its layers; got rates {gaps}"
        )
    return recurrent, gaps[0] if gaps else 0.0


def _directions(layer: Recurrent) -> list[LSTM]:
    if isinstance(layer, LSTM):
        if layer.go_backwards:
            raise ValueError(
                f"Cannot convert LSTM {layer.name!r} with go_backwards=True: torch.nn.LSTM "
                "returns the reversed direction in input order only inside a bidirectional LSTM"
            )
        return [layer]
    if layer.merge_mode != "concat":
        raise ValueError(
            f"Cannot convert Bidirectional {layer.name!r} with merge_mode={layer.merge_mode!r}: "
            "torch.nn.LSTM concatenates the two directions"
        )
    forward, backward = layer.forward_layer, layer.backward_layer
    if not (isinstance(forward, LSTM) and isinstance(backward, LSTM)):
        raise ValueError(f"Bidirectional {layer.name!r} must wrap LSTM layers to be converted")
    if forward.go_backwards:
        raise ValueError(
            f"Cannot convert Bidirectional {layer.name!r} whose forward layer has go_backwards"
        )
    return [forward, backward]


def _check_cell(cell: LSTM, first: LSTM) -> None:
    spec = cell.spec
    if not cell.built:
        raise ValueError(f"LSTM {cell.name!r} is not built: build or call the model first")
    if spec.activation != "tanh" or spec.recurrent_activation != "sigmoid":
        raise ValueError(
            f"Cannot convert LSTM {cell.name!r}: torch.nn.LSTM needs activation='tanh' and "
            f"recurrent_activation='sigmoid'; got {spec.activation!r} and "
            f"{spec.recurrent_activation!r}"
        )
    variants = [
        name
        for name, on in (
            ("peephole", spec.peephole),
            ("layer_norm", spec.layer_norm),
            ("zoneout_cell", spec.zoneout_cell),
            ("zoneout_hidden", spec.zoneout_hidden),
        )
        if on
    ]
    if variants:
        raise ValueError(
            f"Cannot convert LSTM {cell.name!r}: torch.nn.LSTM has no {', '.join(variants)}"
        )
    if cell.stateful:
        raise ValueError(f"Cannot convert stateful LSTM {cell.name!r}: torch.nn.LSTM is not")
    if not cell.return_sequences:
        raise ValueError(
            f"Cannot convert LSTM {cell.name!r} with return_sequences=False: torch.nn.LSTM "
            "returns the whole sequence"
        )
    mine = (cell.units, spec.proj_size, spec.use_bias)
    theirs = (first.units, first.spec.proj_size, first.spec.use_bias)
    if mine != theirs:
        raise ValueError(
            f"torch.nn.LSTM has one units/proj_size/use_bias for all layers: LSTM "
            f"{cell.name!r} has {mine}, LSTM {first.name!r} has {theirs}"
        )
    if cell.dropout or spec.recurrent_dropout:
        warnings.warn(
            f"LSTM {cell.name!r}: dropout={cell.dropout} and recurrent_dropout="
            f"{spec.recurrent_dropout} have no torch.nn.LSTM equivalent and are dropped "
            "(training only; outputs at inference are unchanged)",
            UserWarning,
            stacklevel=4,
        )


def _copy_to_torch(cell: LSTM, module: torch.nn.LSTM, suffix: str) -> None:
    def param(name: str) -> torch.Tensor:
        return getattr(module, name + suffix)

    param("weight_ih").copy_(cell.kernel.T)  # (4H, I)
    param("weight_hh").copy_(cell.recurrent_kernel.T)  # (4H, P)
    if cell.spec.use_bias:
        param("bias_ih").copy_(cell.bias)  # (4H,)
        param("bias_hh").zero_()
    if cell.spec.proj_size:
        param("weight_hr").copy_(cell.projection.T)  # (P, H)
