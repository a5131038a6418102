"""Scoring files with a trained run: in chunks, in this process or on a Dask cluster.

Every input (globs expanded) is read in chunks of ``chunk`` events
(:mod:`sqnn.data.chunks`) and scored by one scorer (:func:`sqnn.engines.scoring.make_scorer`)
into ``logit`` and ``score`` (and ``vote`` for stochastic inference) next to the chosen
passthrough columns. :func:`predict_files` writes one parquet per input,
``OUT_DIR/<input stem>.scores.parquet``; :func:`predict_to_file` writes all inputs into
one parquet with an ``input`` column (the index of the input file the event came from).
Outputs are streamed chunk by chunk into a temporary file that replaces the target only
when complete, so a reader never sees a partial file and memory holds a few chunks, not
a file.

With ``scheduler="local"`` (a Dask ``LocalCluster`` of ``workers`` one-thread processes) or
the address of a running Dask scheduler, each task loads the run from its directory itself
and returns the scores of one piece of a file; at most two pieces per worker thread are in
flight and results are written in file order, so the output is identical to scoring in one
process.

>>> from sqnn.workflows.predict import predict_files                      # doctest: +SKIP
>>> predict_files("runs/sqnn", ["data/*.root"], "scores/", scheduler="local", chunk=100_000)
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sqnn.cluster import Scheduler, in_order, open_client
from sqnn.data import ColumnSpec
from sqnn.data.chunks import (
    DEFAULT_CHUNK,
    Piece,
    absolute_path,
    chunk_features,
    columns_to_read,
    expand_inputs,
    plan_pieces,
    read_chunks,
)
from sqnn.data.io import split_path
from sqnn.engines.scoring import ENGINES, Scorer, make_scorer
from sqnn.errors import DataError, SqnnError, phrase
from sqnn.files import atomic_path, refuse_overwriting
from sqnn.runs import MODEL_FILE, MODEL_JSON, load_run

__all__ = ["DEFAULT_CHUNK", "ScoredFile", "output_path", "predict_files", "predict_to_file", "warm_up"]

PathLike = str | os.PathLike[str]
# the columns the scores are written to (a passthrough column may not take one of these names);
# one output for several inputs also has the column "input"
OUTPUT_COLUMNS = ("logit", "score", "vote")


@dataclass(frozen=True)
class ScoredFile:
    """One output and the events written to it."""

    input: str
    output: Path
    events: int


def output_path(out_dir: PathLike, path: str) -> Path:
    """``OUT_DIR/<input stem>.scores.parquet``."""
    file, _ = split_path(path)
    return Path(out_dir) / f"{file.stem}.scores.parquet"


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


def _score_chunks(scorer: Scorer, piece: Piece, spec: ColumnSpec, chunk: int, input_index: int | None = None) -> Iterator[Any]:
    """Tables of passthrough columns (the input's index) and scores, one per chunk of ``piece``."""
    columns = columns_to_read(piece.path, spec)
    row = piece.start
    for raw in read_chunks(piece, columns, chunk):
        features = chunk_features(piece.path, spec, raw, row)
        out: dict[str, Any] = {c: raw[c] for c in spec.passthrough}
        if input_index is not None:
            out["input"] = np.full(len(features), input_index, dtype=np.int32)
        if len(features):
            out.update(scorer(features))
        else:
            out.update({"logit": np.zeros(0, np.float32), "score": np.zeros(0, np.float32)})
        row += len(features)
        yield _table(out)


@functools.lru_cache(maxsize=4)
def _worker_scorer(run_dir: str, engine: str, stamp: tuple[int, ...]) -> tuple[Scorer, ColumnSpec]:
    """A worker process loads each run once (again only if its files change: ``stamp``)."""
    import torch

    torch.set_num_threads(1)
    run = load_run(run_dir)
    return make_scorer(run, engine), run.input_spec()


def _stamp(run_dir: str) -> tuple[int, ...]:
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


def _write(out: Path, tables: Iterator[Any]) -> int:
    """Stream ``tables`` into the parquet file ``out`` (atomically); returns the events written."""
    with atomic_path(out) as tmp:
        output = _OutputFile(tmp, out)
        try:
            for table in tables:
                output.write(table)
        finally:
            output.close()
    return output.events


def _prepare(
    run_dir: PathLike, inputs: Sequence[PathLike], engine: str, passthrough: Sequence[str], chunk: int,
    outputs: Sequence[Path],
    reserved: Sequence[str] = OUTPUT_COLUMNS,
) -> tuple[Any, list[str], ColumnSpec, list[list[Piece]]]:
    """The run, the inputs and their pieces, all checked before any event is scored.

    ``outputs`` gives the files that will be written for the inputs: none may be an input
    (or a file of the run), whatever path or link names it.
    """
    if engine not in ENGINES:
        raise SqnnError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    clash = sorted(set(passthrough) & set(reserved))
    if clash:
        raise SqnnError(
            f"{phrase('passthrough ' + ', '.join(map(repr, clash)), '--passthrough ' + ', '.join(clash))}: "
            "the output has its own column of that name; it would replace the input's"
        )
    paths = expand_inputs(inputs)
    refuse_overwriting(
        outputs, [*(split_path(p)[0] for p in paths), Path(run_dir) / MODEL_JSON, Path(run_dir) / MODEL_FILE]
    )
    run = load_run(run_dir)
    spec = replace(run.input_spec(), passthrough=tuple(passthrough))
    plans = [plan_pieces(p, chunk) for p in paths]
    for path in paths:
        columns_to_read(path, spec)
    return run, paths, spec, plans


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
    device: str | None = None,
    progress: Callable[[ScoredFile], None] | None = None,
) -> list[ScoredFile]:
    """Score every input into ``OUT_DIR/<stem>.scores.parquet``; returns what was written, in input order.

    ``engine`` is one of :data:`sqnn.engines.scoring.ENGINES`. Stochastic inference
    (``inference="stochastic"``) draws one LFSR sequence over all events in order, so it
    runs in this process only (``scheduler=None``). ``device`` moves the torch engine's scoring in
    this process (e.g. to a GPU). ``progress`` is called after each file.
    """
    if inference == "stochastic" and scheduler is not None:
        alone = phrase("with scheduler=None", "without --scheduler")
        raise SqnnError(f"stochastic inference draws one LFSR sequence over all events in order; run it {alone}")
    paths = expand_inputs(inputs)
    outputs = [output_path(out_dir, p) for p in paths]
    seen: dict[Path, str] = {}
    for path, out in zip(paths, outputs):
        if out in seen:
            raise SqnnError(f"{seen[out]} and {path} would both write {out}; give inputs with different file names")
        seen[out] = path
    run, paths, spec, plans = _prepare(run_dir, paths, engine, passthrough, chunk, outputs)

    written: list[ScoredFile] = []
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            scorer = make_scorer(run, engine, inference, samples, lfsr_seed, device)

            def tables_of(pieces: list[Piece]) -> Iterator[Any]:
                for piece in pieces:
                    yield from _score_chunks(scorer, piece, spec, chunk)
        else:
            client = stack.enter_context(open_client(scheduler, workers))
            calls = (
                (str(Path(run_dir).resolve()), engine, replace(piece, path=absolute_path(piece.path)), tuple(passthrough), chunk)
                for pieces in plans
                for piece in pieces
            )
            # one table per piece, in order over all files, so workers move on to the next file early
            scored = in_order(client, _score_piece, calls)
            stack.callback(scored.close)  # cancels what is still in flight, before the client closes

            def tables_of(pieces: list[Piece]) -> Iterator[Any]:
                for _ in pieces:
                    yield next(scored)
        for path, out, pieces in zip(paths, outputs, plans):
            written.append(ScoredFile(input=path, output=out, events=_write(out, tables_of(pieces))))
            if progress is not None:
                progress(written[-1])
    return written


def predict_to_file(
    run_dir: PathLike,
    inputs: Sequence[PathLike],
    out: PathLike,
    *,
    chunk: int = DEFAULT_CHUNK,
    engine: str = "torch",
    passthrough: Sequence[str] = (),
    inference: str | None = None,
    samples: int = 1,
    lfsr_seed: int = 0,
    device: str | None = None,
) -> ScoredFile:
    """Score every input, in order, into one parquet file with an ``input`` column (the input's index)."""
    run, paths, spec, plans = _prepare(run_dir, inputs, engine, passthrough, chunk, [Path(out)], (*OUTPUT_COLUMNS, "input"))
    scorer = make_scorer(run, engine, inference, samples, lfsr_seed, device)
    tables = (
        table
        for index, pieces in enumerate(plans)
        for piece in pieces
        for table in _score_chunks(scorer, piece, spec, chunk, input_index=index)
    )
    return ScoredFile(input=",".join(paths), output=Path(out), events=_write(Path(out), tables))
