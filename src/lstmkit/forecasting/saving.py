"""One-file saving of a fitted `Forecaster`: safetensors tensors plus a JSON header.

Layout::

    tensors   "history", "covariates", "future_covariates"   float64 data the forecaster keeps
              "members/<i>/<state_dict name>"                 weights of ensemble member i
    metadata  "lstmkit.forecaster": JSON {format_version, config, state, frames}

``state`` holds the fitted choices (lookback, season length, pipeline, smoothing weights,
covariate scalers, conformal corrections, each member's `Sequential` config); ``frames`` the
columns and index of the stored data. Loading reads JSON and raw tensors only (no pickle, no
code from the file). Writes are atomic and refuse to replace a file without ``overwrite=True``
(`lstmkit.models.saving`'s writer).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lstmkit.data.scalers import StandardScaler
from lstmkit.forecasting.design import Design
from lstmkit.forecasting.forecaster import Forecaster
from lstmkit.forecasting.transforms import TargetPipeline
from lstmkit.models.saving import FORMAT_VERSION, atomic_save, read_file
from lstmkit.models.sequential import Sequential

META_KEY = "lstmkit.forecaster"
_FRAMES = ("history", "covariates", "future_covariates")


def _index_spec(index: pd.Index) -> dict[str, Any]:
    if isinstance(index, pd.DatetimeIndex):
        return {"kind": "dates", "values": [d.isoformat() for d in index], "freq": index.freqstr}
    return {"kind": "range", "start": int(index[0]) if len(index) else 0, "length": len(index)}


def _index_from_spec(spec: dict[str, Any]) -> pd.Index:
    if spec["kind"] == "dates":
        return pd.DatetimeIndex(pd.to_datetime(spec["values"]), freq=spec["freq"])
    return pd.RangeIndex(spec["start"], spec["start"] + spec["length"])


def _scaler_config(scaler: StandardScaler | None) -> dict[str, Any] | None:
    return None if scaler is None else scaler.get_config()


def _scaler(config: dict[str, Any] | None) -> StandardScaler | None:
    return None if config is None else StandardScaler.from_config(config)


def save_forecaster(
    forecaster: Forecaster, filepath: str | os.PathLike, overwrite: bool = False
) -> None:
    """Write a fitted `Forecaster` to ``filepath`` (one file)."""
    if not forecaster.is_fitted:
        raise RuntimeError("Only a fitted Forecaster can be saved; call fit first")
    tensors: dict[str, torch.Tensor] = {}
    frames: dict[str, Any] = {}
    for name in _FRAMES:
        frame = getattr(forecaster, f"{name}_")
        if frame is None:
            frames[name] = None
            continue
        tensors[name] = torch.from_numpy(frame.to_numpy(np.float64, copy=True))
        frames[name] = {
            "columns": list(frame.columns),
            "index": _index_spec(frame.index),
            "index_name": frame.index.name,
        }
    members = []
    for i, network in enumerate(forecaster.networks_):
        members.append(network.get_config())
        for key, value in network.state_dict().items():
            tensors[f"members/{i}/{key}"] = value
    design = forecaster.design_
    state = {
        "lookback": forecaster.lookback_,
        "season_length": forecaster.season_length_,
        "pipeline": forecaster.pipeline_.get_config(),
        "alpha": forecaster.alpha_.tolist(),
        "past_scaler": _scaler_config(forecaster.past_scaler_),
        "future_scaler": _scaler_config(forecaster.future_scaler_),
        "corrections": forecaster.corrections_.tolist(),
        "design": [design.lookback, design.horizon, design.targets, design.past, design.future],
        "members": members,
    }
    meta = {
        "format_version": FORMAT_VERSION,
        "class_name": type(forecaster).__name__,
        "config": forecaster.get_config(),
        "state": state,
        "frames": frames,
    }
    atomic_save(tensors, meta, Path(filepath), overwrite, key=META_KEY)


def load_forecaster(filepath: str | os.PathLike) -> Forecaster:
    """Rebuild a `Forecaster` written by `Forecaster.save`; it predicts as the saved one did."""
    path = Path(filepath)
    meta, tensors = read_file(path, key=META_KEY, what="forecaster")
    if meta.get("class_name") != "Forecaster":
        raise ValueError(f"{path} holds a {meta.get('class_name')!r}; expected 'Forecaster'")
    forecaster = Forecaster(**meta["config"])
    for name in _FRAMES:
        spec = meta["frames"][name]
        frame = None
        if spec is not None:
            index = _index_from_spec(spec["index"])
            index.name = spec["index_name"]
            frame = pd.DataFrame(tensors[name].numpy(), index=index, columns=spec["columns"])
        setattr(forecaster, f"{name}_", frame)
    state = meta["state"]
    forecaster.lookback_ = state["lookback"]
    forecaster.season_length_ = state["season_length"]
    forecaster.pipeline_ = TargetPipeline.from_config(state["pipeline"])
    forecaster.alpha_ = np.asarray(state["alpha"], dtype=np.float64)
    forecaster.past_scaler_ = _scaler(state["past_scaler"])
    forecaster.future_scaler_ = _scaler(state["future_scaler"])
    forecaster.corrections_ = np.asarray(state["corrections"], dtype=np.float64).reshape(
        len(forecaster.interval_pairs), -1
    )
    forecaster.design_ = Design(*state["design"])
    networks = []
    for i, config in enumerate(state["members"]):
        network = Sequential.from_config(config)
        prefix = f"members/{i}/"
        weights = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        network.load_state_dict(weights)
        network.device = torch.device(forecaster.device)
        network.eval()
        networks.append(network)
    forecaster.networks_ = networks
    return forecaster
