"""Devices: the CPU reference, a GPU when asked for and present, a one-line error when absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sqnn.cli import main
from sqnn.devices import resolve_device
from sqnn.errors import SqnnError

TOY_FEATURES = "x0,x1,x2,x3,x4,x5"
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cpu_and_auto_resolve() -> None:
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(None)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SqnnError, match="^device must be") as error:
        resolve_device("tpu")
    assert error.value.for_cli().startswith("--device must be")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_without_one_is_one_line(toy_files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--sim", str(toy_files[0]), "--data", str(toy_files[1]), "--features", TOY_FEATURES,
                 "--label", "is_signal", "--epochs", "1", "--device", "cuda", "--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "no CUDA GPU" in err and len(err.strip().splitlines()) == 1


def test_every_command_that_trains_or_scores_offers_a_device(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("train", "compare", "finetune", "evaluate", "predict"):
        assert main([command, "--help"]) == 0
        assert "--device" in capsys.readouterr().out, command


@needs_gpu
def test_a_gpu_run_is_seeded_and_agrees_with_the_cpu(toy_files, tmp_path: Path) -> None:
    metrics = {}
    for device, folder in (("cpu", "cpu"), ("cuda", "gpu-a"), ("cuda", "gpu-b")):
        assert main(["train", "--sim", str(toy_files[0]), "--data", str(toy_files[1]), "--features", TOY_FEATURES,
                     "--label", "is_signal", "--epochs", "3", "--device", device, "--quiet", "--out", str(tmp_path / folder)]) == 0
        metrics[folder] = json.loads((tmp_path / folder / "metrics.json").read_text())
        assert json.loads((tmp_path / folder / "model.json").read_text())["trained_on"] == device
    assert (tmp_path / "gpu-a" / "model.safetensors").read_bytes() == (tmp_path / "gpu-b" / "model.safetensors").read_bytes()
    assert abs(metrics["gpu-a"]["auc_source"] - metrics["cpu"]["auc_source"]) < 0.02
