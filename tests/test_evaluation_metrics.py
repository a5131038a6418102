"""metrics.json as `evaluate` writes it, on a hand-made case, against the brute-force references.

The scores are given, not learned: a run stand-in scores an event by its one feature, so every
key can be worked out by hand from the events below.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import metric_references as reference
import numpy as np
import pytest

from sqnn.data import Sample
from sqnn.evaluation import evaluate

# simulation: signal weights sum to 5, kept fractions from the top 1/5, 1/2, 7/10, 17/20, 1, so
# the 50 % working point is the cut score ≥ 0.8 and the 80 % one score ≥ 0.6; background weights
# sum to 7, and one background event ties with signal at 0.8
SIM_SCORE = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.8, 0.65, 0.5, 0.3, 0.2, 0.1])
SIM_LABEL = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
SIM_WEIGHT = np.array([1.0, 1.5, 1.0, 0.75, 0.75, 0.5, 1.0, 1.0, 2.0, 1.0, 1.5])
# data: signal efficiency falls (sf_S < 1), background efficiency rises (sf_B > 1); background weights
# sum to 10, one of them negative
DATA_SCORE = np.array([0.95, 0.75, 0.7, 0.62, 0.3, 0.9, 0.82, 0.7, 0.4, 0.2, 0.1, 0.15, 0.25])
DATA_LABEL = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
DATA_WEIGHT = np.array([1.0, 2.0, 1.0, 0.5, 1.5, 1.0, 0.5, 1.0, 1.0, 2.0, -0.5, 3.0, 2.0])
# a control region of either class in both domains
SIM_CONTROL = np.array([0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0], dtype=bool)
DATA_CONTROL = np.array([1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1], dtype=bool)


class ScoreIsTheFeature:
    """What `evaluate` asks of a run, for a model whose score is its one input."""

    meta: dict[str, Any] = {}
    n_params = 0
    representation_is_stochastic = False

    def __init__(self, path: Path) -> None:
        self.path = path

    def score(self, features: np.ndarray, **_: Any) -> np.ndarray:
        return features[:, 0].copy()

    def representation(self, features: np.ndarray, **_: Any) -> np.ndarray:
        return features.copy()


def sample(
    domain: str, score: np.ndarray, label: np.ndarray, weight: np.ndarray, control: np.ndarray, folder: Path
) -> Sample:
    return Sample(
        features=score[:, None].copy(), feature_names=["score"], weight=weight.copy(), domain=domain,  # type: ignore[arg-type]
        source=str(folder / f"{domain}.parquet"), label=label.copy(), control=control.copy(),
    )


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("evaluation")
    simulation = sample("simulation", SIM_SCORE, SIM_LABEL, SIM_WEIGHT, SIM_CONTROL, folder)
    data = sample("data", DATA_SCORE, DATA_LABEL, DATA_WEIGHT, DATA_CONTROL, folder)
    return evaluate(ScoreIsTheFeature(folder), simulation, data)  # type: ignore[arg-type]


def hand_scale_factors(threshold: float) -> dict[str, tuple[float, float]]:
    factors = {}
    for cls, name in ((1, "signal"), (0, "background")):
        sim, data = SIM_LABEL == cls, DATA_LABEL == cls
        eff_sim = reference.cut_efficiency(SIM_SCORE[sim], SIM_WEIGHT[sim], threshold)
        eff_data = reference.cut_efficiency(DATA_SCORE[data], DATA_WEIGHT[data], threshold)
        relative = math.hypot(
            reference.binomial_error(eff_data, DATA_WEIGHT[data]) / eff_data,
            reference.binomial_error(eff_sim, SIM_WEIGHT[sim]) / eff_sim,
        )
        factors[name] = (eff_data / eff_sim, eff_data / eff_sim * relative)
    return factors


def test_working_points_of_the_hand_case() -> None:
    signal = SIM_LABEL == 1
    assert reference.tightest_cut(SIM_SCORE[signal], SIM_WEIGHT[signal], 0.5) == 0.8
    assert reference.tightest_cut(SIM_SCORE[signal], SIM_WEIGHT[signal], 0.8) == 0.6


def test_scale_factors_at_both_working_points(result: dict[str, Any]) -> None:
    # at score ≥ 0.8: ε_S 2.5/5 in simulation, 1/6 in data; ε_B 0.5/7 and 1.5/10
    # at score ≥ 0.6: ε_S 4.25/5 and 4.5/6; ε_B 1.5/7 and 2.5/10
    by_hand = {"": ((1 / 6) / 0.5, 0.15 / (0.5 / 7)), "_80": ((4.5 / 6) / 0.85, 0.25 / (1.5 / 7))}
    for suffix, threshold in (("", 0.8), ("_80", 0.6)):
        factors = hand_scale_factors(threshold)
        sf_signal, sf_background = by_hand[suffix]
        assert factors["signal"][0] == pytest.approx(sf_signal, rel=1e-12)
        assert factors["background"][0] == pytest.approx(sf_background, rel=1e-12)
        for name in ("signal", "background"):
            assert result[f"sf_{name}{suffix}"] == pytest.approx(factors[name][0], rel=1e-12), (name, suffix)
            assert result[f"sf_{name}{suffix}_err"] == pytest.approx(factors[name][1], rel=1e-12), (name, suffix)


def test_closure_at_both_working_points_with_one_scale_factor_either_side_of_one(result: dict[str, Any]) -> None:
    # 50 %: sf_S = 1/3, sf_B = 2.1 → 2/3 + 1.1; 80 %: sf_S = 15/17, sf_B = 7/6 → 2/17 + 1/6
    assert result["sf_signal"] < 1 < result["sf_background"]
    assert result["sf_signal_80"] < 1 < result["sf_background_80"]
    assert result["closure"] == pytest.approx(2 / 3 + 1.1, rel=1e-12)
    assert result["closure_80"] == pytest.approx(2 / 17 + 1 / 6, rel=1e-12)


def test_classification_keys(result: dict[str, Any]) -> None:
    assert result["n_events_simulation"] == 11 and result["n_events_data"] == 13
    for key, score, label, weight in (
        ("auc_source", SIM_SCORE, SIM_LABEL, SIM_WEIGHT),
        ("auc_target", DATA_SCORE, DATA_LABEL, DATA_WEIGHT),
    ):
        auc = reference.pairwise_auc(score, label, weight)
        n_signal, n_background = (reference.effective_count(weight[label == cls]) for cls in (1, 0))
        assert result[key] == pytest.approx(auc, rel=1e-12)
        assert result[f"{key}_err"] == pytest.approx(reference.hanley_mcneil_error(auc, n_signal, n_background), rel=1e-12)
    # simulated (ε_S, ε_B) at the cuts 0.9, 0.8, 0.7: (1/5, 0), (1/2, 1/14), (7/10, 1/14); the tie at
    # 0.8 makes the step from (1/5, 0) to (1/2, 1/14) sloped: ε_B = 1/42 at ε_S = 0.3, 1/14 at 0.5
    assert result["rejection_at_50"] == pytest.approx(14.0, rel=1e-12)
    assert result["rejection_at_30"] == pytest.approx(42.0, rel=1e-12)


def test_distances_between_the_domains(result: dict[str, Any]) -> None:
    assert result["ks"] == pytest.approx(reference.brute_force_ks(SIM_SCORE, DATA_SCORE, SIM_WEIGHT, DATA_WEIGHT), rel=1e-12)
    for cls, name in ((1, "signal"), (0, "background")):
        sim, data = SIM_LABEL == cls, DATA_LABEL == cls
        expected = reference.brute_force_ks(SIM_SCORE[sim], DATA_SCORE[data], SIM_WEIGHT[sim], DATA_WEIGHT[data])
        assert result[f"ks_{name}"] == pytest.approx(expected, rel=1e-12)
    assert result["ks_signal"] != pytest.approx(result["ks_background"])
    control = reference.brute_force_ks(
        SIM_SCORE[SIM_CONTROL], DATA_SCORE[DATA_CONTROL], SIM_WEIGHT[SIM_CONTROL], DATA_WEIGHT[DATA_CONTROL]
    )
    assert result["ks_control"] == pytest.approx(control, rel=1e-12)
    assert result["ks_control"] != pytest.approx(result["ks"])


def test_data_signal_fraction_and_the_reweighted_distance(result: dict[str, Any]) -> None:
    # the simulated signal fraction is 5/12 by weight (5/11 by count)
    sim_prior = 5 / 12
    root = reference.em_fixed_point(DATA_SCORE, DATA_WEIGHT, sim_prior)
    assert 0.02 < root < 0.98
    assert result["data_signal_fraction"] == pytest.approx(root, abs=1e-6)
    # the weights and the weighted simulated fraction both count: unweighted, or from counts, EM lands elsewhere
    assert abs(root - reference.em_fixed_point(DATA_SCORE, np.ones_like(DATA_WEIGHT), sim_prior)) > 0.1
    assert abs(root - reference.em_fixed_point(DATA_SCORE, DATA_WEIGHT, 5 / 11)) > 0.05
    fraction = result["data_signal_fraction"]
    reweight = np.where(SIM_LABEL == 1, fraction / sim_prior, (1 - fraction) / (1 - sim_prior))
    expected = reference.brute_force_ks(SIM_SCORE, DATA_SCORE, SIM_WEIGHT * reweight, DATA_WEIGHT)
    assert result["ks_reweighted"] == pytest.approx(expected, rel=1e-12)
    assert result["ks_reweighted"] != pytest.approx(result["ks"], abs=0.05)
