"""Boosted top jets: three-pronged, near the top mass, matched to the top and its decay quarks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sqnn.cases import topjets, wjets
from sqnn.cases.boosted import GeneratorSettings
from sqnn.cli import main


@pytest.fixture(scope="module")
def top_sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("top") / "top.parquet"
    return topjets.generate("sim", 80, seed=2, out=out, progress=False)


@pytest.mark.physics
def test_top_jets_peak_near_the_top_mass_with_low_tau32(top_sim):
    table = pd.read_parquet(top_sim)
    assert list(table.columns) == [*topjets.FEATURES, "is_signal", "weight", "control", "event", "tag"]
    assert int(table["is_signal"].sum()) == 40
    top, qcd = table[table["is_signal"] == 1], table[table["is_signal"] == 0]
    assert 160.0 <= top["mass"].median() <= 185.0
    assert ((top["mass"] > 140) & (top["mass"] < 210)).mean() > 0.7
    assert qcd["mass"].median() < 120.0
    assert top["tau32"].mean() < qcd["tau32"].mean() - 0.15
    assert table["pt"].between(550, 650).all() and (table["eta"].abs() < 2).all()
    # the sidebands hold QCD and few tops
    assert (table["control"] == ((table["mass"] < 120) | (table["mass"] > 230))).all()
    assert top["control"].mean() < 0.2 < qcd["control"].mean()


@pytest.mark.physics
def test_top_metadata_names_the_process_and_its_matching(top_sim):
    metadata = json.loads(pq.read_schema(top_sim).metadata[b"sqnn"])
    assert metadata["case"] == "topjets"
    assert "Top:gg2ttbar = on" in metadata["processes"]["signal"]
    assert metadata["jets"]["pt_range_GeV"] == [550.0, 650.0]
    assert "b and both quarks" in metadata["jets"]["signal_truth_match"]
    assert metadata["control_region"]["mass_below"] == 120.0


@pytest.mark.physics
def test_decay_quarks_are_found_for_both_tops():
    from sqnn.cases import _pythia

    generator = GeneratorSettings(tune=14)
    pythia = _pythia.new_pythia(generator.lines(topjets.PROCESS, "signal"), 17)
    truth = topjets.top_decays(pythia.nextBatch(20))
    for name in ("t", "tbar"):
        for parton in topjets.PARTONS:
            assert np.isfinite(truth[f"{name}_{parton}_rapidity"]).all(), (name, parton)
    # the quarks of a boosted top are collimated around it
    spread = np.hypot(truth["t_b_rapidity"] - truth["t_top_rapidity"],
                      (truth["t_b_phi"] - truth["t_top_phi"] + np.pi) % (2 * np.pi) - np.pi)
    assert np.median(spread) < 0.8


def test_top_and_w_are_cases_of_generate(capsys):
    assert main(["generate", "topjets", "--domain", "sim", "--n", "0", "--out", "x.parquet"]) == 2
    assert "--n" in capsys.readouterr().err
    assert topjets.PROCESS.radius == wjets.PROCESS.radius == 0.8
    assert topjets.PROCESS.pt_range == (550.0, 650.0)
