"""Properties of the weighted metrics on random samples, and agreement with the brute-force references."""

from __future__ import annotations

import math

import metric_references as reference
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import roc_auc_score

from sqnn import metrics

# Samples are drawn from a seeded generator, with the sizes, the seed, how coarse the scores are
# (coarse grids tie often, across classes too) and the share of negative weights chosen by
# hypothesis: far cheaper to generate than element by element, and still shrinking to small cases.


def draw_scores(draw: st.DrawFn, rng: np.random.Generator, n: int) -> np.ndarray:
    levels = draw(st.sampled_from([1, 3, 7, 13, 0]))  # 0: continuous
    if levels == 0:
        return rng.normal(0.0, 1.5, n)
    return rng.integers(0, levels, n) / 2.0


def draw_weights(draw: st.DrawFn, rng: np.random.Generator, n: int, negative: bool) -> np.ndarray:
    weight = rng.uniform(0.1, 5.0, n)
    share = draw(st.sampled_from([0.0, 0.2, 0.4])) if negative else 0.0
    return np.where(rng.uniform(size=n) < share, -rng.uniform(0.1, 2.0, n), weight)


@st.composite
def labelled(draw: st.DrawFn, negative: bool = False, max_size: int = 12):
    """(score, label, weight) with both classes, each of total weight above 0.5."""
    n_signal, n_background = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = n_signal + n_background
    label = rng.permutation(np.r_[np.ones(n_signal, dtype=int), np.zeros(n_background, dtype=int)])
    score = draw_scores(draw, rng, n) + label * draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))
    weight = draw_weights(draw, rng, n, negative)
    assume(weight[label == 1].sum() > 0.5 and weight[label == 0].sum() > 0.5)
    return score, label, weight


@st.composite
def weighted(draw: st.DrawFn, negative: bool = False, max_size: int = 12):
    """(values, weight) of one sample of total weight above 0.5."""
    n = draw(st.integers(1, max_size))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = draw_scores(draw, rng, n) + draw(st.sampled_from([0.0, 0.5, 1.0]))
    weight = draw_weights(draw, rng, n, negative)
    assume(weight.sum() > 0.5)
    return values, weight


@settings(max_examples=40, deadline=None)
@given(labelled())
def test_auc_is_the_pairwise_sum_in_the_unit_interval_and_scikit_learns(sample) -> None:
    score, label, weight = sample
    auc = metrics.roc_auc(score, label, weight)
    assert 0.0 <= auc <= 1.0
    assert auc == pytest.approx(reference.pairwise_auc(score, label, weight), abs=1e-12)
    assert auc == pytest.approx(roc_auc_score(label, score, sample_weight=weight), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled(negative=True))
