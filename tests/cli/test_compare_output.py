"""What `sqnn compare` prints: a line per epoch and per fit in a log, then the compact table."""

from __future__ import annotations

from pathlib import Path

from sqnn.cli import main


def test_compare_reports_every_fit_and_prints_a_table_of_100_columns(tmp_path: Path, capsys, toy_files) -> None:
    sim, data = toy_files
    code = main(["compare", "--sim", str(sim), "--data", str(data), "--features", "x0,x1,x2,x3,x4,x5",
                 "--label", "is_signal", "--control", "control", "--data-label", "is_signal",
                 "--methods", "source-only,sqnn,bdt", "--gammas", "sqnn=0.3", "--seeds", "1", "--epochs", "2",
                 "--no-report", "--out", str(tmp_path / "cmp")])
    out, err = capsys.readouterr()
    assert code == 0, err
    # stderr is not a terminal here: plain lines, no redrawn bars
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[0].startswith("3 fits (3 methods")
    assert any(line.startswith("[fit 2/3 · sqnn γ=0.3 seed 0 · ") and "epoch 2/2 · I(T;S|Y) " in line for line in lines)
    finished = [line for line in lines if line.startswith("fit ")]
    assert [line.split(":")[0] for line in finished] == ["fit 1/3 · source-only seed 0", "fit 2/3 · sqnn γ=0.3 seed 0",
                                                         "fit 3/3 · bdt seed 0"]
    assert "kept epoch" in finished[0] and "trees" in finished[2] and "100 % done" in finished[2]
    table = out.splitlines()
    assert table[0].split()[:3] == ["method", "setting", "auc_target"]
    # every line but the one naming the files written (paths are as long as they are)
    assert table[-1].startswith("wrote ") and max(len(line) for line in table[:-1]) <= 100
    assert [line.split()[0] for line in table[2:5]] == ["source-only", "sqnn", "bdt"]
