"""Run directories: one writer for every kind of model, each kind loaded back by its registered loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


# ---- one bound unit: model.json and model.safetensors ---------------------------------------------


def _rewrite(run: Path, change) -> dict:  # noqa: ANN001 - a function editing the dict
    """Edit model.json and give it a fresh self-digest, as a careful editor would."""
    from sqnn.runs.format import DESCRIPTION_DIGEST, description_digest

    meta = json.loads((run / MODEL_JSON).read_text())
    change(meta)
    meta[DESCRIPTION_DIGEST] = description_digest(meta)
    (run / MODEL_JSON).write_text(json.dumps(meta))
    return meta


def _two_runs(tmp_path: Path) -> tuple[Path, Path]:
    model, meta = _network(tmp_path)
    write_run(tmp_path / "a", "network", model, meta)
    torch.manual_seed(1)
    other = build_network(3, {"hidden": [8, 4], "stochastic": [False, True], "binary_weights": [False, False]})
    write_run(tmp_path / "b", "network", other, {**meta, "gamma": 2.0})
    return tmp_path / "a", tmp_path / "b"


def test_a_model_json_from_another_run_with_the_same_shapes_is_refused(tmp_path: Path) -> None:
    a, b = _two_runs(tmp_path)
    (a / MODEL_JSON).write_bytes((b / MODEL_JSON).read_bytes())
    with pytest.raises(ModelFileError, match="not the tensors model.json was written with"):
        load_run(a)


def test_tensors_from_another_run_with_the_same_shapes_are_refused(tmp_path: Path) -> None:
    a, b = _two_runs(tmp_path)
    (a / MODEL_FILE).write_bytes((b / MODEL_FILE).read_bytes())
    with pytest.raises(ModelFileError, match="not the tensors model.json was written with"):
        load_run(a)


def test_an_edited_model_json_is_refused(tmp_path: Path) -> None:
    a, _ = _two_runs(tmp_path)
    meta = json.loads((a / MODEL_JSON).read_text())
    meta["features"] = ["b", "a", "c"]
    (a / MODEL_JSON).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="edited after it was written"):
        load_run(a)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(features=["b", "a", "c"]),
        lambda m: m["network"].update(temperature=3.0),
        lambda m: m["preprocessing"].update(mean=[0.5, 0.0, 0.0]),
    ],
    ids=["permuted features", "temperature", "preprocessing"],
)
def test_model_fields_edited_with_a_fresh_self_digest_are_refused_by_the_tensors(tmp_path: Path, change) -> None:
    a, _ = _two_runs(tmp_path)
    _rewrite(a, change)
    with pytest.raises(ModelFileError, match="not those model.safetensors was trained with"):
        load_run(a)


def test_equal_models_are_equal_bytes_whatever_else_their_runs_record(tmp_path: Path) -> None:
    model, meta = _network(tmp_path)
    write_run(tmp_path / "a", "network", model, {**meta, "train_seconds": 1.0})
    write_run(tmp_path / "b", "network", model, {**meta, "train_seconds": 2.0})
    assert (tmp_path / "a" / MODEL_FILE).read_bytes() == (tmp_path / "b" / MODEL_FILE).read_bytes()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m["network"].update(temperature=1e-300), "network.temperature"),
        (lambda m: m["preprocessing"].update(scale=[1e-300, 1.0, 1.0]), r"preprocessing.scale\[0\]"),
        (lambda m: m["preprocessing"].update(mean=[1e300, 0.0, 0.0]), r"preprocessing.mean\[0\]"),
        (lambda m: m.update(features=["a", "a", "c"]), r"features\[1\] repeats"),
        (lambda m: m.update(gamma="1"), "gamma must be"),
        (lambda m: m["network"].update(hidden="84"), "network.hidden must be a list"),
        (lambda m: m.update(format_version=3), "format_version 3 is not supported"),
        (lambda m: m.update(format_version=True), "format_version True is not supported"),
    ],
)
def test_out_of_range_values_in_model_json_are_refused(tmp_path: Path, change, expected: str) -> None:
    a, _ = _two_runs(tmp_path)
    _rewrite(a, change)
    with pytest.raises(ModelFileError, match=expected):
        load_run(a)


def test_nan_in_model_json_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    a, _ = _two_runs(tmp_path)
    text = (a / MODEL_JSON).read_text()
    (a / MODEL_JSON).write_text(text.replace('"temperature": 6.0', '"temperature": NaN'))
    with pytest.raises(ModelFileError, match="NaN is not a number of strict JSON"):
        load_run(a)
    (a / MODEL_JSON).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFileError, match="nested more than"):
        load_run(a)


def test_huge_sizes_in_model_json_are_refused_before_any_allocation(tmp_path: Path) -> None:
    """hidden = [65536, 65536] would need 16 GiB; the loader compares with the tensor header first."""
    a, _ = _two_runs(tmp_path)
    _rewrite(a, lambda m: m["network"].update(hidden=[65536, 65536]))
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "from sqnn.errors import ModelFileError\n"
        "from sqnn.runs import load_run\n"
        "try:\n    load_run(sys.argv[1])\n"
        "except ModelFileError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(a)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "the architecture needs" in result.stdout


def test_a_version_1_run_loads_and_scores_as_before(tmp_path: Path) -> None:
    """Runs written before the digests (format version 1) stay loadable."""
    from safetensors.torch import load_file, save_file

    from sqnn.runs.format import DESCRIPTION_DIGEST, TENSORS_DIGEST

    a, _ = _two_runs(tmp_path)
    meta = json.loads((a / MODEL_JSON).read_text())
    for key in (DESCRIPTION_DIGEST, TENSORS_DIGEST):
        meta.pop(key)
    meta["format_version"] = 1
    (a / MODEL_JSON).write_text(json.dumps(meta))
    save_file(load_file(str(a / MODEL_FILE)), str(a / MODEL_FILE), metadata={"format": "sqnn-run"})
    x = np.random.default_rng(2).normal(size=(20, 3)).astype(np.float32)
    run = load_run(a)
    model, _ = _network(tmp_path)
    model.eval()
    with torch.no_grad():
        np.testing.assert_array_equal(run.logit(x), model(torch.from_numpy(x)).numpy())


def test_a_model_that_scores_nan_is_refused(tmp_path: Path) -> None:
    """Weights that overflow to inf − inf give NaN; a NaN score is never returned as a result."""
    model, meta = _network(tmp_path)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.fill_(3e38)
        # the first layer's outputs overflow to +inf; the second sums +inf and -inf
        model.layers[1].weight[:, ::2] *= -1
    write_run(tmp_path / "run", "network", model, meta)
    run = load_run(tmp_path / "run")
    with pytest.raises(ModelFileError, match="NaN scores"):
        run.logit(np.ones((4, 3), dtype=np.float32))


def test_model_files_are_readable_as_the_umask_allows(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        model, meta = _network(tmp_path)
        write_run(tmp_path / "run", "network", model, meta)
    finally:
        os.umask(previous)
    for name in (MODEL_FILE, MODEL_JSON):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644


# ---- property test: any value in any field of model.json ------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e-300, 1e300, -1e300, 0.0, 1e-12, 6.0]),
    st.text(max_size=6),
    st.lists(st.one_of(st.integers(-3, 70000), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=2)),
             max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
_FIELDS = [
    ("features",), ("gamma",), ("format_version",), ("model_kind",), ("columns",), ("train",), ("train", "seed"),
    ("network", "hidden"), ("network", "stochastic"), ("network", "binary_weights"), ("network", "temperature"),
    ("network", "samples"), ("network", "representation"), ("network", "inference"), ("network", "input_fixed"),
    ("network", "fixed_point"), ("preprocessing", "mean"), ("preprocessing", "scale"), ("preprocessing", "kind"),
    ("preprocessing",), ("network",), ("inputs",), ("model_bytes",),
]


@pytest.fixture(scope="module")
def written_run(tmp_path_factory) -> Path:
    model, meta = _network(tmp_path_factory.mktemp("fuzz"))
    run = tmp_path_factory.mktemp("fuzz") / "run"
    write_run(run, "network", model, meta)
    return run


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          deadline=None)
@given(where=st.sampled_from(_FIELDS), value=_VALUES)
def test_any_value_in_any_field_of_model_json_is_refused_or_scores_finite(written_run: Path, tmp_path: Path, where,
                                                                          value) -> None:
    """Even with a fresh self-digest, a changed model.json loads to finite scores or fails with one ModelFileError."""
    import shutil

    run = tmp_path / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(written_run, run)

    def change(meta: dict) -> None:
        target = meta
        for key in where[:-1]:
            target = target.setdefault(key, {})
        target[where[-1]] = value

    _rewrite(run, change)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32) * 1e3
    try:
        logits = load_run(run).logit(x)
    except ModelFileError as error:
        assert "\n" not in str(error)
        return
    assert not np.isnan(logits).any()
