"""The shared training loop: determinism, resume, checkpoints, and data labels never used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from sqnn.cases.toy import make_toy
from sqnn.data import ColumnSpec, Sample
from sqnn.methods import make_objective
from sqnn.workflows.train import train_run
from sqnn.training import TrainConfig, fit
from sqnn.workflows.settings import Settings

FEATURES = ["x0", "x1", "x2", "x3", "x4", "x5"]


def toy_sample(domain: str, n: int, seed: int, label: bool) -> Sample:
    columns = make_toy(domain, n, seed)
    return Sample(
        features=np.column_stack([columns[c] for c in FEATURES]),
        feature_names=FEATURES,
        weight=columns["weight"].astype(np.float64),
        domain="simulation" if domain == "sim" else "data",
        source=f"<{domain}>",
        label=columns["is_signal"] if label else None,
        control=columns["control"],
    )


@pytest.fixture(scope="module")
def samples() -> tuple[Sample, Sample]:
    return toy_sample("sim", 1500, 1, True), toy_sample("data", 1500, 2, False)


def states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_same_model_and_history(samples) -> None:
    config = TrainConfig(epochs=2, seed=3)
    first = fit(*samples, make_objective("sqnn", 1.0), config=config)
    second = fit(*samples, make_objective("sqnn", 1.0), config=config)
    assert states_equal(first.model, second.model)
    untimed = [[{k: v for k, v in h.items() if k != "cpu_seconds"} for h in r.history] for r in (first, second)]
    assert untimed[0] == untimed[1]
    third = fit(*samples, make_objective("sqnn", 1.0), config=TrainConfig(epochs=2, seed=4))
    assert not states_equal(first.model, third.model)


def test_history_records_loss_terms_and_information_measures(samples) -> None:
    result = fit(*samples, make_objective("sqnn", 1.0), config=TrainConfig(epochs=2))
    record = result.history[-1]
    for key in ("loss_classification", "loss_penalty", "val_loss", "val_auc", "mi_bits", "mi_joint_bits", "i_tx_bits", "i_ty_bits"):
        assert np.isfinite(record[key]), key
    assert record["loss_penalty"] > 0
    assert 0.5 < record["val_auc"] <= 1.0


def test_resume_continues_to_the_same_final_model(samples, tmp_path: Path) -> None:
    whole = fit(*samples, make_objective("sqnn", 1.0), config=TrainConfig(epochs=4, patience=10), run_dir=tmp_path / "a")
    fit(*samples, make_objective("sqnn", 1.0), config=TrainConfig(epochs=2, patience=10), run_dir=tmp_path / "b")
    assert (tmp_path / "b" / "checkpoint.safetensors").exists()
    resumed = fit(
        *samples, make_objective("sqnn", 1.0), config=TrainConfig(epochs=4, patience=10), run_dir=tmp_path / "b", resume=True
    )
    assert len(resumed.history) == 4
    assert states_equal(whole.model, resumed.model)
    assert [h["val_loss"] for h in whole.history] == [h["val_loss"] for h in resumed.history]


def test_penalty_regions_and_joint_estimator_train(samples) -> None:
    for options in ({"region": "control"}, {"region": "class-conditional"}, {"region": "prior-corrected"},
                    {"region": "class-conditional", "condition": "predicted"}, {"estimator": "joint", "warmup": 2},
                    {"anneal": 4}):
        result = fit(*samples, make_objective("sqnn", 1.0, **options), config=TrainConfig(epochs=1))
        assert np.isfinite(result.history[0]["val_loss"])
    with pytest.raises(ValueError, match="region"):
        make_objective("sqnn", 1.0, region="sideband")
    with pytest.raises(ValueError, match="unknown settings"):
        make_objective("sqnn", 1.0, dropout=0.5)
    with pytest.raises(ValueError, match="condition"):
        make_objective("sqnn", 1.0, condition="oracle")


def test_temperature_anneal_rises_to_the_network_temperature(samples) -> None:
    objective = make_objective("sqnn", 1.0, anneal=2)
    result = fit(*samples, objective, config=TrainConfig(epochs=3, patience=10))
    assert [h["temperature"] for h in result.history] == pytest.approx([1.5, 3.75, 6.0])
    assert all(layer.temperature == 6.0 for layer in result.model.bernoulli_layers())


@pytest.mark.parametrize("estimator", ["factorized", "joint"])
def test_predicted_condition_is_zero_without_a_shift_and_truth_is_not(estimator: str) -> None:
    """The same events as simulation and as data: no shift, so I(T;S|Y) must vanish.

    Splitting simulation by its true label and data by the (imperfect) classifier compares
    different mixtures and reports information that is not there; splitting both by the
    classifier does not.
    """
    from sqnn.methods.base import Batch

    generator = torch.Generator().manual_seed(0)
    n = 400
    theta = torch.rand(n, 6, generator=generator, dtype=torch.float64)
    logit = 2 * (theta[:, 0] - 0.5) + 0.5 * torch.randn(n, generator=generator, dtype=torch.float64)
    label = (torch.rand(n, generator=generator, dtype=torch.float64) < torch.sigmoid(3 * logit)).to(torch.float64)
    weight = torch.ones(n, dtype=torch.float64)
    batch = Batch(logit, theta, label, weight, logit, theta, weight)
    values = {}
    for condition in ("predicted", "truth"):
        objective = make_objective("sqnn", 1.0, region="class-conditional", estimator=estimator, condition=condition)
        prior = float(label.mean())
        objective.sim_prior = objective.data_prior = prior
        values[condition] = float(objective.penalty(batch)["penalty"])
    assert abs(values["predicted"]) < 1e-9
    assert values["truth"] > 1e-3


def test_gamma_lowers_the_information_about_the_domain(samples) -> None:
    config = TrainConfig(epochs=4, seed=0)
    plain = fit(*samples, make_objective("source-only"), config=config)
    penalised = fit(*samples, make_objective("sqnn", 5.0, region="all"), config=config)
    assert penalised.history[-1]["mi_bits"] < 0.5 * plain.history[-1]["mi_bits"]


def test_shuffling_data_labels_leaves_the_trained_model_bit_identical(tmp_path: Path, toy_files) -> None:
    sim, data = toy_files
    table = pq.read_table(data)
    labels = table.column("is_signal").to_numpy()
    shuffled = tmp_path / "data_shuffled.parquet"
    permuted = np.random.default_rng(0).permutation(labels)
    assert (permuted != labels).any()
    pq.write_table(table.set_column(table.schema.get_field_index("is_signal"), "is_signal", [permuted]), shuffled)
    spec = ColumnSpec(features=tuple(FEATURES), label="is_signal", control="control")
    config = TrainConfig(epochs=2, seed=1)
    settings = Settings(columns=spec, method="sqnn", gamma=1.0, train=config)
    train_run(sim, data, settings, tmp_path / "a")
    train_run(sim, shuffled, settings, tmp_path / "b")
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


@pytest.mark.parametrize("every", [1, 4])
def test_the_penalty_every_k_steps_is_taken_on_one_step_in_k_and_scaled(samples, every: int) -> None:
    simulation, data = samples
    objective = make_objective("sqnn", 1.0, every=every)
    assert [objective.penalty_scale(step) for step in range(8)] == ([1.0] * 8 if every == 1 else [4.0, 0, 0, 0, 4.0, 0, 0, 0])
    calls = {"training": 0}
    penalty = objective.penalty

    def counted(batch, reduce=None):  # noqa: ANN001, ANN202
        calls["training"] += batch.n_simulation == 64  # the training batches of this test
        return penalty(batch, reduce)

    objective.penalty = counted  # type: ignore[method-assign]
    config = TrainConfig(epochs=1, batch_size=64, seed=0, monitor_events=50)
    result = fit(simulation, data, objective, config=config)
    steps = -(-len(result.splits.simulation["train"]) // 64)
    assert calls["training"] in (-(-steps // every), -(-steps // every) - 1)  # the last, shorter batch may be taken
    assert np.isfinite(result.history[0]["loss_penalty"]) and result.history[0]["loss_penalty"] > 0
    with pytest.raises(ValueError, match="every"):
        make_objective("sqnn", 1.0, every=0)
