"""The transfer-learning report section: events saved, the summary of a study, its tables and page."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sqnn.report.transfer import (
    headline_events_saved,
    main,
    scratch_events_for,
    summarize,
    transfer_markdown,
    transfer_page,
)

SCRATCH_AUC = {100: 0.70, 1000: 0.80, 10000: 0.90}


def _study() -> dict:
    """Two seeds per cell: scratch rises with N, the fine-tuned model is as good as scratch with 10× the events."""
    runs: dict = {"scratch": {}, "finetune": {}, "mlp": {}}
    for n, auc in SCRATCH_AUC.items():
        for variant, value in (("scratch", auc), ("finetune", min(auc + 0.10, 0.95)), ("mlp", auc - 0.02)):
            runs[variant][str(n)] = {
                str(seed): {"seed": seed, "auc": value + (0.01 if seed else -0.01), "rejection_50": 10.0 + seed,
                            "cpu_seconds": 1.0}
                for seed in (0, 1)
            }
    return {"settings": {"pretrain_files": {"zprime": "z.parquet", "wprime": "w.parquet"}},
            "pretraining": {"processes": {"task": "processes", "events": {"train": 100}, "cpu_seconds": 3.0,
                                          "test_auc": {"zprime": 0.95, "wprime": 0.9}}},
            "channels": {"tth": {"file": "tth.parquet", "events": 50000, "runs": runs}}}


def test_scratch_events_interpolate_in_log_n_and_say_when_outside():
    assert scratch_events_for(0.80, [100, 1000], [0.70, 0.80])["events"] == pytest.approx(1000.0)
    assert scratch_events_for(0.75, [100, 1000], [0.70, 0.80])["events"] == pytest.approx(math.sqrt(1e5))
    assert scratch_events_for(0.60, [100, 1000], [0.70, 0.80]) == {"events": 100.0, "bound": "at_most"}
    assert scratch_events_for(0.85, [100, 1000], [0.70, 0.80]) == {"events": 1000.0, "bound": "beyond"}
    # a dip of the scratch curve does not make it reach an AUC twice
    dipped = scratch_events_for(0.79, [100, 300, 1000], [0.80, 0.75, 0.85])
    assert dipped["bound"] == "at_most"


def test_summary_has_errors_paired_differences_and_events_saved():
    summary = summarize(_study())["tth"]
    cell = summary["cells"]["finetune"]["100"]
    assert cell["auc"]["mean"] == pytest.approx(0.80) and cell["auc"]["seeds"] == 2
    assert cell["auc"]["err"] == pytest.approx(0.01)  # std 0.01414 / sqrt(2)
    assert cell["delta_auc_vs_scratch"]["mean"] == pytest.approx(0.10)
    assert cell["delta_auc_vs_scratch"]["err"] == pytest.approx(0.0)  # the same shift for both seeds
    assert "delta_auc_vs_scratch" not in summary["cells"]["scratch"]["100"]
    saved = summary["events_saved"]["finetune"]
    assert saved["100"]["scratch_events"] == pytest.approx(1000.0) and saved["100"]["ratio"] == pytest.approx(10.0)
    assert saved["100"]["bound"] is None
    assert saved["10000"]["bound"] == "beyond"
    assert summary["events_saved"]["mlp"]["1000"]["ratio"] < 1.0
    assert "scratch" not in summary["events_saved"]


def test_headline_takes_the_best_transfer_variant_and_says_when_scratch_never_reaches_it():
    study = _study()
    # an MLP better than every transfer variant is no transfer: it must not be chosen
    for seed_run in study["channels"]["tth"]["runs"]["mlp"]["100"].values():
        seed_run["auc"] = 0.99
    rows = headline_events_saved(summarize(study), sizes=(100, 10000))
    assert [(r["events"], r["variant"]) for r in rows] == [(100, "finetune"), (10000, "finetune")]
    assert rows[0]["scratch_events"] == pytest.approx(1000.0) and rows[0]["bound"] is None
    assert rows[1]["bound"] == "beyond"  # 0.95 is above scratch's best, 0.90
    assert headline_events_saved(summarize(study), sizes=(100,), variants=("frozen",)) == []


def test_a_cell_of_one_seed_shows_no_spread():
    study = _study()
    del study["channels"]["tth"]["runs"]["finetune"]["1000"]["1"]
    text = transfer_markdown(study)
    assert "0.8900 (1 seed)" in text and "+0.1000 (1 seed)" in text  # seed 0: 0.90 - 0.01


def test_markdown_and_page_show_every_table(tmp_path: Path):
    study = _study()
    closure = {"description": "set models", "summary": {
        "source-only": {"closure": {"mean": 0.2, "err": 0.01, "seeds": 3}, "auc_target": {"mean": 0.8, "err": 0.002, "seeds": 3}},
        "sqnn γ=1": {"closure": {"mean": 0.05, "err": 0.01, "seeds": 3}},
    }, "paired_vs_source_only": {"sqnn γ=1": {"closure": {"mean": -0.15, "err": 0.02, "seeds": 3},
                                              "auc_target": {"mean": -0.003, "err": 0.001, "seeds": 3}}}}
    text = transfer_markdown(study, closure)
    assert "## tth: test AUC" in text and "| finetune | 0.8000 ± 0.0100 |" in text
    assert "## tth: events saved" in text and "| finetune | 10× (" in text and "> 1×" in text
    assert "| tth | 100 | finetune | 0.8000 ± 0.0100 | 0.7000 ± 0.0100 | 1000 (10×) |" in text
    assert "| source-only | 3 | — | 0.800 ± 0.002 |" in text and "| sqnn γ=1 | 3 |" in text
    assert "| method | Δ auc_target | Δ closure |" in text and "| sqnn γ=1 | -0.0030 ± 0.0010 | -0.1500 ± 0.0200 |" in text
    study_path, closure_path = tmp_path / "study.json", tmp_path / "closure.json"
    study_path.write_text(json.dumps(study))
    closure_path.write_text(json.dumps(closure))
    main(["--study", str(study_path), "--closure", str(closure_path), "--out", str(tmp_path / "t.html"),
          "--markdown", str(tmp_path / "t.md")])
    page = (tmp_path / "t.html").read_text()
    assert page.count("<img") == 1 and "data:image/png;base64," in page and "Set models from simulation to data" in page
    assert (tmp_path / "t.md").read_text() == text
    assert "<table>" in transfer_page(study)
