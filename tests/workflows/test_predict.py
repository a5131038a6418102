"""Scoring files: chunked reading, bounded memory, a Dask cluster that agrees with one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sqnn.cases.toy import generate, make_toy
from sqnn.data import ColumnSpec, load_sample
from sqnn.errors import DataError, SqnnError
from sqnn.runs import load_run
from sqnn.cluster import open_client
from sqnn.data.chunks import Piece, plan_pieces
from sqnn.workflows.predict import output_path, predict_files, warm_up

TOY_FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")


@pytest.fixture(scope="module")
def cluster():
    """A two-worker LocalCluster shared by the tests of this module."""
    with open_client("local", workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The same kind of events as parquet (several row groups), ROOT, HDF5 and CSV."""
    import h5py
    import pandas as pd
    import uproot

    folder = tmp_path_factory.mktemp("inputs")
    paths = []
    for index, (fmt, n) in enumerate((("parquet", 5000), ("root", 3100), ("h5", 2500), ("csv", 1200))):
        columns = make_toy("data", n, 10 + index)
        path = folder / f"events{index}.{fmt}"
        if fmt == "parquet":
            pq.write_table(pa.table(columns), path, row_group_size=700)
        elif fmt == "root":
            with uproot.recreate(path) as handle:
                handle["events"] = {k: v for k, v in columns.items() if k != "control"}
        elif fmt == "h5":
            with h5py.File(path, "w") as handle:
                for key, values in columns.items():
                    handle[key] = values
        else:
            pd.DataFrame(columns).to_csv(path, index=False)
        paths.append(str(path))
    return paths


def offline_logit(run_dir: Path, path: str) -> np.ndarray:
    run = load_run(run_dir)
    return run.logit(load_sample(path, ColumnSpec(features=TOY_FEATURES), "data").features).astype(np.float32)


def test_pieces_of_parquet_keep_row_groups_whole(inputs) -> None:
    pieces = plan_pieces(inputs[0], chunk=1500)
    # 700-event row groups packed two at a time, the last piece holds what is left
    assert [(p.start, p.stop) for p in pieces] == [(0, 1400), (1400, 2800), (2800, 4200), (4200, 5000)]
    assert [(p.start, p.stop) for p in plan_pieces(inputs[1], chunk=1500)] == [(0, 1500), (1500, 3000), (3000, 3100)]
    assert plan_pieces(inputs[3], chunk=100) == [Piece(inputs[3], 0, None)]


def test_chunked_scores_equal_scoring_each_whole_file(toy_run: Path, inputs, tmp_path: Path) -> None:
    written = predict_files(toy_run, inputs, tmp_path, chunk=1000, passthrough=("event", "mass"))
    assert [w.output for w in written] == [output_path(tmp_path, p) for p in inputs]
    for path, result in zip(inputs, written):
        table = pq.read_table(result.output)
        assert table.column_names == ["event", "mass", "logit", "score"]
        expected = offline_logit(toy_run, path)
        assert result.events == len(expected) == table.num_rows
        np.testing.assert_array_equal(table.column("logit").to_numpy(), expected)
        np.testing.assert_array_equal(table.column("event").to_numpy(), np.arange(len(expected)))
        score = table.column("score").to_numpy()
        np.testing.assert_allclose(score, 1 / (1 + np.exp(-expected.astype(np.float64))), rtol=1e-6)
    assert not list(tmp_path.glob(".*.part"))


def test_two_worker_cluster_scores_exactly_as_one_process(toy_run: Path, inputs, tmp_path: Path, cluster) -> None:
    assert warm_up(cluster, toy_run) == 2
    here = predict_files(toy_run, inputs, tmp_path / "here", chunk=800, passthrough=("event",))
    there = predict_files(toy_run, inputs, tmp_path / "cluster", scheduler=cluster, chunk=800, passthrough=("event",))
    assert [w.events for w in here] == [w.events for w in there]
    for a, b in zip(here, there):
        assert pq.read_table(a.output).equals(pq.read_table(b.output))


