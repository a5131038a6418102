"""Weighted metrics against reference implementations and known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from sqnn import metrics


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 3000)
    score = rng.normal(label * 1.0, 1.0)
    weight = rng.uniform(0.2, 2.0, 3000)
    return score, label, weight


def test_auc_matches_scikit_learn_with_weights_and_ties(scored) -> None:
    score, label, weight = scored
    assert metrics.roc_auc(score, label, weight) == pytest.approx(roc_auc_score(label, score, sample_weight=weight))
    rounded = np.round(score)
    assert metrics.roc_auc(rounded, label) == pytest.approx(roc_auc_score(label, rounded))
    assert math.isnan(metrics.roc_auc(score, np.ones_like(label)))


def test_rejection_at_signal_efficiency() -> None:
    # signal uniform on [0.5, 1.5], background uniform on [0, 1]: cut at 1.0 keeps 50 % of signal, 0 % bkg
    score = np.r_[np.linspace(0.5, 1.5, 10001), np.linspace(0.0, 1.0, 10001)]
    label = np.r_[np.ones(10001), np.zeros(10001)]
    assert metrics.rejection_at(score, label, signal_efficiency=0.3) == math.inf
    # keeping 80 % of signal needs the cut at 0.7: 30 % of background passes
    assert metrics.rejection_at(score, label, signal_efficiency=0.8) == pytest.approx(1 / 0.3, rel=1e-3)


def test_ks_matches_scipy_and_handles_weights() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 500), rng.normal(0.3, 1, 700)
    assert metrics.ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)
    # weights that double every event of a change nothing
    assert metrics.ks_distance(a, b, np.full(500, 2.0)) == pytest.approx(stats.ks_2samp(a, b).statistic)
    # an integer weight equals repeating the event
    wa = rng.integers(1, 4, 500).astype(float)
    assert metrics.ks_distance(a, b, wa) == pytest.approx(stats.ks_2samp(np.repeat(a, wa.astype(int)), b).statistic)
    assert math.isnan(metrics.ks_distance(a, b[:0]))


def test_scale_factor_is_one_for_identical_domains_and_moves_with_a_shift(scored) -> None:
    score, label, weight = scored
    point = metrics.WorkingPoint.from_simulation(score, label, weight, 0.5)
    sf, err = metrics.scale_factor(point, score, label, weight, score, label, weight, 1)
    assert sf == pytest.approx(1.0) and 0 < err < 0.1
    sf_b, _ = metrics.scale_factor(point, score, label, weight, score + 0.3, label, weight, 0)
    assert sf_b > 1.3


def test_efficiency_error_is_binomial() -> None:
    eff, err = metrics.efficiency(np.r_[np.ones(25, bool), np.zeros(75, bool)], np.ones(100))
    assert eff == pytest.approx(0.25) and err == pytest.approx(math.sqrt(0.25 * 0.75 / 100))


def test_cvm_flat_score_is_near_zero_and_sculpting_is_not() -> None:
    rng = np.random.default_rng(2)
    mass = rng.uniform(0, 200, 20000)
    flat = rng.uniform(size=20000)
    sculpted = flat + mass / 200
    assert metrics.cvm_flatness(flat, mass) < 0.002
    assert metrics.cvm_flatness(sculpted, mass) > 10 * metrics.cvm_flatness(flat, mass)


def test_domain_probe_separates_only_what_differs() -> None:
    rng = np.random.default_rng(3)
    same = metrics.domain_probe_auc(rng.normal(size=(3000, 4)), rng.normal(size=(3000, 4)))
    shifted = metrics.domain_probe_auc(rng.normal(size=(3000, 4)), rng.normal(1.0, 1.0, size=(3000, 4)))
    assert 0.5 <= same < 0.56
    assert shifted > 0.85


def test_working_point_without_signal_gives_nan_not_an_error() -> None:
    point = metrics.WorkingPoint.from_simulation(np.array([0.1, 0.2]), np.array([0, 0]), np.ones(2), 0.5)
    assert math.isnan(point.threshold)
    sf, err = metrics.scale_factor(point, np.ones(2), np.array([0, 1]), np.ones(2), np.ones(2), np.array([0, 1]), np.ones(2), 1)
    assert math.isnan(sf) and math.isnan(err)


def test_auc_error_matches_the_spread_over_independent_samples() -> None:
    from sqnn.metrics import roc_auc_error

    rng = np.random.default_rng(3)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        label = (rng.random(n) < 0.3).astype(np.int8)
        return rng.normal(loc=1.8 * label), label

    aucs = [metrics.roc_auc(*sample(3000)) for _ in range(300)]
    score, label = sample(3000)
    error = roc_auc_error(metrics.roc_auc(score, label), label)
    assert error == pytest.approx(float(np.std(aucs)), rel=0.2)
    # weights count through the effective number of events: doubling every weight changes nothing
    assert roc_auc_error(0.9, label, np.full(label.shape, 2.0)) == pytest.approx(roc_auc_error(0.9, label))
    assert np.isnan(roc_auc_error(0.9, np.zeros(10, dtype=np.int8)))


def test_domain_probe_bins_as_the_trees_do_so_the_probe_is_unchanged() -> None:
    """Binning here with the trees' own weighted quantile edges gives the very same probe as
    letting scikit-learn bin the raw features with the sample weights (and is much cheaper)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(4)
    n = 3000
    x = np.column_stack([rng.normal(size=n), rng.uniform(size=n) ** 3, rng.integers(0, 5, n)]).astype(np.float32)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-x[:, 0] - x[:, 1]))).astype(float)
    weight = rng.exponential(1.0, n)
    train, test = np.arange(n) % 2 == 0, np.arange(n) % 2 == 1
    codes = metrics._binned(x, train, weight)
    assert codes.max() <= 254 and len(np.unique(codes[:, 2])) == 5
    scores = []
    for features in (x, codes):
        probe = HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=15, random_state=0)
        probe.fit(features[train], y[train], sample_weight=weight[train])
        scores.append(probe.predict_proba(features[test])[:, 1])
    np.testing.assert_array_equal(scores[0], scores[1])


def test_domain_probe_trees_are_scikit_learns_histogram_gradient_boosting() -> None:
    """The probe's own boosted trees predict what HistGradientBoostingClassifier(max_iter=60,
    max_leaf_nodes=15) predicts on the same bins and weights, with interactions to learn."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(5)
    n = 4000
    x = np.column_stack([rng.normal(size=n), rng.uniform(size=n) ** 3, rng.integers(0, 5, n), rng.normal(size=n)])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-x[:, 0] - 2 * x[:, 1] * x[:, 3]))).astype(float)
    weight = rng.exponential(1.0, n)
    train, test = np.arange(n) % 2 == 0, np.arange(n) % 2 == 1
    codes = metrics._binned(x.astype(np.float32), train, weight)
    reference = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=0)
    reference.fit(codes[train], y[train], sample_weight=weight[train])
    start, trees = metrics._boosted_trees(codes[train], y[train], weight[train])
    assert len(trees) == 60 and max(len(t.feature) for t in trees) == 2 * 15 - 1
    raw = start + sum(tree.predict(codes[test]) for tree in trees)
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), reference.predict_proba(codes[test])[:, 1], rtol=0, atol=1e-9)
