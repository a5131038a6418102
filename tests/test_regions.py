"""Enriched regions: their composition and the in-situ scale factors, against exact and simulated references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqnn import regions
from sqnn.metrics import WorkingPoint, efficiency


def test_the_prior_and_the_purity_follow_from_the_selection_efficiencies() -> None:
    # π = 0.3, e_S = 0.3, e_B = 0.02: the region holds 0.3·0.3 + 0.7·0.02 = 0.104 of the data
    rate = 0.3 * 0.3 + 0.7 * 0.02
    assert regions.prior_from_rate(rate, 0.3, 0.02) == pytest.approx(0.3, abs=1e-12)
    assert regions.region_purity(0.3, 0.3, 0.02) == pytest.approx(0.09 / 0.104, abs=1e-12)
    # a region that selects nothing has no purity, one that does not tell the classes apart gives no prior
    assert math.isnan(regions.region_purity(0.3, 0.0, 0.0))
    assert math.isnan(regions.prior_from_rate(0.1, 0.2, 0.2))
    # clipped into (0, 1): a rate below e_B cannot mean a negative signal fraction
    assert regions.prior_from_rate(0.01, 0.3, 0.02) == regions.PRIOR_BOUNDS[0]


def test_selection_efficiencies_are_weighted_per_class() -> None:
    label = np.array([1, 1, 1, 0, 0, 0, 0])
    weight = np.array([1.0, 2.0, 3.0, 1.0, 1.0, 2.0, -1.0])
    inside = np.array([True, False, True, True, False, False, True])
    e_s, e_b = regions.selection_efficiencies(inside, label, weight)
    assert e_s == pytest.approx(4.0 / 6.0) and e_b == pytest.approx(0.0 / 3.0)


def test_compositions_take_the_prior_from_the_signal_region_and_otherwise_the_fallback() -> None:
    label = np.array([1] * 10 + [0] * 10)
    weight = np.ones(20)
    tagged = np.array([True] * 3 + [False] * 7 + [True] * 1 + [False] * 9)  # e_S 0.3, e_B 0.1
    data_weight = np.ones(100)
    data_tagged = np.zeros(100, dtype=bool)
    data_tagged[:16] = True  # r = 0.16 = π·0.3 + (1 − π)·0.1 → π = 0.3
    prior, found = regions.compositions(label, weight, {"signal_control": tagged}, data_weight,
                                        {"signal_control": data_tagged}, fallback_prior=0.9)
    assert prior == pytest.approx(0.3) and found["signal_control"].purity == pytest.approx(0.09 / 0.16)
    prior, found = regions.compositions(label, weight, {"control": ~tagged}, data_weight, {"control": ~data_tagged}, 0.25)
    assert prior == 0.25 and found["control"].purity == pytest.approx(0.25 * 0.7 / (0.25 * 0.7 + 0.75 * 0.9))
    # scaling a region's simulated efficiencies is how the purity's error is found
    _, scaled = regions.compositions(label, weight, {"signal_control": tagged}, data_weight,
                                     {"signal_control": data_tagged}, 0.9, {"signal_control": (1.0, 2.0)})
    assert scaled["signal_control"].background_efficiency == pytest.approx(0.2)


def _sample(rng: np.random.Generator, n: int, prior: float, shift: tuple[float, float], tag: tuple[float, float]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of two Gaussian classes (signal at +1, background at −1), each moved by ``shift``; a tag drawn per class."""
    label = (rng.random(n) < prior).astype(np.int8)
    score = np.where(label == 1, 1.0 + shift[0], -1.0 + shift[1]) + rng.normal(size=n)
    tagged = rng.random(n) < np.where(label == 1, tag[0], tag[1])
    return score, label, tagged