def test_glob_expansion_and_an_empty_file(toy_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(3):
        generate("data", 300 + index, index, folder / f"part{index}.parquet")
    table = pa.table(make_toy("data", 10, 1)).slice(0, 0)
    pq.write_table(table, folder / "empty.parquet")
    written = predict_files(toy_run, [str(folder / "part*.parquet"), str(folder / "empty.parquet")], tmp_path / "out")
    assert [w.events for w in written] == [300, 301, 302, 0]
    empty = pq.read_table(written[-1].output)
    assert empty.num_rows == 0 and empty.column_names == ["logit", "score"]


def test_bad_inputs_are_one_line_errors(toy_run: Path, tmp_path: Path) -> None:
    columns = make_toy("data", 3000, 3)
    columns["x2"][2345] = np.nan
    bad = tmp_path / "a" / "bad.parquet"
    bad.parent.mkdir()
    pq.write_table(pa.table(columns), bad, row_group_size=1000)
    # the row is counted over the file, not within the chunk that holds it
    with pytest.raises(DataError, match=r"bad.parquet: feature column 'x2' has 1 NaN/inf values in rows 2000-2499 \(first at row 2345\)"):
        predict_files(toy_run, [bad], tmp_path / "out", chunk=500)
    assert not (tmp_path / "out" / "bad.scores.parquet").exists()
    with pytest.raises(DataError, match="no file matches"):
        predict_files(toy_run, [str(tmp_path / "nothing*.parquet")], tmp_path / "out")
    with pytest.raises(DataError, match="passthrough column 'nope' not found"):
        predict_files(toy_run, [bad], tmp_path / "out", passthrough=("nope",))
    twin = tmp_path / "b" / "bad.parquet"
    twin.parent.mkdir()
    twin.write_bytes(bad.read_bytes())
    with pytest.raises(SqnnError, match="would both write"):
        predict_files(toy_run, [bad, twin], tmp_path / "out")
    with pytest.raises(SqnnError, match="run it with scheduler=None"):
        predict_files(toy_run, [bad], tmp_path / "out", scheduler="local", inference="stochastic")


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    torch.set_num_threads(1)
    from sqnn.workflows.predict import predict_files

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    run, small, big, out, chunk = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    # the same work on a file of a few chunks first: imports, the model and chunk-sized buffers
    predict_files(run, [small], out, chunk=chunk, passthrough=("event",))
    before = peak_mb()
    written = predict_files(run, [big], out, chunk=chunk, passthrough=("event",))
    print(json.dumps({"before_mb": before, "after_mb": peak_mb(), "events": written[0].events}))
    """
)


def test_a_file_much_larger_than_a_chunk_is_scored_in_bounded_memory(toy_run: Path, tmp_path: Path) -> None:
    n, chunk = 2_000_000, 50_000
    small = generate("data", 2 * chunk, 1, tmp_path / "small.parquet")
    big = generate("data", n, 2, tmp_path / "big.parquet")
    # what the file takes in memory when read whole: features as float64 (as load_sample converts) + event
    whole_mb = n * (len(TOY_FEATURES) * 8 + 8) / 2**20
    # buffers of 1 MiB and more straight from mmap: the peak then measures what the code holds,
    # not how far glibc's heap fragments (which adds a few tens of MB, whatever the file size)
    environment = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(toy_run), str(small), str(big), str(tmp_path / "out"), str(chunk)],
        capture_output=True, text=True, timeout=120, check=False, env=environment,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["events"] == n
    growth = probe["after_mb"] - probe["before_mb"]
    assert growth < whole_mb / 5, f"peak memory grew by {growth:.0f} MB scoring a file of {whole_mb:.0f} MB"


def test_a_passthrough_column_may_not_replace_a_score_column(toy_run: Path, toy_files, tmp_path: Path) -> None:
    from sqnn.errors import SqnnError
    from sqnn.workflows.predict import predict_files, predict_to_file

    with pytest.raises(SqnnError, match="^passthrough 'score': the output has its own column") as error:
        predict_to_file(toy_run, [toy_files[1]], tmp_path / "s.parquet", passthrough=("event", "score"))
    assert error.value.for_cli().startswith("--passthrough score: the output has its own column")
    with pytest.raises(SqnnError, match="passthrough 'input'"):
        predict_to_file(toy_run, [toy_files[1]], tmp_path / "s.parquet", passthrough=("input",))
    with pytest.raises(SqnnError, match="passthrough 'logit'"):
        predict_files(toy_run, [toy_files[1]], tmp_path / "scores", passthrough=("logit",))
    assert not (tmp_path / "s.parquet").exists() and not (tmp_path / "scores").exists()
