"""Penalties that read the enriched regions: which regions, their purities, the region terms, and training with them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sqnn.data import ColumnSpec
from sqnn.methods import make_objective
from sqnn.methods.base import Batch, RegionBatch, RegionCounts
from sqnn.methods.enriched import RegionTerms
from sqnn.runs import load_run
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import train_run

FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
TAGGED = RegionCounts(signal_efficiency=0.3, background_efficiency=0.02, data_fraction=0.3 * 0.3 + 0.7 * 0.02)
SIDEBAND = RegionCounts(signal_efficiency=0.1, background_efficiency=0.4, data_fraction=0.3 * 0.1 + 0.7 * 0.4)


def test_the_regions_read_need_a_signal_enriched_region() -> None:
    terms = RegionTerms({})
    terms.set_counts({"control": SIDEBAND}, 0.5)
    assert terms.roles == ()  # without a tag-and-probe region nothing changes
    terms.set_counts({"control": SIDEBAND, "signal_control": TAGGED}, 0.5)
    assert terms.roles == ("signal_control", "control")
    assert RegionTerms({"regions": "signal"}).roles == () and RegionTerms({"regions": "none"}).roles == ()
    only = RegionTerms({"regions": "signal"})
    only.set_counts({"control": SIDEBAND, "signal_control": TAGGED}, 0.5)
    assert only.roles == ("signal_control",)
    # the data's signal fraction from the region's share of data, not from the classifier
    assert terms.data_prior(0.9) == pytest.approx(0.3)
    assert RegionTerms({"prior": "em"}).data_prior(0.9) == 0.9
    logged = terms.update(0.3)
    assert logged["purity_signal_control"] == pytest.approx(0.09 / TAGGED.data_fraction)
    assert terms.purity["control"] == pytest.approx(0.03 / SIDEBAND.data_fraction)
    # a control region stands for the simulated events inside it: their own signal fraction
    assert terms.sim_fraction["control"] == pytest.approx(0.05 / 0.25)
    assert terms.sim_fraction["signal_control"] == 0.5


def _region_batch(theta_sim: torch.Tensor, theta_data: torch.Tensor, label: torch.Tensor) -> RegionBatch:
    n, m = len(theta_sim), len(theta_data)
    return RegionBatch(theta_sim, torch.zeros(n), label, torch.ones(n), theta_data, torch.zeros(m), torch.ones(m))


def test_the_region_term_vanishes_for_matching_domains_and_grows_with_a_shift() -> None:
    objective = make_objective("sqnn", 1.0)
    objective.set_regions({"signal_control": TAGGED}, 0.5)
    objective.enriched.update(0.3)
    generator = torch.Generator().manual_seed(0)
    n, units = 400, 16
    label = (torch.rand(n, generator=generator) < 0.5).float()
    theta = torch.rand(n, units, generator=generator)
    main = Batch(torch.zeros(8), torch.full((8, units), 0.5), torch.ones(8), torch.ones(8), torch.zeros(8),
                 torch.full((8, units), 0.5), torch.ones(8))
    base = objective.penalty(main)
    # the data inside the region: the simulated events themselves at the region's class mix → no information
    purity = objective.enriched.purity["signal_control"]
    weights = torch.where(label > 0.5, purity / 0.5, (1 - purity) / 0.5)
    same = RegionBatch(theta, torch.zeros(n), label, torch.ones(n), theta, torch.zeros(n), weights)
    main.regions = {"signal_control": same}
    matched = objective.penalty(main)
    assert float(matched["mi_signal_control_bits"]) == pytest.approx(0.0, abs=1e-6)
    assert float(matched["penalty"]) == pytest.approx(float(base["penalty"]), abs=1e-6)
    main.regions = {"signal_control": _region_batch(theta, (theta + 0.3).clamp(0, 1), label)}
    shifted = objective.penalty(main)
    assert float(shifted["mi_signal_control_bits"]) > 0.01
    assert float(shifted["penalty"]) == pytest.approx(float(base["penalty"]) + float(shifted["mi_signal_control_bits"]),
                                                      rel=1e-5)


@pytest.fixture(scope="module")
def tagged_files(toy_files, tmp_path_factory) -> tuple[Path, Path]:
    """The toy files with a tag drawn per class, independently of the features (sim 0.3/0.02, data 0.27/0.025)."""
    folder = tmp_path_factory.mktemp("tagged")
    out = []
    for path, (t_s, t_b), seed in zip(toy_files, ((0.3, 0.02), (0.27, 0.025)), (11, 12)):
        table = pd.read_parquet(path)
        rng = np.random.default_rng(seed)
        table["tag"] = rng.random(len(table)) < np.where(table["is_signal"] == 1, t_s, t_b)
        target = folder / Path(path).name
        table.to_parquet(target)
        out.append(target)
    return out[0], out[1]


def _settings(method: str, tagged: bool, **options) -> Settings:
    spec = ColumnSpec(features=FEATURES, label="is_signal", weight="weight", control="control",
                      signal_control="tag" if tagged else None)
    return Settings(columns=spec, method=method, gamma=1.0 if method in ("sqnn", "dann") else None,
                    method_options=options, train=TrainConfig(epochs=2, seed=0))


def test_training_reads_the_regions_and_evaluation_measures_in_them(tagged_files, tmp_path) -> None:
    run, metrics = train_run(*tagged_files, _settings("sqnn", True), tmp_path / "regions", data_label="is_signal")
    history = json.loads((tmp_path / "regions" / "history.json").read_text())
    assert all("val_mi_signal_control_bits" in h and "purity_signal_control" in h for h in history)
    assert history[0]["data_prior"] != history[0]["data_prior_em"]  # the prior comes from the tag rate
    for key in ("insitu_sf_signal", "insitu_sf_background_80", "insitu_closure_80", "purity_signal_control"):
        assert isinstance(metrics[key], float), key
    assert metrics["insitu_sf_signal_80_err"] >= metrics["insitu_sf_signal_80_err_stat"]
    assert metrics["insitu_equations"] == ["signal_control", "all"]


def test_without_a_signal_region_training_is_what_it_was(tagged_files, tmp_path) -> None:
    """The column unread, or the regions switched off: the same model, bit for bit, and no in-situ keys."""
    _, plain = train_run(*tagged_files, _settings("sqnn", False), tmp_path / "plain", data_label="is_signal")
    train_run(*tagged_files, _settings("sqnn", True, regions="none", prior="em"), tmp_path / "off", data_label="is_signal")
    assert (tmp_path / "plain" / "model.safetensors").read_bytes() != b""
    first = load_run(tmp_path / "plain").model.state_dict()
    second = load_run(tmp_path / "off").model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert plain["insitu_sf_signal"] is None and "purity_signal_control" not in plain


@pytest.mark.parametrize(("method", "options", "key"), [
    ("dann", {}, "val_advantage_signal_control"),
    ("reweight", {"region": "enriched"}, None),
])
def test_the_baselines_take_the_same_regions(tagged_files, tmp_path, method, options, key) -> None:
    run, metrics = train_run(*tagged_files, _settings(method, True, **options), tmp_path / method, data_label="is_signal")
    history = json.loads((tmp_path / method / "history.json").read_text())
    if key is not None:
        assert all(key in h for h in history)
    else:
        assert run.meta["reweight"]["region"] == "enriched"
    assert isinstance(metrics["insitu_sf_signal_80"], float)


def test_reweighting_within_the_regions_needs_a_signal_region(tagged_files, tmp_path) -> None:
    from sqnn.errors import SqnnError

    with pytest.raises(SqnnError, match="signal_control"):
        train_run(*tagged_files, _settings("reweight", False, region="enriched"), tmp_path / "no")
