"""The fixed-point network: its config, the θ table, grid selection in training, and the saved grids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sqnn.data import Standardizer
from sqnn.errors import ModelFileError
from sqnn.nn import NetworkConfig, build_network
from sqnn.nn.fixed import SATURATION, FixedPointConfig
from sqnn.nn.quant import RangeObserver, theta_levels, theta_levels_numpy, theta_thresholds
from sqnn.runs import load_run, write_run

DEFAULT = {"hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False], "samples": 4}
RESOLVED = {"input": [10, 3], "weight": [[8, 2], [8, 1]], "activation": [[8, 3], None], "head": [10, 3], "theta_bits": 4}


# ------------------------------------------------------------------- config
def test_widths_broadcast_and_pairs_are_kept() -> None:
    config = NetworkConfig.from_dict({**DEFAULT, "fixed_point": {"weight": [8, 2], "theta_bits": 5}})
    fixed = config.fixed_point
    assert fixed == FixedPointConfig(input=12, weight=((8, 2), (8, 2)), activation=(8, None), head=10, theta_bits=5)
    assert not fixed.resolved
    resolved = NetworkConfig.from_dict({**DEFAULT, "fixed_point": RESOLVED})
    assert resolved.fixed_point.resolved
    assert resolved.to_dict()["fixed_point"] == RESOLVED
    assert NetworkConfig.from_dict(resolved.to_dict()) == resolved


def test_fractional_bits_follow_the_chain() -> None:
    grids = FixedPointConfig.parse(RESOLVED, (False, True)).grids()
    assert grids.z_fractional(0) == 7 + 6  # inputs ap_fixed<10,3>, weights ap_fixed<8,2>
    assert grids.z_fractional(1) == 5 + 7  # ReLU codes ap_ufixed<8,3>, weights ap_fixed<8,1>
    assert grids.logit_fractional == 4 + 7  # θ on 2^-4, head ap_fixed<10,3>
    assert grids.activations[0].hls_type == "ap_ufixed<8,3>"


def test_a_run_without_fixed_point_reads_and_writes_as_before() -> None:
    config = NetworkConfig.from_dict({k: v for k, v in DEFAULT.items()})
    assert config.fixed_point is None and "fixed_point" not in config.to_dict()


@pytest.mark.parametrize(
    ("fixed_point", "message"),
    [
        ({"bits": 8}, "unknown fixed_point settings"),
        ({"activation": [[8, 3], [8, 3]]}, r"activation\[1\] must be null"),
        ({"weight": [[8, 2]]}, "one grid per hidden layer"),
        ({"theta_bits": 9}, "theta_bits"),
        ({"input": 40}, "width must lie"),
        ({"input": [8, 0]}, "integer bits"),
        ([8, 2], "must be a mapping"),
    ],
)
def test_bad_fixed_point_settings_are_rejected(fixed_point: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NetworkConfig.from_dict({**DEFAULT, "fixed_point": fixed_point})


def test_fixed_point_excludes_the_older_grids_and_binary_weights() -> None:
    with pytest.raises(ValueError, match="excludes input_fixed"):
        NetworkConfig.from_dict({**DEFAULT, "fixed_point": {}, "input_fixed": [10, 4]})
    with pytest.raises(ValueError, match="binary_weights"):
        NetworkConfig.from_dict({**DEFAULT, "fixed_point": {}, "binary_weights": [False, True]})


# ---------------------------------------------------------------- θ table
@pytest.mark.parametrize(("bits", "z_fractional", "temperature"), [(1, 6, 6.0), (4, 11, 6.0), (6, 9, 2.5), (8, 14, 6.0)])
def test_theta_table_is_sigmoid_rounded_to_b_bits(bits: int, z_fractional: int, temperature: float) -> None:
    thresholds = theta_thresholds(temperature, bits, z_fractional)
    assert len(thresholds) == 1 << bits and (np.diff(thresholds) >= 0).all()
    reach = int(20 / temperature * 2**z_fractional)
    z_int = np.arange(-reach, reach + 1)
    levels = theta_levels_numpy(z_int, thresholds)
    assert levels[0] == 0 and levels[-1] == 1 << bits and (np.diff(levels) >= 0).all()
    scaled = (1 << bits) / (1 + np.exp(-temperature * z_int * 2.0**-z_fractional)) + 0.5
    clear = np.abs(scaled - np.round(scaled)) > 1e-9  # away from exact half-level ties
    assert np.array_equal(levels[clear], np.floor(scaled[clear]).astype(np.int64))
    # symmetric: θ_q(-z) = 1 - θ_q(z) wherever neither side is a tie
    mirror = clear & clear[::-1]
    assert np.array_equal(levels[mirror], (1 << bits) - levels[::-1][mirror])


def test_torch_levels_round_z_onto_its_grid() -> None:
    thresholds = theta_thresholds(6.0, 4, 10)
    z_int = np.arange(-2000, 2001)
    exact = theta_levels_numpy(z_int, thresholds)
    # a float32 z one rounding error away from its grid point counts as the grid point
    z = torch.from_numpy((z_int * 2.0**-10).astype(np.float32)) * (1 + 1e-7)
    assert np.array_equal(theta_levels(z, torch.from_numpy(thresholds.astype(np.float64)), 10).numpy(), exact)


# ----------------------------------------------------------- grid selection
def test_range_observer_tolerates_rare_outliers() -> None:
    observer = RangeObserver()
    values = torch.linspace(-3.9, 3.9, 100_000)
    values[:5] = 30.0  # 5e-5 of the values
    observer.observe(values)
    assert observer.integer_bits(signed=True, epsilon=SATURATION) == 3  # [-4, 4)
    assert observer.integer_bits(signed=True, epsilon=0.0) == 6
    assert observer.integer_bits(signed=False, epsilon=SATURATION) == 2  # [0, 4)


def _trained_pass(model: torch.nn.Module, x: torch.Tensor) -> None:
    model.train()
    model(x).sum().backward()


def test_grids_are_chosen_by_the_explicit_step_after_training_passes() -> None:
    torch.manual_seed(0)
    model = build_network(5, {**DEFAULT, "fixed_point": {"input": 10, "weight": 8, "activation": 8, "head": [10, 4]}})
    model.finish_epoch()  # the end of an epoch without training passes chooses nothing
    assert model.grids_pending
    x = torch.randn(4000, 5) * 3.0  # |x| up to ~12: four integer bits besides the sign
    _trained_pass(model, x)
    assert model.grids_pending  # still float while training
    model.eval()
    assert model.grids_pending  # switching modes chooses nothing: only the training loop's explicit step does
    model.finish_epoch()
    fixed = model.config.fixed_point
    assert fixed.resolved and fixed.input == (10, 5) and fixed.head == (10, 4)
    largest = float(model.layers[0].weight.detach().abs().max())
    assert 2.0 ** (fixed.weight[0][1] - 2) <= 2 * largest < 2.0 ** (fixed.weight[0][1] - 1)  # room for twice the largest weight
    assert model.fixed_point_integer_bits.tolist() == fixed.integer_bits()
    with torch.no_grad():
        codes = model.representation(x[:10]).numpy() * 16
    assert np.array_equal(codes, np.round(codes))  # θ on the 4-bit table after the choice


def test_gradients_pass_the_grids_straight_through() -> None:
    model = build_network(3, {**DEFAULT, "hidden": [8, 4], "fixed_point": {**RESOLVED, "weight": [8, 2]}})
    model.train()
    x = torch.randn(256, 3, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for parameter in model.parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    relu = model.activations[0]
    z = torch.tensor([-1.0, 0.3, 100.0], requires_grad=True)
    relu(z).sum().backward()
    assert z.grad.tolist() == [0.0, 1.0, 0.0]  # saturated above 2^3: clipped straight-through


def test_eval_is_exact_fixed_point_arithmetic() -> None:
    """The eval forward in float64 equals the integer arithmetic done by hand."""
    torch.manual_seed(1)
    model = build_network(4, {**DEFAULT, "hidden": [6, 3], "fixed_point": RESOLVED}).eval()
    x = torch.randn(500, 4) * 2
    grids = model.config.fixed_point.grids()
    x_int = np.clip(np.rint(x.numpy() * 2**7), -512, 511).astype(np.int64)
    w0 = np.clip(np.rint(model.layers[0].weight.detach().numpy() * 2**6), -128, 127).astype(np.int64)
    b0 = np.rint(model.layers[0].bias.detach().numpy().astype(np.float64) * 2**13).astype(np.int64)
    z0 = x_int @ w0.T + b0  # units 2^-13
    h = np.clip(np.rint(np.maximum(z0, 0) / 2**8), 0, 255).astype(np.int64)  # ap_ufixed<8,3>: units 2^-5
    w1 = np.clip(np.rint(model.layers[1].weight.detach().numpy() * 2**7), -128, 127).astype(np.int64)
    b1 = np.rint(model.layers[1].bias.detach().numpy().astype(np.float64) * 2**12).astype(np.int64)
    m = theta_levels_numpy(h @ w1.T + b1, theta_thresholds(6.0, 4, grids.z_fractional(1)))
    wh = np.clip(np.rint(model.head.weight.detach().numpy() * 2**7), -512, 511).astype(np.int64)
    bh = np.rint(model.head.bias.detach().numpy().astype(np.float64) * 2**11).astype(np.int64)
    logit = (m @ wh.T + bh)[:, 0] * 2.0**-11
    with torch.no_grad():
        outputs = model(x, outputs=True)
        assert np.array_equal(outputs.logit.numpy(), logit.astype(np.float32))
        assert np.array_equal(outputs.theta.numpy() * 16, m.astype(np.float32))


# ------------------------------------------------------------ on disk
def _save(path: Path, model: torch.nn.Module, n_inputs: int) -> None:
    standardizer = Standardizer(mean=np.zeros(n_inputs), scale=np.ones(n_inputs))
    meta = {"method": "test", "network": model.config.to_dict(), "features": [f"f{i}" for i in range(n_inputs)],
            "preprocessing": standardizer.to_dict()}
    write_run(path, "network", model, meta)


def test_chosen_grids_are_recorded_in_model_json_and_reloaded(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = build_network(5, {**DEFAULT, "fixed_point": {}})
    x = torch.randn(2000, 5)
    model.calibrate(x)
    _save(tmp_path / "run", model, 5)
    recorded = json.loads((tmp_path / "run" / "model.json").read_text())["network"]["fixed_point"]
    assert recorded == model.config.fixed_point.to_dict() and FixedPointConfig.parse(recorded, (False, True)).resolved
    run = load_run(tmp_path / "run")
    with torch.no_grad():
        assert torch.equal(run.model(x), model.eval()(x))


def test_a_resumed_training_takes_the_grids_from_the_checkpoint() -> None:
    torch.manual_seed(3)
    trained = build_network(5, {**DEFAULT, "fixed_point": {}})
    trained.calibrate(torch.randn(1000, 5) * 4)
    fresh = build_network(5, {**DEFAULT, "fixed_point": {}})
    assert fresh.grids_pending
    fresh.load_state_dict(trained.state_dict())
    assert fresh.config.fixed_point == trained.config.fixed_point and not fresh.grids_pending


def test_grids_that_disagree_with_the_tensors_are_a_model_file_error(tmp_path: Path) -> None:
    torch.manual_seed(4)
    model = build_network(5, {**DEFAULT, "fixed_point": {}})
    model.calibrate(torch.randn(1000, 5))
    _save(tmp_path / "run", model, 5)
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    meta["network"]["fixed_point"]["input"][1] += 1
    (tmp_path / "run" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="disagree"):
        load_run(tmp_path / "run")


def test_an_interrupted_training_resumes_to_the_same_fixed_point_model(toy_files: tuple[Path, Path], tmp_path: Path) -> None:
    from sqnn.data import ColumnSpec
    from sqnn.training import TrainConfig
    from sqnn.workflows.settings import Settings
    from sqnn.workflows.train import train_run

    spec = ColumnSpec(features=("x0", "x1", "x2", "x3", "x4", "x5"), label="is_signal", weight="weight")

    def settings(epochs: int) -> Settings:
        return Settings(columns=spec, method="sqnn", gamma=0.5, network={"hidden": [16, 8], "fixed_point": {}},
                        train=TrainConfig(epochs=epochs, seed=0, patience=9))

    full, _ = train_run(*toy_files, settings(3), tmp_path / "full")
    train_run(*toy_files, settings(1), tmp_path / "part")
    resumed, _ = train_run(*toy_files, settings(3), tmp_path / "part", resume=True)
    assert full.model.config.fixed_point.resolved
    assert resumed.model.config.fixed_point == full.model.config.fixed_point
    assert all(torch.equal(value, resumed.model.state_dict()[key]) for key, value in full.model.state_dict().items())
