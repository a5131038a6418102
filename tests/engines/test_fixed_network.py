"""Fixed-point networks: torch eval, the integer reference, the packed engine and ONNX, bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from engine_helpers import events, make_run

from sqnn.engines.checks import check_onnx, torch_outputs
from sqnn.engines.fixed_network import FixedNetwork
from sqnn.engines.arithmetic import load_packed, network_for, packed_engine
from sqnn.engines.onnx_export import OnnxEngine, export_onnx
from sqnn.engines.packed_fixed import KERNEL, KERNEL_FLOAT32, KERNEL_FLOAT64, FixedPackedEngine
from sqnn.engines.resources import firmware_resources
from sqnn.errors import SqnnError
from sqnn.nn.quant import theta_thresholds
from sqnn.runs import load_run

DEFAULT = {"hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False], "samples": 4}
ARCHITECTURES: dict[str, tuple[int, dict[str, Any]]] = {
    "default 14-64-16": (14, {**DEFAULT, "fixed_point": {
        "input": [12, 4], "weight": [[8, 2], [8, 1]], "activation": [[8, 2], None], "head": [10, 3]}}),
    "two ReLU layers, 8-bit theta": (9, {"hidden": [20, 33, 5], "stochastic": [False, False, True], "binary_weights": [False] * 3,
                                         "fixed_point": {"input": [10, 3], "weight": [8, 2], "activation": [[8, 3], [6, 2], None],
                                                         "head": [8, 3], "theta_bits": 8}}),
    "Bernoulli feeding Bernoulli": (6, {"hidden": [24, 16], "stochastic": [True, True], "binary_weights": [False, False],
                                        "fixed_point": {"input": [10, 3], "weight": [8, 2], "head": [10, 3], "theta_bits": 3}}),
    # few bits: many z on the thresholds, ReLU rounding ties, saturation everywhere
    "coarse grids": (5, {**DEFAULT, "hidden": [40, 8], "fixed_point": {
        "input": [5, 3], "weight": [[4, 2], [4, 1]], "activation": [[4, 1], None], "head": [6, 3], "theta_bits": 2}}),
    # sums beyond 2^24: the float64 kernel
    "wide grids": (11, {**DEFAULT, "hidden": [33, 17], "fixed_point": {
        "input": [16, 5], "weight": [[14, 3], [14, 2]], "activation": [[14, 4], None], "head": [16, 4], "theta_bits": 6}}),
}
INFERENCE = ["mean", "deterministic"]


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, np.ndarray]:
    n_inputs, network = ARCHITECTURES[request.param]
    run = make_run(tmp_path_factory.mktemp("fixed") / "run", n_inputs, network, seed=len(request.param))
    typical = events(run, 3000)
    saturating = events(run, 1000, seed=2, spread=12.0)
    return run, np.concatenate([typical, saturating])


@pytest.mark.parametrize("inference", INFERENCE)
def test_torch_is_the_integer_reference(case: tuple[Any, np.ndarray], inference: str) -> None:
    run, x = case
    network = FixedNetwork.from_run(run, inference)
    reference = network.reference(x)
    logit, codes = torch_outputs(run, x, inference)
    assert np.array_equal(logit, reference.logit.astype(np.float32))
    assert all(np.array_equal(a, b) for a, b in zip(codes, reference.codes))
    # the inputs were meant to reach every saturation and both ends of every table
    assert (np.abs(reference.inputs) == -network.input_grid.min_int).any() or (reference.inputs == network.input_grid.max_int).any()
    for layer, layer_codes in zip(network.layers, reference.codes):
        assert (layer_codes == 0).any() and (layer_codes == layer.max_code).any()


@pytest.mark.parametrize("inference", INFERENCE)
def test_packed_engine_is_the_integer_reference(case: tuple[Any, np.ndarray], inference: str) -> None:
    run, x = case
    engine = packed_engine(run, inference)
    assert isinstance(engine, FixedPackedEngine) and engine.scoring == inference
    reference = engine.network.reference(x)
    assert np.array_equal(engine.logit(x), reference.logit)
    assert all(np.array_equal(a, b) for a, b in zip(engine.hidden_codes(x), reference.codes))
    parts = [engine.logit(x[a:b]) for a, b in [(0, 0), (0, 1), (1, 7), (7, 70), (70, 4000)]]
    assert np.array_equal(np.concatenate(parts), reference.logit)
    assert np.array_equal(engine.logit(np.concatenate([x] * 5), threads=2), np.tile(reference.logit, 5))
    assert np.array_equal(engine.logit(x.astype(np.float32)), engine.network.reference(x.astype(np.float32)).logit)


@pytest.mark.parametrize("inference", INFERENCE)
def test_onnx_is_the_integer_reference(case: tuple[Any, np.ndarray], inference: str, tmp_path: Path) -> None:
    run, x = case
    path = export_onnx(run, tmp_path / "model.onnx", inference=inference)
    onnx.checker.check_model(str(path))
    reference = FixedNetwork.from_run(run, inference).reference(x)
    assert np.array_equal(OnnxEngine(path).logit(x), reference.logit.astype(np.float32))
    parity = check_onnx(run, path, x, inference)
    assert parity.passed and parity.logit_max_abs_diff == 0.0, parity.summary()
    assert len(parity.hidden_agreement) == len(reference.codes)


def test_kernel_choice_follows_the_bound_of_the_sums(tmp_path: Path) -> None:
    for name, kernel in (("default 14-64-16", KERNEL_FLOAT32), ("wide grids", KERNEL_FLOAT64)):
        n_inputs, network = ARCHITECTURES[name]
        engine = packed_engine(make_run(tmp_path / name, n_inputs, network))
        assert engine._meta[KERNEL] == kernel


def test_a_flipped_threshold_is_seen(tmp_path: Path) -> None:
    n_inputs, network = ARCHITECTURES["default 14-64-16"]
    run = make_run(tmp_path / "run", n_inputs, network)
    x = events(run, 3000)
    engine = packed_engine(run)
    good = engine.hidden_codes(x)[1]
    layer = engine.network.layers[1]
    assert layer.thresholds is not None
    offset = int(engine._meta[16 + 10 + 6])  # the second layer's record: its table's offset
    engine._f32[offset + 7] += 3
    assert (engine.hidden_codes(x)[1] != good).any()
    assert np.array_equal(layer.thresholds, theta_thresholds(6.0, 4, layer.z_fractional))


def test_save_and_load(case: tuple[Any, np.ndarray], tmp_path: Path) -> None:
    run, x = case
    engine = packed_engine(run)
    engine.save(tmp_path / "packed")
    loaded = load_packed(tmp_path / "packed")
    assert isinstance(loaded, FixedPackedEngine) and loaded.scoring == "mean"
    assert np.array_equal(loaded.logit(x), engine.logit(x))


def test_what_the_engines_cannot_compute_is_refused(tmp_path: Path, float_run: Path) -> None:
    n_inputs, network = ARCHITECTURES["default 14-64-16"]
    run = make_run(tmp_path / "run", n_inputs, network)
    with pytest.raises(SqnnError, match="stochastic"):
        network_for(run, "stochastic")
    with pytest.raises(SqnnError, match="scores 'mean', not 'deterministic'"):
        packed_engine(run).logit(events(run, 3), inference="deterministic")
    pending = make_run(tmp_path / "pending", n_inputs, {**DEFAULT, "fixed_point": {}})
    with pytest.raises(SqnnError, match="never chosen"):
        network_for(pending)
    with pytest.raises(SqnnError, match="fixed_point"):
        network_for(load_run(float_run))  # the float default, scored by its mean


def test_resources_count_the_design(tmp_path: Path) -> None:
    n_inputs, network = ARCHITECTURES["default 14-64-16"]
    fixed = FixedNetwork.from_run(make_run(tmp_path / "run", n_inputs, network))
    report = firmware_resources(fixed)
    fc0, relu, fc1, theta, head = report["layers"]
    weights = fixed.layers[0].weight_int
    powers = (np.abs(weights) > 0) & ((np.abs(weights) & (np.abs(weights) - 1)) == 0)
    assert fc0["multiplications"] + fc0["shifts"] == np.count_nonzero(weights) and fc0["shifts"] == powers.sum()
    assert (fc0["input_bits"], fc0["weight_bits"], fc0["dsp_hls4ml_rule"]) == (12, 8, 0)
    assert relu["output_type"] == "ap_ufixed<8,2,AP_RND_CONV,AP_SAT>" and relu["comparisons"] == 128
    assert theta["comparisons"] == 16 * 16 and theta["thresholds"] == 16 and theta["output_bits"] == 5
    assert fc1["input_bits"] == 8 and head["input_bits"] == 5 and head["outputs"] == 1
    assert report["totals"]["comparisons"] == 128 + 256


def test_trained_default_network(fixed_run: Path, toy_files: tuple[Path, Path]) -> None:
    from sqnn.data import ColumnSpec, load_sample

    run = load_run(fixed_run)
    assert run.default_inference == "mean" and run.model.config.fixed_point.resolved
    engine = packed_engine(run)
    onnx_engine = OnnxEngine.from_run(run)
    for x in (load_sample(toy_files[1], ColumnSpec(features=tuple(run.features)), "data").features, events(run, 4000, spread=6.0)):
        torch_logit = run.logit(x)
        assert np.array_equal(engine.logit(x).astype(np.float32), torch_logit)
        assert np.array_equal(onnx_engine.logit(x), torch_logit)
