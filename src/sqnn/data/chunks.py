"""Reading files in chunks: inputs larger than memory, a few chunks held at a time.

Each file is cut into *pieces* of about ``chunk`` events (parquet: whole row groups,
ROOT and HDF5: entry ranges, CSV: the whole file, read in chunks); a piece is read as
consecutive chunks of at most ``chunk`` events, each ``{column: array}``. Pieces are
what a cluster task scores; chunks are what one process holds in memory.

Parquet is read through a buffered stream without pre-buffering: otherwise Arrow reads
(and decodes) whole row groups ahead, several times the chunk.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sqnn.data.io import (
    arrow_column,
    check_exists,
    file_format,
    from_awkward,
    hdf5_group,
    list_columns,
    root_tree,
    split_path,
)
from sqnn.data.sample import ColumnSpec, Domain, Sample, columns_of, feature_matrix, pad_objects, sample_from_columns
from sqnn.errors import DataError, SqnnError, option

__all__ = [
    "DEFAULT_CHUNK",
    "Piece",
    "absolute_path",
    "chunk_features",
    "columns_to_read",
    "count_events",
    "expand_inputs",
    "plan_pieces",
    "read_chunks",
    "sample_chunks",
    "sample_rows",
]

PathLike = str | os.PathLike[str]

DEFAULT_CHUNK = 100_000
_PARQUET_BUFFER = 1 << 20


@dataclass(frozen=True)
class Piece:
    """Events ``start:stop`` of one input (``stop=None``: to the end of the file)."""

    path: str
    start: int
    stop: int | None


def expand_inputs(patterns: Iterable[PathLike]) -> list[str]:
    """Input paths with globs expanded (sorted); a ROOT ``file.root:tree`` keeps its tree name."""
    found: list[str] = []
    for pattern in patterns:
        file, tree = split_path(pattern)
        text = str(file)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise DataError(f"{text}: no file matches this pattern")
        else:
            matches = [text]
        found.extend(m if tree is None else f"{m}:{tree}" for m in matches)
    if not found:
        raise SqnnError("no input files given")
    return found


def absolute_path(path: str) -> str:
    """The same input as an absolute path (cluster workers may run in another directory)."""
    file, tree = split_path(path)
    return str(file.resolve()) if tree is None else f"{file.resolve()}:{tree}"


def _row_count(path: str) -> int | None:
    """Events in a ROOT or HDF5 file, or None where the format cannot tell without reading it (CSV)."""
    fmt = file_format(path)
    file, name = split_path(path)
    if fmt == "root":
        return int(root_tree(file, name).num_entries)
    if fmt == "hdf5":
        group = hdf5_group(file, name)
        lengths = {len(group[k]) for k in group.keys() if hasattr(group[k], "shape")}
        return max(lengths) if lengths else 0
    return None


def plan_pieces(path: str, chunk: int = DEFAULT_CHUNK) -> list[Piece]:
    """Cut one input into pieces of about ``chunk`` events (at least one piece, even if empty)."""
    if chunk < 1:
        raise SqnnError(f"{option('chunk')} must be at least 1, got {chunk}")
    file, _ = split_path(path)
    check_exists(file)
    try:
        if file_format(path) == "parquet":
            import pyarrow.parquet as pq

            metadata = pq.ParquetFile(file).metadata
            pieces, start, stop = [], 0, 0
            # whole row groups, packed up to `chunk` events: a piece never splits a row group
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                if stop > start and stop - start + rows > chunk:
                    pieces.append(Piece(path, start, stop))
                    start = stop
                stop += rows
            pieces.append(Piece(path, start, stop))
            return pieces
        total = _row_count(path)
    except (DataError, SqnnError):
        raise
    except Exception as exc:
        raise DataError(f"{file}: cannot read the file's layout ({type(exc).__name__}: {exc})") from None
    if total is None:
        return [Piece(path, 0, None)]
    return [Piece(path, start, min(start + chunk, total)) for start in range(0, max(total, 1), chunk)]


def _parquet_chunks(piece: Piece, columns: list[str], chunk: int) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    file, _ = split_path(piece.path)
    reader = pq.ParquetFile(file, buffer_size=_PARQUET_BUFFER, pre_buffer=False)
    metadata = reader.metadata
    groups, first = [], 0
    for group in range(metadata.num_row_groups):
        rows = metadata.row_group(group).num_rows
        if piece.start <= first and (piece.stop is None or first + rows <= piece.stop) and rows > 0:
            groups.append(group)
        first += rows
    if not groups:
        yield {c: arrow_column(reader.schema_arrow.empty_table().column(c)) for c in columns}
        return
    for group in groups:
        for batch in reader.iter_batches(batch_size=chunk, row_groups=[group], columns=columns, use_threads=False):
            yield {c: arrow_column(batch.column(c)) for c in columns}


def _root_chunks(piece: Piece, columns: list[str], chunk: int) -> Iterator[dict[str, Any]]:
    file, name = split_path(piece.path)
    tree = root_tree(file, name)
    stop = tree.num_entries if piece.stop is None else piece.stop
    if stop <= piece.start:
        arrays = tree.arrays(columns, entry_start=0, entry_stop=0, library="ak")
        yield {c: from_awkward(arrays[c]) for c in columns}
        return
    for arrays in tree.iterate(columns, entry_start=piece.start, entry_stop=stop, step_size=chunk, library="ak"):
        yield {c: from_awkward(arrays[c]) for c in columns}


def _hdf5_chunks(piece: Piece, columns: list[str], chunk: int) -> Iterator[dict[str, Any]]:
    file, name = split_path(piece.path)
    group = hdf5_group(file, name)
    stop = piece.stop if piece.stop is not None else len(group[columns[0]])
    for start in range(piece.start, max(stop, piece.start + 1), chunk):
        yield {c: np.asarray(group[c][start : min(start + chunk, stop)]) for c in columns}


def _csv_chunks(piece: Piece, columns: list[str], chunk: int) -> Iterator[dict[str, Any]]:
    import pandas as pd

    file, _ = split_path(piece.path)
    produced = False
    with pd.read_csv(file, usecols=columns, chunksize=chunk) as reader:
        for frame in reader:
            produced = True
            yield {c: frame[c].to_numpy() for c in columns}
    if not produced:
        yield {c: np.zeros(0) for c in columns}


_READERS = {"parquet": _parquet_chunks, "root": _root_chunks, "hdf5": _hdf5_chunks, "csv": _csv_chunks}


def read_chunks(piece: Piece, columns: Sequence[str], chunk: int = DEFAULT_CHUNK) -> Iterator[dict[str, Any]]:
    """``{column: array}`` for consecutive chunks of at most ``chunk`` events of ``piece``."""
    fmt = file_format(piece.path)
    file, _ = split_path(piece.path)
    columns = list(dict.fromkeys(columns))
    try:
        yield from _READERS[fmt](piece, columns, chunk)
    except (DataError, SqnnError):
        raise
    except Exception as exc:
        raise DataError(f"{file}: cannot read the {fmt} data ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None


def columns_to_read(path: str, spec: ColumnSpec) -> list[str]:
    """The columns to read for a model's inputs and the passthrough; a missing one is a one-line error."""
    available = list_columns(path)
    wanted = list(spec.features or ()) + list(spec.passthrough) + ([spec.objects] if spec.objects else [])
    for column in wanted:
        if column not in available:
            role = "passthrough" if column in spec.passthrough else "feature"
            raise DataError(f"{path}: {role} column {column!r} not found (the file has {len(available)} columns)")
    return list(dict.fromkeys(wanted))


