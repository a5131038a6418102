"""ONNX export: onnxruntime against torch, decisions and hidden bits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from engine_helpers import events, make_run

from sqnn.engines.checks import check_onnx, torch_outputs
from sqnn.engines.onnx_export import OnnxEngine, export_onnx
from sqnn.runs import load_run

ARCHITECTURES: dict[str, tuple[int, dict[str, Any]]] = {
    "57-64-32, binary layer 2": (57, {"hidden": [64, 32], "stochastic": [True, True], "binary_weights": [False, True]}),
    "ReLU then step": (8, {"hidden": [24, 12], "stochastic": [False, True], "binary_weights": [False, True]}),
    "binary layer after ReLU": (8, {"hidden": [24, 12, 4], "stochastic": [True, False, True], "binary_weights": [False, True, True]}),
    "QAT": (57, {"hidden": [64, 32], "stochastic": [True, True], "binary_weights": [False, True], "input_fixed": [8, 3], "first_layer_fixed": [8, 2]}),
    "QAT beyond float32": (11, {"hidden": [33, 16], "stochastic": [True, True], "binary_weights": [False, True],
                                "input_fixed": [16, 5], "first_layer_fixed": [12, 3]}),
    "coarse QAT (ties)": (5, {"hidden": [32, 8], "stochastic": [True, True], "binary_weights": [False, True], "input_fixed": [4, 3], "first_layer_fixed": [3, 2]}),
}


@pytest.mark.parametrize("inference", ["deterministic", "mean"])
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_onnxruntime_matches_torch(name: str, inference: str, tmp_path: Path) -> None:
    """Step units thresholded, or (a float network scored by its mean) σ(τz) in float32 as torch computes it."""
    n_inputs, network = ARCHITECTURES[name]
    run = make_run(tmp_path / "run", n_inputs, network, seed=3)
    path = export_onnx(run, tmp_path / "out" / "model.onnx", inference=inference)
    onnx.checker.check_model(str(path))
    x = events(run, 3000)
    parity = check_onnx(run, path, x, inference)
    assert parity.passed, parity.summary()
    assert parity.logit_max_abs_diff < 1e-4
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert ("Sigmoid" in ops) == (inference == "mean")


def test_dynamic_batch_and_raw_float64_input(tmp_path: Path) -> None:
    n_inputs, network = ARCHITECTURES["QAT"]
    run = make_run(tmp_path / "run", n_inputs, network)
    engine = OnnxEngine(export_onnx(run, tmp_path / "model.onnx", inference="deterministic"))
    x = events(run, 257)
    whole = engine.logit(x)
    assert whole.shape == (257,)
    assert np.array_equal(np.concatenate([engine.logit(x[:1]), engine.logit(x[1:])]), whole)
    model = onnx.load(str(tmp_path / "model.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert {"Gemm", "Greater", "Round"} <= {node.op_type for node in model.graph.node}


def test_a_different_model_is_noticed(tmp_path: Path) -> None:
    n_inputs, network = ARCHITECTURES["57-64-32, binary layer 2"]
    run = make_run(tmp_path / "a", n_inputs, network, seed=1)
    other = make_run(tmp_path / "b", n_inputs, network, seed=2)
    parity = check_onnx(run, export_onnx(other, tmp_path / "other.onnx"), events(run, 500))
    assert not parity.passed


def test_trained_relu_model(toy_run: Path) -> None:
    """The float default (ReLU, then Bernoulli units scored by their mean) in its own scoring, or thresholded when asked."""
    run = load_run(toy_run)
    assert run.default_inference == "mean"
    x = events(run, 2000)
    for inference in ("mean", "deterministic"):
        logit, _ = torch_outputs(run, x, inference)
        assert np.array_equal(OnnxEngine.from_run(run, inference=inference).logit(x) > 0, logit > 0)
    assert np.abs(OnnxEngine.from_run(run).logit(x) - run.logit(x)).max() < 1e-5
