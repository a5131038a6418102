"""The multi-channel events case: channels, object reconstruction and the generated files."""

from __future__ import annotations

import json
import re

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest

from sqnn.cases import events
from sqnn.cases.detector import Detector
from sqnn.cli import main
from sqnn.errors import SqnnError

PERFECT = Detector(
    name="perfect",
    track_efficiency=1.0,
    track_resolution=0.0,
    track_resolution_slope=0.0,
    photon_stochastic=0.0,
    photon_constant=0.0,
    hadron_stochastic=0.0,
    hadron_constant=0.0,
)


def test_list_prints_one_line_per_channel(capsys):
    assert main(["generate", "events", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["ttbar\tbackground", "tth\tsignal", "zprime\tsignal", "wprime\tsignal", "ttphi\tsignal",
                     "zprime500\tsignal"]
    assert len([line for line in lines if line.endswith("\tsignal")]) >= 3


def test_list_and_channel_belong_to_the_events_case(capsys):
    assert main(["generate", "toy", "--list"]) == 2
    assert "events case" in capsys.readouterr().err
    assert main(["generate", "events", "--domain", "sim", "--n", "5", "--out", "x.parquet"]) == 2
    assert "--channel" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel": "higgs"}, "unknown channel"),
        ({"channel": None}, "--channel"),
        ({"domain": "mc"}, "domain"),
        ({"n": 0}, "--n"),
        ({"seed": -1}, "--seed"),
        ({"workers": 0}, "--workers"),
        ({"signal_fraction": 2.0}, "--signal-fraction"),
        ({"pileup_mu": -1.0}, "--pileup-mu"),
        ({"pileup_mu": 500.0}, "--pileup-mu"),
    ],
)
def test_bad_arguments_raise_one_line_errors(tmp_path, kwargs, message):
    arguments = {"domain": "sim", "n": 10, "seed": 1, "out": tmp_path / "x.parquet", "channel": "tth", "progress": False}
    arguments.update(kwargs)
    with pytest.raises(SqnnError) as error:
        events.generate(**arguments)
    assert "\n" not in str(error.value)
    # the message names the knob as the command line's flag; the Python error names the parameter
    python = message.removeprefix("--").replace("-", "_")
    assert python in str(error.value) and not re.search(r"(?<![\w-])--[a-z]", str(error.value))
    assert message in error.value.for_cli()
    assert not (tmp_path / "x.parquet").exists()


def test_hadron_flavour_from_pdg_codes():
    codes = np.array([511, -521, 531, 5122, -5232, 553, 421, 4122, 443, 211, 2212, 5101, 5, 21, 1000022])
    expected = [5, 5, 5, 5, 5, 5, 4, 4, 4, 0, 0, 0, 0, 0, 0]
    assert events._flavour(codes).tolist() == expected


def _particle(pt: float, eta: float, phi: float, pid: int, charge: float, event: int) -> dict[str, float]:
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return {"px": px, "py": py, "pz": pz, "e": float(np.sqrt(px**2 + py**2 + pz**2)), "pid": pid,
            "charge": charge, "event": event}


def _particles(rows: list[dict[str, float]]) -> dict[str, np.ndarray]:
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def test_reconstruction_isolates_leptons_clusters_jets_and_balances_met():
    rows = [
        _particle(50.0, 0.0, 0.0, 11, -1.0, 0),  # isolated electron
        *[_particle(10.0, 1.0 + 0.05 * k, 2.0, 211, 1.0, 0) for k in range(5)],  # a jet
        _particle(25.0, 1.0, 2.02, 22, 0.0, 0),  # photon inside the jet: not isolated
        _particle(30.0, -1.0, -1.0, 13, -1.0, 1),  # muon with a pion next to it: not isolated
        _particle(10.0, -1.05, -1.0, 211, 1.0, 1),
        _particle(40.0, 0.5, 1.0, 22, 0.0, 1),  # isolated photon
    ]
    particles = _particles(rows)
    hadrons = {"event": np.array([0]), "eta": np.array([1.1]), "phi": np.array([2.0]), "flavour": np.array([5])}
    objects = events.reconstruct(particles, hadrons, 2, PERFECT, np.random.default_rng(0))
    assert objects["counts"].tolist() == [3, 3]
    kinds = {event: objects["type"][objects["event"] == event].tolist() for event in (0, 1)}
    jet, electron, muon, photon, met = (events.OBJECT_TYPES[k] for k in ("jet", "electron", "muon", "photon", "met"))
    assert sorted(kinds[0]) == sorted([jet, electron, met])
    assert sorted(kinds[1]) == sorted([jet, photon, met])
    assert muon not in kinds[1]
    # objects of an event are sorted by decreasing pT
    for event in (0, 1):
        pt = objects["pt"][objects["event"] == event]
        assert (np.diff(pt) <= 0).all()
    first_jet = (objects["event"] == 0) & (objects["type"] == jet)
    assert objects["pt"][first_jet][0] == pytest.approx(75.0, rel=0.02)
    # MET balances the visible transverse momentum of each event
    for event in (0, 1):
        mask = particles["event"] == event
        expected = np.hypot(particles["px"][mask].sum(), particles["py"][mask].sum())
        assert objects["pt"][(objects["event"] == event) & (objects["type"] == met)][0] == pytest.approx(expected)
    probability = events.btag_probability(np.array([0, 0, 1]), np.array([1.0, -1.0, 1.0]), np.array([2.0, 2.0, 2.0]),
                                          {**hadrons, "event": np.array([0]), "flavour": np.array([5])}, 2)
    assert probability.tolist() == [0.7, 0.01, 0.01]
    charm = {**hadrons, "flavour": np.array([4])}
    assert events.btag_probability(np.array([0]), np.array([1.0]), np.array([2.0]), charm, 2).tolist() == [0.1]
    flat = events.high_level(objects, 2)
    assert flat["n_leptons"].tolist() == [1, 0] and flat["n_photons"].tolist() == [0, 1]


