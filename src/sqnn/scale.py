"""Scoring at scale and sweeps on a cluster: files in chunks, in this process or on Dask.

:func:`predict_files` scores every input file (globs expanded) in chunks of ``chunk``
events and writes one parquet per input, ``OUT_DIR/<input stem>.scores.parquet``, with
``logit`` and ``score`` next to the chosen passthrough columns. Each output is streamed
chunk by chunk into a temporary file that replaces the target only when complete, so a
reader never sees a partial file and memory holds a few chunks, not a file.

Each file is cut into *pieces* of about ``chunk`` events (parquet: whole row groups,
ROOT and HDF5: entry ranges, CSV: the whole file, read in chunks). ``scheduler=None``
scores the pieces here, one after the other. ``scheduler="local"`` starts a Dask
``LocalCluster`` of ``workers`` processes with one thread each; any other string is the
address of a running Dask scheduler (``tcp://host:8786``), whose workers must have sqnn
installed and see the same paths. On a cluster each task loads the run from its
directory itself (tasks carry paths, never models) and returns the scores of one
piece; at most two pieces per worker thread are in flight and results are written in
file order, so the output is identical to scoring in one process.

:func:`map_tasks` runs independent tasks (e.g. one (method, γ, seed) training each) on
the same kind of cluster and returns their results in task order.

>>> from sqnn.scale import predict_files                                   # doctest: +SKIP
>>> predict_files("runs/sqnn", ["data/*.root"], "scores/", scheduler="local", chunk=100_000)
"""

from __future__ import annotations

import contextlib
import functools
import glob
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sqnn.data import list_columns
from sqnn.data.io import _check_exists, _hdf5_group, _root_tree, file_format, split_path
from sqnn.data.sample import _ABSURD, ColumnSpec, _flat_numeric, pad_objects
from sqnn.errors import DataError, SqnnError

__all__ = [
    "Piece",
    "ScoredFile",
    "expand_inputs",
    "map_tasks",
    "open_client",
    "output_path",
    "plan_pieces",
    "predict_files",
    "read_chunks",
    "warm_up",
]

PathLike = str | os.PathLike[str]
Scheduler = Any  # None, "local", an address, or a distributed.Client
T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CHUNK = 100_000
# pieces in flight per worker thread: one running, one queued behind it
_IN_FLIGHT_PER_THREAD = 2
# parquet is read through a buffered stream without pre-buffering: otherwise Arrow reads
# (and decodes) whole row groups ahead, several times the chunk
_PARQUET_BUFFER = 1 << 20


@dataclass(frozen=True)
class Piece:
    """Events ``start:stop`` of one input (``stop=None``: to the end of the file)."""

    path: str
    start: int
    stop: int | None


@dataclass(frozen=True)
class ScoredFile:
    """One input and the scores written for it."""

    input: str
    output: Path
    events: int


def _needs(package: str, extra: str) -> SqnnError:
    return SqnnError(f"this needs {package}: pip install 'sqnn[{extra}]'")


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


def output_path(out_dir: PathLike, path: str) -> Path:
    """``OUT_DIR/<input stem>.scores.parquet``."""
    file, _ = split_path(path)
    return Path(out_dir) / f"{file.stem}.scores.parquet"


def _absolute(path: str) -> str:
    """The same input as an absolute path (workers may run in another directory)."""
    file, tree = split_path(path)
    return str(file.resolve()) if tree is None else f"{file.resolve()}:{tree}"


def _row_count(path: str) -> int | None:
    """Events in a ROOT or HDF5 file, or None where the format cannot tell without reading it (CSV)."""
    fmt = file_format(path)
    file, name = split_path(path)
    if fmt == "root":
        return int(_root_tree(file, name).num_entries)
    if fmt == "hdf5":
        group = _hdf5_group(file, name)
        lengths = {len(group[k]) for k in group.keys() if hasattr(group[k], "shape")}
        return max(lengths) if lengths else 0
    return None


def plan_pieces(path: str, chunk: int = DEFAULT_CHUNK) -> list[Piece]:
    """Cut one input into pieces of about ``chunk`` events (at least one piece, even if empty)."""
    if chunk < 1:
        raise SqnnError(f"--chunk must be at least 1, got {chunk}")
    file, _ = split_path(path)
    _check_exists(file)
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


