"""Simulation reweighted to data: the density ratio, class totals kept, stored with the run and used in evaluation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sqnn import metrics
from sqnn.cases.toy import make_toy
from sqnn.data import ColumnSpec, Sample, load_inputs
from sqnn.errors import SqnnError
from sqnn.training import TrainConfig, splits_for
from sqnn.runs.reweighter import effective_fraction, load_reweighter, reweighted
from sqnn.training.reweight import fit_reweighter
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import train_run

SPEC = ColumnSpec(features=("x0", "x1", "x2", "x3", "x4", "x5"), label="is_signal", weight="weight", control="control")


def _sample(domain: str, n: int, seed: int, fraction: float) -> Sample:
    columns = make_toy(domain, n, seed, signal_fraction=fraction)
    return Sample(
        features=np.column_stack([columns[c] for c in SPEC.features]).astype(np.float32),
        feature_names=list(SPEC.features), weight=columns["weight"].astype(np.float64), domain="simulation",
        source="<toy>", label=columns["is_signal"].astype(np.int8), control=columns["control"].astype(bool),
    )


@pytest.mark.parametrize("region", ["control", "all"])
def test_the_reweighted_simulation_looks_like_data_and_keeps_its_class_totals(region: str) -> None:
    simulation = _sample("sim", 6000, 1, 0.5)
    data = replace(_sample("data", 6000, 2, 0.3), domain="data")
    reweighter, seconds = fit_reweighter(simulation, replace(data, label=None), splits_for(simulation, data, TrainConfig()),
                                         region=region, clip=10.0)
    weights = reweighter.weights(simulation)
    for cls in (0, 1):
        members = simulation.label == cls
        assert weights[members].sum() == pytest.approx(simulation.weight[members].sum())
    assert seconds > 0 and 0 < effective_fraction(weights) < 1
    assert np.all(reweighter.ratio(simulation.features) <= 10.0) and np.all(reweighter.ratio(simulation.features) >= 0.1)
    # the mismodelled feature x4 of the background: the reweighted simulation is closer to data
    background = simulation.label == 0
    target = data.label == 0
    before = metrics.ks_distance(simulation.features[background, 4], data.features[target, 4],
                                 simulation.weight[background], data.weight[target])
    after = metrics.ks_distance(simulation.features[background, 4], data.features[target, 4], weights[background],
                                data.weight[target])
    assert after < 0.6 * before
    if region == "all":
        # taken to the EM estimate of the data's signal fraction before the ratio is learnt (the toy's
        # mismodelled discriminant pulls that estimate up: the shift looks like signal)
        assert 0.3 < reweighter.data_signal_fraction < 0.6
    else:
        assert reweighter.data_signal_fraction is None


def test_reweight_needs_a_control_region_and_a_clip_above_one() -> None:
    simulation = _sample("sim", 600, 1, 0.5)
    with pytest.raises(SqnnError, match="control"):
        fit_reweighter(replace(simulation, control=None), simulation, splits_for(simulation, simulation, TrainConfig()))
    with pytest.raises(SqnnError, match="clip"):
        fit_reweighter(simulation, simulation, splits_for(simulation, simulation, TrainConfig()), clip=1.0)


def test_a_reweighted_run_carries_its_reweighter_into_evaluation(toy_files, tmp_path: Path) -> None:
    settings = Settings(columns=SPEC, method="reweight", train=TrainConfig(epochs=2, seed=0))
    run, metrics_ = train_run(*toy_files, settings, tmp_path / "run", data_label="is_signal")
    assert run is not None and metrics_ is not None
    described = json.loads((tmp_path / "run" / "model.json").read_text())["reweight"]
    assert described["region"] == "control" and 0 < described["effective_fraction"] <= 1
    reweighter = load_reweighter(tmp_path / "run", run.meta)
    assert reweighter is not None
    simulation, _ = load_inputs(*toy_files, SPEC)
    assert not np.allclose(reweighted(simulation, reweighter).weight, simulation.weight)
    # the combination: the sqnn penalty on reweighted simulation
    combined = Settings(columns=SPEC, method="sqnn", gamma=0.5, method_options={"reweight": "all"},
                        train=TrainConfig(epochs=2, seed=0))
    train_run(*toy_files, combined, tmp_path / "combined")
    assert json.loads((tmp_path / "combined" / "model.json").read_text())["reweight"]["region"] == "all"
