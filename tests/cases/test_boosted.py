"""The boosted-jet engine: knobs, several reconstructions of one sequence, chunk seeding."""

from __future__ import annotations

import json
import os
import re
import signal
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sqnn.cases import boosted, wjets
from sqnn.cases.boosted import GeneratorSettings, Output, Reconstruction, processes, resolve
from sqnn.cases.detector import Detector
from sqnn.cli import main
from sqnn.errors import SqnnError

W = wjets.PROCESS


# ---------------------------------------------------------------- knobs (no Pythia)


def test_default_domains_are_the_historical_ones():
    for domain in ("sim", "data"):
        generator, reco = resolve(W, domain)
        settings = wjets.domain_settings(domain)
        assert generator.tune == settings["tune"] and generator.overrides() == []
        assert reco.detector == settings["detector"]
        assert reco.pileup_mu == (0.0 if settings["pileup"] is None else settings["pileup"]["mu"])
        assert (reco.radius, reco.pt_min, reco.pt_max) == (0.8, 450.0, 650.0)
        assert generator.lines(W, "signal") == [f"Tune:pp = {settings['tune']}", *boosted.BEAM,
                                                *wjets.PROCESSES["signal"]]


def test_each_generator_knob_writes_its_pythia_line_after_the_tune():
    generator, _ = resolve(W, "sim", tune=21, fsr_alpha_s=0.15, isr_alpha_s=0.12, lund_a=0.8, lund_b=1.1,
                           string_pt_sigma=0.4, mpi_pt0_ref=2.0, pythia=["ColourReconnection:range = 3.0"])
    lines = generator.lines(W, "background")
    assert lines[0] == "Tune:pp = 21"
    assert lines[-7:] == [
        "TimeShower:alphaSvalue = 0.15",
        "SpaceShower:alphaSvalue = 0.12",
        "StringZ:aLund = 0.8",
        "StringZ:bLund = 1.1",
        "StringPT:sigma = 0.4",
        "MultipartonInteractions:pT0Ref = 2.0",
        "ColourReconnection:range = 3.0",
    ]


