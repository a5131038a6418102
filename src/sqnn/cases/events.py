"""Full collider events of several analysis channels, as variable-length lists of objects.

``generate(domain, n, seed, out, channel=NAME)`` writes one parquet file of ``n`` events
(rows): the signal process of the channel and its background, for the transfer-learning
study (a set model trained on one channel and fine-tuned on another).

Channels (``sqnn generate events --list``)
    pp at 13 TeV, Pythia 8, one Pythia instance per (process, class, domain, task).

    ============  ==========  =====================================================
    name          role        hard process
    ============  ==========  =====================================================
    ``ttbar``     background  tt̄: ``Top:gg2ttbar``, ``Top:qqbar2ttbar``
    ``tth``       signal      tt̄H, H → bb̄: ``HiggsSM:gg2Httbar``,
                              ``HiggsSM:qqbar2Httbar``, ``25:onMode = off``,
                              ``25:onIfAny = 5``
    ``zprime``    signal      Z′ (1.5 TeV, no γ*/Z interference) → tt̄:
                              ``NewGaugeBoson:ffbar2gmZZprime``, ``Zprime:gmZmode = 3``,
                              ``32:onMode = off``, ``32:onIfAny = 6``,
                              ``PhaseSpace:mHatMin = 1000``
    ``wprime``    signal      W′ (1 TeV) → WZ, W and Z decaying inclusively:
                              ``NewGaugeBoson:ffbar2Wprime``, ``Wprime:coup2WZ = 1``,
                              ``34:onMode = off``, ``34:onIfAll = 23 24``,
                              ``PhaseSpace:mHatMin = 500``
    ``ttphi``     signal      tt̄φ, a 300 GeV scalar → bb̄ (the BSM H2 of Pythia):
                              ``Higgs:useBSM``, ``HiggsBSM:gg2H2ttbar``,
                              ``HiggsBSM:qqbar2H2ttbar``, ``35:m0 = 300``,
                              ``35:onMode = off``, ``35:onIfAny = 5``
    ``zprime500`` signal      Z′ (500 GeV) → tt̄, as ``zprime`` with ``32:m0 = 500``
                              and ``PhaseSpace:mHatMin = 400``: a resonance on top
                              of the tt̄ mass peak, the signal closest to its
                              background
    ============  ==========  =====================================================

    A signal channel's file holds its signal (``is_signal = 1``) and tt̄ background
    (``is_signal = 0``) with signal fraction 0.5 in ``sim`` and 0.3 in ``data`` (or
    ``signal_fraction``). The background channel ``ttbar`` holds only tt̄ events.
    The final states differ in multiplicity: tt̄H and tt̄φ have ~6–8 jets with four b
    quarks, Z′ → tt̄ two boosted tops (merged, high-pT jets), W′ → WZ two bosons (few jets,
    sometimes leptons); Z′(500) → tt̄ looks like tt̄ itself except for the tt̄ mass.
Domains
    ``sim``: Monash 2013 tune and the nominal detector; ``data``: ATLAS A14 tune and the
    shifted detector of :mod:`sqnn.cases.detector` (the same change as the jet case).
Pileup
    Off by default in both domains. ``pileup_mu`` = μ > 0 overlays Poisson(μ) minimum-bias
    events (``SoftQCD:nonDiffractive``, the domain's tune) on every hard event, drawn from a
    pool of :data:`PILEUP_POOL_EVENTS` events per task, each copy rotated in φ and mirrored
    in z (:class:`sqnn.cases._pythia.PileupPool`). They pass the detector with the hard
    event; with ``chs`` (default) tracked pileup particles are removed (charged-hadron
    subtraction), pileup neutrals stay in jets, isolation cones and the missing pT.
Objects
    From the reconstructed particles (:class:`~sqnn.cases.detector.Detector`):

    * electrons and muons with pT > 10 GeV, photons with pT > 20 GeV, each isolated:
      the scalar pT sum of the other reconstructed particles within ΔR < 0.3 is below
      0.15 of its pT;
    * jets: anti-kT R = 0.4 on all other reconstructed particles (isolated leptons and
      photons removed), pT > 25 GeV, |η| < 2.5; b-tagged with probability 0.7 if a B hadron
      with pT > 5 GeV lies within ΔR < 0.4 (η-φ), else 0.1 if a C hadron does, else 0.01;
    * missing transverse momentum: minus the vector sum of all reconstructed particles.

    ``objects`` is a jagged column: per event a list, sorted by decreasing pT, of records
    ``(pt [GeV], eta, phi, e [GeV], type, btag)`` with the type codes of :data:`OBJECT_TYPES`
    (jet 0, electron 1, muon 2, photon 3, MET 4; MET has η = 0 and E = its pT) and
    ``btag`` 0/1 (always 0 except for jets). Every event has exactly one MET object.
Columns
    ``objects``; the flat high-level features ``n_jets``, ``n_btags``, ``n_leptons``,
    ``n_photons``, ``ht`` (scalar sum of jet pT) and ``met``; ``is_signal`` (int8),
    ``weight`` (float32, 1), ``control`` (``ht < 250 GeV``: a low-HT region where tt̄
    dominates) and ``event`` (int64: class << 44 | task << 24 | index within the task).
    No event selection: every generated event is one row.
Seeds
    The events of each class are made in tasks of :data:`TASK_EVENTS`; task ``t`` of class
    ``c`` runs its own Pythia seeded from (``seed``, domain, channel, class, t), and its own
    detector and b-tagging random sequence (and, with pileup, its own pool and overlay
    sequence), so the file does not depend on ``workers`` and the tt̄ background of two
    channel files generated with the same seed is not shared.
    Settings, seeds and versions are written as JSON under the key ``sqnn`` of the parquet
    key-value metadata.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sqnn.files import atomic_path
from sqnn.cases import _pythia
from sqnn.cases.detector import Detector
from sqnn.errors import SqnnError, option, phrase

__all__ = [
    "CHANNELS",
    "FLAT_FEATURES",
    "OBJECT_FIELDS",
    "OBJECT_TYPES",
    "Channel",
    "channel_lines",
    "generate",
    "reconstruct",
    "with_pileup",
]

FORMAT_VERSION = 1
DOMAINS = ("sim", "data")
DOMAIN_CODE = {"sim": 0, "data": 1}
CLASS_CODE = {"background": 0, "signal": 1}
PILEUP_CODE = 2
SHUFFLE_CODE = 3
DEFAULT_SIGNAL_FRACTION = {"sim": 0.5, "data": 0.3}
MAX_SEED = 2**32 - 1
MAX_WORKERS = 64
TASK_EVENTS = 400
CHUNK_EVENTS = 200
PILEUP_PROCESS = ("SoftQCD:nonDiffractive = on",)
PILEUP_POOL_EVENTS = 200
PILEUP_ABS_ETA_MAX = 3.0
MAX_PILEUP_MU = 200.0

BEAM = ["Beams:idA = 2212", "Beams:idB = 2212", "Beams:eCM = 13000."]
TUNES = {"sim": (14, "Monash 2013"), "data": (21, "ATLAS A14, NNPDF2.3LO")}


@dataclass(frozen=True)
class Channel:
    """One analysis channel: its role, Pythia process settings and a short description."""

    code: int
    role: str
    settings: tuple[str, ...]
    description: str


BACKGROUND = "ttbar"
CHANNELS: dict[str, Channel] = {
    "ttbar": Channel(0, "background", ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"), "top-quark pairs"),
    "tth": Channel(
        1,
        "signal",
        ("HiggsSM:gg2Httbar = on", "HiggsSM:qqbar2Httbar = on", "25:onMode = off", "25:onIfAny = 5"),
        "ttH, H -> bb",
    ),
    "zprime": Channel(
        2,
        "signal",
        (
            "NewGaugeBoson:ffbar2gmZZprime = on",
            "Zprime:gmZmode = 3",
            "32:m0 = 1500.",
            "32:onMode = off",
            "32:onIfAny = 6",
            "PhaseSpace:mHatMin = 1000.",
        ),
        "Z' (1.5 TeV) -> tt",
    ),
    "wprime": Channel(
        3,
        "signal",
        (
            "NewGaugeBoson:ffbar2Wprime = on",
            "34:m0 = 1000.",
            "Wprime:coup2WZ = 1.",
            "34:onMode = off",
            "34:onIfAll = 23 24",
            "PhaseSpace:mHatMin = 500.",
        ),
        "W' (1 TeV) -> WZ, inclusive decays",
    ),
    "ttphi": Channel(
        4,
        "signal",
        (
            "Higgs:useBSM = on",
            "HiggsBSM:gg2H2ttbar = on",
            "HiggsBSM:qqbar2H2ttbar = on",
            "35:m0 = 300.",
            "35:onMode = off",
            "35:onIfAny = 5",
        ),
        "tt + scalar (300 GeV) -> bb",
    ),
    "zprime500": Channel(
        5,
        "signal",
        (
            "NewGaugeBoson:ffbar2gmZZprime = on",
            "Zprime:gmZmode = 3",
            "32:m0 = 500.",
            "32:onMode = off",
            "32:onIfAny = 6",
            "PhaseSpace:mHatMin = 400.",
        ),
        "Z' (500 GeV) -> tt, on top of the tt mass peak",
    ),
}

OBJECT_TYPES = {"jet": 0, "electron": 1, "muon": 2, "photon": 3, "met": 4}
OBJECT_FIELDS = ("pt", "eta", "phi", "e", "type", "btag")
FLAT_FEATURES = {
    "n_jets": "number of jets",
    "n_btags": "number of b-tagged jets",
    "n_leptons": "number of isolated electrons and muons",
    "n_photons": "number of isolated photons",
    "ht": "scalar sum of jet pT [GeV]",
    "met": "missing transverse momentum [GeV]",
}

JETS = {"algorithm": "antikt", "radius": 0.4, "pt_min": 25.0, "abs_eta_max": 2.5}
LEPTON_PT_MIN = 10.0
PHOTON_PT_MIN = 20.0
ISOLATION = {"cone": 0.3, "max_relative": 0.15}
BTAG = {"match_dr": 0.4, "hadron_pt_min": 5.0, "efficiency_b": 0.7, "mistag_c": 0.1, "mistag_light": 0.01}
CONTROL_HT_MAX = 250.0


def channel_lines() -> list[str]:
    """``NAME<TAB>signal|background`` for every channel, as ``--list`` prints them."""
    return [f"{name}\t{channel.role}" for name, channel in CHANNELS.items()]


def domain_settings(domain: str) -> dict[str, Any]:
    tune, tune_name = TUNES[domain]
    return {
        "tune": tune,
        "tune_name": tune_name,
        "detector": Detector.nominal() if domain == "sim" else Detector.shifted(),
    }


def _pythia_settings(domain: str, process: str) -> list[str]:
    """Pythia lines of a channel's process, or of the minimum-bias pileup (``process="pileup"``)."""
    lines = PILEUP_PROCESS if process == "pileup" else CHANNELS[process].settings
    # the tune first: it resets parameters that later lines may set
    return [f"Tune:pp = {TUNES[domain][0]}", *BEAM, *lines]


