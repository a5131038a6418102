"""The held-out scores of a run: what evaluation scored, stored next to ``metrics.json``.

``RUN/scores.parquet`` holds one row per held-out event of both domains, as the run's
evaluation scored them: ``domain`` (``simulation`` or ``data``), ``score`` (P(signal|x)),
``weight`` (the simulation's after a run's reweighting), ``label`` (null where unknown:
data without labels), ``control`` and ``signal_control`` (the enriched regions; null without
the column). Reports and
studies read results from here instead of loading the inputs and scoring again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sqnn.errors import SqnnError
from sqnn.files import atomic_path

__all__ = ["SCORES_FILE", "HeldOut", "Scores", "read_scores", "write_scores"]

SCORES_FILE = "scores.parquet"
DOMAINS = ("simulation", "data")


@dataclass
class HeldOut:
    """The held-out events of one domain as a run scored them."""

    score: np.ndarray
    weight: np.ndarray
    label: np.ndarray | None = None
    control: np.ndarray | None = None
    signal_control: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.score)

    def select(self, mask: np.ndarray) -> "HeldOut":
        def take(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[mask]

        return HeldOut(self.score[mask], self.weight[mask], take(self.label), take(self.control), take(self.signal_control))


@dataclass
class Scores:
    """The held-out scores of both domains."""

    simulation: HeldOut
    data: HeldOut


def _column(values: np.ndarray | None, n: int, kind: pa.DataType) -> pa.Array:
    if values is None:
        return pa.nulls(n, type=kind)
    return pa.array(np.asarray(values).astype(kind.to_pandas_dtype()), type=kind)


def write_scores(run_dir: str | os.PathLike[str], scores: Scores) -> Path:
    """Write ``RUN/scores.parquet`` atomically; returns its path."""
    parts = []
    for name, held in zip(DOMAINS, (scores.simulation, scores.data)):
        n = len(held)
        parts.append(pa.table({
            "domain": pa.array([name] * n, type=pa.string()),
            "score": pa.array(np.asarray(held.score, dtype=np.float64)),
            "weight": pa.array(np.asarray(held.weight, dtype=np.float64)),
            "label": _column(held.label, n, pa.int8()),
            "control": _column(held.control, n, pa.bool_()),
            "signal_control": _column(held.signal_control, n, pa.bool_()),
        }))
    path = Path(run_dir) / SCORES_FILE
    with atomic_path(path) as tmp:
        pq.write_table(pa.concat_tables(parts), tmp, compression="zstd")
    return path


def read_scores(run_dir: str | os.PathLike[str]) -> Scores:
    """The stored held-out scores of a run; a run evaluated before they were stored is one clear error."""
    path = Path(run_dir) / SCORES_FILE
    if not path.exists():
        raise SqnnError(f"{path}: missing; the run's evaluation stored no scores (rerun `sqnn compare` on the same "
                        "directory: it keeps the finished runs and evaluates them again)")
    table = pq.read_table(path)
    domain = table.column("domain").to_numpy(zero_copy_only=False)
    held = []
    for name in DOMAINS:
        rows = np.flatnonzero(domain == name)
        part = table.take(pa.array(rows))

        def optional(column: str, dtype: type) -> np.ndarray | None:
            values = part.column(column)
            if values.null_count == len(values) or len(values) == 0:
                return None
            return values.to_numpy(zero_copy_only=False).astype(dtype)

        held.append(HeldOut(
            score=part.column("score").to_numpy(),
            weight=part.column("weight").to_numpy(),
            label=optional("label", np.int8),
            control=optional("control", bool),
            signal_control=optional("signal_control", bool) if "signal_control" in table.column_names else None,
        ))
    return Scores(*held)