def chunk_features(path: str, spec: ColumnSpec, raw: dict[str, Any], first_row: int) -> np.ndarray:
    """The model's input matrix of one chunk starting at ``first_row``, validated as a whole file is."""
    names = list(spec.features or ())
    n = len(raw[names[0]]) if names else len(raw[spec.objects]) if spec.objects else 0
    matrix = feature_matrix(path, names, raw, n, first_row)
    if spec.objects:
        _, _, block = pad_objects(path, spec.objects, raw[spec.objects], spec.max_objects)
        matrix = np.hstack([matrix, block])
    return matrix


def count_events(path: str) -> int:
    """Events in one input, from its metadata where the format has it (CSV is read through once)."""
    file, _ = split_path(path)
    check_exists(file)
    try:
        if file_format(path) == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(file).metadata.num_rows)
        total = _row_count(path)
        if total is None:
            import pandas as pd

            with pd.read_csv(file, usecols=[0], chunksize=DEFAULT_CHUNK) as reader:
                total = sum(len(frame) for frame in reader)
    except (DataError, SqnnError):
        raise
    except Exception as exc:
        raise DataError(f"{file}: cannot read the file's layout ({type(exc).__name__}: {exc})") from None
    return int(total)


def sample_chunks(
    path: str, spec: ColumnSpec, domain: Domain, chunk: int = DEFAULT_CHUNK, pieces: Sequence[Piece] | None = None
) -> Iterator[tuple[int, Sample]]:
    """``(first row, Sample)`` for consecutive chunks of ``pieces`` (default: the whole file, in order).

    A chunk holds ``chunk`` events (fewer at the end of a piece), whatever the file's row groups;
    each is validated as a whole file is, and errors name rows of the file.
    """
    features, wanted = columns_of(path, spec)
    for piece in plan_pieces(path, chunk) if pieces is None else pieces:
        row = first = piece.start
        held: list[Sample] = []
        for raw in read_chunks(piece, wanted, chunk):
            sample = sample_from_columns(str(path), spec, features, raw, domain, first_row=row)
            row += len(sample)
            if len(sample):
                held.append(sample)
            if row - first >= chunk:
                yield first, Sample.joined(held)
                held, first = [], row
        if held:
            yield first, Sample.joined(held)


def sample_rows(
    path: str, spec: ColumnSpec, domain: Domain, rows: np.ndarray, chunk: int = DEFAULT_CHUNK, limit: int | None = None
) -> Sample:
    """The events at ``rows`` (sorted row numbers) of a file, read chunk by chunk; the first ``limit`` of them."""
    parts: list[Sample] = []
    held = 0
    for first, sample in sample_chunks(path, spec, domain, chunk):
        lo, hi = np.searchsorted(rows, [first, first + len(sample)])
        if hi > lo:
            take = rows[lo:hi][: None if limit is None else limit - held] - first
            parts.append(sample.subset(take))
            held += len(take)
        if limit is not None and held >= limit:
            break
    if not parts:
        raise DataError(f"{path}: none of the {len(rows)} events asked for are in the file")
    return Sample.joined(parts)
