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


# --- the batched implementation against the per-class, per-value formula ---------------------------------------------


def _reference_mi(theta: torch.Tensor, variable: torch.Tensor, weight: torch.Tensor, joint: bool, n_values: int, prior: str) -> torch.Tensor:
    """I(T;S) one value of S at a time, every code's p(t|x) listed: the formula as it was computed before batching.

    Differentiable (torch), with the same conventions: θ clamped to [1e-12, 1] in log space,
    negative averages counted as 0, values without weight dropped from p(s).
    """
    member = variable.to(theta.dtype) if variable.ndim == 2 else torch.nn.functional.one_hot(variable, n_values).to(theta.dtype)
    member = member * weight.reshape(-1, 1)
    totals = member.sum(0)
    p = (totals > 1e-12).to(theta.dtype) if prior == "balanced" else totals.clamp(min=0.0)
    p_s = p / p.sum().clamp(min=1e-12) if p.sum() > 0 else torch.zeros_like(p)
    safe = torch.where(totals.abs() > 1e-12, totals, torch.ones_like(totals)).reshape(-1, 1)
    if joint:
        codes = torch.tensor(list(itertools.product((0, 1), repeat=theta.shape[1]))[::1], dtype=theta.dtype).flip(1)
        log_on, log_off = torch.log(theta.clamp(1e-12, 1.0)), torch.log((1 - theta).clamp(1e-12, 1.0))
        p_t_given_x = torch.exp(log_on @ codes.T + log_off @ (1 - codes).T)  # (N, 2^m), code value Σ t_i 2^i
        given_s = ((member.T @ p_t_given_x) / safe).clamp(min=0.0)
        entropy = lambda q: -torch.where(q > 0, q * torch.log2(q.clamp(min=torch.finfo(q.dtype).tiny)), torch.zeros_like(q)).sum(-1)  # noqa: E731
        return entropy(p_s @ given_s) - p_s @ entropy(given_s)
    mean_given_s = ((member.T @ theta) / safe).clamp(0.0, 1.0)
    h = lambda q: torch.as_tensor(info.binary_entropy(q))  # noqa: E731
    return h(p_s @ mean_given_s).sum() - (p_s @ h(mean_given_s)).sum()


def _reference_conditional_mi(theta, variable, condition, weight, joint, n_values, prior):  # noqa: ANN001, ANN202
    classes = condition.to(theta.dtype) if condition.ndim == 2 else torch.nn.functional.one_hot(condition, 2).to(theta.dtype)
    classes = classes * weight.reshape(-1, 1)
    totals = classes.sum(0).clamp(min=0.0)
    p_y = totals / totals.sum() if totals.sum() > 0 else torch.zeros_like(totals)
    value = theta.new_zeros(())
    for y in range(classes.shape[1]):
        if p_y[y] > 0:
            value = value + p_y[y] * _reference_mi(theta, variable, classes[:, y], joint, n_values, prior)
    return value


@st.composite
def training_like_batches(draw: st.DrawFn, max_units: int = 6, max_events: int = 40):
    """θ, a domain (integer or soft, possibly missing a value), weights (negative too), and a
    class condition (integer or soft)."""
    m = draw(st.integers(1, max_units))
    n = draw(st.integers(2, max_events))
    theta = draw(arrays(np.float64, (n, m), elements=st.floats(0.01, 0.99)))
    n_values = draw(st.integers(2, 3))
    domain = draw(arrays(np.int64, (n,), elements=st.integers(0, n_values - 1)))
    if draw(st.booleans()):
        soft = draw(arrays(np.float64, (n, n_values), elements=st.floats(0.0, 1.0)))
        soft[soft.sum(1) == 0, 0] = 1.0
        domain = soft / soft.sum(1, keepdims=True)
    weight = draw(arrays(np.float64, (n,), elements=st.floats(-1.0, 3.0)))
    signal = draw(arrays(np.float64, (n,), elements=st.floats(0.0, 1.0)))
    condition = (signal > 0.5).astype(np.int64) if draw(st.booleans()) else np.column_stack([1 - signal, signal])
    return theta, domain, weight, condition, n_values