def _true_sf(sim: tuple, data: tuple, efficiency_kept: float) -> tuple[float, float]:
    point = WorkingPoint.from_simulation(sim[0], sim[1], np.ones(len(sim[0])), efficiency_kept)
    out = []
    for cls in (1, 0):
        e_sim, _ = efficiency(sim[0][sim[1] == cls] >= point.threshold, np.ones(int((sim[1] == cls).sum())))
        e_data, _ = efficiency(data[0][data[1] == cls] >= point.threshold, np.ones(int((data[1] == cls).sum())))
        out.append(e_data / e_sim)
    return out[0], out[1]


@pytest.mark.parametrize("shift", [(0.0, 0.0), (-0.3, 0.0), (-0.2, 0.25)])
def test_in_situ_scale_factors_find_the_true_ones_when_the_tag_side_is_modelled(shift) -> None:
    """A signal shift the probe cannot see without labels: the tag-and-probe region measures it."""
    rng = np.random.default_rng(1)
    sim = _sample(rng, 200_000, 0.5, (0.0, 0.0), (0.3, 0.02))
    data = _sample(rng, 200_000, 0.3, shift, (0.3, 0.02))
    measured = regions.insitu_scale_factors(
        regions.RegionEvents(sim[0], np.ones(len(sim[0])), {"signal_control": sim[2]}, sim[1]),
        regions.RegionEvents(data[0], np.ones(len(data[0])), {"signal_control": data[2]}),
        fallback_prior=0.5, bootstrap=30,
    )
    assert measured is not None
    for kept, point in measured.items():
        true_s, true_b = _true_sf(sim, data, kept)
        assert point.equations == ("signal_control", "all")
        assert point.prior == pytest.approx(0.3, abs=0.01)
        assert abs(point.signal.value - true_s) < 3 * point.signal.stat + 0.005
        assert abs(point.background.value - true_b) < 3 * point.background.stat + 0.005
        # the purity's error is that of a tag side known to 10 % (signal) and 30 % (background): not zero
        assert point.signal.purity > 0 and point.signal.error >= max(point.signal.stat, point.signal.purity)


def test_a_mismodelled_tag_side_is_covered_by_the_purity_error() -> None:
    rng = np.random.default_rng(2)
    sim = _sample(rng, 200_000, 0.5, (0.0, 0.0), (0.30, 0.020))
    data = _sample(rng, 200_000, 0.3, (-0.3, 0.1), (0.27, 0.025))
    measured = regions.insitu_scale_factors(
        regions.RegionEvents(sim[0], np.ones(len(sim[0])), {"signal_control": sim[2]}, sim[1]),
        regions.RegionEvents(data[0], np.ones(len(data[0])), {"signal_control": data[2]}),
        fallback_prior=0.5, bootstrap=30,
    )
    assert measured is not None
    true_s, _ = _true_sf(sim, data, 0.8)
    point = measured[0.8]
    assert abs(point.signal.value - true_s) > 2 * point.signal.stat  # the mismodelling biases it...
    assert abs(point.signal.value - true_s) < 2 * point.signal.error  # ...within the stated error


def test_without_an_enriched_region_there_is_nothing_to_measure() -> None:
    rng = np.random.default_rng(3)
    score, label, _ = _sample(rng, 1000, 0.5, (0.0, 0.0), (0.3, 0.02))
    events = regions.RegionEvents(score, np.ones(1000), {}, label)
    assert regions.insitu_scale_factors(events, regions.RegionEvents(score, np.ones(1000), {}), fallback_prior=0.5) is None


@settings(max_examples=40, deadline=None)
@given(prior=st.floats(0.05, 0.95), e_s=st.floats(0.05, 0.9), e_b=st.floats(0.001, 0.04))
def test_the_rate_identity_inverts(prior: float, e_s: float, e_b: float) -> None:
    rate = prior * e_s + (1 - prior) * e_b
    assert regions.prior_from_rate(rate, e_s, e_b) == pytest.approx(min(max(prior, 0.02), 0.98), abs=1e-9)
    purity = regions.region_purity(prior, e_s, e_b)
    assert purity * rate == pytest.approx(prior * e_s, rel=1e-9)
