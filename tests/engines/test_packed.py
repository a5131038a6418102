"""The packed engine against the torch model, bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from engine_helpers import events, make_run

from sqnn.engines.checks import torch_outputs
from sqnn.engines.network import binary_threshold
from sqnn.engines.packed import FIRST_FLOAT32, FIRST_INT64, FIRST_MODE, HEADER, L_PARAM_A, PackedEngine
from sqnn.errors import SqnnError
from sqnn.runs import load_run

ARCHITECTURES: dict[str, tuple[int, dict[str, Any]]] = {
    "57-64-32, binary layer 2": (57, {"hidden": [64, 32], "stochastic": [True, True], "binary_weights": [False, True]}),
    "float step layers": (11, {"hidden": [20, 70, 9], "stochastic": [True] * 3, "binary_weights": [False, False, True]}),
    "wide: 3-word binary input": (9, {"hidden": [130, 100], "stochastic": [True, True], "binary_weights": [False, True]}),
    "binary first layer": (7, {"hidden": [16, 8], "stochastic": [True, True], "binary_weights": [True, True]}),
    "one unit": (4, {"hidden": [1], "stochastic": [True], "binary_weights": [False]}),
    "head over 72 bits": (6, {"hidden": [8, 72], "stochastic": [True, True], "binary_weights": [False, False]}),
    "QAT 57-64-32": (57, {"hidden": [64, 32], "stochastic": [True, True], "binary_weights": [False, True],
                          "input_fixed": [8, 3], "first_layer_fixed": [8, 2]}),
    "QAT wide grids (int64 kernel)": (11, {"hidden": [33, 65], "stochastic": [True, True], "binary_weights": [False, True],
                                           "input_fixed": [16, 5], "first_layer_fixed": [12, 3]}),
    "input grid only": (5, {"hidden": [10], "stochastic": [True], "binary_weights": [False], "input_fixed": [8, 3]}),
    "weight grid only": (5, {"hidden": [10, 3], "stochastic": [True, True], "binary_weights": [False, True], "first_layer_fixed": [6, 2]}),
}


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, PackedEngine, np.ndarray]:
    n_inputs, network = ARCHITECTURES[request.param]
    run = make_run(tmp_path_factory.mktemp("packed") / "run", n_inputs, network, seed=len(request.param))
    return run, PackedEngine.from_run(run), events(run, 3001)


def test_decisions_and_bits_match_torch(case: tuple[Any, PackedEngine, np.ndarray]) -> None:
    run, engine, x = case
    torch_logit, torch_bits = torch_outputs(run, x)
    logit = engine.logit(x)
    assert np.array_equal(logit > 0, torch_logit > 0)
    assert np.abs(logit - torch_logit).max() < 1e-4
    bits = engine.hidden_bits(x)
    assert [b.shape for b in bits] == [t.shape for t in torch_bits]
    for ours, theirs in zip(bits, torch_bits):
        assert np.array_equal(ours, theirs)
    reference = engine.network.reference(x)
    assert np.array_equal(reference.logit, logit)  # exact head sums in both
    assert all(np.array_equal(a, b) for a, b in zip(reference.hidden, bits))


def test_batches_of_any_size_give_the_same_logits(case: tuple[Any, PackedEngine, np.ndarray]) -> None:
    _, engine, x = case
    full = engine.logit(x)
    parts = [engine.logit(x[a:b]) for a, b in [(0, 0), (0, 1), (1, 6), (6, 70), (70, 134), (134, 3001)]]
    assert np.array_equal(np.concatenate(parts), full)
    assert np.array_equal(engine.logit(x.astype(np.float32)), engine.network.reference(x.astype(np.float32)).logit)
    big = np.concatenate([x] * 6)  # large enough to be split over the threads
    assert np.array_equal(engine.logit(big, threads=2), np.tile(full, 6))
    assert np.array_equal(engine.logit(np.asfortranarray(x)), full)


def test_the_comparison_would_see_a_flipped_sign_bit(tmp_path: Path) -> None:
    n_inputs, network = ARCHITECTURES["57-64-32, binary layer 2"]
    run = make_run(tmp_path / "run", n_inputs, network)
    x = events(run, 2000)
    engine = PackedEngine.from_run(run)
    good = engine.hidden_bits(x)[1]
    signs = engine._i64[HEADER + L_PARAM_A]  # where the binary layer's sign words start
    engine._u64[signs] ^= np.uint64(1 << 5)
    assert (engine.hidden_bits(x)[1] != good).any()


@pytest.mark.parametrize(("name", "mode"), [("QAT 57-64-32", FIRST_FLOAT32), ("QAT wide grids (int64 kernel)", FIRST_INT64)])
def test_kernel_choice(name: str, mode: int, tmp_path: Path) -> None:
    n_inputs, network = ARCHITECTURES[name]
    engine = PackedEngine.from_run(make_run(tmp_path / "run", n_inputs, network))
    assert engine._i64[FIRST_MODE] == mode


def test_exact_ties_at_zero_do_not_fire(tmp_path: Path) -> None:
    """Coarse grids make z = 0 exactly for many events; torch (z > 0) and the engine must agree."""
    network = {"hidden": [32, 8], "stochastic": [True, True], "binary_weights": [False, True], "input_fixed": [4, 3], "first_layer_fixed": [3, 2]}
    run = make_run(tmp_path / "run", 5, network)
    x = events(run, 4000)
    engine = PackedEngine.from_run(run)
    reference = engine.network.reference(x)
    assert (reference.first_z == 0).sum() > 100
    torch_logit, torch_bits = torch_outputs(run, x)
    assert np.array_equal(engine.hidden_bits(x)[0], torch_bits[0])
    assert np.array_equal(engine.logit(x) > 0, torch_logit > 0)


def test_trained_models(step_run: Path, qat_run: Path, toy_files: tuple[Path, Path]) -> None:
    from sqnn.data import ColumnSpec, load_sample

    for run_dir in (step_run, qat_run):
        run = load_run(run_dir)
        engine = PackedEngine.from_run(run)
        for x in (load_sample(toy_files[1], ColumnSpec(features=tuple(run.features)), "data").features, events(run, 5000)):
            torch_logit, torch_bits = torch_outputs(run, x)
            assert np.array_equal(engine.logit(x) > 0, torch_logit > 0)
            assert all(np.array_equal(a, b) for a, b in zip(engine.hidden_bits(x), torch_bits))


def test_save_and_load(case: tuple[Any, PackedEngine, np.ndarray], tmp_path: Path) -> None:
    _, engine, x = case
    engine.save(tmp_path / "packed")
    assert np.array_equal(PackedEngine.load(tmp_path / "packed").logit(x), engine.logit(x))


def test_relu_layers_are_refused_with_a_clear_message(float_run: Path) -> None:
    with pytest.raises(SqnnError, match="ReLU.*need step"):
        PackedEngine.from_run(load_run(float_run))


def test_wrong_width_is_a_one_line_error(case: tuple[Any, PackedEngine, np.ndarray]) -> None:
    _, engine, x = case
    with pytest.raises(SqnnError, match="features"):
        engine.logit(x[:, :-1])


def test_binary_thresholds_are_exact() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 70))
        alpha = float(np.float32(abs(rng.normal()) + 1e-3))
        bias = rng.normal(scale=alpha * n / 3, size=20).astype(np.float32)
        threshold = binary_threshold(alpha, bias, n)
        c = np.arange(-n, n + 1)
        fires = alpha * c[None, :] + bias.astype(np.float64)[:, None] > 0
        assert np.array_equal(fires, c[None, :] >= threshold[:, None])
