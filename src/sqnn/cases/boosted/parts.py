"""The ``.parts`` directory of a sequence: its finished chunks, kept so that a rerun resumes.

Each chunk is a parquet file ``<class>-w<lane>-c<chunk>.parquet``; ``manifest.json`` records
what the chunks' events depend on, so that a rerun with other arguments is refused instead
of mixing events of two runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sqnn.cases.boosted.physics import CLASSES
from sqnn.cases.boosted.sequences import EventSequence
from sqnn.errors import SqnnError
from sqnn.files import atomic_path

__all__ = ["lane_jets_done", "part_name", "prepare_parts", "scan_parts", "write_part"]


def part_name(which: str, lane: int, chunk: int) -> str:
    return f"{which}-w{lane:03d}-c{chunk:06d}.parquet"


def scan_parts(parts: Path) -> dict[tuple[str, int], list[tuple[int, Path, int]]]:
    """(class, lane) -> [(chunk, path, rows)] sorted by chunk."""
    found: dict[tuple[str, int], list[tuple[int, Path, int]]] = {}
    for path in sorted(parts.glob("*-w*-c*.parquet")):
        which, lane, chunk = path.stem.split("-")
        rows = pq.read_metadata(path).num_rows
        found.setdefault((which, int(lane[1:])), []).append((int(chunk[1:]), path, rows))
    return found


def prepare_parts(sequence: EventSequence) -> None:
    manifest_path = sequence.parts / "manifest.json"
    wanted = sequence.manifest()
    if manifest_path.exists():
        try:
            kept = json.loads(manifest_path.read_text())
        except json.JSONDecodeError:
            kept = None
        if kept != wanted:
            raise SqnnError(
                f"{sequence.parts} holds chunks of a run with other arguments ({kept}); "
                "rerun with those arguments or delete the directory"
            )
        return
    sequence.parts.mkdir(parents=True, exist_ok=True)
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(wanted, indent=2) + "\n")


def lane_jets_done(sequence: EventSequence) -> int:
    found = scan_parts(sequence.parts)
    return sum(
        min(sum(rows for _, _, rows in found.get((which, lane), [])), target)
        for which in CLASSES
        for lane, target in enumerate(sequence.needs[0][which])
    )


def write_part(directory: Path, table: pa.Table, info: dict[str, Any], which: str, lane: int, chunk: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    table = table.replace_schema_metadata({"sqnn_part": json.dumps(info)})
    with atomic_path(directory / part_name(which, lane, chunk)) as tmp:
        pq.write_table(table, tmp, compression="zstd")