def test_auc_with_negative_weights_is_the_pairwise_sum(sample) -> None:
    score, label, weight = sample
    assert metrics.roc_auc(score, label, weight) == pytest.approx(reference.pairwise_auc(score, label, weight), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(labelled(negative=True), st.randoms(use_true_random=False))
def test_auc_is_reversed_by_the_reversed_score_and_kept_by_monotone_maps_and_permutations(sample, random) -> None:
    score, label, weight = sample
    auc = metrics.roc_auc(score, label, weight)
    assert metrics.roc_auc(-score, label, weight) == pytest.approx(1 - auc, abs=1e-9)
    assert metrics.roc_auc(np.arctan(score) * 3 + 1, label, weight) == pytest.approx(auc, abs=1e-12)
    assert metrics.roc_auc(np.exp(score), label, weight) == pytest.approx(auc, abs=1e-12)
    order = np.array(random.sample(range(score.size), score.size))
    assert metrics.roc_auc(score[order], label[order], weight[order]) == pytest.approx(auc, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled(negative=True), st.floats(0.5, 0.99))
def test_auc_error_is_hanley_mcneil_with_the_effective_counts(sample, auc: float) -> None:
    _, label, weight = sample
    n_signal, n_background = (reference.effective_count(weight[label == cls]) for cls in (1, 0))
    error = metrics.roc_auc_error(auc, label, weight)
    if n_signal >= 1 and n_background >= 1:
        assert error == pytest.approx(reference.hanley_mcneil_error(auc, n_signal, n_background), rel=1e-9)
    else:
        assert math.isnan(error)


@settings(max_examples=60, deadline=None)
@given(weighted(negative=True), weighted(negative=True))
def test_ks_is_symmetric_and_the_brute_force_supremum(a, b) -> None:
    (values_a, weight_a), (values_b, weight_b) = a, b
    distance = metrics.ks_distance(values_a, values_b, weight_a, weight_b)
    assert distance == metrics.ks_distance(values_b, values_a, weight_b, weight_a)
    assert distance == pytest.approx(reference.brute_force_ks(values_a, values_b, weight_a, weight_b), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(weighted(), weighted())
def test_ks_without_weights_is_scipys_statistic(a, b) -> None:
    (values_a, _), (values_b, _) = a, b
    assert 0.0 <= metrics.ks_distance(values_a, values_b) <= 1.0
    with np.errstate(divide="ignore"):  # scipy's asymptotic p-value of one-event samples; the statistic is exact
        statistic = stats.ks_2samp(values_a, values_b, method="asymp").statistic
    assert metrics.ks_distance(values_a, values_b) == pytest.approx(statistic, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled(), labelled(), st.floats(0.05, 0.95))
def test_working_point_is_the_tightest_cut_and_scale_factors_are_ratios_of_efficiencies(sim, data, efficiency) -> None:
    (sim_score, sim_label, sim_weight), (data_score, data_label, data_weight) = sim, data
    signal = sim_label == 1
    point = metrics.WorkingPoint.from_simulation(sim_score, sim_label, sim_weight, efficiency)
    # the kept fraction can equal the target to rounding; there the tightest cut is the next looser one or this
    kept = [reference.cut_efficiency(sim_score[signal], sim_weight[signal], t) for t in np.unique(sim_score[signal])]
    assume(min(abs(k - efficiency) for k in kept) > 1e-9)
    assert point.threshold == reference.tightest_cut(sim_score[signal], sim_weight[signal], efficiency)
    for cls in (1, 0):
        sim, dat = sim_label == cls, data_label == cls
        eff_sim = reference.cut_efficiency(sim_score[sim], sim_weight[sim], point.threshold)
        eff_data = reference.cut_efficiency(data_score[dat], data_weight[dat], point.threshold)
        sf, err = metrics.scale_factor(point, sim_score, sim_label, sim_weight, data_score, data_label, data_weight, cls)
        if eff_sim > 0:
            relative_data = reference.binomial_error(eff_data, data_weight[dat]) / eff_data if eff_data > 0 else 0.0
            relative_sim = reference.binomial_error(eff_sim, sim_weight[sim]) / eff_sim
            assert sf == pytest.approx(eff_data / eff_sim, rel=1e-12)
            assert err == pytest.approx(eff_data / eff_sim * math.hypot(relative_data, relative_sim), rel=1e-9, abs=1e-15)
        else:
            assert math.isnan(sf) and math.isnan(err)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.one_of(st.floats(0.1, 5.0), st.floats(-2.0, -0.1))), min_size=1, max_size=12))
def test_efficiency_is_the_passing_weight_fraction_with_the_binomial_error_of_effective_counts(events) -> None:
    passed, weight = (np.array(column) for column in zip(*events))
    passed, weight = passed.astype(bool), weight.astype(float)
    eff, err = metrics.efficiency(passed, weight)
    if weight.sum() > 0:
        assert eff == pytest.approx(weight[passed].sum() / weight.sum(), rel=1e-12, abs=1e-15)
        assert err == pytest.approx(reference.binomial_error(eff, weight), rel=1e-9, abs=1e-15)
    else:
        assert math.isnan(eff) and math.isnan(err)
