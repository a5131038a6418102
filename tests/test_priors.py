"""EM estimate of the data signal fraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sqnn.priors import PRIOR_BOUNDS, estimate_prior, rescale_to_prior


def calibrated_sample(prior: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """P(signal|x) at training prior 0.5 for events drawn at ``prior``: x ~ N(±1, 1)."""
    y = rng.uniform(size=n) < prior
    x = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    return 1 / (1 + np.exp(-2 * x))  # exact posterior at equal priors


@pytest.mark.parametrize("prior", [0.1, 0.3, 0.5, 0.8])
def test_em_recovers_the_signal_fraction(prior: float) -> None:
    probability = calibrated_sample(prior, 40000, np.random.default_rng(0))
    assert estimate_prior(probability, None, 0.5) == pytest.approx(prior, abs=0.015)


def test_rescaling_is_identity_at_the_training_prior_and_stays_in_bounds() -> None:
    p = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(rescale_to_prior(p, 0.4, 0.4), p)
    assert float(rescale_to_prior(torch.tensor([0.5]), 0.5, 0.2)) == pytest.approx(0.2)
    # all-background data cannot push the estimate to 0
    assert estimate_prior(np.full(100, 1e-6), None, 0.5) == pytest.approx(PRIOR_BOUNDS[0])
