"""EM estimate of the data signal fraction."""

from __future__ import annotations

import metric_references as reference
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from sqnn.priors import PRIOR_BOUNDS, estimate_prior, prior_factors, rescale_to_prior, reweight_to_prior, signal_fraction


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


def test_rescaling_by_hand_multiplies_the_odds_by_the_ratio_of_prior_odds() -> None:
    # odds 0.3/0.7 = 3/7, times (0.7/0.3)/(0.4/0.6) = 7/2 → 3/2, probability 3/5
    assert float(rescale_to_prior(torch.tensor(0.3, dtype=torch.float64), 0.4, 0.7)) == pytest.approx(0.6, rel=1e-12)
    # and back
    assert float(rescale_to_prior(torch.tensor(0.6, dtype=torch.float64), 0.7, 0.4)) == pytest.approx(0.3, rel=1e-12)
    p = torch.linspace(0.01, 0.99, 9, dtype=torch.float64)
    expected = reference.posterior_at(p.numpy(), 0.25, 0.6)
    np.testing.assert_allclose(rescale_to_prior(p, 0.25, 0.6).numpy(), expected, rtol=1e-12, atol=0)
    # a certain event stays finite: its odds are capped at 1/1e-6
    certain = float(rescale_to_prior(torch.tensor(1.0, dtype=torch.float64), 0.5, 0.2))
    assert certain == pytest.approx(0.25e6 / (1 + 0.25e6), rel=1e-12)


def test_reweighting_to_another_signal_fraction_by_hand() -> None:
    label = np.array([1, 0, 1, 1, 0])
    weight = np.array([1.0, 2.0, 0.5, -0.5, 3.0])
    # signal 1 + 0.5 − 0.5 = 1 of 6
    assert signal_fraction(label, weight) == pytest.approx(1 / 6, rel=1e-12)
    # from 1/4 to 3/5: signal × (3/5)/(1/4) = 2.4, background × (2/5)/(3/4) = 8/15
    signal, background = prior_factors(0.25, 0.6)
    assert (signal, background) == (pytest.approx(2.4, rel=1e-12), pytest.approx(8 / 15, rel=1e-12))
    expected = weight * np.where(label == 1, 2.4, 8 / 15)
    np.testing.assert_allclose(reweight_to_prior(weight, label == 1, 0.25, 0.6), expected, rtol=1e-12, atol=0)
    # torch weights too, to float32 precision at least
    as_tensor = reweight_to_prior(torch.as_tensor(weight), torch.as_tensor(label == 1), 0.25, 0.6)
    assert as_tensor.dtype == torch.float64
    np.testing.assert_allclose(as_tensor.numpy(), expected, rtol=1e-7, atol=0)
    # taken from its own fraction, a sample lands on the target one
    moved = reweight_to_prior(weight, label == 1, signal_fraction(label, weight), 0.7)
    assert signal_fraction(label, moved) == pytest.approx(0.7, rel=1e-12)


def test_reweighting_torch_weights_keeps_their_precision() -> None:
    weight = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    reweighted = reweight_to_prior(weight, torch.tensor([True, False, True]), 0.25, 0.6)
    np.testing.assert_allclose(reweighted.numpy(), [2.4, 16 / 15, 1.2], rtol=1e-12, atol=0)


