"""Fixed-point grids and quantisation-aware training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sqnn.nn import NetworkConfig, build_network
from sqnn.nn.quant import FixedPoint
from sqnn.runs import load_run

from engine_helpers import QAT_NETWORK


def test_grid_rounds_half_to_even_and_saturates() -> None:
    grid = FixedPoint(6, 3)  # lsb 1/8, range [-4, 3.875]
    values = np.array([0.0625, 0.1875, -0.0625, 3.9, 100.0, -4.01, -100.0], dtype=np.float32)
    assert grid.quantize_numpy(values).tolist() == [0.0, 0.25, -0.0, 3.875, 3.875, -4.0, -4.0]
    assert grid.to_integers_numpy(values).tolist() == [0.0, 2.0, -0.0, 31.0, 31.0, -32.0, -32.0]


def test_torch_and_numpy_quantisation_agree_bit_for_bit() -> None:
    grid = FixedPoint(10, 4)
    x = np.random.default_rng(0).normal(scale=4.0, size=100_000).astype(np.float32)
    x[:64] = (np.arange(64) - 32 + 0.5) / 64  # exact half-lsb ties
    assert np.array_equal(grid.quantize(torch.from_numpy(x)).numpy(), grid.quantize_numpy(x).astype(np.float32))


def test_straight_through_gradient() -> None:
    x = torch.linspace(-1, 1, 7, requires_grad=True)
    FixedPoint(4, 2).quantize(x).sum().backward()
    assert torch.equal(x.grad, torch.ones(7))


@pytest.mark.parametrize("value", [[8], [8, 2, 1], [1, 1], [8, 0], [8, 9], [40, 4], "8,2", [8.0, 2]])
def test_bad_grids_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="input_fixed"):
        NetworkConfig(hidden=(4,), stochastic=(True,), binary_weights=(False,), input_fixed=value)  # type: ignore[arg-type]


def test_fixed_first_layer_excludes_binary_first_layer() -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        NetworkConfig(hidden=(4,), stochastic=(True,), binary_weights=(True,), first_layer_fixed=(8, 2))


def test_default_config_is_unchanged() -> None:
    config = NetworkConfig()
    assert config.input_fixed is None and config.first_layer_fixed is None
    assert NetworkConfig.from_dict(config.to_dict()) == config


def test_quantised_forward_uses_grid_values() -> None:
    model = build_network(3, {"hidden": [4], "stochastic": [True], "binary_weights": [False], "input_fixed": [6, 3], "first_layer_fixed": [5, 2]})
    model.eval()
    x = torch.tensor([[0.3, -1.7, 2.2]])
    w = FixedPoint(5, 2).quantize_numpy(model.layers[0].weight.detach().numpy().astype(np.float64))
    b = FixedPoint(5, 2).quantize_numpy(model.layers[0].bias.detach().numpy().astype(np.float64))
    xq = FixedPoint(6, 3).quantize_numpy(x.numpy().astype(np.float64))
    with torch.no_grad():
        z = model.first_layer(x).double().numpy()
    assert np.array_equal(z, (xq @ w.T + b).astype(np.float32).astype(np.float64))


def test_quantisation_aware_training_through_the_config(qat_run) -> None:  # type: ignore[no-untyped-def]
    run = load_run(qat_run)
    assert run.model.config.input_fixed == (10, 4) and run.model.config.first_layer_fixed == (8, 2)
    assert run.meta["network"]["input_fixed"] == QAT_NETWORK["input_fixed"]
    # the saved latent weights are float; the forward pass sees them on the grid
    weight = run.model.layers[0].weight.detach().numpy()
    assert not np.array_equal(weight, FixedPoint(8, 2).quantize_numpy(weight))
    metrics = __import__("json").loads((qat_run / "metrics.json").read_text())
    assert metrics["auc_source"] > 0.7