def test_channels_have_distinct_codes_and_their_own_process():
    codes = [channel.code for channel in events.CHANNELS.values()]
    assert len(set(codes)) == len(codes)
    assert "35:m0 = 300." in events.CHANNELS["ttphi"].settings and "Higgs:useBSM = on" in events.CHANNELS["ttphi"].settings
    assert "32:m0 = 500." in events.CHANNELS["zprime500"].settings
    assert events._pythia_settings("data", "pileup")[0] == "Tune:pp = 21"
    assert "SoftQCD:nonDiffractive = on" in events._pythia_settings("sim", "pileup")


def _pileup_event(event: int) -> list[dict[str, float]]:
    return [
        _particle(3.0, 0.3, 1.0, 211, 1.0, event),  # charged: removed by CHS
        _particle(4.0, -0.4, -2.0, 22, 0.0, event),  # neutral: stays
        _particle(2.0, 0.1, 0.5, 130, 0.0, event),  # neutral hadron: stays
    ]


def test_charged_hadron_subtraction_removes_tracked_pileup_and_keeps_neutrals():
    hard = _particles([_particle(50.0, 0.0, 0.0, 211, 1.0, 0), _particle(30.0, 1.0, 2.0, 211, -1.0, 1)])
    pileup = _particles([*_pileup_event(1), *_pileup_event(0)])
    subtracted = events.with_pileup(hard, pileup, PERFECT, np.random.default_rng(0), chs=True)
    kept = events.with_pileup(hard, pileup, PERFECT, np.random.default_rng(0), chs=False)
    assert "pileup" not in subtracted
    assert len(kept["px"]) == 2 + 6 and len(subtracted["px"]) == 2 + 4
    # ordered by event; every hard particle is kept, of pileup only the neutrals survive CHS
    assert (np.diff(subtracted["event"]) >= 0).all() and (np.diff(kept["event"]) >= 0).all()
    assert np.sort(subtracted["pid"][subtracted["charge"] != 0]).tolist() == [211, 211]
    assert sorted(subtracted["pid"][subtracted["charge"] == 0].tolist()) == [22, 22, 130, 130]
    assert events.with_pileup(hard, None, PERFECT, np.random.default_rng(0))["px"].tolist() == pytest.approx(
        hard["px"].tolist())


def test_pileup_neutrals_enter_jets_and_missing_pt():
    jet = [_particle(10.0, 1.0 + 0.05 * k, 2.0, 211, 1.0, 0) for k in range(5)]
    hard = _particles([*jet, _particle(40.0, -1.0, -1.0, 211, 1.0, 0)])
    none = {"event": np.array([], dtype=np.int64), "eta": np.array([]), "phi": np.array([]), "flavour": np.array([])}
    # a neutral pileup particle inside the jet, a charged one inside it too (subtracted)
    pileup = _particles([_particle(6.0, 1.1, 2.0, 22, 0.0, 0), _particle(6.0, 1.1, 2.05, 211, 1.0, 0)])
    clean = events.reconstruct(hard, none, 1, PERFECT, np.random.default_rng(0))
    piled = events.reconstruct(hard, none, 1, PERFECT, np.random.default_rng(0), pileup=pileup)
    unsubtracted = events.reconstruct(hard, none, 1, PERFECT, np.random.default_rng(0), pileup=pileup, chs=False)
    jet_code, met_code = events.OBJECT_TYPES["jet"], events.OBJECT_TYPES["met"]

    def leading(objects: dict[str, np.ndarray], code: int) -> float:
        return float(objects["pt"][objects["type"] == code].max())

    assert leading(clean, jet_code) == pytest.approx(50.0, rel=0.01)
    assert leading(piled, jet_code) == pytest.approx(56.0, rel=0.01)
    assert leading(unsubtracted, jet_code) == pytest.approx(62.0, rel=0.01)
    assert leading(piled, met_code) != pytest.approx(leading(clean, met_code))


