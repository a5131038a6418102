"""Bad input, untrusted model files, killed jobs and determinism.

Every bad input must end in exactly one line on stderr that names the file, and exit code 2.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pandas as pd
import pytest
import uproot

from sqnn.cli import main
from sqnn.errors import ModelFileError
from sqnn.runs import load_run

FEATURES = "x0,x1,x2,x3,x4,x5"


def toy_frame(toy_files) -> pd.DataFrame:
    return pd.read_parquet(toy_files[0]).iloc[:600].reset_index(drop=True)


def _truncated(ext: str) -> Callable[[Path, pd.DataFrame], Path]:
    def build(folder: Path, frame: pd.DataFrame) -> Path:
        whole = folder / f"whole{ext}"
        if ext == ".parquet":
            frame.to_parquet(whole)
        elif ext == ".root":
            branches = {c: frame[c].to_numpy().astype(np.float64) for c in frame.columns}
            with uproot.recreate(whole) as handle:
                handle.mktree("events", {c: v.dtype for c, v in branches.items()})
                handle["events"].extend(branches)
        else:
            with h5py.File(whole, "w") as handle:
                for c in frame.columns:
                    handle[c] = frame[c].to_numpy()
        raw = whole.read_bytes()
        path = folder / f"truncated{ext}"
        path.write_bytes(raw[: len(raw) // 2])
        return path

    return build


def _write(frame_change: Callable[[pd.DataFrame], pd.DataFrame], name: str = "bad.parquet"):
    def build(folder: Path, frame: pd.DataFrame) -> Path:
        path = folder / name
        frame_change(frame.copy()).to_parquet(path)
        return path

    return build


def _with(column: str, values: Callable[[pd.DataFrame], object]):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = values(frame)
        return frame

    return change


def _bytes(content: bytes, name: str):
    def build(folder: Path, frame: pd.DataFrame) -> Path:
        path = folder / name
        path.write_bytes(content)
        return path

    return build


def _jagged(folder: Path, frame: pd.DataFrame) -> Path:
    path = folder / "jagged.parquet"
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    columns["x2"] = ak.Array([[v] * (i % 3) for i, v in enumerate(frame["x2"])])
    ak.to_parquet(ak.Array(columns), path)
    return path


def _nan(frame: pd.DataFrame) -> np.ndarray:
    values = np.ones(len(frame))
    values[[3, 9]] = np.nan
    return values


# (case, which input is broken, builder, text the error must contain)
CATALOGUE = [
    ("truncated parquet", "data", _truncated(".parquet"), "cannot read"),
    ("truncated ROOT", "data", _truncated(".root"), "cannot read"),
    ("truncated HDF5", "data", _truncated(".h5"), "HDF5"),
    ("corrupted parquet", "data", _bytes(b"PAR1" + bytes(range(256)) * 8, "corrupt.parquet"), "cannot read"),
    ("CSV text named .parquet", "data", _bytes(b"x0,x1\n1,2\n", "text.parquet"), "cannot read"),
    ("wrong file type", "data", _bytes(b"x0,x1\n1,2\n", "events.txt"), "unknown file type"),
    ("empty file", "data", _bytes(b"", "empty.parquet"), "empty (0 bytes)"),
    ("zero events", "data", _write(lambda f: f.iloc[:0]), "0 events"),
    ("misspelt column", "data", _write(lambda f: f.rename(columns={"x3": "x_3"})), "did you mean 'x_3'"),
    ("NaN feature", "data", _write(_with("x1", lambda f: np.where(np.arange(len(f)) < 4, np.inf, f["x1"]))), "4 NaN/inf values"),
    ("NaN weight", "sim", _write(_with("weight", _nan)), "'weight' has 2 NaN/inf"),
    ("NaN label", "sim", _write(_with("is_signal", _nan)), "'is_signal' has 2 NaN/inf"),
    ("label not 0/1", "sim", _write(_with("is_signal", lambda f: f["is_signal"] * 2)), "values other than 0/1"),
    ("all-negative weights", "sim", _write(_with("weight", lambda f: -np.ones(len(f)))), "sums to -600"),
    ("zero total weight", "sim", _write(_with("weight", lambda f: np.zeros(len(f)))), "sums to 0"),
    ("single class", "sim", _write(_with("is_signal", lambda f: np.ones(len(f), dtype=np.int8))), "no background events"),
    ("string column", "data", _write(_with("x4", lambda f: ["a"] * len(f))), "non-numeric type"),
    ("jagged feature", "data", _jagged, "jagged"),
    ("absurd value", "data", _write(_with("x5", lambda f: np.where(np.arange(len(f)) == 7, 1e30, f["x5"]))), "beyond"),
]


@pytest.mark.parametrize(("case", "broken", "build", "expected"), CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_input_catalogue(tmp_path: Path, capsys, toy_files, case, broken, build, expected) -> None:
    good = {"sim": toy_files[0], "data": toy_files[1]}
    bad = build(tmp_path, toy_frame(toy_files))
    files = {**good, broken: bad}
    code = main(
        ["train", "--sim", str(files["sim"]), "--data", str(files["data"]), "--features", FEATURES,
         "--label", "is_signal", "--weight", "weight", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")]
    )
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert str(bad) in lines[0] and expected in lines[0]
    assert "Traceback" not in out + err


def test_unwritable_output_is_one_line(tmp_path: Path, capsys, toy_files) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["predict", "nowhere", str(toy_files[1]), "--out", str(blocker / "scores.parquet")])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1


# ---- untrusted model files ---------------------------------------------------------------


@pytest.fixture
def run_copy(tmp_path: Path, toy_run: Path) -> Path:
    return Path(shutil.copytree(toy_run, tmp_path / "run"))


def edit_model_json(run: Path, change: Callable[[dict], None]) -> None:
    meta = json.loads((run / "model.json").read_text())
    change(meta)
    (run / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m["network"].update(hidden=[10**9, 16]), r"network.hidden\[0\] must be an integer in \[1, 65536\]"),
        (lambda m: m["network"].update(hidden=[64]), "one entry per hidden layer"),
        (lambda m: m["network"].update(evil="__import__('os')"), "unknown network settings"),
        (lambda m: m.update(features=m["features"][:-1]), "preprocessing"),
        (lambda m: m.update(format="pickle"), "not an sqnn model description"),
        (lambda m: m["preprocessing"].update(scale=[0.0] * 6), "preprocessing"),
    ],
)
def test_tampered_model_json_is_rejected(run_copy: Path, change, expected) -> None:
    edit_model_json(run_copy, change)
    with pytest.raises(ModelFileError, match=expected):
        load_run(run_copy)


def test_tampered_tensors_are_rejected(run_copy: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(run_copy / "model.safetensors"))
    save_file({**tensors, "extra.weight": torch.zeros(3)}, str(run_copy / "model.safetensors"))
    with pytest.raises(ModelFileError, match="unexpected: extra.weight"):
        load_run(run_copy)
    tensors["head.weight"] = torch.zeros(1, 17)
    save_file(tensors, str(run_copy / "model.safetensors"))
    with pytest.raises(ModelFileError, match="has shape"):
        load_run(run_copy)
    (run_copy / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        load_run(run_copy)


class _Payload:
    def __reduce__(self):  # noqa: ANN204 - what a malicious pickle would run on load
        return (os.mkdir, (str(MARKER),))


MARKER = Path("/tmp/sqnn-unpickled-marker")


def test_loading_never_runs_code_from_the_files(run_copy: Path) -> None:
    import pickle

    shutil.rmtree(MARKER, ignore_errors=True)
    (run_copy / "model.safetensors").write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(ModelFileError):
        load_run(run_copy)
    assert not MARKER.exists()


# ---- killed jobs ---------------------------------------------------------------------------


def _sqnn(*args: str) -> list[str]:
    return [sys.executable, "-m", "sqnn", *args]


def _kill_when(process: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the job ended before it could be killed")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_kill_during_train_then_resume_reaches_the_uninterrupted_model(tmp_path: Path, toy_files) -> None:
    sim, data = toy_files
    common = ["--sim", str(sim), "--data", str(data), "--features", FEATURES, "--label", "is_signal",
              "--epochs", "6", "--seed", "3", "--quiet", "--config", str(tmp_path / "c.yaml")]
    (tmp_path / "c.yaml").write_text("train: {patience: 50}\n")
    subprocess.run(_sqnn("train", *common, "--out", str(tmp_path / "whole")), check=True, capture_output=True)

    run = tmp_path / "killed"
    state = run / "checkpoint.json"

    def two_epochs_done() -> bool:
        try:
            return json.loads(state.read_text())["epoch"] >= 1
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return False

    process = subprocess.Popen(_sqnn("train", *common, "--out", str(run)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(process, two_epochs_done)
    # whatever was written is complete: the checkpoint parses and no final model exists half-written
    assert json.loads(state.read_text())["epoch"] < 5
    assert not (run / "model.safetensors").exists()
    subprocess.run(_sqnn("train", *common, "--resume", "--out", str(run)), check=True, capture_output=True)
    assert (run / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert not list(run.glob(".*.part"))


@pytest.mark.parametrize("command", ["generate", "predict"])
def test_kill_during_writing_leaves_no_partial_output(tmp_path: Path, toy_run: Path, command: str) -> None:
    out = tmp_path / "out.parquet"
    if command == "generate":
        args = ["generate", "toy", "--domain", "sim", "--n", "3000000", "--seed", "1", "--out", str(out)]
    else:
        big = tmp_path / "big.parquet"
        subprocess.run(_sqnn("generate", "toy", "--domain", "data", "--n", "1500000", "--out", str(big)), check=True)
        args = ["predict", str(toy_run), str(big), "--out", str(out)]
    process = subprocess.Popen(_sqnn(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    # kill while the job is writing its temporary file, or after 3 s at the latest
    _kill_when(process, lambda: any(tmp_path.glob(".out.parquet.*.part")) or time.monotonic() - started > 3)
    if out.exists():
        assert len(pd.read_parquet(out)) > 0
    # the next run cleans up the temporary file of the killed one
    subprocess.run(_sqnn(*args), check=True, capture_output=True)
    assert len(pd.read_parquet(out)) > 0
    assert not list(tmp_path.glob(".out.parquet.*.part"))


# ---- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_identical_metrics(tmp_path: Path, capsys, toy_files) -> None:
    sim, data = toy_files
    results = []
    for name in ("a", "b"):
        assert main(["train", "--sim", str(sim), "--data", str(data), "--features", FEATURES, "--label", "is_signal",
                     "--epochs", "2", "--seed", "5", "--quiet", "--out", str(tmp_path / name)]) == 0
        assert main(["evaluate", str(tmp_path / name), "--sim", str(sim), "--data", str(data), "--data-label",
                     "is_signal", "--out", str(tmp_path / f"{name}.json")]) == 0
        metrics = json.loads((tmp_path / f"{name}.json").read_text())
        # CPU time is a measurement of the machine, not a result of the seed
        metrics.pop("train_seconds")
        results.append(metrics)
    capsys.readouterr()
    assert results[0] == results[1]
