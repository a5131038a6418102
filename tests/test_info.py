"""Property tests of the information measures against brute force and basic identities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sqnn import info


def entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def brute_force_joint_mi(theta: np.ndarray, s: np.ndarray, w: np.ndarray) -> float:
    """I(T;S) by listing every code and multiplying unit probabilities, one event at a time."""
    m = theta.shape[1]
    codes = list(itertools.product((0, 1), repeat=m))
    p_t_given_x = np.array([[np.prod([t if c else 1 - t for t, c in zip(row, code)]) for code in codes] for row in theta])
    values = np.unique(s)
    p_s = np.array([w[s == v].sum() for v in values]) / w.sum()
    p_t = (w[:, None] * p_t_given_x).sum(0) / w.sum()
    conditional = sum(
        p_s[i] * entropy_bits((w[s == v, None] * p_t_given_x[s == v]).sum(0) / w[s == v].sum())
        for i, v in enumerate(values)
    )
    return entropy_bits(p_t) - conditional


probabilities = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def layers(draw: st.DrawFn, max_units: int = 4, max_events: int = 30, n_values: int = 3):
    m = draw(st.integers(1, max_units))
    n = draw(st.integers(2, max_events))
    theta = draw(arrays(np.float64, (n, m), elements=probabilities))
    s = draw(arrays(np.int64, (n,), elements=st.integers(0, n_values - 1)))
    w = draw(arrays(np.float64, (n,), elements=st.floats(0.1, 3.0)))
    return theta, s, w


@settings(max_examples=60, deadline=None)
@given(layers())
def test_mi_is_non_negative(layer) -> None:
    theta, s, w = layer
    assert info.factorized_mi(theta, s, w) >= -1e-9
    assert info.joint_mi(theta, s, w) >= -1e-9


@settings(max_examples=60, deadline=None)
@given(layers())
def test_joint_equals_brute_force(layer) -> None:
    theta, s, w = layer
    assert info.joint_mi(theta, s, w) == pytest.approx(brute_force_joint_mi(theta, s, w), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(layers(max_units=1))
def test_one_unit_factorized_equals_joint(layer) -> None:
    theta, s, w = layer
    assert info.factorized_mi(theta, s, w) == pytest.approx(info.joint_mi(theta, s, w), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(layers(max_units=5))
def test_joint_entropy_at_most_sum_of_unit_entropies(layer) -> None:
    theta, _, w = layer
    unit_sum = float(info.binary_entropy((w[:, None] * theta).sum(0) / w.sum()).sum())
    assert info.joint_entropy(theta, w) <= unit_sum + 1e-9


@settings(max_examples=40, deadline=None)
@given(layers(), st.permutations([0, 1, 2]))
def test_invariant_to_relabelling_s(layer, permutation) -> None:
    theta, s, w = layer
    relabelled = np.asarray(permutation)[s]
    assert info.factorized_mi(theta, relabelled, w) == pytest.approx(info.factorized_mi(theta, s, w), abs=1e-9)
    assert info.joint_mi(theta, relabelled, w) == pytest.approx(info.joint_mi(theta, s, w), abs=1e-9)


def test_zero_for_independent_variables() -> None:
    rng = np.random.default_rng(0)
    theta = rng.uniform(size=(20000, 3))
    s = rng.integers(0, 2, 20000)
    # exactly independent: every event appears once in each domain
    both = np.vstack([theta, theta])
    domain = np.r_[np.zeros(len(theta)), np.ones(len(theta))].astype(int)
    assert info.factorized_mi(both, domain) == pytest.approx(0.0, abs=1e-12)
    assert info.joint_mi(both, domain) == pytest.approx(0.0, abs=1e-12)
    # statistically independent: small and shrinking
    assert info.joint_mi(theta, s) < 1e-3


def test_equals_monte_carlo_estimate_from_sampled_codes() -> None:
    rng = np.random.default_rng(1)
    n, m = 4000, 2
    s = rng.integers(0, 2, n)
    theta = np.clip(rng.normal(0.3 + 0.4 * s[:, None], 0.15, size=(n, m)), 0, 1)
    exact = info.joint_mi(theta, s)
    # draw many binary codes per event and compute the plug-in MI from counts
    draws = 200
    t = (rng.uniform(size=(draws, n, m)) < theta).astype(int)
    codes = (t * (1 << np.arange(m))).sum(-1).ravel()
    domain = np.tile(s, draws)
    joint = np.zeros((2, 1 << m))
    np.add.at(joint, (domain, codes), 1.0)
    joint /= joint.sum()
    p_s, p_t = joint.sum(1), joint.sum(0)
    nz = joint > 0
    plug_in = float((joint[nz] * np.log2(joint[nz] / np.outer(p_s, p_t)[nz])).sum())
    assert exact == pytest.approx(plug_in, abs=0.003)
    assert exact > 0.1


def test_factorized_is_entropy_of_mean_theta_not_mean_entropy() -> None:
    # a port that averages per-event entropies gets ~0 here; the right value is 1 - H_b(0.9)
    theta = np.array([[0.9], [0.9], [0.1], [0.1]])
    expected = 1.0 - float(info.binary_entropy(np.array(0.9)))
    assert info.factorized_mi(theta, np.array([0, 0, 1, 1])) == pytest.approx(expected)


def test_finite_and_differentiable_when_a_domain_is_missing_or_units_saturate() -> None:
    theta = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    for fn in (info.factorized_mi, info.joint_mi):
        for domain in (torch.tensor([0, 0, 0]), torch.tensor([0, 1, 1])):
            value = fn(theta, domain, n_values=2)
            value.backward()
            assert torch.isfinite(value)
            assert torch.isfinite(theta.grad).all()
            theta.grad = None
    # a batch with one domain only carries no information about the domain
    assert float(info.factorized_mi(theta.detach(), torch.tensor([0, 0, 0]), n_values=2)) == pytest.approx(0.0)


def test_negative_weights_stay_finite() -> None:
    rng = np.random.default_rng(2)
    theta = rng.uniform(size=(50, 3))
    s = rng.integers(0, 2, 50)
    w = rng.normal(1.0, 1.0, 50)
    for value in (
        info.factorized_mi(theta, s, w),
        info.joint_mi(theta, s, w),
        info.conditional_mi(theta, s, rng.integers(0, 2, 50), w),
        info.mi_with_input(theta, np.abs(w)),
    ):
        assert np.isfinite(value)


def test_more_than_two_domains() -> None:
    theta = np.array([[0.9], [0.5], [0.1]])
    value = info.factorized_mi(theta, np.array([0, 1, 2]))
    # H_b(0.5) - mean of H_b over the three domains
    h = info.binary_entropy(np.array([0.9, 0.5, 0.1]))
    assert value == pytest.approx(1.0 - h.mean())


def test_balanced_prior_ignores_domain_sizes() -> None:
    theta = np.r_[np.full(10, 0.8), np.full(90, 0.2)].reshape(-1, 1)
    s = np.r_[np.zeros(10), np.ones(90)].astype(int)
    duplicated = np.r_[np.full(90, 0.8), np.full(90, 0.2)].reshape(-1, 1)
    s_dup = np.r_[np.zeros(90), np.ones(90)].astype(int)
    assert info.factorized_mi(theta, s, prior="balanced") == pytest.approx(info.factorized_mi(duplicated, s_dup))


def test_conditional_mi_removes_class_confounding() -> None:
    # T encodes only the class; the class fraction differs between domains
    rng = np.random.default_rng(3)
    n = 4000
    s = rng.integers(0, 2, n)
    y = (rng.uniform(size=n) < np.where(s == 0, 0.5, 0.2)).astype(int)
    theta = np.where(y[:, None] == 1, 0.9, 0.1) * np.ones((n, 2))
    assert info.joint_mi(theta, s) > 0.01
    assert info.conditional_mi(theta, s, y, joint=True) == pytest.approx(0.0, abs=1e-12)
    soft = np.column_stack([1 - y, y]).astype(float)
    assert info.conditional_mi(theta, s, soft) == pytest.approx(0.0, abs=1e-12)


def test_information_plane_bounds() -> None:
    rng = np.random.default_rng(4)
    theta = rng.uniform(size=(500, 4))
    i_tx = info.mi_with_input(theta)
    assert 0.0 <= i_tx <= info.joint_entropy(theta) + 1e-12
    # deterministic units: I(T;X) = H(T)
    hard = (theta > 0.5).astype(float)
    assert info.mi_with_input(hard) == pytest.approx(info.joint_entropy(hard))
    with pytest.raises(ValueError, match="at most 16"):
        info.joint_mi(rng.uniform(size=(5, 17)), np.zeros(5, dtype=int))