def test_detector_and_pileup_knobs_change_only_their_field():
    _, base = resolve(W, "data")
    _, reco = resolve(W, "data", jes=1.05, track_efficiency=0.8, calo_resolution=2.0, pileup_mu=20, chs=False,
                      jet_radius=1.0, pt_range=(500, 700))
    shifted = Detector.shifted()
    assert reco.detector.energy_scale == 1.05 and reco.detector.track_efficiency == 0.8
    assert reco.detector.hadron_stochastic == pytest.approx(2 * shifted.hadron_stochastic)
    assert reco.detector.photon_constant == pytest.approx(2 * shifted.photon_constant)
    assert reco.detector.track_resolution == shifted.track_resolution
    assert (reco.pileup_mu, reco.chs, reco.radius, reco.pt_min, reco.pt_max) == (20.0, False, 1.0, 500.0, 700.0)
    assert base.key() != reco.key()
    assert resolve(W, "data")[1].key() == base.key()
    assert replace(base, chs=False).key() != base.key()


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"fsr_alpha_s": 0.5}, "--fsr-alpha-s"),
        ({"mpi_pt0_ref": 0.1}, "--mpi-pt0-ref"),
        ({"tune": 99}, "--tune"),
        ({"jes": 3.0}, "--jes"),
        ({"track_efficiency": 1.2}, "--track-efficiency"),
        ({"pileup_mu": -1}, "--pileup-mu"),
        ({"jet_radius": 5.0}, "--jet-radius"),
        ({"pt_range": (600, 500)}, "pT window"),
        ({"detector": "perfect"}, "--detector"),
        ({"pythia": ["nonsense"]}, "--pythia"),
        ({"tag_signal": 1.5}, "--tag-signal"),
        ({"tag_background": -0.1}, "--tag-background"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_knobs_are_one_line_errors(tmp_path, knobs, message):
    with pytest.raises(SqnnError) as error:
        wjets.generate("sim", 10, 1, tmp_path / "x.parquet", progress=False, **knobs)
    assert "\n" not in str(error.value)
    # the message names the knob as the command line's flag; the Python error names the parameter
    python = message.removeprefix("--").replace("-", "_")
    assert python in str(error.value) and not re.search(r"(?<![\w-])--[a-z]", str(error.value))
    assert message in error.value.for_cli()
    assert not (tmp_path / "x.parquet").exists()


def test_knobs_belong_to_the_jet_cases(tmp_path, capsys):
    out = tmp_path / "toy.parquet"
    assert main(["generate", "toy", "--domain", "sim", "--n", "10", "--out", str(out), "--jes", "1.1"]) == 2
    assert "--jes" in capsys.readouterr().err
    assert not out.exists()


def test_cli_pt_window_keeps_the_other_end_and_tunes_have_names():
    from sqnn.cli.generate import knobs_from

    knobs = knobs_from("topjets", {"pt_min": 600.0, "pt_max": None, "tune": "A14", "chs": False, "pythia": ()})
    assert knobs == {"pt_range": (600.0, 650.0), "tune": 21, "chs": False}
    assert knobs_from("wjets", {"tag_signal": 0.5, "tag_background": None}) == {"tag_signal": 0.5}


def test_tag_options_reach_the_generator_and_belong_to_the_jet_cases(tmp_path, capsys, monkeypatch):
    from sqnn.cases import topjets

    seen = {}

    def record(domain, n, seed, out, **options):
        seen.update(options)
        return out

    monkeypatch.setattr(topjets, "generate", record)
    assert main(["generate", "topjets", "--domain", "data", "--n", "10", "--out", str(tmp_path / "t.parquet"),
                 "--tag-signal", "0.4", "--tag-background", "0.05", "--quiet"]) == 0
    assert (seen["tag_signal"], seen["tag_background"]) == (0.4, 0.05)
    assert main(["generate", "events", "--channel", "tth", "--domain", "sim", "--n", "10", "--tag-signal", "0.4",
                 "--out", str(tmp_path / "e.parquet")]) == 2
    assert "--tag-signal belong to the wjets and topjets cases" in capsys.readouterr().err


def test_calorimeter_knob_scales_the_neutral_hadron_resolution():
    n = 20_000
    neutrons = {"px": np.full(n, 50.0), "py": np.zeros(n), "pz": np.zeros(n), "e": np.full(n, 50.0),
                "pid": np.full(n, 2112), "charge": np.zeros(n)}
    spread = {}
    for factor in (1.0, 3.0):
        detector = resolve(W, "sim", calo_resolution=factor)[1].detector
        measured = detector.apply(neutrons, np.random.default_rng(5))["e"]
        spread[factor] = np.std(measured / 50.0)
    assert spread[1.0] == pytest.approx(np.hypot(0.5 / np.sqrt(50.0), 0.05), rel=0.03)
    assert spread[3.0] / spread[1.0] == pytest.approx(3.0, rel=0.05)


@pytest.mark.physics
def test_pythia_takes_every_generator_knob():
    import pythia8mc

    from sqnn.cases._pythia import xmldoc_dir

    generator = GeneratorSettings(tune=14, fsr_alpha_s=0.15, isr_alpha_s=0.12, lund_a=0.8, lund_b=1.1,
                                  string_pt_sigma=0.4, mpi_pt0_ref=2.0)
    pythia = pythia8mc.Pythia(str(xmldoc_dir()), False)
    for line in generator.lines(W, "signal"):
        assert pythia.readString(line), line
    values = {key: pythia.settings.parm(key) for key in ("TimeShower:alphaSvalue", "SpaceShower:alphaSvalue",
                                                          "StringZ:aLund", "StringZ:bLund", "StringPT:sigma",
                                                          "MultipartonInteractions:pT0Ref")}
    assert values == {"TimeShower:alphaSvalue": 0.15, "SpaceShower:alphaSvalue": 0.12, "StringZ:aLund": 0.8,
                      "StringZ:bLund": 1.1, "StringPT:sigma": 0.4, "MultipartonInteractions:pT0Ref": 2.0}


# ---------------------------------------------------------------- several reconstructions of one sequence


VARIANTS = {
    "nominal": Reconstruction(),
    "jes": Reconstruction(detector=replace(Detector(), energy_scale=1.03)),
    "resolution": Reconstruction(detector=replace(Detector.shifted(), energy_scale=1.0)),
    "pileup": Reconstruction(pileup_mu=15.0),
    "pileup_nochs": Reconstruction(pileup_mu=15.0, chs=False),
}


def _sequence(tmp_path, workers=1, seed=3):
    return boosted.make_sequence("wjets", GeneratorSettings(), seed, (9, 1), 5, tmp_path / "parts", workers=workers)


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """The W jets of one chunk of hard events, reconstructed five ways."""
    folder = tmp_path_factory.mktemp("variants")
    outputs = [Output(folder / f"{name}.parquet", reco, 45, 0, "data", 1.0) for name, reco in VARIANTS.items()]
    boosted.produce(_sequence(folder), outputs, progress=False)
    return {name: pd.read_parquet(folder / f"{name}.parquet").drop_duplicates("event").set_index("event")
            for name in VARIANTS}


def _matched(variants, a, b, column):
    common = variants[a].index.intersection(variants[b].index)
    assert len(common) >= 30
    return variants[a].loc[common, column].to_numpy(), variants[b].loc[common, column].to_numpy()


@pytest.mark.physics
def test_variants_of_one_sequence_share_their_events(variants):
    for name in VARIANTS:
        assert len(variants[name]) == 45
        assert (variants[name]["is_signal"] == 1).all()
    nominal, jes = _matched(variants, "nominal", "jes", "eta")
    # the same jets, seen by another detector: directions barely move
    assert np.median(np.abs(nominal - jes)) < 0.01


@pytest.mark.physics
def test_jes_up_scales_jet_pt_and_mass_up(variants):
    nominal, jes = _matched(variants, "nominal", "jes", "pt")
    assert np.median(jes / nominal) == pytest.approx(1.03, abs=0.01)
    assert jes.mean() > nominal.mean()
    nominal, jes = _matched(variants, "nominal", "jes", "mass")
    assert np.median(jes / nominal) == pytest.approx(1.03, abs=0.015)


@pytest.mark.physics
def test_worse_tracking_loses_charged_constituents(variants):
    nominal, degraded = _matched(variants, "nominal", "resolution", "n_charged")
    assert degraded.mean() / nominal.mean() == pytest.approx(0.90 / 0.95, abs=0.03)


@pytest.mark.physics
def test_pileup_raises_mass_and_more_without_chs(variants):
    none, chs = _matched(variants, "nominal", "pileup", "mass")
    assert chs.mean() > none.mean() + 1.0
    chs, nochs = _matched(variants, "pileup", "pileup_nochs", "mass")
    assert nochs.mean() > chs.mean() + 5.0
    assert (nochs > chs).mean() > 0.8
    chs, nochs = _matched(variants, "pileup", "pileup_nochs", "n_charged")
    assert (nochs > chs).mean() > 0.9


# ---------------------------------------------------------------- chunk sequences: seeds, workers, resume


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """Two chunks of W signal made one after the other by one Pythia instance."""
    folder = tmp_path_factory.mktemp("sequential")
    out = folder / "w.parquet"
    boosted.produce(_sequence(folder), [Output(out, Reconstruction(), 100, 0, "sim", 1.0)], progress=False)
    return out


def _same_file(first, second):
    pd.testing.assert_frame_equal(pd.read_parquet(first), pd.read_parquet(second))
    assert json.loads(pq.read_schema(first).metadata[b"sqnn"]) == json.loads(pq.read_schema(second).metadata[b"sqnn"])


@pytest.mark.physics
def test_chunk_sequence_file_does_not_depend_on_workers(tmp_path, sequential):
    out = tmp_path / "w.parquet"
    # two workers: chunk 1 comes from a fresh Pythia in the second process
    boosted.produce(_sequence(tmp_path, workers=2), [Output(out, Reconstruction(), 100, 0, "sim", 1.0)],
                    progress=False)
    _same_file(sequential, out)
    metadata = json.loads(pq.read_schema(out).metadata[b"sqnn"])
    assert len(metadata["seeds"]["chunks"]["signal"]) == 2
    assert (pd.read_parquet(out)["event"].to_numpy() >> 45 == 5).all()


@pytest.mark.physics
def test_interrupted_chunk_sequence_resumes_to_the_same_file(tmp_path, monkeypatch, sequential):
    out = tmp_path / "w.parquet"
    report = processes.Progress.__call__
    sent = []

    def report_then_terminate(self, jets, events):
        report(self, jets, events)
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(processes.Progress, "__call__", report_then_terminate)
    output = Output(out, Reconstruction(), 100, 0, "sim", 1.0)
    with pytest.raises(boosted.GenerationInterrupted, match="rerun"):
        boosted.produce(_sequence(tmp_path), [output], progress=False)
    assert not out.exists()
    monkeypatch.setattr(processes.Progress, "__call__", report)
    boosted.produce(_sequence(tmp_path), [output], progress=False)
    _same_file(sequential, out)


@pytest.mark.physics
def test_a_smaller_file_of_the_same_reconstruction_takes_the_first_jets(tmp_path, sequential):
    out = tmp_path / "small.parquet"
    boosted.produce(_sequence(tmp_path), [Output(out, Reconstruction(), 30, 0, "sim", 1.0)], progress=False)
    small, large = pd.read_parquet(out), pd.read_parquet(sequential)
    assert set(small["event"]) <= set(large["event"])
    other_seed = tmp_path / "other.parquet"
    boosted.produce(_sequence(tmp_path / "other", seed=4), [Output(other_seed, Reconstruction(), 30, 0, "sim", 1.0)],
                    progress=False)
    assert not np.isin(pd.read_parquet(other_seed)["pt"], large["pt"]).any()


# ---------------------------------------------------------------- generator knobs move the physics


def _event_multiplicity(generator, seed=3, events=100):
    from sqnn.cases import _pythia

    pythia = _pythia.new_pythia(generator.lines(W, "background"), seed)
    particles = _pythia.final_state(pythia.nextBatch(events), _pythia.ChargeTable(pythia.particleData))
    return len(particles["px"]) / events


@pytest.mark.physics
@pytest.mark.parametrize(
    ("knob", "low", "high", "more_particles_when_high"),
    [
        # more initial-state radiation
        ("isr_alpha_s", 0.10, 0.20, True),
        # softer Lund fragmentation: more, softer hadrons
        ("lund_a", 0.3, 1.5, True),
        # wider pT kicks in string breaks: each hadron costs more energy
        ("string_pt_sigma", 0.25, 0.5, False),
        # a higher regulator means fewer multiple interactions
        ("mpi_pt0_ref", 1.8, 2.8, False),
    ],
)
def test_generator_knobs_move_the_event_multiplicity(knob, low, high, more_particles_when_high):
    low_count = _event_multiplicity(GeneratorSettings(**{knob: low}))
    high_count = _event_multiplicity(GeneratorSettings(**{knob: high}))
    ratio = high_count / low_count
    assert (ratio > 1.08) if more_particles_when_high else (ratio < 1 / 1.08), (low_count, high_count)


@pytest.mark.physics
def test_more_final_state_radiation_fills_and_widens_the_jets(tmp_path):
    def qcd_jets(alpha_s):
        return pd.read_parquet(wjets.generate("sim", 120, 5, tmp_path / f"fsr{alpha_s}.parquet", signal_fraction=0.0,
                                              progress=False, fsr_alpha_s=alpha_s))

    low, high = qcd_jets(0.10), qcd_jets(0.20)
    assert high["n_constituents"].mean() > low["n_constituents"].mean() + 10
    assert high["girth"].mean() > low["girth"].mean()
    assert high["mass"].mean() > low["mass"].mean()
    metadata = json.loads(pq.read_schema(tmp_path / "fsr0.2.parquet").metadata[b"sqnn"])
    assert "TimeShower:alphaSvalue = 0.2" in metadata["pythia_settings"]["background"]
