"""What a person watching a training sees: the penalty in its unit, the kept epoch, no redraws in a log."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from sqnn.data import ColumnSpec
from sqnn.methods import make_objective
from sqnn.training import TrainConfig
from sqnn.training.progress import Board, FitProgress, duration, penalty_of, setting_label
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import train_run

FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")


@pytest.mark.parametrize(
    ("method", "options", "shown"),
    [
        ("sqnn", {}, "I(T;S|Y) 0.0123 bits"),
        ("sqnn", {"region": "all"}, "I(T;S) 0.0123 bits"),
        ("dann", {}, "domain-head advantage 0.0123 nats"),
        ("disco", {}, "dCor² 0.0123"),
        ("mmd", {}, "MMD² 0.0123"),
    ],
)
def test_each_penalty_is_shown_in_its_own_unit(method: str, options: dict, shown: str) -> None:
    penalty = penalty_of(make_objective(method, 1.0, **options))
    assert penalty is not None and penalty.format(0.01234) == shown


def test_methods_without_a_penalty_show_none_and_labels_name_the_strength() -> None:
    assert penalty_of(make_objective("source-only")) is None and penalty_of(make_objective("bdt")) is None
    assert setting_label("sqnn", 1.0, 0) == "sqnn γ=1 seed 0"
    assert setting_label("dann", 0.3) == "dann λ=0.3"
    assert setting_label("bdt", 0.0, 2) == "bdt seed 2"
    assert [duration(s) for s in (42, 252, 3780)] == ["42 s", "4 min 12 s", "1 h 03 min"]


def _train(toy_files, tmp_path: Path, method: str, progress: FitProgress, epochs: int = 3) -> Path:
    spec = ColumnSpec(features=FEATURES, label="is_signal", control="control")
    settings = Settings(columns=spec, method=method, gamma=0.3 if method == "sqnn" else None,
                        train=TrainConfig(epochs=epochs, seed=0, monitor_events=300))
    out = tmp_path / method
    train_run(*toy_files, settings, out, progress=progress)
    return out


def test_a_log_gets_one_line_per_epoch_with_the_penalty_the_history_holds(toy_files, tmp_path: Path) -> None:
    out = io.StringIO()
    run = _train(toy_files, tmp_path, "sqnn", FitProgress(Board(out=out, terminal=False)))
    text = out.getvalue()
    assert "\r" not in text
    lines = text.strip().splitlines()
    history = json.loads((run / "history.json").read_text())
    model = json.loads((run / "model.json").read_text())
    assert len(lines) == len(history) + 1
    for line, record in zip(lines, history):
        assert line.startswith("[sqnn γ=0.3 · ") and " elapsed" in line and f"] epoch {record['epoch'] + 1}/3" in line
        shown = float(re.search(r"I\(T;S\|Y\) ([0-9.e-]+) bits", line).group(1))
        assert shown == pytest.approx(record["val_penalty"], rel=5e-3)
        assert f"val AUC {record['val_auc']:.4f}" in line
    assert lines[-1] == f"sqnn γ=0.3: {len(history)} epochs, kept epoch {model['best_epoch'] + 1}"


def test_trees_report_how_many_were_boosted(toy_files, tmp_path: Path) -> None:
    out = io.StringIO()
    run = _train(toy_files, tmp_path, "bdt", FitProgress(Board(out=out, terminal=False)))
    trees = len(json.loads((run / "history.json").read_text()))
    lines = out.getvalue().strip().splitlines()
    assert lines[0].startswith("[bdt · ") and lines[0].endswith("] boosting up to 300 trees")
    assert lines[-1].startswith(f"bdt: {trees} trees (")


def test_a_terminal_gets_a_bar_and_the_kept_epoch_after_it(toy_files, tmp_path: Path) -> None:
    out = io.StringIO()
    run = _train(toy_files, tmp_path, "source-only", FitProgress(Board(out=out, terminal=True)), epochs=2)
    text = out.getvalue()
    assert "\r" in text and "epoch 2/2" in text
    best = json.loads((run / "model.json").read_text())["best_epoch"]
    assert text.rstrip().endswith(f"source-only: 2 epochs, kept epoch {best + 1}")


def test_the_overall_line_of_a_comparison_counts_fits_and_estimates_the_time_left() -> None:
    out = io.StringIO()
    board = Board(fits=4, out=out, terminal=False)
    board.begin_fit(0, "sqnn γ=1 seed 0")
    board.begin(10, 0, "epoch")
    board.update(5, 10, "epoch 5/10")
    board.end_fit("fit 1/4 · sqnn γ=1 seed 0: done")
    board.begin_fit(1, "dann λ=0.3 seed 0")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[fit 1/4 · sqnn γ=1 seed 0 · 12 %, ") and lines[0].endswith("] epoch 5/10")
    assert lines[1].startswith("fit 1/4 · sqnn γ=1 seed 0: done · 25 % done, ") and "left" in lines[1]
    assert board.title == "fit 2/4 · dann λ=0.3 seed 0"