def _arrow_column(column: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_struct(column.type):
        import awkward as ak

        return ak.from_arrow(column, highlevel=True)
    return column.to_numpy(zero_copy_only=False)


def _awkward_column(array: Any) -> Any:
    import awkward as ak

    if array.ndim == 1 and not isinstance(array.layout, ak.contents.RecordArray):
        with contextlib.suppress(Exception):
            return ak.to_numpy(array)
    return array


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
        yield {c: _arrow_column(reader.schema_arrow.empty_table().column(c)) for c in columns}
        return
    for group in groups:
        for batch in reader.iter_batches(batch_size=chunk, row_groups=[group], columns=columns, use_threads=False):
            yield {c: _arrow_column(batch.column(c)) for c in columns}


def _root_chunks(piece: Piece, columns: list[str], chunk: int) -> Iterator[dict[str, Any]]:
    file, name = split_path(piece.path)
    tree = _root_tree(file, name)
    stop = tree.num_entries if piece.stop is None else piece.stop
    if stop <= piece.start:
        arrays = tree.arrays(columns, entry_start=0, entry_stop=0, library="ak")
        yield {c: _awkward_column(arrays[c]) for c in columns}
        return
    for arrays in tree.iterate(columns, entry_start=piece.start, entry_stop=stop, step_size=chunk, library="ak"):
        yield {c: _awkward_column(arrays[c]) for c in columns}


def _hdf5_chunks(piece: Piece, columns: list[str], chunk: int) -> Iterator[dict[str, Any]]:
    file, name = split_path(piece.path)
    group = _hdf5_group(file, name)
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


def _check_columns(path: str, spec: ColumnSpec) -> list[str]:
    """The columns to read for ``spec``; a missing one is a one-line error naming the file."""
    available = list_columns(path)
    wanted = list(spec.features or ()) + list(spec.passthrough) + ([spec.objects] if spec.objects else [])
    for column in wanted:
        if column not in available:
            role = "passthrough" if column in spec.passthrough else "feature"
            raise DataError(f"{path}: {role} column {column!r} not found (the file has {len(available)} columns)")
    return list(dict.fromkeys(wanted))


def _feature_matrix(path: str, spec: ColumnSpec, raw: dict[str, Any], first_row: int) -> np.ndarray:
    """The model's input matrix of one chunk, validated as :func:`sqnn.data.load_sample` does."""
    names = list(spec.features or ())
    n = len(raw[names[0]]) if names else len(raw[spec.objects]) if spec.objects else 0
    matrix = np.empty((n, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        column = _flat_numeric(path, name, raw[name], n, "feature")
        bad = ~np.isfinite(column)
        if bad.any():
            raise DataError(
                f"{path}: feature column {name!r} has NaN/inf values (first at row {first_row + int(np.flatnonzero(bad)[0])}); "
                "remove or impute them"
            )
        big = np.abs(column) > _ABSURD
        if big.any():
            raise DataError(
                f"{path}: feature column {name!r} has values beyond ±{_ABSURD:g} "
                f"(first at row {first_row + int(np.flatnonzero(big)[0])}); fix the units or remove them"
            )
        matrix[:, j] = column
    if spec.objects:
        _, _, block = pad_objects(path, spec.objects, raw[spec.objects], spec.max_objects)
        matrix = np.hstack([matrix, block])
    return matrix


def _table(columns: dict[str, Any]) -> Any:
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        if isinstance(values, np.ndarray):
            arrays[name] = pa.array(values)
        else:
            import awkward as ak

            arrays[name] = ak.to_arrow(values, extensionarray=False)
    return pa.table(arrays)


def _score_chunks(scorer: Callable[[np.ndarray], dict[str, np.ndarray]], piece: Piece, spec: ColumnSpec, chunk: int) -> Iterator[Any]:
    """Tables of passthrough columns + scores, one per chunk of ``piece``."""
    columns = _check_columns(piece.path, spec)
    row = piece.start
    for raw in read_chunks(piece, columns, chunk):
        features = _feature_matrix(piece.path, spec, raw, row)
        out: dict[str, Any] = {c: raw[c] for c in spec.passthrough}
        if len(features):
            out.update(scorer(features))
        else:
            out.update({"logit": np.zeros(0, np.float32), "score": np.zeros(0, np.float32)})
        row += len(features)
        yield _table(out)


@functools.lru_cache(maxsize=4)
def _worker_scorer(run_dir: str, engine: str, stamp: tuple[int, ...]) -> tuple[Callable[[np.ndarray], dict[str, np.ndarray]], ColumnSpec]:
    """A worker process loads each run once (again only if its files change: ``stamp``)."""
    import torch

    from sqnn.engines.scoring import make_scorer
    from sqnn.run import load_run

    torch.set_num_threads(1)
    run = load_run(run_dir)
    return make_scorer(run, engine), run.input_spec()


def _stamp(run_dir: str) -> tuple[int, ...]:
    from sqnn.run import MODEL_FILE, MODEL_JSON

    stats = [os.stat(Path(run_dir) / name) for name in (MODEL_JSON, MODEL_FILE)]
    return tuple(value for s in stats for value in (s.st_mtime_ns, s.st_size))


def _score_piece(run_dir: str, engine: str, piece: Piece, passthrough: tuple[str, ...], chunk: int) -> Any:
    """One cluster task: load the run (cached per worker), score one piece, return its table."""
    import pyarrow as pa

    scorer, spec = _worker_scorer(run_dir, engine, _stamp(run_dir))
    tables = list(_score_chunks(scorer, piece, replace(spec, passthrough=passthrough), chunk))
    return pa.concat_tables(tables)


def _warm_worker(run_dir: str, engine: str) -> int:
    scorer, spec = _worker_scorer(run_dir, engine, _stamp(run_dir))
    n_inputs = len(spec.features or ()) if not spec.objects else None
    if n_inputs:
        scorer(np.zeros((64, n_inputs), dtype=np.float32))  # compiles the packed engine's kernels
    return os.getpid()


def warm_up(client: Any, run_dir: PathLike, engine: str = "torch") -> int:
    """Load the run (and compile its engine) on every worker now, not on their first piece; returns the worker count."""
    return len(client.run(_warm_worker, str(Path(run_dir).resolve()), engine))


@contextlib.contextmanager
def open_client(scheduler: Scheduler, workers: int = 2) -> Iterator[Any]:
    """A Dask client: a new LocalCluster for ``"local"``, a connection for an address, or the Client given."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise _needs("Dask", "dask") from None
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if not isinstance(scheduler, str) or not scheduler:
        raise SqnnError(f"--scheduler must be 'local' or the address of a Dask scheduler, got {scheduler!r}")
    if scheduler == "local":
        if workers < 1:
            raise SqnnError(f"--workers must be at least 1, got {workers}")
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.ERROR,
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout="20s")
    except OSError as exc:
        raise SqnnError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    with client:
        yield client


def _in_order(client: Any, fn: Callable[..., R], calls: Iterable[tuple[Any, ...]]) -> Iterator[R]:
    """Results of ``fn(*args)`` for each call, in call order, with a bounded number in flight."""
    window = max(2, _IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
    calls = iter(calls)
    pending: deque[Any] = deque()

    def submit_next() -> None:
        args = next(calls, None)
        if args is not None:
            pending.append(client.submit(fn, *args, pure=False))

    try:
        for _ in range(window):
            submit_next()
        while pending:
            future = pending.popleft()
            result = future.result()
            future.release()
            submit_next()
            yield result
    finally:
        if pending:
            client.cancel(list(pending))


class _OutputFile:
    """Tables appended to one parquet file, written row group by row group."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path, self.target = path, target
        self.writer: Any = None
        self.events = 0

    def write(self, table: Any) -> None:
        import pyarrow.parquet as pq

        if self.writer is None:
            # the first table, even an empty one, fixes the schema
            self.writer = pq.ParquetWriter(self.path, table.schema)
        if table.schema != self.writer.schema:
            try:
                table = table.cast(self.writer.schema)
            except Exception as exc:  # noqa: BLE001 - Arrow raises several types
                raise DataError(f"{self.target}: a chunk's columns do not match the first chunk's ({exc})") from None
        if table.num_rows:
            self.writer.write_table(table)
            self.events += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def predict_files(
    run_dir: PathLike,
    inputs: Sequence[PathLike],
    out_dir: PathLike,
    *,
    scheduler: Scheduler = None,
    chunk: int = DEFAULT_CHUNK,
    engine: str = "torch",
    passthrough: Sequence[str] = (),
    workers: int = 2,
    inference: str | None = None,
    samples: int = 1,
    lfsr_seed: int = 0,
    progress: Callable[[ScoredFile], None] | None = None,
) -> list[ScoredFile]:
    """Score every input into ``OUT_DIR/<stem>.scores.parquet``; returns what was written, in input order.

    ``engine`` is one of :data:`sqnn.engines.scoring.ENGINES`. Stochastic inference
    (``inference="stochastic"``) draws one LFSR sequence over all events in order, so it
    runs in this process only (``scheduler=None``). ``progress`` is called after each file.
    """
    from sqnn._atomic import atomic_path
    from sqnn.engines.scoring import ENGINES, make_scorer
    from sqnn.run import load_run

    if engine not in ENGINES:
        raise SqnnError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if inference == "stochastic" and scheduler is not None:
        raise SqnnError("stochastic inference draws one LFSR sequence over all events in order; run it without --scheduler")
    paths = expand_inputs(inputs)
    outputs = [output_path(out_dir, p) for p in paths]
    seen: dict[Path, str] = {}
    for path, out in zip(paths, outputs):
        if out in seen:
            raise SqnnError(f"{seen[out]} and {path} would both write {out}; give inputs with different file names")
        seen[out] = path
    run = load_run(run_dir)  # validates the run before any work starts
    spec = replace(run.input_spec(), passthrough=tuple(passthrough))
    plans = [plan_pieces(p, chunk) for p in paths]
    for path in paths:
        _check_columns(path, spec)

    written: list[ScoredFile] = []
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            scorer = make_scorer(run, engine, inference, samples, lfsr_seed)

            def tables_of(pieces: list[Piece]) -> Iterator[Any]:
                for piece in pieces:
                    yield from _score_chunks(scorer, piece, spec, chunk)
        else:
            client = stack.enter_context(open_client(scheduler, workers))
            calls = (
                (str(Path(run_dir).resolve()), engine, replace(piece, path=_absolute(piece.path)), tuple(passthrough), chunk)
                for pieces in plans
                for piece in pieces
            )
            # one table per piece, in order over all files, so workers move on to the next file early
            scored = _in_order(client, _score_piece, calls)
            stack.callback(scored.close)  # cancels what is still in flight, before the client closes

            def tables_of(pieces: list[Piece]) -> Iterator[Any]:
                for _ in pieces:
                    yield next(scored)
        for path, out, pieces in zip(paths, outputs, plans):
            with atomic_path(out) as tmp:
                output = _OutputFile(tmp, out)
                try:
                    for table in tables_of(pieces):
                        output.write(table)
                finally:
                    output.close()
            written.append(ScoredFile(input=path, output=out, events=output.events))
            if progress is not None:
                progress(written[-1])
    return written


def map_tasks(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    scheduler: Scheduler = None,
    *,
    workers: int = 2,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``[fn(task) for task in tasks]``, in task order, here (``scheduler=None``) or on a Dask cluster.

    ``fn`` must be importable on the workers (a module-level function) and each task
    picklable; tasks run independently, one per worker thread. ``on_result(i, result)`` is
    called in task order as results arrive (e.g. to print progress). An exception in a
    task is raised here, and the tasks still queued are cancelled.
    """
    tasks = list(tasks)
    results: list[R] = []
    if scheduler is None:
        for index, task in enumerate(tasks):
            results.append(fn(task))
            if on_result is not None:
                on_result(index, results[-1])
        return results
    with open_client(scheduler, workers) as client:
        for index, result in enumerate(_in_order(client, fn, ((task,) for task in tasks))):
            results.append(result)
            if on_result is not None:
                on_result(index, result)
    return results
