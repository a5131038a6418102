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

from sqnn.files import atomic_path, file_digest, json_safe, write_json
from sqnn.runs.format import (
    DESCRIPTION_DIGEST,
    FORMAT,
    FORMAT_VERSION,
    MODEL_DIGEST,
    MODEL_FILE,
    MODEL_JSON,
    TENSORS_DIGEST,
    Run,
    description_digest,
    model_digest,
    read_meta,
    verify_binding,
    versions,
)
from sqnn.runs.networks import load_network, load_set_model, save_network
from sqnn.runs.trees import load_trees, save_trees

__all__ = ["RUN_KINDS", "RunKind", "load_run", "write_run"]


@dataclass(frozen=True)
class RunKind:
    """How one kind of model is stored: its tensor writer (path, model, safetensors metadata) and its loader."""

    save_tensors: Callable[[Path, Any, dict[str, str]], None]
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
    described: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION}
    if kind != "network":
        described["model_kind"] = kind
    described.update(meta)
    described["versions"] = versions()
    for bound in (TENSORS_DIGEST, DESCRIPTION_DIGEST, "model_bytes"):
        described.pop(bound, None)
    described = json_safe(described)
    # the tensors record the digest of the model they hold; the description the tensors' digest and its own
    # one metadata entry: safetensors writes several in an order that varies, and equal models must be equal bytes
    metadata = {MODEL_DIGEST: model_digest(described)}
    with atomic_path(run_dir / MODEL_FILE) as tmp:
        RUN_KINDS[kind].save_tensors(tmp, model, metadata)
        described[TENSORS_DIGEST] = file_digest(tmp)
        described["model_bytes"] = tmp.stat().st_size
    described[DESCRIPTION_DIGEST] = description_digest(described)
    write_json(run_dir / MODEL_JSON, described)


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """Load a run directory; tampered or inconsistent files raise :class:`~sqnn.errors.ModelFileError`.

    The files are checked in order, each before anything it describes is read: ``model.json``
    against its schema, the tensors' names and shapes against the architecture, then the
    digests that bind the two files to each other.
    """
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    run = RUN_KINDS[meta.get("model_kind", "network")].load(run_dir, meta)
    verify_binding(run_dir, meta)
    return run