def test_pileup_knobs_of_the_command_line_belong_to_events_and_the_boosted_cases(tmp_path, capsys):
    assert main(["generate", "toy", "--domain", "sim", "--n", "10", "--pileup-mu", "3", "--out",
                 str(tmp_path / "toy.parquet")]) == 2
    assert "--pileup-mu" in capsys.readouterr().err
    assert main(["generate", "events", "--channel", "tth", "--domain", "sim", "--n", "10", "--jes", "1.1",
                 "--out", str(tmp_path / "jes.parquet")]) == 2
    err = capsys.readouterr().err
    assert "--jes belong to the wjets and topjets cases" in err and "--pileup" not in err


# ---------------------------------------------------------------- generation (runs Pythia)


@pytest.mark.physics
def test_generated_channel_file_has_objects_and_metadata(tmp_path):
    out = events.generate("sim", 20, seed=3, out=tmp_path / "tth.parquet", channel="tth", progress=False)
    table = pq.read_table(out)
    assert table.num_rows == 20
    assert table.column_names == ["objects", *events.FLAT_FEATURES, "is_signal", "weight", "control", "event"]
    assert table.column("is_signal").to_numpy().sum() == 10
    assert (table.column("weight").to_numpy() == 1.0).all()
    assert len(set(table.column("event").to_pylist())) == 20
    objects = ak.from_arrow(table.column("objects"))
    assert ak.fields(objects) == list(events.OBJECT_FIELDS)
    assert ak.all(ak.sum(objects["type"] == events.OBJECT_TYPES["met"], axis=1) == 1)
    assert ak.all(objects.pt[:, :-1] >= objects.pt[:, 1:])
    jets = objects[objects["type"] == events.OBJECT_TYPES["jet"]]
    assert ak.all(jets.pt > 25.0) and ak.all(abs(jets.eta) < 2.5)
    assert ak.all(objects.btag[objects["type"] != events.OBJECT_TYPES["jet"]] == 0)
    np.testing.assert_array_equal(ak.to_numpy(ak.num(jets)), table.column("n_jets").to_numpy())
    np.testing.assert_allclose(ak.to_numpy(ak.sum(jets.pt, axis=1)), table.column("ht").to_numpy(), rtol=1e-5)
    metadata = json.loads(table.schema.metadata[b"sqnn"])
    assert metadata["channel"] == "tth" and metadata["signal_fraction"] == 0.5
    assert "HiggsSM:gg2Httbar = on" in metadata["processes"]["signal"]["pythia_settings"]
    assert "Top:gg2ttbar = on" in metadata["processes"]["background"]["pythia_settings"]
    assert metadata["objects"]["types"] == events.OBJECT_TYPES
    seeds = [run["pythia_seed"] for run in metadata["seeds"]["runs"]]
    assert len(set(seeds)) == len(seeds) == 2 and all(0 < s < 9e8 for s in seeds)
    # the same arguments give the same events
    again = events.generate("sim", 20, seed=3, out=tmp_path / "again.parquet", channel="tth", progress=False)
    assert pq.read_table(again).drop(["objects"]).equals(table.drop(["objects"]))


@pytest.mark.physics
def test_pileup_adds_neutral_particles_and_is_recorded(tmp_path):
    clean = events.generate("sim", 10, seed=5, out=tmp_path / "clean.parquet", channel="zprime500", progress=False)
    piled = events.generate("sim", 10, seed=5, out=tmp_path / "piled.parquet", channel="zprime500", progress=False,
                            pileup_mu=40)
    metadata = json.loads(pq.read_schema(piled).metadata[b"sqnn"])
    assert json.loads(pq.read_schema(clean).metadata[b"sqnn"])["pileup"] is None
    assert metadata["pileup"]["mu"] == 40 and "charged-hadron subtraction" in metadata["pileup"]["subtraction"]
    runs = metadata["seeds"]["runs"]
    assert all(0 < run["pileup_pool_seed"] < 9e8 for run in runs)
    assert len({run["pileup_pool_seed"] for run in runs}) == len(runs)
    # the same hard events (same Pythia seeds), with pileup neutrals added to their jets
    ht_clean, ht_piled = (pq.read_table(f).column("ht").to_numpy() for f in (clean, piled))
    assert ht_piled.sum() > ht_clean.sum()
