"""sqnn compare: the sweep, the summary, the label-free selection rule and the command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sqnn.cases.toy import generate
from sqnn.cli import main
from sqnn.methods import METHODS
from sqnn.workflows.compare import method_entries, parse_gammas, run_compare, run_directory, strength_grid
from sqnn.workflows.selection import SELECTION_RULE, aggregate, choose_disagreement, select_setting
from sqnn.workflows.settings import Settings
from sqnn.data import ColumnSpec
from sqnn.errors import SqnnError
from sqnn.training import TrainConfig

SPEC = ColumnSpec(
    features=("x0", "x1", "x2", "x3", "x4", "x5"), label="is_signal", weight="weight", control="control", observer="mass"
)
CONFIG = TrainConfig(epochs=1, batch_size=128, monitor_events=200)
SHARED = Settings(columns=SPEC, train=CONFIG)
GAMMAS = {"sqnn": (0.3, 3.0)}


def _setting(gamma: float, **means: float) -> dict:
    return {"gamma": gamma, "metrics": {k: {"mean": v, "std": 0.0, "n": 3} for k, v in means.items()}}


# ---- the selection rule ------------------------------------------------------------------


def test_guard_then_smallest_disagreement() -> None:
    settings = [
        _setting(0.1, auc_source=0.900, ks_control=0.20),
        _setting(1.0, auc_source=0.897, ks_control=0.10),
        _setting(3.0, auc_source=0.896, ks_control=0.12),
        _setting(10.0, auc_source=0.880, ks_control=0.01),  # outside the guard
    ]
    index, how = select_setting(settings, "ks_control", delta=0.005)
    assert index == 1
    assert how["candidates"] == [0.1, 1.0, 3.0] and how["best_auc_source"] == 0.900
    assert select_setting(settings, "ks_control", delta=0.05)[0] == 3
    assert select_setting(settings, "ks_control", delta=0.0)[0] == 0


def test_a_disagreement_gap_below_its_error_does_not_buy_a_loss_of_accuracy() -> None:
    def noisy(gamma: float, auc: float, ks: float, std: float) -> dict:
        return {"gamma": gamma, "metrics": {"auc_source": {"mean": auc, "std": 0.001, "n": 4},
                                            "ks_control": {"mean": ks, "std": std, "n": 4}}}

    settings = [noisy(0.3, 0.910, 0.080, 0.01), noisy(1.0, 0.909, 0.034, 0.01), noisy(2.0, 0.907, 0.032, 0.01)]
    index, how = select_setting(settings, "ks_control", delta=0.005)
    # 0.034 is within 0.01/√4 of 0.032: both agree as well as the best; the more accurate one wins
    assert index == 1 and how["agreeing"] == [1.0, 2.0] and how["resolution"] == pytest.approx(0.005)
    precise = [noisy(g, a, k, 0.001) for g, a, k in ((0.3, 0.910, 0.080), (1.0, 0.909, 0.034), (2.0, 0.907, 0.032))]
    assert select_setting(precise, "ks_control", delta=0.005)[0] == 2
    single = [{"gamma": s["gamma"], "metrics": {k: {**v, "std": None, "n": 1} for k, v in s["metrics"].items()}} for s in settings]
    assert select_setting(single, "ks_control", delta=0.005)[0] == 2


def test_selection_never_reads_data_labels() -> None:
    base = [
        _setting(0.3, auc_source=0.90, domain_auc=0.70, ks_control=0.2),
        _setting(1.0, auc_source=0.899, domain_auc=0.60, ks_control=0.3),
    ]
    chosen = select_setting(base, "domain_auc")[0]
    for target in ([0.5, 0.99], [0.99, 0.5]):
        adversarial = [
            {**s, "metrics": {**s["metrics"], "auc_target": {"mean": t}, "sf_background": {"mean": 9.0 * t}}}
            for s, t in zip(base, target)
        ]
        assert select_setting(adversarial, "domain_auc")[0] == chosen == 1


def test_ties_go_to_the_smaller_gamma_and_missing_values_lose() -> None:
    settings = [_setting(3.0, auc_source=0.9, ks_control=0.1), _setting(1.0, auc_source=0.9, ks_control=0.1)]
    assert select_setting(settings, "ks_control")[0] == 1
    settings = [_setting(1.0, auc_source=0.9), _setting(3.0, auc_source=0.9, ks_control=0.3)]
    assert select_setting(settings, "ks_control")[0] == 1
    with pytest.raises(ValueError, match="disagreement"):
        select_setting(settings, "auc_target")


def test_disagreement_metric_is_common_to_all_methods() -> None:
    with_control = {"a": [_setting(1, ks_control=0.1)], "b": [_setting(0, ks_control=0.2)]}
    assert choose_disagreement(with_control) == "ks_control"
    with_control["b"].append(_setting(2, domain_auc=0.6))
    assert choose_disagreement(with_control) == "domain_auc"


def test_aggregate_mean_and_sample_std() -> None:
    runs = [{"auc_source": 0.8, "ks": None, "mi_bits": 0.1}, {"auc_source": 0.9, "ks": 0.2}, {"auc_source": 1.0, "ks": 0.4}]
    stats = aggregate(runs)
    assert stats["auc_source"]["mean"] == pytest.approx(0.9)
    assert stats["auc_source"]["std"] == pytest.approx(np.std([0.8, 0.9, 1.0], ddof=1))
    assert stats["ks"] == {"mean": pytest.approx(0.3), "std": pytest.approx(np.std([0.2, 0.4], ddof=1)), "n": 2}
    assert stats["mi_bits"]["std"] is None and stats["mi_bits"]["n"] == 1
    assert stats["auc_target"] == {"mean": None, "std": None, "n": 0}


def test_strength_grids() -> None:
    for method in ("source-only", "mlp", "bdt"):
        assert strength_grid(method) == (0.0,)
        assert strength_grid(method, {method: (1.0, 2.0)}) == (0.0,)
    assert strength_grid("sqnn") == METHODS["sqnn"].strengths == (0.6, 1.0, 2.0) and len(METHODS["dann"].strengths) > 1
    assert strength_grid("dann", {"dann": (0.1, 0.1, 1.0)}) == (0.1, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        strength_grid("mmd", {"mmd": (-1.0,)})
    assert parse_gammas(["0.1,1", "dann=0.03"], ["sqnn", "dann"]) == {"sqnn": (0.1, 1.0), "dann": (0.03,)}
    assert parse_gammas(["dann=0.03", "2"], ["sqnn", "dann"]) == {"sqnn": (2.0,), "dann": (0.03,)}
    with pytest.raises(ValueError, match="not one of"):
        parse_gammas(["mmd=1"], ["sqnn"])


# ---- a whole comparison on the toy ---------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("compare")
    sim = generate("sim", 900, 1, directory / "sim.parquet")
    data = generate("data", 900, 2, directory / "data.parquet", signal_fraction=0.3)
    table = pq.read_table(data)
    permuted = np.random.default_rng(0).permutation(table.column("is_signal").to_numpy())
    shuffled = table.set_column(table.schema.get_field_index("is_signal"), "is_signal", [permuted])
    pq.write_table(shuffled, directory / "data_permuted.parquet")
    return {"sim": sim, "data": data, "permuted": directory / "data_permuted.parquet", "dir": directory}


@pytest.fixture(scope="module")
def compared(files: dict[str, Path]) -> tuple[Path, dict]:
    out = files["dir"] / "out"
    summary = run_compare(
        files["sim"], files["data"], SHARED, out, methods=["source-only", "sqnn"], gammas=GAMMAS, seeds=2,
        data_label="is_signal",
    )
    return out, summary


def test_summary_layout(compared: tuple[Path, dict]) -> None:
    out, summary = compared
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    assert summary["selection_rule"] == SELECTION_RULE
    assert summary["selection"] == {"accuracy_metric": "auc_source", "delta": 0.005, "disagreement_metric": "ks_control"}
    assert list(method_entries(summary)) == ["source-only", "sqnn"]
    assert [s["gamma"] for s in summary["sqnn"]["settings"]] == [0.3, 3.0]
    assert [s["gamma"] for s in summary["source-only"]["settings"]] == [0.0]
    chosen = summary["sqnn"]["selected"]
    assert chosen["gamma"] in (0.3, 3.0) and chosen["metrics"]["auc_target"]["mean"] is not None
    for method, gammas in (("source-only", [0.0]), ("sqnn", [0.3, 3.0])):
        for gamma in gammas:
            for seed in (0, 1):
                run_dir = run_directory(out, method, gamma, seed)
                assert (run_dir / "model.json").exists() and (run_dir / "metrics.json").exists()
    assert run_directory(out, "sqnn", 0.3, 1) == out / "runs" / "sqnn" / "gamma0.3" / "seed1"


def test_summary_statistics_come_from_the_runs(compared: tuple[Path, dict]) -> None:
    out, summary = compared
    setting = summary["sqnn"]["settings"][1]
    per_seed = [json.loads((out / r / "metrics.json").read_text()) for r in setting["runs"]]
    for key in ("auc_source", "auc_target", "ks", "ks_control", "domain_auc", "mi_bits", "sf_background"):
        values = [m[key] for m in per_seed]
        assert setting["metrics"][key]["mean"] == pytest.approx(np.mean(values))
        assert setting["metrics"][key]["std"] == pytest.approx(np.std(values, ddof=1))
    assert [json.loads((out / r / "model.json").read_text())["train"]["seed"] for r in setting["runs"]] == [0, 1]


def test_markdown_table(compared: tuple[Path, dict]) -> None:
    out, summary = compared
    text = (out / "summary.md").read_text()
    selected = summary["sqnn"]["selected"]["metrics"]["auc_source"]
    # mean ± standard error over the two seeds
    cell = f"{selected['mean']:.4f} ± {selected['std'] / np.sqrt(2):.4f}"
    assert f"| sqnn | γ={summary['sqnn']['selected']['gamma']:g} | 2 | {cell} |" in text
    # once selected, twice in the list of every setting, once against source-only on the same events
    assert text.count("| sqnn |") == 4
    assert "Chosen without data labels" in text and "standard error over the 2 seeds" in text
    difference = summary["paired"]["differences"]["sqnn"]["closure"]
    sqnn = summary["sqnn"]["selected"]["metrics"]["closure"]["mean"]
    source = summary["source-only"]["selected"]["metrics"]["closure"]["mean"]
    # the paired difference is the difference of the mean closures (the same events, the same seeds)
    assert difference["difference"] == pytest.approx(sqnn - source, abs=1e-9) and difference["seeds"] == 2
    assert "## Closure against source-only, paired on the same events" in text


def test_permuting_data_labels_leaves_the_selection_unchanged(files, compared) -> None:
    _, summary = compared
    permuted = run_compare(
        files["sim"], files["permuted"], SHARED, files["dir"] / "permuted", methods=["source-only", "sqnn"],
        gammas=GAMMAS, seeds=2, data_label="is_signal",
    )
    for method in ("source-only", "sqnn"):
        assert permuted[method]["selected"]["gamma"] == summary[method]["selected"]["gamma"]
        for key in ("auc_source", "ks", "ks_control", "domain_auc"):
            assert permuted[method]["selected"]["metrics"][key] == summary[method]["selected"]["metrics"][key]
    # the labels did change what is reported
    before = summary["sqnn"]["selected"]["metrics"]["auc_target"]["mean"]
    after = permuted["sqnn"]["selected"]["metrics"]["auc_target"]["mean"]
    assert abs(after - 0.5) < 0.1 < abs(before - 0.5)


def test_another_label_free_metric_can_drive_the_selection(files, tmp_path: Path) -> None:
    summary = run_compare(
        files["sim"], files["data"], SHARED, tmp_path / "reweighted", methods=["sqnn"], gammas={"sqnn": (0.3, 1.0, 3.0)},
        seeds=1, disagreement="ks_reweighted",
    )
    assert summary["selection"]["disagreement_metric"] == "ks_reweighted"
    settings = summary["sqnn"]["settings"]
    best = max(s["metrics"]["auc_source"]["mean"] for s in settings)
    guarded = [s for s in settings if s["metrics"]["auc_source"]["mean"] >= best - 0.005]
    expected = min(guarded, key=lambda s: (s["metrics"]["ks_reweighted"]["mean"], s["gamma"]))
    assert summary["sqnn"]["selected"]["gamma"] == expected["gamma"]
    with pytest.raises(SqnnError, match="^disagreement must be one of") as error:
        run_compare(files["sim"], files["data"], SHARED, tmp_path / "x", methods=["sqnn"], disagreement="auc_target")
    assert error.value.for_cli().startswith("--select-by must be one of")


def test_finished_runs_are_not_trained_again(files, compared) -> None:
    out, summary = compared
    model = run_directory(out, "sqnn", 3.0, 0) / "model.safetensors"
    stamp = model.stat().st_mtime_ns
    again = run_compare(
        files["sim"], files["data"], SHARED, out, methods=["source-only", "sqnn"], gammas=GAMMAS, seeds=2,
        data_label="is_signal",
    )
    assert model.stat().st_mtime_ns == stamp
    assert again["sqnn"]["selected"] == summary["sqnn"]["selected"]


def test_command_line(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "compare", "--sim", str(files["sim"]), "--data", str(files["data"]), "--features", "x0,x1,x2,x3,x4,x5",
            "--label", "is_signal", "--weight", "weight", "--methods", "mlp,dann", "--gammas", "dann=0.1",
            "--seeds", "1", "--epochs", "1", "--no-report", "--quiet", "--out", str(tmp_path / "cli"),
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary["selection"]["disagreement_metric"] == "domain_auc"  # no control column given
    assert summary["dann"]["selected"]["gamma"] == 0.1 and summary["mlp"]["selected"]["gamma"] == 0.0
    assert summary["mlp"]["selected"]["metrics"]["auc_target"]["mean"] is None  # no --data-label
    out = capsys.readouterr().out
    assert re.search(r"^dann +λ=0\.1 +[0-9.]+ ± [0-9.]+ +[0-9.]+ ", out, re.MULTILINE)  # domain_auc: no control column
    assert out.splitlines()[0].split()[:4] == ["method", "setting", "auc_source", "domain_auc"]


def test_command_line_errors(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["compare", "--sim", str(files["sim"]), "--data", str(files["data"]), "--label", "is_signal"]
    assert main([*common, "--methods", "sqnn,xgb", "--out", str(tmp_path / "a")]) == 2
    assert "unknown method xgb" in capsys.readouterr().err
    assert main([*common, "--methods", "sqnn", "--gammas", "mmd=1", "--out", str(tmp_path / "b")]) == 2
    assert "not one of the methods" in capsys.readouterr().err
    assert main([*common, "--methods", "sqnn", "--seeds", "0", "--out", str(tmp_path / "c")]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    with pytest.raises(SqnnError, match="invalid settings for dann"):
        run_compare(files["sim"], files["data"], SHARED, tmp_path / "d", methods=["dann"], method_options={"dann": {"schedule": "x"}})
