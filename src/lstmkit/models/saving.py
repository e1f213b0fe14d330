"""One-file model saving: a safetensors file whose header carries the JSON config.

Layout of ``model.lstmkit``::

    tensors   "weights/<module path>"               every parameter, by its state_dict name
              "optimizer/<param index>/<state key>" the optimizer's per-parameter state
    metadata  "lstmkit": JSON {format_version, model: Sequential config,
                               compile: {optimizer, loss, metrics} | null,
                               optimizer_scalars: {index: {key: number}}}

Loading reads JSON and raw tensors only: no pickle, no code from the file is ever executed,
and layer classes are looked up in `lstmkit.layers.REGISTRY`. Writes go to a temporary file in
the same folder and are moved into place, so an interrupted save never leaves half a file, and
an existing file is only replaced with ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lstmkit import losses, optimizers

FORMAT_VERSION = 1
_META_KEY = "lstmkit"


def atomic_save(
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    path: Path,
    overwrite: bool,
    key: str = _META_KEY,
) -> None:
    """Write ``tensors`` with ``meta`` as JSON under header ``key``: to a temporary file in the
    same folder, then moved into place; an existing file only with ``overwrite=True``."""
    metadata = {key: json.dumps(meta)}
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"weights/{name}": p for name, p in model.state_dict().items()}


def save_weights(
    model: torch.nn.Module, filepath: str | os.PathLike, overwrite: bool = False
) -> None:
    atomic_save(_weights(model), {"format_version": FORMAT_VERSION}, Path(filepath), overwrite)


def save_model(model: Any, filepath: str | os.PathLike, overwrite: bool = False) -> None:
    tensors = _weights(model)
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model": {"class_name": type(model).__name__, "config": model.get_config()},
        "compile": None,
        "optimizer_scalars": {},
    }
    if model.loss is not None:
        meta["compile"] = {
            "optimizer": optimizers.serialize(model.optimizer),
            "loss": losses.serialize(model.loss),
            "metrics": model.metric_names,
        }
        if model.optimizer.built:
            state = model.optimizer.torch_optimizer.state_dict()["state"]
            for index, entries in state.items():
                for key, value in entries.items():
                    if isinstance(value, torch.Tensor):
                        tensors[f"optimizer/{index}/{key}"] = value
                    else:
                        meta["optimizer_scalars"].setdefault(str(index), {})[key] = value
    atomic_save(tensors, meta, Path(filepath), overwrite)


def read_file(
    filepath: str | os.PathLike, key: str = _META_KEY, what: str = "model"
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON header ``key`` and the tensors of a file written by `atomic_save`."""
    path = Path(filepath)
    if not path.is_file():
        raise FileNotFoundError(f"No saved {what} at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as err:  # safetensors raises its own error types for foreign files
        raise ValueError(f"{path} is not an lstmkit {what} file: {err}") from None
    if key not in metadata:
        others = sorted(k for k in metadata if k.startswith("lstmkit"))
        hint = f" (it holds {others[0]!r}: load it with the matching loader)" if others else ""
        raise ValueError(f"{path} is not a saved lstmkit {what}{hint}")
    meta = json.loads(metadata[key])
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has {what} format version {meta.get('format_version')}; "
            f"this lstmkit reads version {FORMAT_VERSION}"
        )
    return meta, tensors


def _load_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Any) -> None:
    weights = {
        k.removeprefix("weights/"): v for k, v in tensors.items() if k.startswith("weights/")
    }
    own = model.state_dict()
    if set(weights) != set(own):
        raise ValueError(f"{path} holds weights {sorted(weights)} but the model has {sorted(own)}")
    for name, value in weights.items():
        if value.shape != own[name].shape:
            raise ValueError(
                f"{path}: weight {name!r} has shape {tuple(value.shape)}; "
                f"the model expects {tuple(own[name].shape)}"
            )
    model.load_state_dict(weights)


def load_weights(model: torch.nn.Module, filepath: str | os.PathLike) -> None:
    _, tensors = read_file(filepath)
    _load_state(model, tensors, filepath)


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Any:
    """Rebuild a model written by ``model.save``; compiled, with optimizer state, if it was."""
    from lstmkit.models.sequential import Sequential

    meta, tensors = read_file(filepath)
    spec = meta["model"]
    if spec["class_name"] != "Sequential":
        raise ValueError(
            f"Cannot rebuild a model of class {spec['class_name']!r}; expected 'Sequential'"
        )
    model = Sequential.from_config(spec["config"])
    _load_state(model, tensors, filepath)
    settings = meta.get("compile")
    if compile and settings is not None:
        model.compile(
            optimizer=optimizers.deserialize(settings["optimizer"]),
            loss=losses.deserialize(settings["loss"]),
            metrics=settings["metrics"],
        )
        _restore_optimizer(model, tensors, meta.get("optimizer_scalars", {}))
    return model


def _restore_optimizer(
    model: Any, tensors: dict[str, torch.Tensor], scalars: dict[str, dict]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entries in scalars.items():
        state.setdefault(int(index), {}).update(entries)
    if not state:
        return
    torch_opt = model.optimizer.build(model.parameters())
    saved = torch_opt.state_dict()
    saved["state"] = state
    torch_opt.load_state_dict(saved)