def _value_and_gradients(fn, theta: np.ndarray, weight: np.ndarray, *args) -> tuple[float, np.ndarray, np.ndarray]:  # noqa: ANN001
    th = torch.tensor(theta, requires_grad=True)
    w = torch.tensor(weight, requires_grad=True)
    value = fn(th, w, *args)
    if not value.requires_grad:  # no class or value with weight: a constant 0
        return float(value), np.zeros_like(theta), np.zeros_like(weight)
    grad_theta, grad_weight = torch.autograd.grad(value, (th, w), allow_unused=True)
    zeros = np.zeros_like
    return (
        float(value.detach()),
        zeros(theta) if grad_theta is None else grad_theta.numpy(),
        zeros(weight) if grad_weight is None else grad_weight.numpy(),
    )


@settings(max_examples=80, deadline=None)
@given(training_like_batches(), st.sampled_from(["weights", "balanced"]), st.booleans())
def test_batched_measures_equal_the_per_value_formula_in_value_and_gradient(batch, prior, joint) -> None:
    theta, domain, weight, condition, n_values = batch
    domain_t, condition_t = torch.as_tensor(domain), torch.as_tensor(condition)

    def fast(th, w, conditional):  # noqa: ANN001, ANN202
        if conditional:
            return info.conditional_mi(th, domain_t, condition_t, w, joint=joint, n_values=n_values, prior=prior)
        return info.mutual_information(th, domain_t, w, joint=joint, n_values=n_values, prior=prior)

    def slow(th, w, conditional):  # noqa: ANN001, ANN202
        if conditional:
            return _reference_conditional_mi(th, domain_t, condition_t, w, joint, n_values, prior)
        return _reference_mi(th, domain_t, w, joint, n_values, prior)

    for conditional in (False, True):
        value, grad_theta, grad_weight = _value_and_gradients(fast, theta, weight, conditional)
        expected, expected_theta, expected_weight = _value_and_gradients(slow, theta, weight, conditional)
        assert value == pytest.approx(expected, abs=1e-10)
        np.testing.assert_allclose(grad_theta, expected_theta, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(grad_weight, expected_weight, rtol=1e-7, atol=1e-9)
    # saturated units (θ = 0 or 1): the same value (a derivative there depends on rounding, so only the value)
    saturated = np.where(theta > 0.5, 1.0, 0.0)
    for conditional in (False, True):
        expected = float(slow(torch.as_tensor(saturated), torch.as_tensor(weight), conditional))
        assert float(fast(torch.as_tensor(saturated), torch.as_tensor(weight), conditional)) == pytest.approx(expected, abs=1e-10)


def test_batched_joint_equals_the_per_value_formula_on_a_training_batch_in_float32() -> None:
    """The dtype and shape of training (θ in float32, 2 × 256 events, soft classes), 12 units
    so that the listed reference fits in memory; and 16 units on fewer events."""
    rng = np.random.default_rng(5)
    for n, m in ((256, 12), (32, 16)):
        z = rng.normal(0.0, 1.5, size=(2 * n, m))
        domain = torch.as_tensor(np.r_[np.zeros(n), np.ones(n)].astype(np.int64))
        signal = rng.uniform(size=2 * n)
        condition = torch.as_tensor(np.column_stack([1 - signal, signal]))
        weight = rng.uniform(0.5, 1.5, 2 * n)
        results = {}
        for name, dtype in (("fast", torch.float32), ("reference", torch.float64)):
            zt = torch.tensor(z, dtype=dtype, requires_grad=True)
            theta = torch.sigmoid(6 * zt)
            args = (theta, domain, condition.to(dtype), torch.as_tensor(weight, dtype=dtype))
            if name == "fast":
                value = info.conditional_mi(*args, joint=True, n_values=2, prior="balanced")
            else:
                value = _reference_conditional_mi(*args, True, 2, "balanced")
            value.backward()
            results[name] = (float(value.detach()), zt.grad.double().numpy())
        assert results["fast"][0] == pytest.approx(results["reference"][0], rel=1e-5, abs=1e-6)
        scale = np.abs(results["reference"][1]).max()
        np.testing.assert_allclose(results["fast"][1], results["reference"][1], atol=1e-4 * scale)


def test_events_summed_block_by_block_equal_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    theta = torch.tensor(rng.uniform(size=(50, 7)), requires_grad=True)
    domain = torch.as_tensor(rng.integers(0, 2, 50))
    condition = torch.as_tensor(rng.uniform(size=50))
    condition = torch.stack([1 - condition, condition], 1)
    weight = torch.as_tensor(rng.normal(1.0, 1.0, 50))

    def measure() -> tuple[float, np.ndarray]:
        theta.grad = None
        value = info.conditional_mi(theta, domain, condition, weight, joint=True, n_values=2)
        value.backward()
        return float(value.detach()), theta.grad.numpy().copy()

    whole = measure()
    monkeypatch.setattr(info, "_EVENTS_PER_BLOCK", 7)
    blocks = measure()
    assert blocks[0] == pytest.approx(whole[0], abs=1e-12)
    np.testing.assert_allclose(blocks[1], whole[1], rtol=1e-10, atol=1e-13)
    assert float(info.joint_entropy(theta.detach())) == pytest.approx(brute_force_joint_mi_entropy(theta.detach().numpy()), abs=1e-9)


def brute_force_joint_mi_entropy(theta: np.ndarray) -> float:
    """H(T) by listing every code, one event at a time."""
    codes = list(itertools.product((0, 1), repeat=theta.shape[1]))
    p_t = np.array([[np.prod([t if c else 1 - t for t, c in zip(row, code)]) for code in codes] for row in theta]).mean(0)
    return entropy_bits(p_t)


# --- the sampled gradient of the exact joint ------------------------------------------------------------------------


@pytest.mark.parametrize("soft_domain", [False, True])
def test_sampled_gradient_is_unbiased_and_the_value_exact(soft_domain: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    n, m = 30, 5
    theta = (0.05 + 0.9 * torch.rand(n, m, generator=generator, dtype=torch.float64)).requires_grad_(True)
    domain = torch.randint(0, 2, (n,), generator=generator)
    if soft_domain:
        share = torch.rand(n, generator=generator, dtype=torch.float64)
        domain = torch.stack([share, 1 - share], 1)
    signal = torch.rand(n, generator=generator, dtype=torch.float64)
    condition = torch.stack([1 - signal, signal], 1)
    weight = torch.rand(n, generator=generator, dtype=torch.float64) - 0.2  # some negative

    def measure(**sampled) -> tuple[float, torch.Tensor]:  # noqa: ANN003
        theta.grad = None
        value = info.conditional_mi(theta, domain, condition, weight, joint=True, n_values=2, prior="balanced", **sampled)
        value.backward()
        return float(value.detach()), theta.grad.clone()

    exact_value, exact_gradient = measure()
    assert exact_value > 1e-2
    draws = 2000
    values, gradients = zip(*(measure(gradient_samples=1, generator=generator) for _ in range(draws)))
    assert set(values) == {exact_value}
    gradients = torch.stack(gradients)
    assert (gradients[0] - exact_gradient).norm() > 0.05 * exact_gradient.norm()  # it is sampled
    # every component of the mean is within 5 standard errors of the exact gradient
    standard_error = gradients.std(0) / draws**0.5
    assert ((gradients.mean(0) - exact_gradient).abs() <= 5 * standard_error + 1e-12).all()


def test_sampled_gradient_draws_nothing_without_a_gradient_and_refuses_weight_gradients() -> None:
    generator = torch.Generator().manual_seed(1)
    theta = torch.rand(20, 4, dtype=torch.float64)
    domain = torch.arange(20) % 2
    state = generator.get_state()
    value = info.joint_mi(theta, domain, n_values=2, gradient_samples=4, generator=generator)
    assert value == info.joint_mi(theta, domain, n_values=2)
    assert torch.equal(generator.get_state(), state)
    with pytest.raises(ValueError, match="weights"):
        info.joint_mi(theta.requires_grad_(True), domain, torch.ones(20, dtype=torch.float64, requires_grad=True),
                      n_values=2, gradient_samples=4)
