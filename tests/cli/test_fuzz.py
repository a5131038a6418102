"""Random tables through the loaders and `train --epochs 1`: success or a clean one-line error."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqnn.cli import main

SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -1.0])


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(3)})
    frame["is_signal"] = rng.integers(0, 2, n)
    frame["weight"] = rng.uniform(0.1, 2.0, n)
    frame["control"] = rng.uniform(size=n) < 0.3
    # damage: special values in some cells, odd dtypes, wrong labels or weights, dropped columns
    for _ in range(draw(st.integers(0, 3))):
        column = draw(st.sampled_from(list(frame.columns)))
        if n and column != "control":
            row = draw(st.integers(0, n - 1))
            frame[column] = frame[column].astype(np.float64)
            frame.loc[row, column] = draw(SPECIAL) if column != "is_signal" else draw(st.sampled_from([2.0, -1.0, np.nan, 0.5]))
    if draw(st.booleans()):
        frame["weight"] = frame["weight"] * draw(st.sampled_from([1.0, -1.0, 0.0]))
    if draw(st.integers(0, 4)) == 0:
        frame = frame.drop(columns=[draw(st.sampled_from(["x1", "is_signal", "weight"]))])
    if draw(st.integers(0, 4)) == 0:
        frame["x2"] = frame["x2"].astype(str) if "x2" in frame else 0
    if draw(st.integers(0, 5)) == 0 and "x0" in frame:
        frame["x0"] = frame["x0"].astype(np.int32, errors="ignore") if frame["x0"].notna().all() and np.isfinite(frame["x0"]).all() else frame["x0"]
    return frame


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        with h5py.File(path, "w") as handle:
            for column in frame.columns:
                values = frame[column].to_numpy()
                handle[column] = values.astype("S") if values.dtype == object else values
    return path


CASES_RUN: list[int] = []


# derandomised: CI sees the same 120 tables every run, so a failure reproduces
@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sim=tables(), data=tables(), suffix=st.sampled_from([".parquet", ".csv", ".h5"]), use_features=st.booleans())
def test_random_tables_train_or_fail_cleanly(tmp_path_factory: pytest.TempPathFactory, capsys, sim, data, suffix, use_features) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    sim_file, data_file = write(sim, folder / f"sim{suffix}"), write(data, folder / f"data{suffix}")
    features = ["--features", "x0,x1,x2"] if use_features else []
    code = main(
        ["train", "--sim", str(sim_file), "--data", str(data_file), *features, "--label", "is_signal",
         "--weight", "weight", "--control", "control", "--epochs", "1", "--quiet", "--out", str(folder / "run")]
    )
    out, err = capsys.readouterr()
    CASES_RUN.append(code)
    assert code in (0, 2), err
    assert "Traceback" not in out + err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and "sqnn: error:" in err
    else:
        assert (folder / "run" / "metrics.json").exists()


def test_fuzzing_ran_both_outcomes() -> None:
    # runs after the property test in file order: both clean errors and successful fits occurred
    assert len(CASES_RUN) >= 100
    assert 0 in CASES_RUN and 2 in CASES_RUN
