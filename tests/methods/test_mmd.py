"""mmd: the weighted multi-kernel MMD² and its penalty on the representation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sqnn.methods import METHODS, MMD
from sqnn.methods import mmd as mmd_module
from sqnn.methods.mmd import mmd_squared
from sqnn.training import fit


def _reference(a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray, widths: list[float]) -> float:
    """MMD² from the definition with explicit loops; kernel Σ exp(−|x − y|² / width)."""

    def k(x: np.ndarray, y: np.ndarray) -> float:
        d = float(((x - y) ** 2).sum())
        return sum(np.exp(-d / w) for w in widths)

    p, q = wa / wa.sum(), wb / wb.sum()
    value = 0.0
    for i, j in np.ndindex(len(a), len(a)):
        value += p[i] * p[j] * k(a[i], a[j])
    for i, j in np.ndindex(len(b), len(b)):
        value += q[i] * q[j] * k(b[i], b[j])
    for i, j in np.ndindex(len(a), len(b)):
        value -= 2 * p[i] * q[j] * k(a[i], b[j])
    return value


def test_registered() -> None:
    assert METHODS["mmd"] is MMD


def test_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 3)), rng.normal(0.5, 1.0, size=(5, 3))
    wa, wb = rng.uniform(0.5, 2.0, 7), rng.uniform(0.5, 2.0, 5)
    value = mmd_squared(torch.tensor(a), torch.tensor(b), torch.tensor(wa), torch.tensor(wb), (0.5, 2.0), scale=3.0)
    assert float(value) == pytest.approx(_reference(a, b, wa, wb, [1.5, 6.0]), rel=1e-10)


def test_zero_for_equal_samples_and_growing_with_the_shift() -> None:
    rng = np.random.default_rng(1)
    a = torch.tensor(rng.normal(size=(300, 4)))
    assert float(mmd_squared(a, a.clone())) == pytest.approx(0.0, abs=1e-12)
    values = [float(mmd_squared(a, a + shift)) for shift in (0.1, 0.5, 1.0)]
    assert 0 < values[0] < values[1] < values[2]


def test_a_weight_counts_like_copies() -> None:
    rng = np.random.default_rng(2)
    a, b = torch.tensor(rng.normal(size=(6, 2))), torch.tensor(rng.normal(size=(5, 2)))
    weight = torch.tensor([3.0, 1, 1, 1, 1, 1], dtype=torch.float64)
    copies = torch.cat([a[:1], a[:1], a])
    weighted = float(mmd_squared(a, b, weight, None, scale=2.0))
    assert weighted == pytest.approx(float(mmd_squared(copies, b, scale=2.0)), rel=1e-10)
    assert weighted != pytest.approx(float(mmd_squared(a, b, scale=2.0)), rel=1e-6)


@pytest.mark.parametrize("inference", ["mean", "deterministic"])
def test_penalty_acts_on_the_representation_and_stays_in_blocks(monkeypatch: pytest.MonkeyPatch, forward_batch, inference: str) -> None:
    objective = MMD(1.0, block_events=40)
    model = objective.build(6, objective.network_config({"inference": inference}))
    batch = forward_batch(model, n=100)
    # the layer as the classifier head reads it when scoring: θ under mean inference, the bits otherwise
    field = "sim_theta" if inference == "mean" else "sim_output"
    sim = getattr(batch, field).detach().clone().requires_grad_(True)
    setattr(batch, field, sim)
    shapes: list[tuple[int, int]] = []
    original = mmd_module._squared_distances

    def recording(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        shapes.append((len(a), len(b)))
        return original(a, b)

    monkeypatch.setattr(mmd_module, "_squared_distances", recording)
    value = objective.penalty(batch)["penalty"]
    value.backward()
    assert max(max(s) for s in shapes) <= 21
    assert float(sim.grad.abs().sum()) > 0
    # the classifier output is not what mmd compares
    batch.sim_logit = torch.zeros_like(batch.sim_logit)
    assert float(objective.penalty(batch)["penalty"].detach()) == pytest.approx(float(value.detach()), rel=1e-6)


def test_training_lowers_the_representation_mmd(toy, quick) -> None:
    simulation, data = toy
    values = {}
    for gamma in (0.0, 30.0):
        result = fit(simulation, data, MMD(gamma), config=replace(quick, epochs=2))
        values[gamma] = result.history[-1]["val_mmd2"]
    assert values[30.0] < values[0.0]


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="bandwidths"):
        MMD(1.0, bandwidths=[0.0])
    with pytest.raises(ValueError, match="unknown settings"):
        MMD(1.0, kernel="laplace")
