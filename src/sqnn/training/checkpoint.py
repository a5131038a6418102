"""Checkpoints written after every epoch, so an interrupted training resumes to the same model.

A checkpoint is a pair: ``checkpoint.safetensors`` (the current and the best weights,
the optimiser's tensors, the batch-order generator) and ``checkpoint.json`` (the epoch,
the history, the early-stopping state and the optimiser's scalars), each written
atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from sqnn.files import atomic_path, json_safe, write_json

__all__ = ["CHECKPOINT_STATE", "CHECKPOINT_TENSORS", "load_checkpoint", "restore_optimizer", "save_checkpoint", "unprefixed"]

CHECKPOINT_TENSORS = "checkpoint.safetensors"
CHECKPOINT_STATE = "checkpoint.json"


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars["state"].setdefault(str(index), {})[key] = value
    return tensors, scalars


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entries in scalars["state"].items():
        state.setdefault(int(index), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})


def _prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().clone().contiguous() for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    head = prefix + "."
    return {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}


def save_checkpoint(
    run_dir: Path,
    modules: torch.nn.Module,
    best_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    state: dict[str, Any],
) -> None:
    tensors = _prefixed("current", modules.state_dict())
    tensors.update(_prefixed("best", best_state))
    optim_tensors, optim_scalars = _flatten_optimizer(optimizer)
    tensors.update(optim_tensors)
    tensors["rng.generator"] = generator.get_state()
    with atomic_path(run_dir / CHECKPOINT_TENSORS) as tmp:
        save_file(tensors, str(tmp))
    # strict JSON: an undefined metric (NaN) is stored as null, an infinite best loss too
    write_json(run_dir / CHECKPOINT_STATE, json_safe({**state, "optimizer": optim_scalars}))


def load_checkpoint(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    tensors_path, state_path = run_dir / CHECKPOINT_TENSORS, run_dir / CHECKPOINT_STATE
    if not (tensors_path.exists() and state_path.exists()):
        return None
    return load_file(str(tensors_path)), json.loads(state_path.read_text())