# ---------------------------------------------------------------- reconstruction


def _same_event_pairs(event_a: np.ndarray, event_b: np.ndarray, n_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j) of every pair of an ``a`` and a ``b`` entry of the same event (``event_b`` sorted)."""
    counts_b = np.bincount(event_b, minlength=n_events)
    start_b = np.concatenate([[0], np.cumsum(counts_b)[:-1]])
    per_a = counts_b[event_a]
    i = np.repeat(np.arange(len(event_a)), per_a)
    within = np.arange(int(per_a.sum())) - np.repeat(np.cumsum(per_a) - per_a, per_a)
    return i, start_b[event_a][i] + within


def _delta_r(eta_a: np.ndarray, phi_a: np.ndarray, eta_b: np.ndarray, phi_b: np.ndarray) -> np.ndarray:
    return np.hypot(eta_a - eta_b, _pythia.wrap_phi(phi_a - phi_b))


def relative_isolation(
    candidates: np.ndarray, eta: np.ndarray, phi: np.ndarray, pt: np.ndarray, event: np.ndarray, n_events: int
) -> np.ndarray:
    """Scalar pT sum of the other particles within ΔR < 0.3 of each candidate, over its pT.

    ``candidates`` index the particle arrays, which are ordered by ``event``.
    """
    i, j = _same_event_pairs(event[candidates], event, n_events)
    c = candidates[i]
    near = (j != c) & (_delta_r(eta[c], phi[c], eta[j], phi[j]) < ISOLATION["cone"])
    cone = np.bincount(i[near], weights=pt[j[near]], minlength=len(candidates))
    return cone / pt[candidates]


def _flavour(pid: np.ndarray) -> np.ndarray:
    """5 for hadrons with a b quark, 4 for hadrons with a c quark (and no b), else 0 (PDG numbering)."""
    a = np.abs(pid) % 10_000
    q1, q2, q3 = (a // 1000) % 10, (a // 100) % 10, (a // 10) % 10
    hadron = (np.abs(pid) > 100) & (np.abs(pid) < 1_000_000) & (q3 != 0)
    has_b = (q1 == 5) | (q2 == 5) | (q3 == 5)
    has_c = (q1 == 4) | (q2 == 4) | (q3 == 4)
    return np.where(hadron & has_b, 5, np.where(hadron & has_c, 4, 0))


def heavy_hadrons(batch: ak.Array) -> dict[str, np.ndarray]:
    """B and C hadrons (any status) with pT above the matching threshold, ordered by event."""
    prt = batch.prt
    n_per_event = ak.to_numpy(ak.num(prt.id))
    flat = ak.flatten(prt)
    flavour = _flavour(ak.to_numpy(flat.id))
    event = np.repeat(np.arange(len(n_per_event), dtype=np.int64), n_per_event)
    rows = np.flatnonzero(flavour > 0)
    momentum = flat.p[rows]
    kin = _pythia.kinematics(*(ak.to_numpy(getattr(momentum, key)) for key in ("px", "py", "pz", "e")))
    keep = kin["pt"] > BTAG["hadron_pt_min"]
    return {"event": event[rows][keep], "eta": kin["eta"][keep], "phi": kin["phi"][keep], "flavour": flavour[rows][keep]}


def btag_probability(
    jet_event: np.ndarray, jet_eta: np.ndarray, jet_phi: np.ndarray, hadrons: Mapping[str, np.ndarray], n_events: int
) -> np.ndarray:
    """Tagging probability of each jet from its ΔR match to B and C hadrons."""
    i, j = _same_event_pairs(jet_event, hadrons["event"], n_events)
    close = _delta_r(jet_eta[i], jet_phi[i], hadrons["eta"][j], hadrons["phi"][j]) < BTAG["match_dr"]
    flavour = np.zeros(len(jet_event), dtype=np.int64)
    np.maximum.at(flavour, i[close], hadrons["flavour"][j][close])
    return np.where(flavour == 5, BTAG["efficiency_b"], np.where(flavour == 4, BTAG["mistag_c"], BTAG["mistag_light"]))


def with_pileup(
    particles: Mapping[str, np.ndarray],
    pileup: Mapping[str, np.ndarray] | None,
    detector: Detector,
    rng: np.random.Generator,
    chs: bool = True,
) -> dict[str, np.ndarray]:
    """Reconstructed particles of the hard events and their overlaid ``pileup`` (None: none).

    Both pass the detector together; with ``chs`` the tracked pileup particles are removed
    (each is known to come from another vertex), pileup neutrals cannot be told apart and stay.
    The result is ordered by ``event``.
    """
    if pileup is None:
        return detector.apply(particles, rng)
    hard = {**particles, "pileup": np.zeros(len(particles["px"]), dtype=bool)}
    soft = {key: np.asarray(pileup[key]) for key in particles}
    soft["pileup"] = np.ones(len(soft["px"]), dtype=bool)
    merged = {key: np.concatenate([np.asarray(hard[key]), soft[key]]) for key in hard}
    order = np.argsort(merged["event"], kind="stable")
    reco = detector.apply({key: value[order] for key, value in merged.items()}, rng)
    from_pileup = reco.pop("pileup")
    if chs:
        keep = ~from_pileup | (reco["charge"] == 0)
        reco = {key: value[keep] for key, value in reco.items()}
    return reco


def reconstruct(
    particles: Mapping[str, np.ndarray],
    hadrons: Mapping[str, np.ndarray],
    n_events: int,
    detector: Detector,
    rng: np.random.Generator,
    pileup: Mapping[str, np.ndarray] | None = None,
    chs: bool = True,
) -> dict[str, np.ndarray]:
    """Objects of a batch of events from their true final-state particles and heavy hadrons.

    ``particles`` are flat and ordered by ``event`` (as :func:`sqnn.cases._pythia.final_state`
    gives them); ``pileup`` are overlaid minimum-bias particles with the hard ``event`` they
    belong to (see :func:`with_pileup`). Returns flat object arrays ordered by (event,
    decreasing pT) with ``event``, and per-event ``counts``.
    """
    reco = with_pileup(particles, pileup, detector, rng, chs)
    event = np.asarray(reco["event"], dtype=np.int64)
    kin = _pythia.kinematics(reco["px"], reco["py"], reco["pz"], reco["e"])
    apid = np.abs(reco["pid"])
    lepton_like = ((apid == 11) | (apid == 13)) & (kin["pt"] > LEPTON_PT_MIN)
    photon_like = (reco["pid"] == 22) & (kin["pt"] > PHOTON_PT_MIN)
    candidates = np.flatnonzero(lepton_like | photon_like)
    isolation = relative_isolation(candidates, kin["eta"], kin["phi"], kin["pt"], event, n_events)
    isolated = candidates[isolation < ISOLATION["max_relative"]]

    pieces: list[dict[str, np.ndarray]] = []
    for name, code in (("electron", 11), ("muon", 13), ("photon", 22)):
        rows = isolated[(reco["pid"][isolated] == 22) if code == 22 else (apid[isolated] == code)]
        pieces.append(_objects(event[rows], kin["pt"][rows], kin["eta"][rows], kin["phi"][rows],
                               np.asarray(reco["e"])[rows], OBJECT_TYPES[name]))

    jet_input = np.ones(len(event), dtype=bool)
    jet_input[isolated] = False
    inputs = {key: np.asarray(reco[key])[jet_input] for key in ("px", "py", "pz", "e")}
    counts = np.bincount(event[jet_input], minlength=n_events)
    sequence = _pythia.cluster(inputs, counts, JETS["algorithm"], JETS["radius"])
    jets = sequence.inclusive_jets(JETS["pt_min"])
    jet_event = np.repeat(np.arange(n_events, dtype=np.int64), ak.to_numpy(ak.num(jets.px)))
    jet_p = {key: ak.to_numpy(ak.flatten(jets[field])) for key, field in
             (("px", "px"), ("py", "py"), ("pz", "pz"), ("e", "E"))}
    jet_kin = _pythia.kinematics(jet_p["px"], jet_p["py"], jet_p["pz"], jet_p["e"])
    keep = (jet_kin["pt"] > JETS["pt_min"]) & (np.abs(jet_kin["eta"]) < JETS["abs_eta_max"])
    jet_event = jet_event[keep]
    jet_eta, jet_phi = jet_kin["eta"][keep], jet_kin["phi"][keep]
    probability = btag_probability(jet_event, jet_eta, jet_phi, hadrons, n_events)
    tagged = rng.random(len(jet_event)) < probability
    pieces.append(_objects(jet_event, jet_kin["pt"][keep], jet_eta, jet_phi, jet_p["e"][keep],
                           OBJECT_TYPES["jet"], tagged))

    met_x = -np.bincount(event, weights=reco["px"], minlength=n_events)
    met_y = -np.bincount(event, weights=reco["py"], minlength=n_events)
    met = np.hypot(met_x, met_y)
    pieces.append(_objects(np.arange(n_events, dtype=np.int64), met, np.zeros(n_events), np.arctan2(met_y, met_x),
                           met, OBJECT_TYPES["met"]))

    merged = {key: np.concatenate([piece[key] for piece in pieces]) for key in pieces[0]}
    order = np.lexsort((-merged["pt"], merged["event"]))
    out = {key: value[order] for key, value in merged.items()}
    out["counts"] = np.bincount(out["event"], minlength=n_events)
    return out


def _objects(event: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, e: np.ndarray, code: int,
             btag: np.ndarray | None = None) -> dict[str, np.ndarray]:
    n = len(event)
    return {
        "event": np.asarray(event, dtype=np.int64),
        "pt": np.asarray(pt, dtype=np.float64),
        "eta": np.asarray(eta, dtype=np.float64),
        "phi": np.asarray(phi, dtype=np.float64),
        "e": np.asarray(e, dtype=np.float64),
        "type": np.full(n, code, dtype=np.int8),
        "btag": np.zeros(n, dtype=np.int8) if btag is None else np.asarray(btag, dtype=np.int8),
    }


def high_level(objects: Mapping[str, np.ndarray], n_events: int) -> dict[str, np.ndarray]:
    """The flat features of :data:`FLAT_FEATURES` from the objects of a batch."""
    event, kind = objects["event"], objects["type"]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(event[mask], minlength=n_events).astype(np.int32)

    jet = kind == OBJECT_TYPES["jet"]
    met = kind == OBJECT_TYPES["met"]
    met_value = np.zeros(n_events)
    met_value[event[met]] = objects["pt"][met]
    return {
        "n_jets": count(jet),
        "n_btags": count(jet & (objects["btag"] == 1)),
        "n_leptons": count((kind == OBJECT_TYPES["electron"]) | (kind == OBJECT_TYPES["muon"])),
        "n_photons": count(kind == OBJECT_TYPES["photon"]),
        "ht": np.bincount(event[jet], weights=objects["pt"][jet], minlength=n_events).astype(np.float32),
        "met": met_value.astype(np.float32),
    }


def objects_array(objects: Mapping[str, np.ndarray]) -> pa.ListArray:
    """The jagged ``objects`` column from flat object arrays ordered by event."""
    fields = [
        pa.array(np.asarray(objects[name]).astype(np.int8 if name in ("type", "btag") else np.float32))
        for name in OBJECT_FIELDS
    ]
    records = pa.StructArray.from_arrays(fields, names=list(OBJECT_FIELDS))
    offsets = np.concatenate([[0], np.cumsum(objects["counts"])]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), records)


# ---------------------------------------------------------------- tasks


@dataclass(frozen=True)
class _Task:
    domain: str
    channel: str
    process: str  # the channel whose Pythia settings run: the signal channel or ttbar
    role: str  # signal or background
    index: int
    n_events: int
    seed: int
    pileup_mu: float = 0.0
    chs: bool = True

    def keys(self) -> tuple[int, ...]:
        return (DOMAIN_CODE[self.domain], CHANNELS[self.channel].code, CLASS_CODE[self.role], self.index)

    def seeds(self) -> dict[str, Any]:
        seeds: dict[str, Any] = {
            "pythia": _pythia.derive_seed(self.seed, *self.keys()),
            # detector and b-tagging draws: numpy's SeedSequence entropy, apart from Pythia's
            "rng": [self.seed, *self.keys(), 1],
        }
        if self.pileup_mu > 0:
            seeds["pileup_pool"] = _pythia.derive_seed(self.seed, *self.keys(), PILEUP_CODE)
            # which pool events are overlaid: its own random sequence, so that CHS on and off see the same pileup
            seeds["pileup_rng"] = [self.seed, *self.keys(), PILEUP_CODE]
        return seeds


def _run_task(task: _Task) -> tuple[pa.Table, dict[str, Any]]:
    """Generate and reconstruct the events of one task into a table (rows in generation order)."""
    seeds = task.seeds()
    settings = domain_settings(task.domain)
    pythia = _pythia.new_pythia(_pythia_settings(task.domain, task.process), seeds["pythia"])
    charges = _pythia.ChargeTable(pythia.particleData)
    rng = np.random.default_rng(np.random.SeedSequence(seeds["rng"]))
    pool, pileup_rng = None, None
    if task.pileup_mu > 0:
        pool = _pythia.PileupPool.generate(_pythia_settings(task.domain, "pileup"), seeds["pileup_pool"],
                                           PILEUP_POOL_EVENTS, abs_eta_max=PILEUP_ABS_ETA_MAX)
        pileup_rng = np.random.default_rng(np.random.SeedSequence(seeds["pileup_rng"]))
    tables, done = [], 0
    while done < task.n_events:
        batch = pythia.nextBatch(min(CHUNK_EVENTS, task.n_events - done))
        n_events = len(batch)
        particles = _pythia.final_state(batch, charges)
        overlay = None if pool is None else pool.overlay(n_events, task.pileup_mu, pileup_rng)
        objects = reconstruct(particles, heavy_hadrons(batch), n_events, settings["detector"], rng,
                              pileup=overlay, chs=task.chs)
        columns: dict[str, pa.Array] = {"objects": objects_array(objects)}
        flat = high_level(objects, n_events)
        columns.update({name: pa.array(value) for name, value in flat.items()})
        columns["is_signal"] = pa.array(np.full(n_events, CLASS_CODE[task.role], dtype=np.int8))
        columns["weight"] = pa.array(np.ones(n_events, dtype=np.float32))
        columns["control"] = pa.array(flat["ht"] < CONTROL_HT_MAX)
        event = (
            (np.int64(CLASS_CODE[task.role]) << 44)
            | (np.int64(task.index) << 24)
            | (done + np.arange(n_events, dtype=np.int64))
        )
        columns["event"] = pa.array(event)
        tables.append(pa.table(columns))
        done += n_events
    run = {"class": task.role, "process": task.process, "task": task.index, "events": done,
           "pythia_seed": seeds["pythia"], "rng_seed": seeds["rng"]}
    if pool is not None:
        run.update(pileup_pool_seed=seeds["pileup_pool"], pileup_rng_seed=seeds["pileup_rng"])
    return pa.concat_tables(tables), run


def _tasks(domain: str, channel: str, n_signal: int, n_background: int, seed: int,
           pileup_mu: float = 0.0, chs: bool = True) -> list[_Task]:
    tasks = []
    for role, process, total in (("signal", channel, n_signal), ("background", BACKGROUND, n_background)):
        for index, start in enumerate(range(0, total, TASK_EVENTS)):
            tasks.append(_Task(domain, channel, process, role, index, min(TASK_EVENTS, total - start), seed,
                               pileup_mu, chs))
    return tasks


def _worker_init() -> None:
    # the parent handles Ctrl-C: a worker finishes its task and is then not given another
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_NUM_THREADS"] = "1"


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_tasks(tasks: list[_Task], workers: int, report: Callable[[int], None]) -> list[tuple[pa.Table, dict[str, Any]]]:
    """Results in task order; ``workers`` fresh interpreters (spawn) share the tasks."""
    if workers == 1:
        results = []
        for task in tasks:
            results.append(_run_task(task))
            report(task.n_events)
        return results
    results_by_task: dict[int, tuple[pa.Table, dict[str, Any]]] = {}
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_worker_init)
    try:
        with _sigterm_as_interrupt():
            pending: dict[Future[tuple[pa.Table, dict[str, Any]]], int] = {
                executor.submit(_run_task, task): k for k, task in enumerate(tasks)
            }
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    k = pending.pop(future)
                    results_by_task[k] = future.result()
                    report(tasks[k].n_events)
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return [results_by_task[k] for k in range(len(tasks))]


# ---------------------------------------------------------------- the file


def _pileup_metadata(domain: str, pileup_mu: float, chs: bool) -> dict[str, Any] | None:
    if pileup_mu <= 0:
        return None
    return {
        "mu": pileup_mu,
        "pool_events_per_task": PILEUP_POOL_EVENTS,
        "pool_abs_eta_max": PILEUP_ABS_ETA_MAX,
        "process": list(PILEUP_PROCESS),
        "pythia_settings": ["Print:quiet = on", *_pythia_settings(domain, "pileup")],
        "overlay": "Poisson(mu) pool events per hard event, each rotated in phi and mirrored in z with probability 1/2",
        "subtraction": ("charged-hadron subtraction: tracked pileup charged particles removed, pileup neutrals kept"
                        if chs else "none: every reconstructed pileup particle is kept"),
    }


def _metadata(domain: str, channel: str, n: int, n_signal: int, seed: int, workers: int,
              fraction: float, runs: list[dict[str, Any]], shuffle_seed: list[int],
              pileup_mu: float = 0.0, chs: bool = True) -> dict[str, Any]:
    settings = domain_settings(domain)
    processes = {"background": BACKGROUND} if CHANNELS[channel].role == "background" else {
        "signal": channel, "background": BACKGROUND}
    return {
        "case": "events",
        "format": FORMAT_VERSION,
        "channel": channel,
        "channel_role": CHANNELS[channel].role,
        "domain": domain,
        "n": n,
        "n_signal": n_signal,
        "n_background": n - n_signal,
        "signal_fraction": fraction,
        "seed": seed,
        "workers": workers,
        "beam": BEAM,
        "processes": {role: {"channel": name, "description": CHANNELS[name].description,
                             "pythia_settings": ["Print:quiet = on", *_pythia_settings(domain, name)]}
                      for role, name in processes.items()},
        "tune": {"Tune:pp": settings["tune"], "name": settings["tune_name"]},
        "detector": settings["detector"].to_dict(),
        "pileup": _pileup_metadata(domain, pileup_mu, chs),
        "objects": {
            "column": "objects",
            "fields": list(OBJECT_FIELDS),
            "types": OBJECT_TYPES,
            "order": "decreasing pT within the event",
            "jets": {**JETS, "input": "reconstructed particles without isolated leptons and photons"},
            "electrons_muons": {"pt_min": LEPTON_PT_MIN, "isolation": ISOLATION},
            "photons": {"pt_min": PHOTON_PT_MIN, "isolation": ISOLATION},
            "btag": {**BTAG, "match": "dR(eta, phi) to B (else C) hadrons of any status"},
            "met": "minus the vector sum of all reconstructed particles; eta = 0, E = pT",
        },
        "features": FLAT_FEATURES,
        "control_region": {"column": "control", "definition": f"ht < {CONTROL_HT_MAX:g} GeV"},
        "event": "int64 id: class << 44 | task << 24 | index within the task",
        "seeds": {"runs": runs, "shuffle": shuffle_seed, "task_events": TASK_EVENTS},
        "versions": _pythia.versions(),
    }


def _validate(domain: str, n: int, seed: int, workers: int, signal_fraction: float | None, channel: str | None,
              pileup_mu: float = 0.0) -> str:
    if not 0.0 <= pileup_mu <= MAX_PILEUP_MU:
        raise SqnnError(f"{option('pileup_mu')} must lie in [0, {MAX_PILEUP_MU:g}], got {pileup_mu!r}")
    if channel is None:
        raise SqnnError(
            f"choose a channel with {option('channel', 'NAME')} ({', '.join(CHANNELS)}; "
            f"{phrase('channel_lines() describes them', '--list shows them')})"
        )
    if channel not in CHANNELS:
        raise SqnnError(f"unknown channel {channel!r}; choose one of {', '.join(CHANNELS)}")
    _pythia.validate_generation(
        domain, n, seed, workers, signal_fraction, unit="events", domains=DOMAINS, max_seed=MAX_SEED, max_workers=MAX_WORKERS
    )
    return channel


def generate(
    domain: str,
    n: int,
    seed: int,
    out: str | Path,
    *,
    channel: str | None = None,
    workers: int = 1,
    signal_fraction: float | None = None,
    progress: bool = True,
    pileup_mu: float | None = None,
    chs: bool | None = None,
) -> Path:
    """Generate ``n`` events of ``channel`` in ``domain`` ("sim" or "data") into the parquet file ``out``.

    ``pileup_mu`` > 0 overlays pileup (default none), ``chs`` (default True) subtracts its
    tracked particles; without them the file is the same as before they existed.

    >>> generate("sim", 20, seed=1, out="tth.parquet", channel="tth", progress=False)  # doctest: +SKIP
    PosixPath('tth.parquet')
    >>> generate("sim", 20, seed=1, out="tth_mu20.parquet", channel="tth", pileup_mu=20)  # doctest: +SKIP
    PosixPath('tth_mu20.parquet')
    """
    mu = 0.0 if pileup_mu is None else float(pileup_mu)
    subtract = True if chs is None else bool(chs)
    channel = _validate(domain, n, seed, workers, signal_fraction, channel, mu)
    if CHANNELS[channel].role == "background":
        fraction = 0.0
    else:
        fraction = DEFAULT_SIGNAL_FRACTION[domain] if signal_fraction is None else float(signal_fraction)
    n_signal = int(round(n * fraction))
    tasks = _tasks(domain, channel, n_signal, int(n) - n_signal, int(seed), mu, subtract)
    workers = min(int(workers), len(tasks))
    from tqdm import tqdm

    bar = tqdm(total=int(n), unit="event", file=sys.stderr, disable=not progress, dynamic_ncols=True,
               desc=f"{channel} {domain}")
    start = time.monotonic()

    def report(events: int) -> None:
        bar.update(events)
        bar.set_postfix_str(f"{bar.n / max(time.monotonic() - start, 1e-9):.0f} events/s", refresh=False)

    try:
        # Ctrl-C or SIGTERM: running tasks finish, nothing is written
        results = _run_tasks(tasks, workers, report)
    finally:
        bar.close()
    table = pa.concat_tables([result[0] for result in results])
    shuffle_seed = [int(seed), DOMAIN_CODE[domain], CHANNELS[channel].code, SHUFFLE_CODE]
    order = np.random.default_rng(np.random.SeedSequence(shuffle_seed)).permutation(table.num_rows)
    table = table.take(pa.array(order))
    metadata = _metadata(domain, channel, int(n), n_signal, int(seed), workers, fraction,
                         [result[1] for result in results], shuffle_seed, mu, subtract)
    table = table.replace_schema_metadata({"sqnn": json.dumps(metadata)})
    out = Path(out)
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return out
