"""The scaling options as the command line exposes them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from sqnn.cli import main

FEATURES = "x0,x1,x2,x3,x4,x5"


def test_predict_in_chunks_to_a_directory_equals_whole_file_scoring(tmp_path: Path, capsys, toy_run: Path, toy_files) -> None:
    data = toy_files[1]
    assert main(["predict", str(toy_run), str(data), "--out", str(tmp_path / "whole.parquet")]) == 0
    assert main(["predict", str(toy_run), str(data), "--out", str(tmp_path / "scores"), "--chunk", "700"]) == 0
    capsys.readouterr()
    whole = pq.read_table(tmp_path / "whole.parquet").column("logit").to_numpy()
    (chunked_file,) = (tmp_path / "scores").glob("*.parquet")
    assert (pq.read_table(chunked_file).column("logit").to_numpy() == whole).all()


def test_compare_on_a_local_dask_cluster_equals_the_serial_run(tmp_path: Path, capsys, toy_files) -> None:
    sim, data = toy_files
    common = ["compare", "--sim", str(sim), "--data", str(data), "--features", FEATURES, "--label", "is_signal",
              "--methods", "source-only,sqnn", "--gammas", "sqnn=0.6", "--seeds", "1", "--epochs", "1", "--no-report", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "serial")]) == 0
    assert main([*common, "--scheduler", "local", "--jobs", "2", "--out", str(tmp_path / "dask")]) == 0
    capsys.readouterr()
    for name in ("source-only/gamma0/seed0", "sqnn/gamma0.6/seed0"):
        serial = json.loads((tmp_path / "serial" / "runs" / name / "metrics.json").read_text())
        spread = json.loads((tmp_path / "dask" / "runs" / name / "metrics.json").read_text())
        serial.pop("train_seconds"), spread.pop("train_seconds")
        assert serial == spread
        assert (tmp_path / "serial" / "runs" / name / "model.safetensors").read_bytes() == (
            tmp_path / "dask" / "runs" / name / "model.safetensors"
        ).read_bytes()
