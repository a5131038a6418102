"""mlp: full precision, source-only, through the shared loop and the run directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sqnn.evaluation import evaluate
from sqnn.methods import METHODS, MLP
from sqnn.nn import BernoulliActivation
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import Trained, record_run
from sqnn.data import ColumnSpec
from sqnn.training import fit


def test_registered_and_source_only() -> None:
    assert METHODS["mlp"] is MLP
    assert MLP(5.0).gamma == 0.0
    assert MLP.uses_data is False


def test_every_hidden_layer_is_relu_whatever_the_overrides() -> None:
    objective = MLP()
    for overrides in (None, {"hidden": [32, 8, 4], "stochastic": [True, True, True]}):
        config = objective.network_config(overrides)
        model = objective.build(6, config)
        assert not any(isinstance(a, BernoulliActivation) for a in model.activations)
        assert all(isinstance(a, torch.nn.ReLU) for a in model.activations)
        assert not model.representation_is_stochastic
    assert len(objective.network_config({"hidden": [32, 8, 4]}).hidden) == 3


def test_deterministic_in_training_mode() -> None:
    objective = MLP()
    model = objective.build(6, objective.network_config())
    model.train()
    x = torch.randn(20, 6)
    assert torch.equal(model(x), model(x))


def test_trains_and_evaluates_without_information_measures(toy, quick, tmp_path: Path) -> None:
    simulation, data = toy
    result = fit(simulation, data, MLP(), config=quick)
    spec = ColumnSpec(features=tuple(simulation.feature_names), label="is_signal", control="control")
    run, _ = record_run(tmp_path / "run", Trained.of_network(result), simulation, data, Settings(columns=spec, train=quick))
    assert run.meta["method"] == "mlp" and run.meta["network"]["stochastic"] == [False, False]
    metrics = evaluate(run, simulation, data)
    assert metrics["auc_source"] > 0.7
    assert metrics["mi_bits"] is None and metrics["mi_joint_bits"] is None
    assert metrics["n_params"] == sum(p.numel() for p in result.model.parameters())
    assert "i_tx_bits" not in result.history[-1]
    assert result.history[-1]["loss_penalty"] == pytest.approx(0.0)
