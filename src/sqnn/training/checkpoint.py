"""Checkpoints written after every epoch, so an interrupted training resumes to the same model.

A checkpoint is a pair: ``checkpoint.safetensors`` (the current and the best weights,
the optimiser's tensors, the batch-order generator) and ``checkpoint.json`` (the epoch,
the history, the early-stopping state, the optimiser's scalars and the settings of the
training), each written atomically. The pair is bound: the JSON records the SHA-256 of the
tensor file, the tensors' metadata the digest of the JSON. A job killed between the two
writes leaves a pair that does not match, and :func:`load_checkpoint` refuses it instead
of resuming a mixture of two epochs. :func:`settings_differences` names the settings a
resumed training would change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sqnn.errors import ModelFileError, SqnnError, option
from sqnn.files import atomic_path, digest, file_digest, json_safe, read_json, write_json

__all__ = [
    "CHECKPOINT_STATE",
    "CHECKPOINT_TENSORS",
    "RESUMABLE_CHANGES",
    "load_checkpoint",
    "read_checkpoint_state",
    "restore_optimizer",
    "save_checkpoint",
    "settings_differences",
    "unprefixed",
]

CHECKPOINT_TENSORS = "checkpoint.safetensors"
CHECKPOINT_STATE = "checkpoint.json"
TENSORS_DIGEST = "tensors_sha256"
STATE_DIGEST = "state_sha256"
MAX_STATE_BYTES = 64 << 20
# settings a resumed training may change: more epochs (the same model as a run of that many), threads
RESUMABLE_CHANGES = ("train.epochs", "train.threads")


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
    settings: dict[str, Any] | None = None,
) -> None:
    """Write the pair: the tensors (with the digest of the state), then the state (with the digest of the tensors)."""
    tensors = _prefixed("current", modules.state_dict())
    tensors.update(_prefixed("best", best_state))
    optim_tensors, optim_scalars = _flatten_optimizer(optimizer)
    tensors.update(optim_tensors)
    tensors["rng.generator"] = generator.get_state()
    # strict JSON: an undefined metric (NaN) is stored as null, an infinite best loss too
    record = json_safe({**state, "optimizer": optim_scalars, "settings": settings})
    metadata = {STATE_DIGEST: digest(record)}
    with atomic_path(run_dir / CHECKPOINT_TENSORS) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        record[TENSORS_DIGEST] = file_digest(tmp)
    write_json(run_dir / CHECKPOINT_STATE, record)


def read_checkpoint_state(run_dir: Path) -> dict[str, Any] | None:
    """``checkpoint.json`` of ``run_dir`` read strictly, or None when there is none."""
    path = run_dir / CHECKPOINT_STATE
    if not path.exists():
        return None
    try:
        state = read_json(path, MAX_STATE_BYTES, "checkpoint")
    except SqnnError as exc:
        raise ModelFileError(str(exc)) from None
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: not a checkpoint (a JSON object is expected)")
    return state


def _refuse(run_dir: Path, why: str) -> ModelFileError:
    return ModelFileError(
        f"{run_dir / CHECKPOINT_TENSORS} and {CHECKPOINT_STATE}: {why}; this checkpoint cannot be resumed, "
        f"train afresh with {option('overwrite', python_value='True')}"
    )


def load_checkpoint(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The checkpoint's tensors and state, once their digests show they were written together; None without one."""
    tensors_path, state_path = run_dir / CHECKPOINT_TENSORS, run_dir / CHECKPOINT_STATE
    if not (tensors_path.exists() or state_path.exists()):
        return None
    if not (tensors_path.exists() and state_path.exists()):
        raise _refuse(run_dir, f"only {tensors_path.name if tensors_path.exists() else state_path.name} exists")
    state = read_checkpoint_state(run_dir)
    assert state is not None
    if TENSORS_DIGEST not in state:
        raise _refuse(run_dir, "the checkpoint records no digest of its tensors (written by an older sqnn)")
    if file_digest(tensors_path) != state[TENSORS_DIGEST]:
        raise _refuse(run_dir, "the two files come from different epochs (a job killed between writing them)")
    try:
        with safe_open(str(tensors_path), framework="pt") as handle:
            recorded = (handle.metadata() or {}).get(STATE_DIGEST)
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for corrupt headers
        raise ModelFileError(f"{tensors_path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    if recorded != digest({k: v for k, v in state.items() if k != TENSORS_DIGEST}):
        raise _refuse(run_dir, f"{CHECKPOINT_STATE} is not the state the tensors were written with")
    return tensors, state


def _flat(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{path}.{key}" if path else str(key)))
        return out or {path: {}}
    return {path: value}


def settings_differences(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """The settings (``train.seed``, ``gamma``, ``features``, …) in which ``current`` differs from a checkpoint's.

    Changes in :data:`RESUMABLE_CHANGES` are allowed; a checkpoint without recorded settings differs in all.
    """
    if not isinstance(recorded, dict):
        return ["all (the checkpoint records no settings)"]
    old, new = _flat(json_safe(recorded)), _flat(json_safe(current))
    return sorted(k for k in set(old) | set(new) if k not in RESUMABLE_CHANGES and old.get(k, "∅") != new.get(k, "∅"))
