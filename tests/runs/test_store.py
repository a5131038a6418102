"""Run directories: one writer for every kind of model, each kind loaded back by its registered loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from sqnn.data import Standardizer
from sqnn.errors import ModelFileError
from sqnn.nn import build_network
from sqnn.nn.set_model import SetConfig, SetModel
from sqnn.nn.trees import TreeEnsemble
from sqnn.runs import MODEL_FILE, MODEL_JSON, RUN_KINDS, TreeRun, load_run, write_run


def _network(path: Path) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    model = build_network(3, {"hidden": [8, 4], "stochastic": [False, True], "binary_weights": [False, False]})
    standardizer = Standardizer(mean=np.zeros(3), scale=np.ones(3))
    return model, {"method": "sqnn", "network": model.config.to_dict(), "features": ["a", "b", "c"],
                   "preprocessing": standardizer.to_dict()}


def test_every_kind_has_a_writer_and_a_loader() -> None:
    assert set(RUN_KINDS) == {"network", "set", "trees"}


def test_network_round_trip_scores_the_same(tmp_path: Path) -> None:
    model, meta = _network(tmp_path)
    write_run(tmp_path / "run", "network", model, meta)
    described = json.loads((tmp_path / "run" / MODEL_JSON).read_text())
    assert described["format"] == "sqnn-run" and "model_kind" not in described
    assert described["model_bytes"] == (tmp_path / "run" / MODEL_FILE).stat().st_size
    run = load_run(tmp_path / "run")
    x = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    model.eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(run.logit(x), expected)


def test_set_model_round_trip(tmp_path: Path) -> None:
    config = SetConfig(fields=("pt", "eta", "phi", "e", "type", "btag"), max_objects=3, object_hidden=(8,),
                       bottleneck=4, event_hidden=(4,))
    model = SetModel(config.n_inputs, config)
    meta = {"method": "sqnn", "network": config.to_dict(), "features": [f"f{i}" for i in range(config.n_inputs)],
            "preprocessing": Standardizer(mean=np.zeros(config.n_inputs), scale=np.ones(config.n_inputs)).to_dict(),
            "objects": {"column": "objects", "max_objects": 3, "fields": list(config.fields), "global_features": []}}
    write_run(tmp_path / "set", "set", model, meta)
    run = load_run(tmp_path / "set")
    assert run.kind == "set" and isinstance(run.model, SetModel)


def test_trees_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    trees = TreeEnsemble.from_hist_gradient_boosting(
        HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, x[:, 0] > 0)
    )
    meta = {"method": "bdt", "trees": trees.describe(), "features": ["a", "b", "c"], "preprocessing": {"kind": "none"}}
    write_run(tmp_path / "trees", "trees", trees, meta)
    run = load_run(tmp_path / "trees")
    assert isinstance(run, TreeRun) and run.kind == "trees"
    np.testing.assert_allclose(run.logit(x), trees.decision_function(x).astype(np.float32))


def test_a_kind_the_registry_does_not_know_is_refused(tmp_path: Path) -> None:
    model, meta = _network(tmp_path)
    write_run(tmp_path / "run", "network", model, meta)
    described = json.loads((tmp_path / "run" / MODEL_JSON).read_text())
    described["model_kind"] = "forest"
    (tmp_path / "run" / MODEL_JSON).write_text(json.dumps(described))
    with pytest.raises(ModelFileError, match="model_kind"):
        load_run(tmp_path / "run")