def weighted_sample(seed: int = 11, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated P(signal|x) at training prior 0.4, events drawn at 0.35; weights larger for signal.

    With these weights the weighted signal fraction is near 0.6, far from the unweighted 0.37,
    so an estimate that drops the weights anywhere misses by ~0.2.
    """
    rng = np.random.default_rng(seed)
    signal = rng.uniform(size=n) < 0.35
    x = rng.normal(np.where(signal, 1.5, -1.5), 1.0)
    probability = 1 / (1 + np.exp(-(3 * x + np.log(0.4 / 0.6))))
    weight = rng.uniform(0.5, 1.5, n) * (1 + 1.5 * signal)
    return probability, weight


def test_em_with_weights_is_the_weighted_fixed_point_and_the_maximum_likelihood() -> None:
    probability, weight = weighted_sample()
    root = reference.em_fixed_point(probability, weight, 0.4)
    best = minimize_scalar(
        lambda prior: -reference.mixture_log_likelihood(prior, probability, weight, 0.4),
        bounds=(1e-6, 1 - 1e-6), method="bounded", options={"xatol": 1e-12},
    ).x
    assert root == pytest.approx(best, abs=1e-9)
    assert estimate_prior(probability, weight, 0.4) == pytest.approx(root, abs=1e-7)
    assert estimate_prior(torch.as_tensor(probability), torch.as_tensor(weight), 0.4) == pytest.approx(root, abs=1e-7)
    # the weights matter: without them the fixed point is the unweighted one
    unweighted = reference.em_fixed_point(probability, np.ones_like(weight), 0.4)
    assert abs(root - unweighted) > 0.15
    assert estimate_prior(probability, None, 0.4) == pytest.approx(unweighted, abs=1e-7)
    # only the weights' ratios count
    assert estimate_prior(probability, 7.0 * weight, 0.4) == pytest.approx(root, abs=1e-7)


def test_em_with_negative_weights_and_another_training_prior() -> None:
    probability, weight = weighted_sample(seed=12)
    weight = weight * np.where(np.random.default_rng(13).uniform(size=weight.size) < 0.15, -0.3, 1.0)
    # the same events read as calibrated at another training prior: another fixed point
    for train_prior in (0.4, 0.7):
        root = reference.em_fixed_point(probability, weight, train_prior)
        assert estimate_prior(probability, weight, train_prior) == pytest.approx(root, abs=1e-7)
    assert abs(reference.em_fixed_point(probability, weight, 0.7) - reference.em_fixed_point(probability, weight, 0.4)) > 0.05


def test_em_converges_on_a_weakly_separating_classifier() -> None:
    # each EM step closes only part of the gap here: 10 steps leave 1e-2, 30 leave 3e-5, 100 about 2e-7
    rng = np.random.default_rng(21)
    signal = rng.uniform(size=2000) < 0.3
    x = rng.normal(np.where(signal, 0.6, -0.6), 1.0)
    probability, weight = 1 / (1 + np.exp(-1.2 * x)), rng.uniform(0.5, 1.5, 2000)
    root = reference.em_fixed_point(probability, weight, 0.5)
    assert estimate_prior(probability, weight, 0.5) == pytest.approx(root, abs=1e-6)


def test_em_estimate_is_clamped_at_both_bounds() -> None:
    assert estimate_prior(np.full(50, 1 - 1e-6), np.linspace(0.5, 2.0, 50), 0.5) == pytest.approx(PRIOR_BOUNDS[1])
    assert estimate_prior(np.full(50, 1e-6), np.linspace(0.5, 2.0, 50), 0.5) == pytest.approx(PRIOR_BOUNDS[0])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.9, 0.99), st.floats(0.1, 5.0)), min_size=1, max_size=20),
    st.lists(st.tuples(st.floats(0.01, 0.1), st.floats(0.1, 5.0)), min_size=1, max_size=20),
    st.floats(0.2, 0.8),
)
def test_em_estimate_is_the_fixed_point_of_the_weighted_posterior_mean(signal_like, background_like, train_prior) -> None:
    # an informative classifier and a fixed point away from the bounds: there EM contracts fast
    # enough that its 1e-7 step criterion leaves the fixed point within 1e-6 (near the bounds, or
    # with a classifier that hardly separates, 100 steps can end up to ~1e-3 away)
    probability, weight = (np.array(column) for column in zip(*signal_like, *background_like))
    root = reference.em_fixed_point(probability, weight, train_prior)
    assume(0.1 < root < 0.9)
    estimate = estimate_prior(probability, weight, train_prior)
    mean = float(np.sum(weight * reference.posterior_at(probability, train_prior, estimate)) / weight.sum())
    assert mean == pytest.approx(estimate, abs=1e-6)
    assert estimate == pytest.approx(root, abs=1e-5)
