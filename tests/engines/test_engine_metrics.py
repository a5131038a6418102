"""Metrics from the deployed arithmetic: evaluate --engine gives the Python model's closure on a fixed-point network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sqnn.cli import main
from sqnn.errors import SqnnError
from sqnn.workflows.train import evaluate_run

SCORE_KEYS = ("auc_source", "auc_target", "ks", "sf_signal", "sf_background", "closure", "closure_80", "ks_signal", "ks_background")


@pytest.mark.parametrize("engine", ["packed", "onnx"])
def test_engines_give_the_metrics_of_the_python_model(fixed_run: Path, toy_files, engine: str) -> None:
    torch_metrics = evaluate_run(fixed_run, *toy_files, data_label="is_signal")
    engine_metrics = evaluate_run(fixed_run, *toy_files, data_label="is_signal", engine=engine)
    # bit-exact logits: the same decisions at every cut, so the same closure
    assert {k: engine_metrics[k] for k in SCORE_KEYS} == pytest.approx({k: torch_metrics[k] for k in SCORE_KEYS}, abs=1e-6)


def test_firmware_metrics_from_the_command_line(fixed_run: Path, toy_files, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    assert main(["evaluate", str(fixed_run), "--sim", str(toy_files[0]), "--data", str(toy_files[1]),
                 "--data-label", "is_signal", "--engine", "hls4ml", "--out", str(out)]) == 0
    firmware = json.loads(out.read_text())
    reference = evaluate_run(fixed_run, *toy_files, data_label="is_signal")
    assert abs(firmware["closure"] - reference["closure"]) < 1e-9 and firmware["auc_target"] == pytest.approx(reference["auc_target"])


def test_an_engine_that_cannot_score_the_model_refuses(float_run: Path, toy_files) -> None:
    # the float default scored by its mean: the packed engine computes only fixed-point means
    with pytest.raises(SqnnError, match="fixed-point"):
        evaluate_run(float_run, *toy_files, data_label="is_signal", engine="packed")


def test_stochastic_draws_approach_the_mean(fixed_run: Path, toy_files) -> None:
    mean = evaluate_run(fixed_run, *toy_files, data_label="is_signal")
    one = evaluate_run(fixed_run, *toy_files, data_label="is_signal", inference="stochastic", draws=1)
    many = evaluate_run(fixed_run, *toy_files, data_label="is_signal", inference="stochastic", draws=64)
    assert abs(many["auc_target"] - mean["auc_target"]) < abs(one["auc_target"] - mean["auc_target"]) + 0.002
    assert abs(many["auc_target"] - mean["auc_target"]) < 0.01
