"""bdt: trees on simulation only, stored without pickles, scoring like scikit-learn."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from sqnn.data import ColumnSpec
from sqnn.errors import ModelFileError
from sqnn.evaluation import evaluate
from sqnn.methods import BDT, METHODS
from sqnn.runs import MODEL_FILE, MODEL_JSON, TreeRun, load_run
from sqnn.runs.scores import read_scores
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import train_run

SPEC = ColumnSpec(features=("x0", "x1", "x2", "x3", "x4", "x5"), label="is_signal", weight="weight", control="control")


def test_registered_and_source_only() -> None:
    assert METHODS["bdt"] is BDT
    assert BDT(3.0).gamma == 0.0
    with pytest.raises(ValueError, match="unknown settings"):
        BDT(max_trees=3)


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sqnn.cases.toy import generate

    directory = tmp_path_factory.mktemp("bdt")
    sim = generate("sim", 1500, 1, directory / "sim.parquet")
    data = generate("data", 1000, 2, directory / "data.parquet", signal_fraction=0.3)
    return sim, data


def _train(toy_files, out: Path, **options) -> tuple:
    sim, data = toy_files
    return train_run(sim, data, Settings(columns=SPEC, method="bdt", method_options=options or {"max_iter": 40}), out)


def test_run_directory_holds_no_pickle_and_loads_back(toy_files, tmp_path: Path) -> None:
    run, metrics = _train(toy_files, tmp_path / "run")
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["history.json", "metrics.json", MODEL_JSON, MODEL_FILE, "scores.parquet"]
    for path in (tmp_path / "run").iterdir():
        data = path.read_bytes()
        if path.suffix == ".safetensors":
            # an 8-byte header length, then a JSON header and raw numbers: nothing a pickle could hide in
            size = int.from_bytes(data[:8], "little")
            assert isinstance(json.loads(data[8 : 8 + size]), dict), f"{path.name} is not a safetensors file"
        elif path.suffix == ".parquet":
            # the stored held-out scores: a parquet file of numbers, read back as numbers
            assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"
            assert len(read_scores(tmp_path / "run").simulation) == metrics["n_events_simulation"]
        else:
            json.loads(data)
    loaded = load_run(tmp_path / "run")
    assert isinstance(loaded, TreeRun) and isinstance(run, TreeRun)
    x = np.random.default_rng(1).normal(size=(300, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.score(x), run.score(x))
    np.testing.assert_array_equal(loaded.representation(x)[:, 0], loaded.score(x))
    meta = json.loads((tmp_path / "run" / MODEL_JSON).read_text())
    assert meta["method"] == "bdt" and meta["model_kind"] == "trees" and meta["gamma"] == 0.0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == meta["trees"]["n_trees"] and history[0]["val_loss"] > history[-1]["val_loss"]
    assert metrics["auc_source"] > 0.75
    assert metrics["domain_auc"] is not None and metrics["mi_bits"] is None
    assert metrics["n_params"] == loaded.model.n_params > 0


def test_data_is_never_used_and_weights_are(toy_files, tmp_path: Path) -> None:
    sim, data = toy_files
    from sqnn.data import load_inputs
    from sqnn.training import TrainConfig, splits_for

    simulation, data_sample = load_inputs(sim, data, SPEC)
    splits = splits_for(simulation, data_sample, TrainConfig(seed=0))
    objective = BDT(max_iter=20)
    base = objective.fit_own(simulation, splits, seed=0).model
    # the data's events do not enter the fit: only its size enters the splits, and not the simulation's
    shuffled = replace(data_sample, features=data_sample.features[::-1] * 3.0)
    other = objective.fit_own(simulation, splits_for(simulation, shuffled, TrainConfig(seed=0)), seed=0).model
    x = simulation.features[:500]
    np.testing.assert_array_equal(base.decision_function(x), other.decision_function(x))
    reweighted = replace(simulation, weight=np.where(simulation.label == 1, 5.0, 1.0))
    heavy = objective.fit_own(reweighted, splits, seed=0).model
    # signal weighted up five times: the scores rise
    assert heavy.decision_function(x).mean() > base.decision_function(x).mean() + 0.5


def _tamper(run_dir: Path, name: str, change) -> None:
    tensors = load_file(str(run_dir / MODEL_FILE))
    change(tensors[f"trees.{name}"])
    save_file(tensors, str(run_dir / MODEL_FILE))


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("left", lambda a: a.__setitem__((0, 0), 0), "backwards"),
        ("right", lambda a: a.__setitem__((0, 0), 10**6), "outside"),
        ("feature", lambda a: a.__setitem__((0, 0), 99), "feature"),
        ("value", lambda a: a.__setitem__((0, -1), np.nan), "NaN"),
    ],
)
def test_tampered_trees_are_refused(toy_files, tmp_path: Path, name, change, message) -> None:
    _train(toy_files, tmp_path / "run")
    _tamper(tmp_path / "run", name, change)
    with pytest.raises(ModelFileError, match=message):
        load_run(tmp_path / "run")


def test_evaluation_on_the_training_files_uses_the_test_split(toy_files, tmp_path: Path) -> None:
    run, _ = _train(toy_files, tmp_path / "run")
    from sqnn.data import load_inputs

    simulation, data = load_inputs(*toy_files, SPEC, data_label="is_signal")
    metrics = evaluate(run, simulation, data)
    assert metrics["n_events_simulation"] == int(round(0.2 * len(simulation)))
    assert metrics["auc_target"] is not None and metrics["sf_signal"] is not None
