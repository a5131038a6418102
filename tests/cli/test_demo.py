"""The main job on the toy, and the effect the method must show on a real shift."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqnn.workflows.demo import TOY_FEATURES, run_demo
from sqnn.data import ColumnSpec
from sqnn.workflows.train import evaluate_run, train_run
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings


def test_demo_on_the_toy_writes_runs_a_summary_and_the_report(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, case="toy", quick=True, methods=("source-only", "sqnn"), gammas=(0.3, 1.0), progress=False)
    assert [s["gamma"] for s in summary["sqnn"]["settings"]] == [0.3, 1.0]
    assert summary["sqnn"]["selected"]["gamma"] in (0.3, 1.0)
    for name in ("summary.json", "summary.md", "report.html"):
        assert (tmp_path / name).exists()
    selected = summary["source-only"]["selected"]["metrics"]
    assert selected["auc_target"]["mean"] is not None and selected["ks"]["mean"] > 0


@pytest.fixture(scope="module")
def toy_comparison(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    from sqnn.cases.toy import generate

    folder = tmp_path_factory.mktemp("shift")
    sim = generate("sim", 8000, 1, folder / "sim.parquet")
    data = generate("data", 8000, 2, folder / "data.parquet")
    spec = ColumnSpec(features=TOY_FEATURES, label="is_signal", control="control", observer="mass")
    config = TrainConfig(epochs=8, seed=0)
    results = {}
    for name, method, gamma in (("plain", "source-only", None), ("sqnn", "sqnn", 0.3)):
        settings = Settings(columns=spec, method=method, gamma=gamma, method_options={"region": "all"} if gamma else {}, train=config)
        train_run(sim, data, settings, folder / name)
        results[name] = evaluate_run(folder / name, sim, data, data_label="is_signal")
    return results


def test_penalty_removes_the_shift_without_costing_target_auc(toy_comparison) -> None:
    plain, sqnn = toy_comparison["plain"], toy_comparison["sqnn"]
    assert sqnn["mi_bits"] < plain["mi_bits"]
    assert sqnn["domain_auc"] < plain["domain_auc"]
    assert sqnn["ks"] < plain["ks"]
    assert sqnn["auc_target"] > plain["auc_target"] - 0.01
