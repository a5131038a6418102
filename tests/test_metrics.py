"""Weighted metrics against reference implementations and known cases."""

from __future__ import annotations

import math
from fractions import Fraction

import metric_references as reference
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


# Exact references. Every case below is small enough to be worked out by hand; the numbers
# are chosen asymmetric (both classes, unequal weights, negative weights, ties across classes,
# scale factors on both sides of 1) so that a changed operand, sign, square or count shows.

# ROC hand case: W_S = 2 + 1 + 1 = 4, W_B = 3 + 1 + 2 = 6; ties at 0.7 and 0.4 across classes
ROC_SCORE = np.array([0.4, 0.9, 0.1, 0.7, 0.4, 0.7])
ROC_LABEL = np.array([1, 1, 0, 0, 0, 1])
ROC_WEIGHT = np.array([1.0, 2.0, 2.0, 3.0, 1.0, 1.0])


def test_roc_curve_by_hand_one_point_per_distinct_score() -> None:
    eff_b, eff_s, threshold = metrics.roc_curve(ROC_SCORE, ROC_LABEL, ROC_WEIGHT)
    np.testing.assert_array_equal(threshold, [np.inf, 0.9, 0.7, 0.4, 0.1])
    np.testing.assert_allclose(eff_s, [0, 2 / 4, 3 / 4, 4 / 4, 1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(eff_b, [0, 0, 3 / 6, 4 / 6, 1], rtol=0, atol=1e-15)


def test_auc_by_hand_is_the_pairwise_sum_with_ties_counted_half() -> None:
    # Σ w_s w_b (1[s > b] + ½ 1[s = b]): 0.9 (w 2) beats all 6; 0.7 (w 1) ties 3, beats 1 + 2;
    # 0.4 (w 1) ties 1, beats 2 → (12 + 4.5 + 2.5) / (4 · 6) = 19/24
    assert metrics.roc_auc(ROC_SCORE, ROC_LABEL, ROC_WEIGHT) == pytest.approx(19 / 24, rel=1e-12)
    assert reference.pairwise_auc(ROC_SCORE, ROC_LABEL, ROC_WEIGHT) == pytest.approx(19 / 24, rel=1e-12)
    assert roc_auc_score(ROC_LABEL, ROC_SCORE, sample_weight=ROC_WEIGHT) == pytest.approx(19 / 24, rel=1e-12)
    # a higher score means more signal-like: the reversed score gives 1 − AUC
    assert metrics.roc_auc(-ROC_SCORE, ROC_LABEL, ROC_WEIGHT) == pytest.approx(5 / 24, rel=1e-12)


def test_auc_with_negative_weights_is_still_the_pairwise_sum() -> None:
    rng = np.random.default_rng(7)
    score = rng.integers(0, 6, 40).astype(float)  # many ties
    label = np.r_[np.ones(20), np.zeros(20)].astype(int)
    weight = rng.uniform(0.2, 3.0, 40) * np.where(rng.uniform(size=40) < 0.2, -0.5, 1.0)
    expected = reference.pairwise_auc(score, label, weight)
    assert metrics.roc_auc(score, label, weight) == pytest.approx(expected, rel=1e-12)
    positive = np.abs(weight)
    assert metrics.roc_auc(score, label, positive) == pytest.approx(
        roc_auc_score(label, score, sample_weight=positive), rel=1e-12
    )


def test_auc_error_by_hand_is_hanley_mcneil_with_effective_counts() -> None:
    # N_S = 4²/(2² + 1 + 1) = 8/3, N_B = 6²/(3² + 1 + 2²) = 18/7, A = 19/24
    a, n_s, n_b = Fraction(19, 24), Fraction(8, 3), Fraction(18, 7)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)  # 19/29 and 361/516
    variance = (a * (1 - a) + (n_s - 1) * (q1 - a * a) + (n_b - 1) * (q2 - a * a)) / (n_s * n_b)
    error = metrics.roc_auc_error(19 / 24, ROC_LABEL, ROC_WEIGHT)
    assert error == pytest.approx(math.sqrt(variance), rel=1e-12)
    assert error == pytest.approx(reference.hanley_mcneil_error(19 / 24, 8 / 3, 18 / 7), rel=1e-12)
    # without weights the counts are 3 and 3
    assert metrics.roc_auc_error(0.7, ROC_LABEL) == pytest.approx(reference.hanley_mcneil_error(0.7, 3, 3), rel=1e-12)


def test_auc_error_counts_negative_weights_through_the_effective_counts() -> None:
    label = np.array([1, 1, 1, 0, 0, 0, 0])
    weight = np.array([2.0, -0.5, 1.5, 1.0, 3.0, 0.5, 1.5])
    # N_S = 3²/(4 + 0.25 + 2.25) = 18/13, N_B = 6²/(1 + 9 + 0.25 + 2.25) = 36/12.5
    expected = reference.hanley_mcneil_error(0.85, 18 / 13, 36 / 12.5)
    assert metrics.roc_auc_error(0.85, label, weight) == pytest.approx(expected, rel=1e-12)
    # one event is one effective event, enough; (Σw)²/Σw² below 1 is not
    one = metrics.roc_auc_error(0.85, np.array([1, 0, 0, 0]), np.array([3.0, 1.0, 2.0, 1.0]))
    assert one == pytest.approx(reference.hanley_mcneil_error(0.85, 1, 16 / 6), rel=1e-12)
    assert math.isnan(metrics.roc_auc_error(0.85, np.array([1, 1, 0, 0]), np.array([1.0, -0.5, 1.0, 1.0])))
    assert math.isnan(metrics.roc_auc_error(math.nan, label, weight))


def test_rejection_by_hand_interpolates_the_background_efficiency_linearly_in_signal_efficiency() -> None:
    # ROC points (ε_S, ε_B): (0, 0) (1/2, 0) (3/4, 1/2) (1, 2/3) (1, 1)
    def rejection(efficiency: float) -> float:
        return metrics.rejection_at(ROC_SCORE, ROC_LABEL, ROC_WEIGHT, efficiency)

    assert rejection(0.3) == math.inf  # ε_B = 0 all the way to ε_S = 1/2
    assert rejection(0.6) == pytest.approx(1 / (0.4 * 0.5), rel=1e-12)  # 2/5 of the way from 0 to 1/2
    assert rejection(0.8) == pytest.approx(1 / (0.5 + 0.2 * (2 / 3 - 0.5)), rel=1e-12)
    assert rejection(0.75) == pytest.approx(2.0, rel=1e-12)


def test_rejection_is_taken_at_half_the_signal_by_default(scored) -> None:
    at_half = metrics.rejection_at(*scored, signal_efficiency=0.5)
    assert metrics.rejection_at(*scored) == at_half
    assert at_half != pytest.approx(metrics.rejection_at(*scored, signal_efficiency=0.3), rel=0.1)


def test_metrics_of_a_class_or_sample_without_positive_weight_are_nan() -> None:
    label = np.array([1, 1, 0, 0])
    for weight in (np.array([1.0, -1.0, 1.0, 2.0]), np.array([1.0, 2.0, -2.0, 1.0]), np.array([1.0, -2.0, 1.0, 1.0])):
        assert math.isnan(metrics.roc_auc(np.arange(4.0), label, weight))
        assert math.isnan(metrics.rejection_at(np.arange(4.0), label, weight, 0.5))
    assert math.isnan(metrics.ks_distance(np.arange(2.0), np.arange(3.0), np.array([1.0, -1.0])))
    assert math.isnan(metrics.ks_distance(np.arange(2.0), np.arange(3.0), None, np.array([1.0, -1.0, -1.0])))


def test_rejection_with_negative_weights_takes_the_first_cut_reaching_the_signal_efficiency() -> None:
    # signal (W_S = 4) at 8, 7, 5, 4, 2 with weights 3, −1, 3, −2, 1; background (W_B = 8) at 6, 3, 1
    score = np.arange(8, 0, -1.0)
    label = np.array([1, 1, 0, 1, 1, 0, 1, 0])
    weight = np.array([3.0, -1.0, 3.0, 3.0, -2.0, 2.0, 1.0, 3.0])
    # ε_S along the cuts: 3/4, 1/2, 1/2, 5/4, 3/4, 3/4, 1, 1; ε_S reaches 0.9 first at the cut
    # score ≥ 5, where ε_B = 3/8 (the later cut at 2 with ε_S = 1 has ε_B = 5/8)
    assert metrics.rejection_at(score, label, weight, 0.9) == pytest.approx(8 / 3, rel=1e-12)
    assert metrics.rejection_at(score, label, weight, 0.6) == math.inf


def test_ks_by_hand_takes_the_supremum_where_either_sample_jumps() -> None:
    # F_a: 1/4 on [1, 5), 1; F_b: 3/4 on [2, 3), 1 from 3 → |F_a − F_b| = 3/4 on [3, 5), a point of b
    a, weight_a = np.array([5.0, 1.0]), np.array([3.0, 1.0])
    b, weight_b = np.array([2.0, 3.0]), np.array([3.0, 1.0])
    assert metrics.ks_distance(a, b, weight_a, weight_b) == pytest.approx(0.75, rel=1e-12)
    assert metrics.ks_distance(b, a, weight_b, weight_a) == pytest.approx(0.75, rel=1e-12)
    # a negative weight makes F_a fall: 1/4 at 1, 1/8 at 2, 1 at 5; |F_a − F_b| at 1, 2, 3, 5: 1/4, 5/8, 7/8, 0
    a, weight_a = np.array([1.0, 2.0, 5.0]), np.array([1.0, -0.5, 3.5])
    assert metrics.ks_distance(a, b, weight_a, weight_b) == pytest.approx(0.875, rel=1e-12)
    assert reference.brute_force_ks(a, b, weight_a, weight_b) == pytest.approx(0.875, rel=1e-12)


def test_efficiency_by_hand_uses_the_effective_count() -> None:
    passed = np.array([True, True, False, True, False])
    weight = np.array([2.0, -1.0, 1.0, 0.5, 1.5])
    eff, err = metrics.efficiency(passed, weight)
    # ε = 1.5/4; N_eff = 4²/(4 + 1 + 1 + 0.25 + 2.25) = 16/8.5
    assert eff == pytest.approx(0.375, rel=1e-12)
    assert err == pytest.approx(math.sqrt(0.375 * 0.625 * 8.5 / 16), rel=1e-12)
    # beyond [0, 1] (negative weights) the error is that of the clipped efficiency: 0
    assert metrics.efficiency(np.array([True, False]), np.array([3.0, -1.0])) == (pytest.approx(1.5), 0.0)
    assert metrics.efficiency(np.array([False, True]), np.array([3.0, -1.0])) == (pytest.approx(-0.5), 0.0)
    assert all(math.isnan(v) for v in metrics.efficiency(np.array([True, False]), np.array([1.0, -1.0])))


def working_point(score: list[float], weight: list[float], signal_efficiency: float) -> float:
    """The threshold fixed on a sample whose signal is ``score``, with background events around it."""
    background_score, background_weight = [10.0, 2.5, 0.0], [5.0, 0.5, 1.0]  # must not count
    label = np.r_[np.ones(len(score)), np.zeros(3)]
    point = metrics.WorkingPoint.from_simulation(
        np.r_[score, background_score], label, np.r_[weight, background_weight], signal_efficiency
    )
    assert point.signal_efficiency == signal_efficiency
    return point.threshold


def test_working_point_is_the_tightest_cut_keeping_the_signal_efficiency() -> None:
    # unit weights, no ties: the cut keeps 1, 2, 3, 4 of the 4 signal events
    for efficiency, threshold in ((0.0, 4.0), (0.25, 4.0), (0.26, 3.0), (0.5, 3.0), (0.75, 2.0), (0.76, 1.0), (1.0, 1.0)):
        assert working_point([2.0, 4.0, 1.0, 3.0], [1, 1, 1, 1], efficiency) == threshold, efficiency
    # beyond 1 the loosest cut, not an index past the end
    assert working_point([2.0, 4.0, 1.0, 3.0], [1, 1, 1, 1], 1.2) == 1.0


def test_working_point_with_ties_keeps_the_whole_tie_and_more_than_asked() -> None:
    # 3, 2, 2, 1: no cut keeps exactly 1/2; the tightest keeping ≥ 1/2 is ≥ 2, which keeps 3/4
    assert working_point([2.0, 3.0, 2.0, 1.0], [1, 1, 1, 1], 0.5) == 2.0
    assert working_point([2.0, 3.0, 2.0, 1.0], [1, 1, 1, 1], 0.25) == 3.0
    assert working_point([2.0, 3.0, 2.0, 1.0], [1, 1, 1, 1], 0.3) == 2.0


def test_working_point_counts_the_event_weights() -> None:
    # 4, 3, 2, 1 with weights 0.5, 0.25, 1, 0.25: kept fractions 1/4, 3/8, 7/8, 1 (unit weights: ≥ 3)
    assert working_point([4.0, 3.0, 2.0, 1.0], [0.5, 0.25, 1.0, 0.25], 0.5) == 2.0
    assert working_point([4.0, 3.0, 2.0, 1.0], [0.5, 0.25, 1.0, 0.25], 0.25) == 4.0
    assert working_point([4.0, 3.0, 2.0, 1.0], [0.5, 0.25, 1.0, 0.25], 0.3) == 3.0


def test_working_point_with_negative_weights_behind_the_cut() -> None:
    # 5 … 1 with weights 1, 1, 1, −0.5, 1.5 (W = 4): kept fractions 1/4, 1/2, 3/4, 5/8, 1
    weight = [1.0, 1.0, 1.0, -0.5, 1.5]
    for efficiency, threshold in ((0.5, 4.0), (0.65, 3.0), (0.7, 3.0), (0.8, 1.0)):
        assert working_point([5.0, 4.0, 3.0, 2.0, 1.0], weight, efficiency) == threshold, efficiency
    # a negative weight inside a tie: 3, 2, 2, 1 with 0.75, 1, −0.5, 0.75 (W = 2) keep 3/8, then
    # 5/8 with the whole tie at 2, then 1; 0.7 needs the loosest cut although 7/8 is passed inside the tie
    assert working_point([3.0, 2.0, 2.0, 1.0], [0.75, 1.0, -0.5, 0.75], 0.5) == 2.0
    assert working_point([3.0, 2.0, 2.0, 1.0], [0.75, 1.0, -0.5, 0.75], 0.7) == 1.0


def test_working_point_with_a_negative_weight_before_the_cut_is_still_the_tightest() -> None:
    # 4, 3, 2, 1 with weights 1.25, −0.75, 1, 0.5 (W = 2): kept fractions 5/8, 1/4, 3/4, 1
    score, weight = np.array([4.0, 3.0, 2.0, 1.0]), np.array([1.25, -0.75, 1.0, 0.5])
    assert reference.tightest_cut(score, weight, 0.5) == 4.0
    assert working_point(list(score), list(weight), 0.5) == 4.0


def test_working_point_without_positive_signal_weight_is_nan() -> None:
    assert math.isnan(working_point([2.0, 1.0], [1.0, -1.0], 0.5))
    assert math.isnan(working_point([2.0, 1.0], [1.0, -2.0], 0.5))


# scale-factor hand case at the cut score ≥ 0.5, with events exactly at the cut in both domains
SF_POINT = metrics.WorkingPoint(threshold=0.5, signal_efficiency=0.5)
SF_SIM_SCORE = np.array([0.9, 0.7, 0.4, 0.2, 0.8, 0.5, 0.3, 0.1])
SF_SIM_LABEL = np.array([1, 1, 1, 1, 0, 0, 0, 0])
SF_SIM_WEIGHT = np.array([1.0, 2.0, 1.5, -0.5, 1.0, 1.0, 2.0, 4.0])
SF_DATA_SCORE = np.array([0.95, 0.5, 0.3, 0.6, 0.55, 0.45, 0.2, 0.1])
SF_DATA_LABEL = np.array([1, 1, 1, 0, 0, 0, 0, 0])
SF_DATA_WEIGHT = np.array([1.0, 1.0, 2.0, 1.0, 0.5, 1.5, 2.0, -1.0])


def sf_by_hand(cls: int) -> tuple[float, float]:
    if cls == 1:
        # simulation: 3/4 passes, N_eff = 4²/7.5; data: 2/4 passes (the 0.5 counts), N_eff = 4²/6
        eff_sim, n_sim, eff_data, n_data = 0.75, 16 / 7.5, 0.5, 16 / 6
    else:
        # simulation: 2/8 passes (the 0.5 counts), N_eff = 8²/22; data: 1.5/4 passes, N_eff = 4²/8.5
        eff_sim, n_sim, eff_data, n_data = 0.25, 64 / 22, 0.375, 16 / 8.5
    sigma_sim = math.sqrt(eff_sim * (1 - eff_sim) / n_sim)
    sigma_data = math.sqrt(eff_data * (1 - eff_data) / n_data)
    sf = eff_data / eff_sim
    return sf, sf * math.sqrt((sigma_data / eff_data) ** 2 + (sigma_sim / eff_sim) ** 2)


@pytest.mark.parametrize("cls, expected_sf", [(1, 2 / 3), (0, 1.5)])
def test_scale_factor_and_its_error_by_hand(cls: int, expected_sf: float) -> None:
    sf, err = metrics.scale_factor(
        SF_POINT, SF_SIM_SCORE, SF_SIM_LABEL, SF_SIM_WEIGHT, SF_DATA_SCORE, SF_DATA_LABEL, SF_DATA_WEIGHT, cls
    )
    hand_sf, hand_err = sf_by_hand(cls)
    assert hand_sf == pytest.approx(expected_sf, rel=1e-12)
    assert sf == pytest.approx(hand_sf, rel=1e-12)
    assert err == pytest.approx(hand_err, rel=1e-12)


def test_scale_factor_error_terms_of_each_domain_add_in_quadrature() -> None:
    # four times the data events (each repeated) halve the data term and leave the simulation's;
    # a common factor on the data weights changes nothing
    args = (SF_POINT, SF_SIM_SCORE, SF_SIM_LABEL, SF_SIM_WEIGHT)
    _, err = metrics.scale_factor(*args, SF_DATA_SCORE, SF_DATA_LABEL, SF_DATA_WEIGHT, 1)
    _, err_doubled = metrics.scale_factor(*args, SF_DATA_SCORE, SF_DATA_LABEL, 2 * SF_DATA_WEIGHT, 1)
    _, err_more = metrics.scale_factor(
        *args, np.tile(SF_DATA_SCORE, 4), np.tile(SF_DATA_LABEL, 4), np.tile(SF_DATA_WEIGHT, 4), 1
    )
    relative_sim = math.sqrt(0.25 / 0.75 * 7.5 / 16)
    relative_data = math.sqrt(0.5 / 0.5 * 6 / 16)
    assert err == pytest.approx(2 / 3 * math.hypot(relative_data, relative_sim), rel=1e-12)
    assert err_more == pytest.approx(2 / 3 * math.hypot(relative_data / 2, relative_sim), rel=1e-12)
    assert err_doubled == pytest.approx(err, rel=1e-12)


def test_scale_factor_at_the_edges() -> None:
    args = (SF_POINT, SF_SIM_SCORE, SF_SIM_LABEL, SF_SIM_WEIGHT)
    relative_sim = math.sqrt(0.25 / 0.75 * 7.5 / 16)
    # nothing passes in data: sf 0 ± 0 (the binomial error of ε = 0 is 0)
    assert metrics.scale_factor(*args, np.array([0.1, 0.2]), np.array([1, 1]), np.ones(2), 1) == (0.0, 0.0)
    # negative passing weight in data: a negative sf whose error is the simulation's relative one
    sf, err = metrics.scale_factor(*args, np.array([0.9, 0.1]), np.array([1, 1]), np.array([-1.0, 3.0]), 1)
    assert sf == pytest.approx(-0.5 / 0.75, rel=1e-12)
    assert err == pytest.approx(0.5 / 0.75 * relative_sim, rel=1e-12)
    # no data of the class, or nothing of simulation passing: undefined
    nan_data = metrics.scale_factor(*args, np.array([0.9, 0.1]), np.array([1, 1]), np.array([1.0, -1.0]), 1)
    tight = metrics.WorkingPoint(threshold=0.99, signal_efficiency=0.01)
    nan_sim = metrics.scale_factor(tight, *args[1:], SF_DATA_SCORE, SF_DATA_LABEL, SF_DATA_WEIGHT, 1)
    assert all(math.isnan(v) for v in (*nan_data, *nan_sim))


def test_scale_factor_curve_is_the_scale_factor_at_each_working_point() -> None:
    rng = np.random.default_rng(8)
    sim_label, data_label = rng.integers(0, 2, 300), rng.integers(0, 2, 200)
    sim_score = rng.normal(sim_label, 1.0)
    data_score = rng.normal(data_label * 0.8 + 0.1, 1.0)
    sim_weight, data_weight = rng.uniform(0.5, 2.0, 300), rng.uniform(0.5, 2.0, 200)
    curve = metrics.scale_factor_curve(
        sim_score, sim_label, sim_weight, data_score, data_label, data_weight, efficiencies=(0.3, 0.5, 0.8)
    )
    np.testing.assert_array_equal(curve.efficiency, [0.3, 0.5, 0.8])
    for i, efficiency in enumerate((0.3, 0.5, 0.8)):
        threshold = reference.tightest_cut(sim_score[sim_label == 1], sim_weight[sim_label == 1], efficiency)
        for cls, sf, err in ((1, curve.signal, curve.signal_err), (0, curve.background, curve.background_err)):
            sim, data = sim_label == cls, data_label == cls
            eff_sim = reference.cut_efficiency(sim_score[sim], sim_weight[sim], threshold)
            eff_data = reference.cut_efficiency(data_score[data], data_weight[data], threshold)
            relative = math.hypot(
                reference.binomial_error(eff_data, data_weight[data]) / eff_data,
                reference.binomial_error(eff_sim, sim_weight[sim]) / eff_sim,
            )
            assert sf[i] == pytest.approx(eff_data / eff_sim, rel=1e-12)
            assert err[i] == pytest.approx(eff_data / eff_sim * relative, rel=1e-12)
    assert curve.at(0.52) == (curve.signal[1], curve.background[1])


def test_cvm_by_hand() -> None:
    # observer 1 … 6 in two quantile bins {1, 2, 3}, {4, 5, 6}; scores 0.1 0.4 0.3 | 0.2 0.6 0.5,
    # weights 1 3 1 | 1 2 1 (W = 9). Global F at 0.1 … 0.6: 1/9 2/9 3/9 6/9 7/9 1.
    # bin 1 (W = 5): local F 1/5 1 2/5 against 1/9 6/9 3/9 → (16 + 3·225 + 9)/2025/5 = 28/405, × 5/9
    # bin 2 (W = 4): local F 1/4 1 1/2 against 2/9 1 7/9 → (1 + 0 + 100)/1296/4 = 101/5184, × 4/9
    score = np.array([0.1, 0.4, 0.3, 0.2, 0.6, 0.5])
    weight = np.array([1.0, 3.0, 1.0, 1.0, 2.0, 1.0])
    observer = np.arange(1.0, 7.0)
    assert metrics.cvm_flatness(score, observer, weight, bins=2) == pytest.approx(28 / 729 + 101 / 11664, rel=1e-12)
    # the order of the events does not matter, a constant factor on the weights neither
    order = np.array([4, 0, 5, 2, 1, 3])
    assert metrics.cvm_flatness(score[order], observer[order], 3 * weight[order], bins=2) == pytest.approx(
        61 / 1296, rel=1e-12
    )
    assert math.isnan(metrics.cvm_flatness(score[:3], observer[:3], weight[:3], bins=2))
    # two events per bin are enough
    assert math.isfinite(metrics.cvm_flatness(score[:4], observer[:4], weight[:4], bins=2))


def test_cvm_with_a_negative_weight_averages_over_absolute_weights_and_combines_signed_fractions() -> None:
    # seven events: the median edge 4 is an observer value, and belongs to the upper bin
    score = np.array([0.1, 0.4, 0.3, 0.2, 0.6, 0.5, 0.35])
    weight = np.array([1.0, 3.0, -1.0, 1.0, 2.0, 1.0, 1.5])
    observer = np.arange(1.0, 8.0)
    assert metrics.cvm_flatness(score, observer, weight, bins=2) == pytest.approx(
        reference.cvm_flatness(score, observer, weight, bins=2), rel=1e-12
    )
