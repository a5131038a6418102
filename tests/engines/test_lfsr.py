"""The LFSR definition: maximal length, jumps, the numpy emulation and the packed engine, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_helpers import QAT_NETWORK, events, make_run

from sqnn.engines import lfsr
from sqnn.engines.network import DeployedNetwork
from sqnn.engines.packed import PackedEngine


def test_polynomial_is_primitive() -> None:
    assert lfsr.MASK == (1 << 31) | (1 << 21) | (1 << 1) | 1  # taps 32, 22, 2, 1
    assert lfsr.is_maximal_length()


def test_a_non_primitive_mask_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lfsr, "MASK", 0x80000003)  # x^32 + x^2 + x + 1 is reducible (x = 1 is a root)
    assert not lfsr.is_maximal_length()


def test_known_states() -> None:
    """Known answers: the states after the first draws from state 1, and the seeds of seed 0."""
    draws = [0xB6F6B6C3, 0x8A0F3DB5, 0x09E5F3CF, 0x90BD2FA6]
    assert lfsr.step(1) == lfsr.MASK and lfsr.step(2) == 1
    assert [lfsr.advance(1, 16 * (k + 1)) for k in range(4)] == draws
    assert lfsr.states_after_draws(np.array([1], dtype=np.uint32), 4)[:, 0].tolist() == draws
    assert lfsr.unit_seeds(0, 3).tolist() == [0x7439611E, 0x0FD784B4, 0x96A18897]


def test_cpp_register_matches(tmp_path: Path) -> None:
    """The C++ draw of the firmware header, compiled on its own with g++, gives the same states."""
    import shutil
    import subprocess

    import hls4ml

    from sqnn.engines.hls import _HEADER

    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    (tmp_path / "nnet_bernoulli_lfsr.h").write_text(_HEADER)
    (tmp_path / "main.cpp").write_text(
        '#include <iostream>\n#include "nnet_bernoulli_lfsr.h"\n'
        "int main() { unsigned long long seeds[3] = {1ULL, 0x7439611EULL, 0xFFFFFFFFULL};\n"
        "  for (int s = 0; s < 3; s++) { ap_uint<32> state = seeds[s];\n"
        "    for (int d = 0; d < 50; d++) { state = nnet::lfsr_draw(state); std::cout << state.to_uint64() << ' '; } }\n"
        "  return 0; }\n"
    )
    ap_types = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    subprocess.run(["g++", "-O1", "-std=c++11", f"-I{ap_types}", f"-I{tmp_path}", str(tmp_path / "main.cpp"), "-o", str(tmp_path / "draws")],
                   check=True, capture_output=True)
    printed = subprocess.run([str(tmp_path / "draws")], check=True, capture_output=True, text=True).stdout.split()
    expected = lfsr.states_after_draws(np.array([1, 0x7439611E, 0xFFFFFFFF], dtype=np.uint32), 50).T.ravel()
    assert [int(v) for v in printed] == expected.tolist()


def test_vectorised_states_equal_literal_stepping() -> None:
    seeds = lfsr.unit_seeds(42, 5)
    states = lfsr.states_after_draws(seeds, 37)
    for unit, seed in enumerate(seeds):
        state = int(seed)
        for draw in range(37):
            state = lfsr.advance(state, lfsr.STEPS_PER_DRAW)
            assert states[draw, unit] == state


def test_seeds_are_nonzero_and_repeatable() -> None:
    seeds = lfsr.unit_seeds(3, 1000)
    assert (seeds != 0).all() and len(set(seeds.tolist())) == 1000
    assert np.array_equal(seeds, lfsr.unit_seeds(3, 1000)) and not np.array_equal(seeds, lfsr.unit_seeds(4, 1000))


def test_uniforms_are_uniform() -> None:
    u = lfsr.LFSRSource(5, 64).uniforms(4000).ravel()
    assert u.max() < lfsr.THETA_ONE
    counts = np.bincount(u >> 12, minlength=16)  # 16 bins of 4096
    assert abs(counts / len(u) - 1 / 16).max() < 0.005


@pytest.fixture(scope="module", params=["qat", "float", "grid layer"])
def network(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DeployedNetwork:
    configs = {
        "qat": (6, QAT_NETWORK),
        "float": (57, {"hidden": [64, 32], "stochastic": [True, True], "binary_weights": [False, True]}),
        "grid layer": (9, {"hidden": [20, 70, 9], "stochastic": [True] * 3, "binary_weights": [False, False, True],
                           "input_fixed": [10, 4], "first_layer_fixed": [8, 2]}),
    }
    n_inputs, config = configs[request.param]
    return DeployedNetwork.from_run(make_run(tmp_path_factory.mktemp("lfsr") / "run", n_inputs, config, weight_scale=0.3))


def _features(network: DeployedNetwork, n: int) -> np.ndarray:
    return network.mean + network.scale * np.random.default_rng(7).normal(scale=0.5, size=(n, network.n_inputs))


def test_packed_engine_draws_the_same_bits_as_the_emulation(network: DeployedNetwork) -> None:
    x = _features(network, 1500)
    emulation = lfsr.emulate(network, x, seed=9, samples=3)
    logits, bits = PackedEngine(network).stochastic(x, samples=3, seed=9)
    for ours, theirs in zip(bits, emulation.hidden):
        assert np.array_equal(ours, theirs)
    assert np.array_equal(logits, emulation.logit)
    assert not np.array_equal(bits[0][:, 0], bits[0][:, 1])  # the samples differ


def test_the_sequence_continues_across_calls(network: DeployedNetwork) -> None:
    x = _features(network, 300)
    whole = lfsr.emulate(network, x, seed=2, samples=2).logit
    source = lfsr.LFSRSource(2, sum(network.widths))
    parts = [lfsr.emulate(network, x[a:b], seed=2, samples=2, source=source).logit for a, b in [(0, 7), (7, 200), (200, 300)]]
    assert np.array_equal(np.concatenate(parts), whole)
    engine = PackedEngine(network)
    engine.reset(2)
    assert np.array_equal(np.concatenate([engine.logit(x[:150], inference="stochastic", samples=2),
                                          engine.logit(x[150:], inference="stochastic", samples=2)]), whole)


def test_another_seed_gives_other_bits(network: DeployedNetwork) -> None:
    x = _features(network, 500)
    a = lfsr.emulate(network, x, seed=1, samples=1).hidden[0]
    b = lfsr.emulate(network, x, seed=2, samples=1).hidden[0]
    assert (a != b).mean() > 0.05


def test_firing_rate_follows_theta(tmp_path: Path) -> None:
    """Repeating one event, each first-layer unit fires at the rate σ(τz) (16-bit table, z binned)."""
    run = make_run(tmp_path / "run", 4, {"hidden": [16], "stochastic": [True], "binary_weights": [False]}, weight_scale=0.1)
    network = DeployedNetwork.from_run(run)
    x = events(run, 1, spread=0.3)
    emulation = lfsr.emulate(network, x, seed=3, samples=20000)
    rate = emulation.hidden[0][0].mean(0)
    theta = 1 / (1 + np.exp(-network.temperature * network.reference(x).first_z[0]))
    assert np.abs(rate - theta).max() < 0.02


def test_theta_table_is_monotone_and_saturates(network: DeployedNetwork) -> None:
    for table in lfsr.theta_tables(network):
        assert (np.diff(table.values.astype(np.int64), axis=1) >= 0).all()
        assert table.values[:, 0].max() <= 1 and table.values[:, -1].min() >= lfsr.THETA_ONE - 1
