"""Writing and loading run directories: one writer, one loader per kind of model, chosen from a registry.

A new kind of model is one :class:`RunKind` entry in :data:`RUN_KINDS`: how its tensors
are written and how a run directory of that kind is loaded back. ``model.json`` is
written in one place (:func:`write_run`) for every kind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqnn.files import atomic_path, json_safe, write_json
from sqnn.runs.format import FORMAT, FORMAT_VERSION, MODEL_FILE, MODEL_JSON, Run, read_meta, versions
from sqnn.runs.networks import load_network, load_set_model, save_network
from sqnn.runs.trees import load_trees, save_trees

__all__ = ["RUN_KINDS", "RunKind", "load_run", "write_run"]


@dataclass(frozen=True)
class RunKind:
    """How one kind of model is stored: its tensor writer and its loader."""

    save_tensors: Callable[[Path, Any], None]
    load: Callable[[Path, dict[str, Any]], Run]


RUN_KINDS: dict[str, RunKind] = {
    "network": RunKind(save_network, load_network),
    "set": RunKind(save_network, load_set_model),
    "trees": RunKind(save_trees, load_trees),
}


def write_run(run_dir: str | os.PathLike[str], kind: str, model: Any, meta: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``model.json`` (``meta`` plus the format fields) atomically."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / MODEL_FILE) as tmp:
        RUN_KINDS[kind].save_tensors(tmp, model)
    described = {"format": FORMAT, "format_version": FORMAT_VERSION}
    if kind != "network":
        described["model_kind"] = kind
    described.update(meta)
    described["versions"] = versions()
    described["model_bytes"] = (run_dir / MODEL_FILE).stat().st_size
    write_json(run_dir / MODEL_JSON, json_safe(described))


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """Load a run directory; tampered or inconsistent files raise :class:`~sqnn.errors.ModelFileError`."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    return RUN_KINDS[meta.get("model_kind", "network")].load(run_dir, meta)
