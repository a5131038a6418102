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


def test_unwritable_output_is_one_line(tmp_path: Path, capsys, toy_run: Path, toy_files) -> None:
    """A real run and a real input: the error is the output's, not an earlier one."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["predict", str(toy_run), str(toy_files[1]), "--out", str(blocker / "scores.parquet")])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{blocker / 'scores.parquet'}: cannot be written, a file is in the way" in err
    assert blocker.read_text() == "not a directory"


# ---- the attacker's catalogue: settings, roles, numbers, run files, outputs, messages --------------


def _digest_of(paths: list[Path]) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in paths if p.is_file()}


def _mixed_labels(folder: Path, frame: pd.DataFrame) -> Path:
    return _write(_with("is_signal", lambda f: np.where(np.arange(len(f)) < 3, 2, f["is_signal"])))(folder, frame)


def _one_signal(folder: Path, frame: pd.DataFrame) -> Path:
    path = folder / "one_signal.parquet"
    pd.concat([frame[frame.is_signal == 1].iloc[:1], frame[frame.is_signal == 0]]).to_parquet(path)
    return path


def _overflowing_weights(folder: Path, frame: pd.DataFrame) -> Path:
    return _write(_with("weight", lambda f: np.full(len(f), 1e308)), "inf_weights.parquet")(folder, frame)


def _config(text: str) -> Callable[[Path, pd.DataFrame], Path]:
    def build(folder: Path, frame: pd.DataFrame) -> Path:
        path = folder / "run.yaml"
        path.write_text(text)
        return path

    return build


# (case, extra train arguments as flag-value pairs, {built} naming the built file, a value of None leaving the flag out
# and an empty one giving the bare flag; the builder or None; text the error holds)
ATTACKS = [
    ("yaml hidden as a string", ["--config", "{built}"], _config('network: {hidden: "64"}\n'), "network.hidden must be a list"),
    ("yaml booleans as strings", ["--config", "{built}"], _config('network: {stochastic: ["false", "true"]}\n'),
     r"network.stochastic[0] must be true or false"),
    ("yaml fractional epochs", ["--config", "{built}", "--epochs", None], _config("train: {epochs: 1.5}\n"),
     "train.epochs must be an integer"),
    ("yaml learning rate as a word", ["--config", "{built}"], _config("train: {learning_rate: fast}\n"),
     "train.learning_rate must be a finite number"),
    ("yaml features as a number", ["--config", "{built}", "--features", None], _config("features: 5\n"),
     "features must be a list"),
    ("yaml zero samples", ["--config", "{built}"], _config("network: {samples: 0}\n"), "network.samples must be an integer"),
    ("negative seed", ["--seed", "-1"], None, "'--seed': '-1' is not an integer in [0, 4294967295]"),
    ("huge seed", ["--seed", str(2**70)], None, "is not an integer in [0, 4294967295]"),
    ("gamma nan", ["--gamma", "nan"], None, "'--gamma': 'nan' is not a finite number"),
    ("gamma inf", ["--gamma", "inf"], None, "'--gamma': 'inf' is not a finite number"),
    ("fractional epochs flag", ["--epochs", "1.5"], None, "'--epochs': '1.5' is not an integer"),
    ("label as a feature", ["--features", "x0,x1,is_signal"], None, "'is_signal' is both a feature and the label"),
    ("observer as a feature", ["--features", "x0,mass", "--observer", "mass"], None, "'mass' is both a feature and the observer"),
    ("empty feature list", ["--features", ",,"], None, "names no column"),
    ("weight is the label", ["--weight", "is_signal"], None, "'is_signal' is both the label and the weight"),
    ("weights summing to inf", ["--sim", "{built}"], _overflowing_weights, "values beyond"),
    ("one signal event", ["--sim", "{built}"], _one_signal, "1 signal events in simulation leave"),
    ("label 2 in simulation", ["--sim", "{built}"], _mixed_labels, "values other than 0/1"),
    ("unknown method", ["--method", "xgb"], None, "'--method': 'xgb' is not one of"),
    ("resume without a checkpoint", ["--resume", ""], None, "no checkpoint to resume from"),
]


@pytest.mark.parametrize(("case", "extra", "build", "expected"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_catalogue_is_one_line_exit_2_and_changes_no_input(
    tmp_path: Path, capsys, toy_files, case, extra, build, expected
) -> None:
    built = build(tmp_path, toy_frame(toy_files)) if build is not None else None
    args = {"--sim": str(toy_files[0]), "--data": str(toy_files[1]), "--features": FEATURES, "--label": "is_signal",
            "--weight": "weight", "--epochs": "1", "--out": str(tmp_path / "run")}
    pairs = [extra[i : i + 2] for i in range(0, len(extra), 2)]
    for flag, value in pairs:
        args[flag] = None if value is None else value.replace("{built}", str(built))
    # a value of None leaves the flag out, an empty one gives the bare flag
    argv = ["train", *[x for k, v in args.items() if v is not None for x in ((k, v) if v else (k,))], "--quiet"]
    inputs = [toy_files[0], toy_files[1], *([built] if built else [])]
    before = _digest_of(inputs)
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("sqnn: error: "), err
    assert expected in lines[0]
    assert "Traceback" not in out + err
    assert _digest_of(inputs) == before
    assert not (tmp_path / "run" / "model.json").exists()


@pytest.mark.parametrize("how", ["same path", "symbolic link", "hard link", "dotted path"])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_an_output_never_replaces_an_input(tmp_path: Path, capsys, toy_run: Path, toy_files, command: str, how: str) -> None:
    data = tmp_path / "data.parquet"
    shutil.copy(toy_files[1], data)
    out = {"same path": data, "symbolic link": tmp_path / "link.parquet", "hard link": tmp_path / "hard.parquet",
           "dotted path": tmp_path / "." / "sub" / ".." / "data.parquet"}[how]
    if how == "symbolic link":
        out.symlink_to(data)
    if how == "hard link":
        os.link(data, out)
    if how == "dotted path":
        (tmp_path / "sub").mkdir()
    before = data.read_bytes()
    argv = (["predict", str(toy_run), str(data), "--out", str(out)] if command == "predict" else
            ["evaluate", str(toy_run), "--sim", str(toy_files[0]), "--data", str(data), "--out", str(out)])
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1 and "this output is the input" in err, err
    assert data.read_bytes() == before


def test_evaluate_never_writes_over_the_runs_own_model_files(tmp_path: Path, capsys, run_copy: Path, toy_files) -> None:
    before = (run_copy / "model.json").read_bytes()
    code = main(["evaluate", str(run_copy), "--sim", str(toy_files[0]), "--data", str(toy_files[1]),
                 "--out", str(run_copy / "model.json")])
    _, err = capsys.readouterr()
    assert code == 2 and "this output is the input" in err
    assert (run_copy / "model.json").read_bytes() == before


def test_train_over_an_existing_run_needs_overwrite(tmp_path: Path, capsys, run_copy: Path, toy_files) -> None:
    before = _digest_of(sorted(run_copy.iterdir()))
    common = ["train", "--sim", str(toy_files[0]), "--data", str(toy_files[1]), "--features", FEATURES,
              "--label", "is_signal", "--epochs", "1", "--quiet", "--out", str(run_copy)]
    assert main(common) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert _digest_of(sorted(run_copy.iterdir())) == before
    assert main([*common, "--overwrite"]) == 0
    capsys.readouterr()
    assert json.loads((run_copy / "model.json").read_text())["train"]["epochs"] == 1


def test_usage_errors_are_one_line(capsys) -> None:
    for argv in (["train"], ["bogus"], [], ["train", "--sim", "a", "--out", "b", "--max-objects", "0"],
                 ["predict", "run", "x.parquet", "--out", "s.parquet", "--engine", "gpu"]):
        assert main(argv) == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sqnn: error: sqnn"), (argv, lines)


def test_warnings_are_held_back_and_printed_on_one_line(capsys, monkeypatch) -> None:
    import warnings

    import click

    from sqnn.cli import cli
    from sqnn.errors import SqnnError

    @click.command("noisy")
    @click.option("--fail", is_flag=True)
    def noisy(fail: bool) -> None:
        import numpy as np

        np.log(np.zeros(1))  # RuntimeWarning: divide by zero, with its source line if printed as usual
        if fail:
            raise SqnnError("x.parquet: something is wrong")

    monkeypatch.setitem(cli.commands, "noisy", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        with np.errstate(divide="warn"):
            assert main(["noisy", "--fail"]) == 2
            assert capsys.readouterr().err.splitlines() == ["sqnn: error: x.parquet: something is wrong"]
            assert main(["noisy"]) == 0
            assert capsys.readouterr().err.splitlines() == [
                "sqnn: warning: RuntimeWarning: divide by zero encountered in log"]


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
    writing = lambda: any(tmp_path.glob(".out.parquet.*.part"))  # noqa: E731
    for _ in range(3):
        process = subprocess.Popen(_sqnn(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # killed while its temporary file exists: inside the write, never before or after it
            _kill_when(process, writing)
            break
        except AssertionError:
            out.unlink(missing_ok=True)  # it finished between two looks: try again
    else:
        raise AssertionError("the job never was killed while writing")
    assert writing(), "the killed job left no temporary file: it was not killed while writing"
    assert not out.exists(), "a killed first write must leave no output"
    # the next run cleans up the temporary file of the killed one
    subprocess.run(_sqnn(*args), check=True, capture_output=True)
    assert len(pd.read_parquet(out)) == (3_000_000 if command == "generate" else 1_500_000)
    assert not writing()


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
