"""The command line end to end on the toy, and its one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sqnn.cli import main
from sqnn.evaluation import METRIC_KEYS

FEATURES = "x0,x1,x2,x3,x4,x5"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_train_evaluate_predict(tmp_path: Path, capsys) -> None:
    sim, data = tmp_path / "sim.parquet", tmp_path / "data.parquet"
    assert run_cli(capsys, "generate", "toy", "--domain", "sim", "--n", 1500, "--seed", 1, "--out", sim)[0] == 0
    assert run_cli(capsys, "generate", "toy", "--domain", "data", "--n", 1500, "--seed", 2, "--out", data)[0] == 0
    run = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "train", "--sim", sim, "--data", data, "--features", FEATURES, "--label", "is_signal",
        "--weight", "weight", "--control", "control", "--observer", "mass", "--epochs", 2, "--quiet", "--out", run,
    )
    assert code == 0, err
    assert out.splitlines()[0].split()[:3] == ["method", "setting", "auc_source"]
    # every line but the last, which names the run directory
    assert max(len(line) for line in out.splitlines()[:-1]) <= 100 and out.splitlines()[-1].startswith(f"wrote the run to {run}")
    for name in ("model.safetensors", "model.json", "history.json", "metrics.json"):
        assert (run / name).exists()
    model = json.loads((run / "model.json").read_text())
    assert model["method"] == "sqnn" and model["features"] == FEATURES.split(",")
    label_free = json.loads((run / "metrics.json").read_text())
    assert label_free["auc_target"] is None and label_free["auc_source"] > 0.6

    metrics_file = tmp_path / "metrics.json"
    code, out, err = run_cli(capsys, "evaluate", run, "--sim", sim, "--data", data, "--data-label", "is_signal", "--out", metrics_file)
    assert code == 0, err
    metrics = json.loads(metrics_file.read_text())
    # the compact block: closure with its error, then where every metric is
    assert "closure 50 %" in out.splitlines()[0] and f"{metrics['closure']:.3f} ± " in out
    assert max(len(line) for line in out.splitlines()[:-1]) <= 100 and out.rstrip().endswith(f"wrote {metrics_file} (every metric)")
    assert set(METRIC_KEYS) <= set(metrics)
    assert 0.5 < metrics["auc_target"] <= 1 and metrics["ks"] > 0 and metrics["sf_signal_err"] > 0
    for suffix in ("", "_80"):
        assert metrics[f"closure{suffix}"] == pytest.approx(abs(1 - metrics[f"sf_signal{suffix}"]) + abs(1 - metrics[f"sf_background{suffix}"]))
    assert 0 < metrics["auc_target_err"] < 0.1
    threshold_file = tmp_path / "threshold.json"
    code, _, err = run_cli(capsys, "evaluate", run, "--sim", sim, "--data", data, "--data-label", "is_signal",
                           "--inference", "deterministic", "--out", threshold_file)
    assert code == 0, err
    threshold = json.loads(threshold_file.read_text())
    assert threshold["auc_target"] != metrics["auc_target"] and threshold["n_events_data"] == metrics["n_events_data"]
    # on the training files only the held-out test split is evaluated
    assert metrics["n_events_simulation"] == 300

    scores = tmp_path / "scores.parquet"
    code, _, err = run_cli(capsys, "predict", run, data, "--out", scores, "--passthrough", "event")
    assert code == 0, err
    table = pq.read_table(scores).to_pandas()
    assert len(table) == 1500 and table["event"].tolist() == list(range(1500))
    assert ((table["score"] >= 0) & (table["score"] <= 1)).all()


@pytest.fixture
def broken_files(tmp_path: Path, toy_files) -> dict[str, Path]:
    sim, _ = toy_files
    frame = pd.read_parquet(sim)
    files = {}
    nan = frame.copy()
    nan.loc[5, "x2"] = np.nan
    files["nan"] = tmp_path / "nan.parquet"
    nan.to_parquet(files["nan"])
    files["missing"] = tmp_path / "missing.parquet"
    frame.drop(columns=["x3"]).to_parquet(files["missing"])
    files["extra"] = tmp_path / "extra.parquet"
    frame.assign(x6=1.0).to_parquet(files["extra"])
    return files


@pytest.mark.parametrize(
    ("case", "expected"),
    [("nan", "'x2' has 1 NaN/inf values out of 3000"), ("missing", "'x3' not found"), ("extra", "only in data: x6")],
)
def test_bad_data_gets_one_line_and_exit_code_2(tmp_path: Path, capsys, toy_files, broken_files, case, expected) -> None:
    sim, _ = toy_files
    features = [] if case == "extra" else ["--features", FEATURES]
    code, out, err = run_cli(
        capsys, "train", "--sim", sim, "--data", broken_files[case], *features, "--label", "is_signal",
        "--epochs", 1, "--quiet", "--out", tmp_path / "run",
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sqnn: error:")
    assert expected in lines[0] and str(broken_files[case]) in lines[0]
    assert "Traceback" not in err + out


def test_tampered_model_file_is_rejected(tmp_path: Path, capsys, toy_run, toy_files) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    model = json.loads((run / "model.json").read_text())
    model["network"]["hidden"] = [65, 16]
    (run / "model.json").write_text(json.dumps(model))
    code, _, err = run_cli(capsys, "predict", run, toy_files[1], "--out", tmp_path / "s.parquet")
    assert code == 2 and "shape" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.parquet").exists()


def test_console_script_reports_a_missing_file_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sqnn", "train", "--sim", str(tmp_path / "nope.parquet"), "--data", "x.parquet",
         "--label", "is_signal", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert "no such file" in result.stderr and "Traceback" not in result.stderr


def test_reweight_flag_sets_the_option_of_its_method(tmp_path: Path, capsys, toy_files) -> None:
    sim, data = toy_files
    common = ("train", "--sim", sim, "--data", data, "--features", FEATURES, "--label", "is_signal", "--weight", "weight",
              "--control", "control", "--epochs", 1, "--quiet")
    code, _, err = run_cli(capsys, *common, "--reweight", "control", "--out", tmp_path / "sqnn")
    assert code == 0, err
    model = json.loads((tmp_path / "sqnn" / "model.json").read_text())
    assert model["method"] == "sqnn" and model["method_options"]["reweight"] == "control"
    assert (tmp_path / "sqnn" / "reweighter" / "model.json").exists()
    code, _, err = run_cli(capsys, *common, "--method", "reweight", "--reweight", "all", "--out", tmp_path / "rw")
    assert code == 0, err
    assert json.loads((tmp_path / "rw" / "model.json").read_text())["method_options"]["region"] == "all"
    for method, words in (("dann", "--reweight is an option of --method sqnn and reweight, not of dann"),
                          ("reweight", "--method reweight always reweights")):
        reweight = "control" if method == "dann" else "none"
        code, out, err = run_cli(capsys, *common, "--method", method, "--reweight", reweight, "--out", tmp_path / method)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / method).exists()
