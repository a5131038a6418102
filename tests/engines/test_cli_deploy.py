"""`sqnn export`, `sqnn bench` and the engine options of `sqnn predict`, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sqnn.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_quantisation_aware_training_from_a_yaml_config(toy_files: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "qat.yaml"
    config.write_text(yaml.safe_dump({
        "features": ["x0", "x1", "x2", "x3", "x4", "x5"], "label": "is_signal",
        "network": {"hidden": [8, 4], "stochastic": [True, True], "binary_weights": [False, True], "input_fixed": [10, 4], "first_layer_fixed": [8, 2]},
    }))
    code, _, err = run_cli(capsys, "train", "--sim", toy_files[0], "--data", toy_files[1], "--config", config, "--epochs", 1, "--quiet", "--out", tmp_path / "run")
    assert code == 0, err
    network = json.loads((tmp_path / "run" / "model.json").read_text())["network"]
    assert network["input_fixed"] == [10, 4] and network["first_layer_fixed"] == [8, 2]


@pytest.mark.parametrize("fmt", ["packed", "onnx"])
def test_export_with_check(fmt: str, qat_run: Path, toy_files: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(capsys, "export", qat_run, "--format", fmt, "--out", tmp_path, "--check", 3000)
    assert code == 0, err
    assert "decisions 100.000 % identical" in out and "PASS" in out
    assert json.loads((tmp_path / "check.json").read_text())["passed"] is True
    code, out, err = run_cli(capsys, "export", qat_run, "--format", fmt, "--out", tmp_path, "--check", 2000, "--events", toy_files[1])
    assert code == 0 and "2000 events" in out, err


def test_stochastic_packed_export_check(qat_run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(capsys, "export", qat_run, "--format", "packed", "--out", tmp_path, "--check", 500,
                             "--inference", "stochastic", "--samples", 4, "--lfsr-seed", 5)
    assert code == 0, err
    assert "LFSR emulation" in out and "× 4 samples" in out and "PASS" in out


@pytest.mark.slow
def test_hls4ml_export_with_check(qat_run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(capsys, "export", qat_run, "--format", "hls4ml", "--out", tmp_path, "--check", 1000)
    assert code == 0, err
    assert "hls4ml C simulation vs torch on 1000 events: decisions 100.000 % identical" in out
    assert (tmp_path / "hls4ml" / "firmware" / "sqnn.cpp").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "onnx", "--inference", "stochastic"), "ONNX export is deterministic"),
        (("--format", "packed", "--check", -3), "'--check': '-3' is not an integer in [0, "),
        (("--format", "packed", "--samples", 0), "'--samples': '0' is not an integer in [1, 1024]"),
    ],
)
def test_export_errors_are_one_line(args: tuple[object, ...], message: str, qat_run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run_cli(capsys, "export", qat_run, "--out", tmp_path, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_export_needs_step_layers_and_quantisation(float_run: Path, step_run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # the float default (ReLU, then Bernoulli units scored by their mean): the bit engines cannot compute it
    for fmt in ("packed", "hls4ml"):
        code, _, err = run_cli(capsys, "export", float_run, "--format", fmt, "--out", tmp_path / fmt)
        assert code == 2 and "fixed_point" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / fmt).exists()  # nothing else was exported in its place
    code, _, err = run_cli(capsys, "export", float_run, "--format", "packed", "--inference", "deterministic", "--out", tmp_path)
    assert code == 2 and "ReLU" in err
    code, _, err = run_cli(capsys, "export", step_run, "--format", "hls4ml", "--out", tmp_path)
    assert code == 2 and "quantisation-aware" in err and len(err.strip().splitlines()) == 1


def test_bench_writes_records(qat_run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out_file = tmp_path / "bench.json"
    code, out, err = run_cli(capsys, "bench", qat_run, "--batch", "1,300", "--repeats", 1, "--out", out_file)
    assert code == 0, err
    records = json.loads(out_file.read_text())
    assert {(r["engine"], r["batch"]) for r in records} == {(e, b) for e in ("torch", "onnx", "packed") for b in (1, 300)}
    for record in records:
        assert {"engine", "batch", "threads", "events_per_s", "latency_us", "model_bytes"} <= set(record)
        assert record["events_per_s"] > 0 and record["latency_us"] > 0 and record["model_bytes"] > 0
    assert '"torch": 0, "onnx": 0, "packed": 0' in out
    assert "packed/onnx" in out
    code, _, err = run_cli(capsys, "bench", qat_run, "--batch", "1,x")
    assert code == 2 and "--batch" in err


def test_predict_engines_and_stochastic_inference(qat_run: Path, toy_files: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    frames = {}
    for engine in ("torch", "packed", "onnx"):
        code, _, err = run_cli(capsys, "predict", qat_run, toy_files[1], "--out", tmp_path / f"{engine}.parquet", "--engine", engine)
        assert code == 0, err
        frames[engine] = pd.read_parquet(tmp_path / f"{engine}.parquet")
    for engine in ("packed", "onnx"):
        assert np.array_equal(frames[engine].logit > 0, frames["torch"].logit > 0)
    stochastic = {}
    for engine in ("packed", "torch"):
        code, _, err = run_cli(capsys, "predict", qat_run, toy_files[1], toy_files[0], "--out", tmp_path / f"s_{engine}.parquet",
                               "--engine", engine, "--inference", "stochastic", "--samples", 3, "--lfsr-seed", 8)
        assert code == 0, err
        stochastic[engine] = pd.read_parquet(tmp_path / f"s_{engine}.parquet")
    assert stochastic["packed"].equals(stochastic["torch"])
    assert set(stochastic["packed"].vote.unique()) <= {0.0, 1 / 3, 2 / 3, 1.0} | {np.float32(1 / 3), np.float32(2 / 3)}
    code, _, err = run_cli(capsys, "predict", qat_run, toy_files[1], "--out", tmp_path / "x.parquet", "--engine", "onnx", "--inference", "stochastic")
    assert code == 2 and "deterministic" in err


def test_float_mean_model_asks_for_deterministic_on_the_packed_engine(toy_files: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from engine_helpers import TOY_FEATURES

    from sqnn.data import ColumnSpec
    from sqnn.workflows.train import train_run
    from sqnn.runs import load_run
    from sqnn.training import TrainConfig
    from sqnn.workflows.settings import Settings

    network = {"hidden": [8, 4], "stochastic": [True, True], "binary_weights": [False, False]}
    settings = Settings(columns=ColumnSpec(features=TOY_FEATURES, label="is_signal", weight="weight"), method="sqnn",
                        gamma=0.5, network=network, train=TrainConfig(epochs=1, seed=0))
    train_run(*toy_files, settings, tmp_path / "mean")
    run = load_run(tmp_path / "mean")
    assert run.default_inference == "mean"
    code, _, err = run_cli(capsys, "predict", run.path, toy_files[1], "--out", tmp_path / "packed.parquet", "--engine", "packed")
    assert code == 2 and "--inference deterministic" in err and len(err.strip().splitlines()) == 1
    # ONNX computes the float expectation as torch does
    code, _, err = run_cli(capsys, "predict", run.path, toy_files[1], "--out", tmp_path / "onnx.parquet", "--engine", "onnx")
    assert code == 0, err
    code, _, err = run_cli(capsys, "predict", run.path, toy_files[1], "--out", tmp_path / "d.parquet", "--engine", "packed",
                           "--inference", "deterministic")
    assert code == 0, err
    code, _, err = run_cli(capsys, "predict", run.path, toy_files[1], "--out", tmp_path / "m.parquet")
    assert code == 0, err
    mean, threshold = pd.read_parquet(tmp_path / "m.parquet"), pd.read_parquet(tmp_path / "d.parquet")
    assert not np.array_equal(mean.logit, threshold.logit)
    assert np.array_equal(pd.read_parquet(tmp_path / "onnx.parquet").logit > 0, mean.logit > 0)


@pytest.mark.parametrize("fmt", ["packed", "onnx"])
def test_default_network_exports_as_trained(fmt: str, fixed_run: Path, toy_files: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The default network trained on fixed-point grids: exported as it scores (mean), checked at 100 %."""
    code, out, err = run_cli(capsys, "export", fixed_run, "--format", fmt, "--out", tmp_path, "--check", 3000)
    assert code == 0, err
    assert f"{fmt} vs torch (mean) on 3000 events: decisions 100.000 % identical, hidden codes 100.000 %, 100.000 %" in out
    check = json.loads((tmp_path / "check.json").read_text())
    assert check["passed"] is True and check["inference"] == "mean" and check["logit_max_abs_diff"] == 0.0
    code, out, err = run_cli(capsys, "export", fixed_run, "--format", fmt, "--out", tmp_path / "det", "--check", 2000,
                             "--inference", "deterministic", "--events", toy_files[1])
    assert code == 0 and "PASS" in out, err
    code, _, err = run_cli(capsys, "export", fixed_run, "--format", fmt, "--out", tmp_path / "s", "--inference", "stochastic")
    assert code == 2 and "stochastic" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_default_network_predict_and_bench(fixed_run: Path, toy_files: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    frames = {}
    for engine in ("torch", "packed", "onnx"):
        code, _, err = run_cli(capsys, "predict", fixed_run, toy_files[1], "--out", tmp_path / f"{engine}.parquet", "--engine", engine)
        assert code == 0, err
        frames[engine] = pd.read_parquet(tmp_path / f"{engine}.parquet")
    for engine in ("packed", "onnx"):
        assert np.array_equal(frames[engine].logit, frames["torch"].logit)  # the same numbers, not only the same decisions
    code, out, err = run_cli(capsys, "bench", fixed_run, "--batch", "1,300", "--repeats", 1)
    assert code == 0, err
    assert '"torch": 0, "onnx": 0, "packed": 0' in out and "skipped" not in out


def test_bench_skips_an_engine_that_cannot_score_the_model(float_run: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(capsys, "bench", float_run, "--batch", "1,100", "--repeats", 1)
    assert code == 0, err
    assert "packed: skipped" in out and "fixed_point" in out
    assert '"torch": 0, "onnx": 0' in out


@pytest.mark.slow
def test_hls4ml_export_of_the_default_network(fixed_run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    for inference in ("mean", "deterministic"):
        out_dir = tmp_path / inference
        code, out, err = run_cli(capsys, "export", fixed_run, "--format", "hls4ml", "--out", out_dir, "--check", 1000, "--inference", inference)
        assert code == 0, err
        assert f"hls4ml C simulation vs torch ({inference}) on 1000 events: decisions 100.000 % identical" in out or \
            (inference == "deterministic" and "hls4ml C simulation vs torch on 1000 events: decisions 100.000 % identical" in out)
        resources = json.loads((out_dir / "resources.json").read_text())
        assert [layer["kind"] for layer in resources["layers"]] == ["dense", "relu", "dense", "theta_levels", "dense"]
        assert resources["layers"][3]["thresholds"] == (16 if inference == "mean" else 1)


def test_the_default_training_deploys_bit_for_bit(toy_run: Path, toy_files: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`sqnn train` with no network settings: the model packed, ONNX and the firmware run, checked at 100 %."""
    meta = json.loads((toy_run / "model.json").read_text())
    assert meta["method"] == "sqnn" and meta["network"]["fixed_point"] and meta["network"]["inference"] == "mean"
    for fmt in ("packed", "onnx", "hls4ml"):
        code, out, err = run_cli(capsys, "export", toy_run, "--format", fmt, "--out", tmp_path / fmt, "--check", 1000)
        assert code == 0, err
        assert "decisions 100.000 % identical" in out and "(mean)" in out, out
    # the metrics of the deployed arithmetic are those of the Python model
    metrics = {}
    for engine in ("torch", "packed"):
        code, _, err = run_cli(capsys, "evaluate", toy_run, "--sim", toy_files[0], "--data", toy_files[1], "--data-label",
                               "is_signal", "--engine", engine, "--out", tmp_path / f"{engine}.json")
        assert code == 0, err
        metrics[engine] = json.loads((tmp_path / f"{engine}.json").read_text())
    assert metrics["packed"]["closure"] == metrics["torch"]["closure"]
    assert metrics["packed"]["auc_target"] == metrics["torch"]["auc_target"]
