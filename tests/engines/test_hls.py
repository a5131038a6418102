"""hls4ml firmware: the generated project, and its C simulation against the Python model bit for bit (step and fixed-point networks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_helpers import events, make_run

from sqnn.engines import lfsr
from sqnn.engines.checks import torch_outputs
from sqnn.engines.fixed_network import FixedNetwork
from sqnn.engines.hls import check_hls, export_hls
from sqnn.engines.network import DeployedNetwork
from sqnn.errors import SqnnError

# coarse grids: many events have z = 0 exactly in the first layer, where z > 0 and z >= 0 differ
NETWORK = {"hidden": [16, 12, 8], "stochastic": [True] * 3, "binary_weights": [False, True, False],
           "input_fixed": [6, 3], "first_layer_fixed": [5, 2]}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_run(tmp_path_factory.mktemp("hls") / "run", 6, NETWORK, seed=4)


def test_project_files(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exported = export_hls(DeployedNetwork.from_run(run), tmp_path, inference="stochastic", seed=3)
    assert exported.directory == tmp_path / "hls4ml"
    source = (tmp_path / "hls4ml" / "firmware" / "sqnn.cpp").read_text()
    assert source.count("nnet::bernoulli_lfsr<") == 3 and source.count("nnet::dense<") == 4
    assert (tmp_path / "hls4ml" / "firmware" / "nnet_utils" / "nnet_bernoulli_lfsr.h").exists()
    exported = export_hls(DeployedNetwork.from_run(run), tmp_path / "det")
    source = (tmp_path / "det" / "hls4ml" / "firmware" / "sqnn.cpp").read_text()
    assert source.count("nnet::binary_tanh<") == 3 and "bernoulli_lfsr" not in source
    assert "ap_uint<1>" in (tmp_path / "det" / "hls4ml" / "firmware" / "defines.h").read_text()


def test_a_float_model_is_refused(tmp_path: Path) -> None:
    float_run = make_run(tmp_path / "run", 4, {"hidden": [8], "stochastic": [True], "binary_weights": [False]})
    with pytest.raises(SqnnError, match="quantisation-aware"):
        export_hls(DeployedNetwork.from_run(float_run), tmp_path / "out")


def test_deterministic_firmware_is_bit_exact(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    network = DeployedNetwork.from_run(run)
    x = events(run, 3000)
    assert (network.reference(x).first_z == 0).sum() > 50  # the ties are exercised
    exported = export_hls(network, tmp_path, trace=True)
    torch_logit, torch_bits = torch_outputs(run, x)
    result = check_hls(exported, x, python_hidden=torch_bits, python_logit=torch_logit)
    assert result.passed, result.summary()
    assert result.logit_max_abs_diff == 0.0


def test_stochastic_firmware_draws_the_emulated_bits(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    network = DeployedNetwork.from_run(run)
    x = events(run, 1000, spread=0.5)
    exported = export_hls(network, tmp_path, inference="stochastic", seed=21, trace=True)
    result = check_hls(exported, x, samples=3)
    assert result.passed, result.summary()
    other = lfsr.emulate(network, x, seed=22, samples=3).hidden[0].reshape(3000, -1)
    assert (result.firmware_hidden[0] != other).mean() > 0.05  # the check would see a wrong seed


# a fixed-point default network on coarse grids: z on the θ thresholds, ReLU rounding ties and saturation are common
FIXED = {"hidden": [24, 8], "stochastic": [False, True], "binary_weights": [False, False],
         "fixed_point": {"input": [6, 3], "weight": [[5, 2], [5, 1]], "activation": [[5, 1], None], "head": [7, 3], "theta_bits": 3}}


def test_fixed_point_firmware_is_bit_exact(tmp_path: Path) -> None:
    """ReLU codes, θ levels and logits of the C simulation equal the torch model's, on typical and on saturating inputs."""
    run = make_run(tmp_path / "run", 6, FIXED, seed=5)
    network = FixedNetwork.from_run(run)
    x = np.concatenate([events(run, 2000), events(run, 1000, seed=3, spread=12.0)])
    reference = network.reference(x)
    assert (reference.codes[0] == network.layers[0].max_code).any() and (reference.codes[1] == 8).any()
    exported = export_hls(network, tmp_path / "out", trace=True)
    source = (tmp_path / "out" / "hls4ml" / "firmware" / "sqnn.cpp").read_text()
    assert "nnet::relu<" in source and "nnet::theta_levels<" in source
    assert "ap_ufixed<5,1,AP_RND_CONV,AP_SAT" in (tmp_path / "out" / "hls4ml" / "firmware" / "defines.h").read_text()
    torch_logit, torch_codes = torch_outputs(run, x, "mean")
    result = check_hls(exported, x, python_hidden=torch_codes, python_logit=torch_logit)
    assert result.passed, result.summary()
    assert result.logit_max_abs_diff == 0.0
    assert result.firmware_codes is not None
    assert all(np.array_equal(a, b) for a, b in zip(result.firmware_codes, reference.codes))
