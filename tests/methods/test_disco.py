"""disco: the weighted distance correlation, its blocks and the penalty."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sqnn.methods import METHODS, DisCo
from sqnn.methods import disco as disco_module
from sqnn.methods.disco import distance_correlation, domain_blocks
from sqnn.training import fit


def _reference_dcor2(x: np.ndarray, y: np.ndarray) -> float:
    """Székely's dCor² from the definition, with explicit loops."""
    n = len(x)

    def centred(v: np.ndarray) -> np.ndarray:
        a = np.array([[abs(v[i] - v[j]) for j in range(n)] for i in range(n)])
        return a - a.mean(0, keepdims=True) - a.mean(1, keepdims=True) + a.mean()

    a, b = centred(x), centred(y)
    v_xy, v_xx, v_yy = (a * b).mean(), (a * a).mean(), (b * b).mean()
    return float(v_xy / np.sqrt(v_xx * v_yy))


def test_registered() -> None:
    assert METHODS["disco"] is DisCo


def test_matches_the_definition() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=30)
    y = x**2 + rng.normal(scale=0.5, size=30)
    value = float(distance_correlation(torch.tensor(x), torch.tensor(y)))
    assert value == pytest.approx(_reference_dcor2(x, y), rel=1e-10)


def test_limits() -> None:
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.normal(size=1500))
    assert float(distance_correlation(x, x)) == pytest.approx(1.0, abs=1e-9)
    assert float(distance_correlation(x, torch.tensor(rng.normal(size=1500)))) < 0.01
    # dependence without correlation: the symmetric parabola
    assert float(distance_correlation(x, x**2)) > 0.2
    assert float(distance_correlation(x, torch.zeros(1500))) == 0.0


def test_a_weight_counts_like_copies() -> None:
    rng = np.random.default_rng(5)
    x, y = torch.tensor(rng.normal(size=12)), torch.tensor(rng.integers(0, 2, size=12).astype(float))
    weight = torch.ones(12, dtype=torch.float64)
    weight[[0, 5]] = torch.tensor([3.0, 2.0], dtype=torch.float64)
    repeated = torch.tensor([0, 0, 0, 5, 5] + [i for i in range(12) if i not in (0, 5)])
    weighted = float(distance_correlation(x, y, weight))
    assert weighted == pytest.approx(float(distance_correlation(x[repeated], y[repeated])), rel=1e-10)
    assert weighted != pytest.approx(float(distance_correlation(x, y)), rel=1e-6)


def test_blocks_cover_every_event_once_with_both_domains() -> None:
    blocks = domain_blocks(1001, 377, 200)
    sim = torch.cat([b[0] for b in blocks]).sort().values
    data = torch.cat([b[1] for b in blocks]).sort().values
    assert torch.equal(sim, torch.arange(1001)) and torch.equal(data, torch.arange(377))
    assert all(len(s) > 0 and len(d) > 0 for s, d in blocks)
    assert max(len(s) + len(d) for s, d in blocks) <= 200 + 2
    assert len(domain_blocks(100, 100, 2048)) == 1


def test_penalty_memory_is_bounded_by_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    original = disco_module._centred_distances

    def recording(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        sizes.append(x.numel())
        return original(x, p)

    monkeypatch.setattr(disco_module, "_centred_distances", recording)
    generator = torch.Generator().manual_seed(0)
    n = 1500
    sim_logit, data_logit = torch.randn(n, generator=generator), torch.randn(n, generator=generator) + 0.5
    batch = _batch(sim_logit, data_logit)
    value = DisCo(1.0, block_events=200).penalty(batch)["penalty"]
    assert max(sizes) <= 202
    # the block average estimates the whole-sample value
    whole = DisCo(1.0, block_events=2 * n).penalty(batch)["penalty"]
    assert float(value) == pytest.approx(float(whole), rel=0.35)
    assert float(whole) > 0.005


def _batch(sim_logit: torch.Tensor, data_logit: torch.Tensor):
    from sqnn.methods import Batch

    n, m = len(sim_logit), len(data_logit)
    return Batch(
        sim_logit=sim_logit,
        sim_theta=sim_logit.reshape(-1, 1),
        sim_label=torch.zeros(n),
        sim_weight=torch.ones(n),
        data_logit=data_logit,
        data_theta=data_logit.reshape(-1, 1),
        data_weight=torch.ones(m),
    )


def test_penalty_is_zero_for_identical_domains_and_has_gradients() -> None:
    logit = torch.linspace(-2, 2, 50)
    assert float(DisCo(1.0).penalty(_batch(logit, logit.clone()))["penalty"]) == pytest.approx(0.0, abs=1e-6)
    sim = torch.linspace(-2, 2, 50, requires_grad=True)
    data = (torch.linspace(-2, 2, 50) + 1.0).requires_grad_(True)
    DisCo(1.0).penalty(_batch(sim, data))["penalty"].backward()
    assert float(sim.grad.abs().sum()) > 0 and torch.isfinite(sim.grad).all()
    assert float(data.grad.abs().sum()) > 0


def test_penalty_weights_each_domain_equally() -> None:
    """Twice as many data events must not change the value: each domain carries half the weight."""
    sim, data = torch.linspace(-2, 2, 40), torch.linspace(-1, 3, 40)
    once = DisCo(1.0).penalty(_batch(sim, data))["penalty"]
    twice = DisCo(1.0).penalty(_batch(sim, torch.cat([data, data])))["penalty"]
    assert float(once) == pytest.approx(float(twice), rel=1e-6)


def test_penalty_acts_on_the_score_the_network_reports(forward_batch) -> None:
    """Under mean inference the reported logit is head(θ), not the logit of the drawn bits."""
    objective = DisCo(1.0)
    model = objective.build(6, objective.network_config())
    batch = forward_batch(model, n=40)
    sim, data = objective.served_logits(batch)
    assert torch.allclose(sim, model.head(batch.sim_theta).squeeze(-1))
    assert not torch.allclose(sim, batch.sim_logit)
    plain = DisCo(1.0)
    plain.build(6, plain.network_config({"inference": "deterministic"}))
    assert plain.served_logits(batch)[0] is batch.sim_logit


def test_training_lowers_the_score_distance_correlation(toy, quick) -> None:
    simulation, data = toy
    values = {}
    for gamma in (0.0, 30.0):
        result = fit(simulation, data, DisCo(gamma), config=replace(quick, epochs=2))
        values[gamma] = result.history[-1]["val_dcor2"]
    assert values[30.0] < values[0.0]
