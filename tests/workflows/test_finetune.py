"""Set models through the shared loop, run directories, and fine-tuning on another channel.

Samples here are small synthetic object files in the layout of the events case, so the
tests run in seconds without Pythia.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from sqnn.cli import main
from sqnn.data import ColumnSpec, load_sample
from sqnn.errors import DataError, SqnnError
from sqnn.nn.set_model import SetModel
from sqnn.workflows.train import evaluate_run, train_run
from sqnn.runs import load_run
from sqnn.training import TrainConfig
from sqnn.training.subsets import select_events
from sqnn.workflows.finetune import finetune
from sqnn.workflows.settings import Settings
from sqnn.methods import Batch, make_objective
from sqnn.training.loop import parameter_groups
from sqnn.training.multichannel import fit_channels, joined_channels
from sqnn.training.sets import check_objective, new_set_model, set_config_for

FIELDS = ("pt", "eta", "phi", "e", "type", "btag")


def write_objects(path: Path, n: int, seed: int, signal_btags: float, signal_jets: float, shift: float = 0.0) -> Path:
    """Events with a variable number of objects; signal has more (b-tagged) jets."""
    rng = np.random.default_rng(seed)
    label = (np.arange(n) % 2).astype(np.int8)
    rng.shuffle(label)
    n_jets = rng.poisson(np.where(label == 1, signal_jets, 3.0)) + 1
    n_leptons = rng.binomial(1, 0.3, n)
    counts = n_jets + n_leptons + 1
    rows = []
    for i in range(n):
        kinds = np.r_[np.zeros(n_jets[i]), np.full(n_leptons[i], 1), [4]].astype(np.int8)
        pt = rng.exponential(50.0, len(kinds)) + 25.0 + shift
        eta = np.where(kinds == 4, 0.0, rng.uniform(-2.5, 2.5, len(kinds)))
        btag = ((kinds == 0) & (rng.random(len(kinds)) < np.where(label[i] == 1, signal_btags, 0.25))).astype(np.int8)
        order = np.argsort(-pt)
        rows.append([
            {"pt": float(pt[k]), "eta": float(eta[k]), "phi": float(rng.uniform(-np.pi, np.pi)),
             "e": float(pt[k] * np.cosh(eta[k])), "type": int(kinds[k]), "btag": int(btag[k])}
            for k in order
        ])
    table = pa.table({
        "objects": pa.array(rows),
        "n_jets": pa.array(n_jets.astype(np.int32)),
        "ht": pa.array(np.array([sum(o["pt"] for o in r if o["type"] == 0) for r in rows], dtype=np.float32)),
        "is_signal": pa.array(label),
        "weight": pa.array(np.ones(n, dtype=np.float32)),
        "event": pa.array(np.arange(n, dtype=np.int64)),
    })
    assert counts.sum() == sum(len(r) for r in rows)
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("channels")
    return {
        "a_sim": write_objects(folder / "a_sim.parquet", 1200, 1, signal_btags=0.7, signal_jets=5.0),
        "a_data": write_objects(folder / "a_data.parquet", 600, 2, signal_btags=0.6, signal_jets=5.0, shift=3.0),
        "b_sim": write_objects(folder / "b_sim.parquet", 1000, 3, signal_btags=0.5, signal_jets=2.0),
    }


@pytest.fixture(scope="module")
def pretrained(channels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "set_a"
    spec = ColumnSpec(label="is_signal", weight="weight", objects="objects", max_objects=8)
    settings = Settings(columns=spec, method="sqnn", gamma=0.2, model="set",
                        network={"object_hidden": [16, 16], "event_hidden": [16], "bottleneck": 8},
                        train=TrainConfig(epochs=3, seed=0))
    train_run(channels["a_sim"], channels["a_data"], settings, out)
    return out


# ---------------------------------------------------------------- loading objects


def test_objects_are_padded_with_presence_flags_and_truncated(channels):
    spec = ColumnSpec(features=("ht",), label="is_signal", objects="objects", max_objects=3)
    sample = load_sample(channels["a_sim"], spec, "simulation", require_label=True)
    assert sample.object_fields == FIELDS
    assert sample.global_feature_names == ["ht"]
    assert sample.feature_names[1:8] == [f"objects[0].{f}" for f in (*FIELDS, "present")]
    assert sample.features.shape == (1200, 1 + 3 * 7)
    block = sample.features[:, 1:].reshape(1200, 3, 7)
    table = pq.read_table(channels["a_sim"]).to_pylist()
    counts = np.array([len(row["objects"]) for row in table])
    np.testing.assert_array_equal(block[:, :, -1], np.arange(3)[None, :] < counts[:, None])
    np.testing.assert_allclose(block[:, 0, 0], [row["objects"][0]["pt"] for row in table], rtol=1e-6)
    assert (block[block[:, :, -1] == 0] == 0).all()


def test_bad_objects_columns_give_one_line_errors(tmp_path, channels):
    with pytest.raises(DataError, match="not a jagged list of objects"):
        load_sample(channels["a_sim"], ColumnSpec(features=(), label="is_signal", objects="ht"), "simulation")
    bad = tmp_path / "nan.parquet"
    rows = [[{"pt": 1.0, "eta": float("nan")}], [{"pt": 2.0, "eta": 0.0}]]
    pq.write_table(pa.table({"objects": pa.array(rows), "is_signal": pa.array([0, 1])}), bad)
    with pytest.raises(DataError, match=r"field 'eta' of objects column 'objects' has 1 NaN/inf values in 2 events"):
        load_sample(bad, ColumnSpec(label="is_signal", objects="objects"), "simulation")
    with pytest.raises(DataError, match="objects column 'jets' not found"):
        load_sample(bad, ColumnSpec(label="is_signal", objects="jets"), "simulation")


# ---------------------------------------------------------------- training and the run directory


def test_set_run_round_trip(pretrained, channels):
    run = load_run(pretrained)
    assert isinstance(run.model, SetModel)
    meta = json.loads((pretrained / "model.json").read_text())
    assert meta["model_kind"] == "set" and meta["objects"]["column"] == "objects"
    assert meta["objects"]["fields"] == list(FIELDS) and meta["network"]["bottleneck"] == 8
    assert sorted(p.name for p in pretrained.iterdir() if p.suffix in (".pt", ".pkl", ".pickle")) == []
    sample = load_sample(channels["a_sim"], run.input_spec(), "data")
    # the same numbers as a model rebuilt by hand from the saved tensors
    from safetensors.torch import load_file

    twin = SetModel(run.model.n_inputs, run.model.config)
    twin.load_state_dict(load_file(str(pretrained / "model.safetensors")))
    twin.eval()
    with torch.no_grad():
        expected = twin(torch.from_numpy(run.standardizer.transform(sample.features))).numpy()
    np.testing.assert_allclose(run.logit(sample.features), expected, rtol=1e-6, atol=1e-6)
    metrics = json.loads((pretrained / "metrics.json").read_text())
    assert metrics["auc_source"] > 0.7
    assert metrics["mi_joint_bits"] is not None  # 8 Bernoulli units: the exact joint is computed


def test_evaluate_and_predict_read_the_objects_column(pretrained, channels, tmp_path, capsys):
    metrics = evaluate_run(pretrained, channels["a_sim"], channels["a_data"], data_label="is_signal")
    saved = json.loads((pretrained / "metrics.json").read_text())
    assert metrics["auc_source"] == pytest.approx(saved["auc_source"])
    assert metrics["auc_target"] is not None
    out = tmp_path / "scores.parquet"
    assert main(["predict", str(pretrained), str(channels["b_sim"]), "--out", str(out)]) == 0
    assert pq.read_table(out).num_rows == 1000


# ---------------------------------------------------------------- fine-tuning


def _encoder(run_dir: Path) -> dict[str, torch.Tensor]:
    model = load_run(run_dir).model
    assert isinstance(model, SetModel)
    return model.encoder_state()


def test_finetune_with_a_frozen_encoder_keeps_it_and_trains_a_new_head(pretrained, channels, tmp_path):
    out = tmp_path / "ft"
    run, metrics = finetune(pretrained, channels["b_sim"], None, out, n_train=300, freeze="encoder", epochs=3, seed=1)
    for key, value in _encoder(pretrained).items():
        torch.testing.assert_close(_encoder(out)[key], value, rtol=0, atol=0)
    assert not torch.equal(run.model.head.weight, load_run(pretrained).model.head.weight)
    meta = json.loads((out / "model.json").read_text())
    assert meta["finetune"]["n_train"] == 300 and meta["finetune"]["freeze"] == "encoder"
    assert meta["finetune"]["trainable_params"] < meta["n_params"]
    assert meta["inputs"]["data"] is None
    assert 0.5 < metrics["auc_source"] <= 1.0
    # evaluation on the same file uses exactly its test split
    selection = select_events(1000, 300, TrainConfig(**{k: meta["train"][k] for k in ("seed", "validation_fraction", "test_fraction")}))
    assert metrics["n_events_simulation"] == len(selection.test)
    again = evaluate_run(out, channels["b_sim"], channels["a_data"])
    assert again["auc_source"] == pytest.approx(metrics["auc_source"])


def test_finetune_without_freezing_moves_the_encoder(pretrained, channels, tmp_path):
    out = tmp_path / "ft_all"
    finetune(pretrained, channels["b_sim"], channels["a_data"], out, n_train=200, freeze="none", epochs=2,
             method="sqnn", gamma=0.1)
    moved = [key for key, value in _encoder(pretrained).items()
             if key.startswith("object_layers") and not torch.equal(_encoder(out)[key], value)]
    assert moved
    assert json.loads((out / "metrics.json").read_text())["ks"] is not None


def test_finetune_cli_and_its_errors(pretrained, channels, tmp_path, capsys):
    out = tmp_path / "cli_ft"
    code = main(["finetune", str(pretrained), "--sim", str(channels["b_sim"]), "--n-train", "100",
                 "--epochs", "1", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert (out / "model.safetensors").exists() and (out / "metrics.json").exists()
    capsys.readouterr()
    code = main(["finetune", str(pretrained), "--sim", str(channels["b_sim"]), "--n-train", "5000",
                 "--quiet", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "--n-train must lie in 2..600" in err and err.count("\n") == 1
    with pytest.raises(SqnnError, match="needs unlabelled data"):
        finetune(pretrained, channels["b_sim"], None, tmp_path / "y", n_train=50, method="sqnn", gamma=1.0)


def test_finetune_refuses_a_dense_run(toy_run, toy_files, tmp_path):
    with pytest.raises(SqnnError, match="not a set model"):
        finetune(toy_run, toy_files[0], None, tmp_path / "z", n_train=50)


def test_train_cli_set_model_flags(channels, tmp_path, capsys):
    out = tmp_path / "cli_set"
    code = main(["train", "--sim", str(channels["a_sim"]), "--data", str(channels["a_data"]), "--label", "is_signal",
                 "--model", "set", "--objects", "objects", "--max-objects", "6", "--method", "source-only",
                 "--epochs", "1", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "model.json").read_text())["objects"]["max_objects"] == 6
    capsys.readouterr()
    assert main(["train", "--sim", str(channels["a_sim"]), "--data", str(channels["a_data"]), "--label", "is_signal",
                 "--objects", "objects", "--out", str(tmp_path / "no")]) == 2
    assert "--model set" in capsys.readouterr().err
    assert main(["train", "--sim", str(channels["a_sim"]), "--data", str(channels["a_data"]), "--label", "is_signal",
                 "--model", "set", "--method", "mlp", "--objects", "objects", "--quiet",
                 "--out", str(tmp_path / "mlp")]) == 2
    assert "cannot train a set model" in capsys.readouterr().err


def test_finetuning_never_replaces_a_run(pretrained: Path, channels, tmp_path: Path) -> None:
    before = (pretrained / "model.safetensors").read_bytes()
    with pytest.raises(SqnnError, match="already holds a run"):
        finetune(pretrained, channels["b_sim"], None, pretrained, n_train=50)
    assert (pretrained / "model.safetensors").read_bytes() == before


def test_dann_trains_a_set_model_through_its_domain_head(channels, tmp_path, capsys):
    code = main(["train", "--sim", str(channels["a_sim"]), "--data", str(channels["a_data"]), "--label", "is_signal",
                 "--model", "set", "--method", "dann", "--gamma", "0.1", "--objects", "objects", "--epochs", "1",
                 "--quiet", "--out", str(tmp_path / "dann")])
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "dann" / "model.json").read_text())["method"] == "dann"
    # the head reads the Bernoulli units after pooling; the reversed gradient reaches the encoder
    spec = ColumnSpec(label="is_signal", objects="objects", max_objects=8)
    sim = load_sample(channels["a_sim"], spec, "simulation", require_label=True)
    data = load_sample(channels["a_data"], spec, "data")
    config = set_config_for(sim, {"object_hidden": [16], "event_hidden": [8], "bottleneck": 6})
    model = new_set_model(config, sim.features, 0, None)
    objective = make_objective("dann", gamma=0.1)
    objective.attach(model)
    head = objective.extra["domain_head"]
    assert head[0].in_features == model.representation_width == 6
    model.train()
    x = torch.from_numpy(np.vstack([sim.features[:64], data.features[:64]]).astype(np.float32))
    logit, theta, output = model((x - model.input_mean) / model.input_scale, outputs=True)
    batch = Batch(logit[:64], theta[:64], torch.from_numpy(sim.label[:64].astype(np.float32)),
                  torch.ones(64), logit[64:], theta[64:], torch.ones(64),
                  sim_output=output[:64], data_output=output[64:])
    objective.penalty(batch)["penalty"].backward()
    assert head[0].weight.grad is not None and head[0].weight.grad.abs().sum() > 0
    assert model.object_layers[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("method", ["mlp", "bdt"])
def test_methods_with_their_own_network_cannot_train_a_set_model(method):
    with pytest.raises(SqnnError, match="cannot train a set model"):
        check_objective(make_objective(method))


# ---------------------------------------------------------------- the encoder's own learning rate


def test_an_encoder_learning_rate_of_zero_keeps_the_encoder_and_trains_the_head(pretrained, channels, tmp_path):
    out = tmp_path / "ft_lr0"
    run, _ = finetune(pretrained, channels["b_sim"], None, out, n_train=200, freeze="none", encoder_learning_rate=0.0,
                      epochs=2, seed=1)
    for key, value in _encoder(pretrained).items():
        torch.testing.assert_close(_encoder(out)[key], value, rtol=0, atol=0)
    assert not torch.equal(run.model.head.weight, load_run(pretrained).model.head.weight)
    meta = json.loads((out / "model.json").read_text())
    assert meta["finetune"]["encoder_learning_rate"] == 0.0
    assert meta["finetune"]["trainable_params"] == meta["n_params"]


def test_a_slower_encoder_moves_less(pretrained, channels, tmp_path):
    def moved(rate: float | None) -> float:
        out = tmp_path / f"ft_{rate}"
        finetune(pretrained, channels["b_sim"], None, out, n_train=200, freeze="none", encoder_learning_rate=rate,
                 epochs=2, seed=1)
        before, after = _encoder(pretrained), _encoder(out)
        return max(float((after[k] - before[k]).abs().max()) for k in before if k.startswith("object_layers"))

    assert 0 < moved(1e-4) < 0.2 * moved(None)


def test_encoder_learning_rate_errors(pretrained, channels, tmp_path, capsys):
    with pytest.raises(SqnnError, match="use it with freeze='none'"):
        finetune(pretrained, channels["b_sim"], None, tmp_path / "a", n_train=100, freeze="encoder",
                 encoder_learning_rate=1e-4)
    code = main(["finetune", str(pretrained), "--sim", str(channels["b_sim"]), "--n-train", "100", "--freeze", "none",
                 "--encoder-learning-rate", "-1", "--quiet", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "--encoder-learning-rate" in err and "in [0, 1]" in err and err.count("\n") == 1
    modules = torch.nn.ModuleDict({"model": torch.nn.Linear(2, 1)})
    with pytest.raises(ValueError, match="starts with encoder"):
        parameter_groups(modules, 1e-3, {"encoder": 1e-4})
    groups = parameter_groups(modules, 1e-3, {"weight": 1e-4})
    assert sorted(g["lr"] for g in groups) == [1e-4, 1e-3]


# ---------------------------------------------------------------- pretraining on several channels


def test_pretraining_on_channels_tells_their_processes_apart(channels):
    spec = ColumnSpec(label="is_signal", weight="weight", objects="objects", max_objects=8)
    samples = {name: load_sample(channels[f"{name}_sim"], spec, "simulation", require_label=True) for name in ("a", "b")}
    config = set_config_for(samples["a"], {"object_hidden": [16, 16], "event_hidden": [16], "bottleneck": 0})
    joined, channel, process = joined_channels(samples)
    assert len(joined) == 2200 and channel.tolist().count(1) == 1000
    np.testing.assert_array_equal(process, np.where(joined.label > 0.5, channel + 1, 0))
    result = fit_channels(samples, config, TrainConfig(epochs=4, seed=0))
    assert result.classes == ["background", "a", "b"] and result.model.config.outputs == 3
    assert set(result.test_auc) == {"a", "b"} and min(result.test_auc.values()) > 0.6
    assert result.test_accuracy is not None and result.test_accuracy > 0.5
    assert result.describe()["events"]["train"] + result.describe()["events"]["test"] < 2200
    # its encoder starts a one-output model, as fine-tuning does
    single = new_set_model(config, samples["b"].features, 0, result.model)
    torch.testing.assert_close(single.encoder_state()["object_layers.0.weight"],
                               result.model.encoder_state()["object_layers.0.weight"])
    binary = fit_channels(samples, config, TrainConfig(epochs=2, seed=0), task="signal")
    assert binary.classes == ["background", "signal"] and binary.model.config.outputs == 1
    narrow = load_sample(channels["b_sim"], ColumnSpec(label="is_signal", objects="objects", max_objects=4),
                         "simulation", require_label=True)
    with pytest.raises(SqnnError, match="same object layout"):
        joined_channels({"a": samples["a"], "b": narrow})
    with pytest.raises(SqnnError, match="task must be one of"):
        fit_channels(samples, config, TrainConfig(epochs=1), task="all")

