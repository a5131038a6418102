"""The tables: closure with its propagated error, standard errors over seeds, 100 columns in a terminal."""

from __future__ import annotations

import math

import pytest

from sqnn.methods import METHODS
from sqnn.workflows.selection import aggregate
from sqnn.workflows.tables import markdown_summary, run_stats, terminal_metrics, terminal_summary, with_error

RUN = {"auc_source": 0.91, "auc_source_err": 0.003, "auc_target": 0.90, "auc_target_err": 0.004, "sf_signal": 0.92,
       "sf_signal_err": 0.03, "sf_background": 1.05, "sf_background_err": 0.04, "closure": 0.13, "sf_signal_80": 0.99,
       "sf_signal_80_err": 0.01, "sf_background_80": 1.1, "sf_background_80_err": 0.02, "closure_80": 0.11,
       "ks_signal": 0.05, "ks_background": 0.04, "ks_control": 0.031, "data_signal_fraction": 0.31, "domain_auc": 0.55}


def test_one_seed_carries_the_statistical_errors_and_the_closure_adds_them_in_quadrature() -> None:
    stats = run_stats(RUN)
    assert with_error(stats, "auc_target") == (0.90, 0.004)
    assert with_error(stats, "sf_background") == (1.05, 0.04)
    mean, error = with_error(stats, "closure")
    assert mean == 0.13 and error == pytest.approx(math.hypot(0.03, 0.04))
    assert with_error(stats, "closure_80")[1] == pytest.approx(math.hypot(0.01, 0.02))
    assert with_error(stats, "ks_control") == (0.031, None)


def test_several_seeds_give_the_standard_error_of_the_mean() -> None:
    runs = [dict(RUN, closure=c, auc_target=a) for c, a in ((0.10, 0.900), (0.14, 0.902), (0.18, 0.904))]
    stats = aggregate(runs)
    mean, error = with_error(stats, "closure")
    assert mean == pytest.approx(0.14) and error == pytest.approx(0.04 / math.sqrt(3))
    assert with_error(stats, "auc_target")[1] == pytest.approx(0.002 / math.sqrt(3))


def _summary(seeds: int, data_label: str | None = "is_signal") -> dict:
    runs = [dict(RUN, closure=0.13 + 0.01 * k) for k in range(seeds)]
    setting = {"gamma": 1.0, "seeds": list(range(seeds)), "runs": [f"r{k}" for k in range(seeds)], "metrics": aggregate(runs)}
    entries = {name: {"selected": {**setting, "gamma": gamma}, "settings": [{**setting, "gamma": gamma}]}
               for name, gamma in (("source-only", 0.0), ("sqnn", 1.0), ("dann", 0.3), ("bdt", 0.0))}
    return {"selection": {"delta": 0.005, "disagreement_metric": "ks_control"}, "seeds": list(range(seeds)),
            "inputs": {"simulation": "s.parquet", "data": "d.parquet", "data_label": data_label},
            "order": list(entries), **entries,
            "display": {name: METHODS[name].display({}).to_dict() for name in entries}}


@pytest.mark.parametrize("seeds", [1, 3])
def test_the_terminal_summary_fits_100_columns_and_says_what_the_numbers_are(seeds: int) -> None:
    text = terminal_summary(_summary(seeds), out="demo-out")
    assert max(len(line) for line in text.splitlines()) <= 100
    header = text.splitlines()[0].split()
    assert header[:3] == ["method", "setting", "auc_target"] and "closure" in header and "KS_S" in header
    assert "sqnn         γ=1" in text and "dann         λ=0.3" in text
    assert ("spread/√3" in text) == (seeds == 3)
    assert "demo-out/summary.md" in text and "demo-out/report.html" in text
    assert "1 seeds" not in text


def test_without_data_labels_the_summary_shows_the_label_free_measures() -> None:
    text = terminal_summary(_summary(1, data_label=None))
    assert "closure" not in text.splitlines()[0] and "ks_control" in text.splitlines()[0]
    assert "scale factor" not in text


def test_one_run_prints_the_same_compact_block() -> None:
    text = terminal_metrics("sqnn", "γ=1", RUN)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "0.9000 ± 0.0040" in text and f"0.130 ± {math.hypot(0.03, 0.04):.3f}" in text
    assert "sf_S / sf_B at 50 %: 0.920 ± 0.030 / 1.050 ± 0.040 · at 80 %: 0.990 ± 0.010 / 1.100 ± 0.020" in text


def test_markdown_holds_every_column_with_its_meaning() -> None:
    text = markdown_summary(_summary(3))
    assert "| sqnn | γ=1 | 3 |" in text and "## Columns" in text and "**closure 80 %**" in text
    assert "standard error over the 3 seeds" in text


def test_paired_differences_vanish_for_the_same_scores_and_match_the_difference_of_closures() -> None:
    import numpy as np

    from sqnn.runs.scores import HeldOut, Scores
    from sqnn.workflows.paired import PAIRED_KEYS, closures, paired_differences

    rng = np.random.default_rng(0)

    def scores(shift: float) -> Scores:
        label_s, label_d = rng.integers(0, 2, 4000), rng.integers(0, 2, 4000)
        return Scores(HeldOut(label_s + rng.normal(size=4000), np.ones(4000), label_s),
                      HeldOut(label_d + shift * label_d + rng.normal(size=4000), np.ones(4000), label_d))

    base, other = scores(0.0), scores(-0.3)
    result = paired_differences({"a": {0: base}, "b": {0: base}, "c": {0: other}}, "a", bootstrap=20)
    for key in PAIRED_KEYS:
        assert result["b"][key]["difference"] == 0.0 and result["b"][key]["error"] == 0.0
    expected = closures(other) - closures(base)
    assert [result["c"][k]["difference"] for k in PAIRED_KEYS] == pytest.approx(list(expected), abs=1e-12)
    assert all(result["c"][k]["error"] > 0 for k in PAIRED_KEYS)
