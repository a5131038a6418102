"""Boosted-jet samples: one Pythia stream of hard events, reconstructed in one or more ways.

The W-jet (:mod:`sqnn.cases.wjets`) and top-jet (:mod:`sqnn.cases.topjets`) cases are a
:class:`Process` each (signal and background Pythia settings, truth matching, jet window and
control region); everything else lives here:

* :class:`GeneratorSettings`: what enters Pythia (tune, shower alpha_s, hadronisation,
  multiple interactions, extra lines), written after the tune because the tune resets them.
* :class:`Reconstruction`: what happens after Pythia (detector, pileup with or without
  charged-hadron subtraction, jet radius and pT window). Several reconstructions of the same
  hard events cost one Pythia run and one reconstruction each.
* two ways to run a stream, both resumable from ``<parts>``:

  - *lanes* (``generate`` of one file, the historical layout): every worker runs its own
    Pythia from its first chunk to its share of the jets; the file depends on the seed and
    on the number of workers, and a resumed lane is seeded from its first new chunk.
  - *chunks* (the suite): Pythia is initialised once per class from the stream's seed and
    re-seeded at every chunk, so chunk ``k`` holds the same events whichever worker makes it
    and whether or not the run was interrupted. A file takes chunks 0, 1, ... until it has its
    jets, so it depends on the seed and the stream, not on the workers or on which other
    reconstructions were asked for at the same time.

Event ids are ``stream << 45 | class << 44 | lane << 36 | chunk << 12 | index``; the stream
code is 0 for single files and unique per suite stream, so files of different streams never
share an id.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import queue as queue_module
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from importlib import import_module
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sqnn.files import atomic_path
from sqnn.cases import _pythia
from sqnn.cases.detector import Detector
from sqnn.errors import SqnnError

__all__ = [
    "CLASSES",
    "DOMAIN_DEFAULTS",
    "GenerationInterrupted",
    "GeneratorSettings",
    "Output",
    "Process",
    "Reconstruction",
    "Stream",
    "features",
    "generate_file",
    "make_stream",
    "process_named",
    "produce",
    "resolve",
]

FORMAT_VERSION = 1
DOMAINS = ("sim", "data")
CLASSES = ("signal", "background")
DOMAIN_CODE = {"sim": 0, "data": 1}
CLASS_CODE = {"background": 0, "signal": 1}
# the last key of a seed derivation says what the seed is for
PILEUP_CODE = 2
SHUFFLE_CODE = 3
INIT_CODE = 4
CHUNK_CODE = 5
DETECTOR_CODE = 6
MAX_SEED = 2**32 - 1
MAX_WORKERS = 255
MAX_STREAM_CODE = 2**18 - 1

BEAM = ["Beams:idA = 2212", "Beams:idB = 2212", "Beams:eCM = 13000."]
PILEUP_PROCESS = ["SoftQCD:nonDiffractive = on"]
PILEUP_POOL_EVENTS = 400
TUNE_NAMES = {14: "Monash 2013", 21: "ATLAS A14, NNPDF2.3LO"}

CHUNK_EVENTS = 200
JET_ABS_ETA_MAX = 2.0
LEADING_JETS = 2
MIN_CONSTITUENTS = 3
N_CONSTITUENTS_KEPT = 30
CONSTITUENT_FIELDS = ("pt", "deta", "dphi", "charge")

# the simulation and "data" of a single file; a knob of `resolve` replaces one of these
DOMAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "sim": {"tune": 14, "detector": "nominal", "pileup_mu": 0.0, "signal_fraction": 0.5},
    "data": {"tune": 21, "detector": "shifted", "pileup_mu": 10.0, "signal_fraction": 0.3},
}


def features(radius: float) -> dict[str, str]:
    """The jet features every boosted-jet file has, in column order, with their meaning."""
    return {
        "pt": "jet transverse momentum [GeV]",
        "eta": "jet pseudorapidity",
        "mass": "jet mass [GeV]",
        "n_constituents": "number of reconstructed constituents",
        "n_charged": "number of charged (tracked) constituents",
        "girth": "sum_i pT_i dR_i / pT_jet",
        "ptd": "sqrt(sum_i pT_i^2) / sum_i pT_i",
        "tau1": f"N-subjettiness, beta = 1, exclusive-kT axes, normalised by sum pT_i * {radius:g}",
        "tau2": "as tau1 with 2 axes",
        "tau3": "as tau1 with 3 axes",
        "tau21": "tau2 / tau1",
        "tau32": "tau3 / tau2",
        "d2": "e3 / e2^3 (energy correlation functions, beta = 1)",
        "c2": "e3 / e2^2 (energy correlation functions, beta = 1)",
    }


class GenerationInterrupted(SqnnError):
    """Generation stopped by Ctrl-C or SIGTERM; the finished chunks are kept for a rerun."""

    exit_code = 130


# ---------------------------------------------------------------- what is generated


@dataclass(frozen=True)
class Process:
    """A boosted signal process against QCD jets.

    ``truth(batch)`` extracts per event what ``matched(truth, kin, jet_event, radius)`` needs
    to decide which reconstructed jets of signal events are signal jets; unmatched jets of
    signal events are dropped.
    """

    name: str
    signal: tuple[str, ...]
    background: tuple[str, ...]
    radius: float
    pt_range: tuple[float, float]
    control_region: dict[str, float]
    truth_match: Callable[[float], str]
    truth: Callable[[ak.Array], dict[str, np.ndarray]]
    matched: Callable[[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, float], np.ndarray]
    # selected jets per generated event at the default window, to plan how many chunks to run
    jets_per_event: dict[str, float]

    def lines(self, process: str) -> list[str]:
        return list({"signal": self.signal, "background": self.background, "pileup": PILEUP_PROCESS}[process])


def process_named(name: str) -> Process:
    """The :class:`Process` of a case module (``wjets``, ``topjets``), imported on demand."""
    if name not in ("wjets", "topjets"):
        raise SqnnError(f"unknown boosted-jet case {name!r}; choose wjets or topjets")
    return import_module(f"sqnn.cases.{name}").PROCESS


# Pythia's own limits, so a bad value is a one-line error instead of a silent clamp
_PYTHIA_PARAMETERS = {
    "fsr_alpha_s": ("TimeShower:alphaSvalue", 0.06, 0.25),
    "isr_alpha_s": ("SpaceShower:alphaSvalue", 0.06, 0.25),
    "lund_a": ("StringZ:aLund", 0.0, 2.0),
    "lund_b": ("StringZ:bLund", 0.2, 2.0),
    "string_pt_sigma": ("StringPT:sigma", 0.0, 1.0),
    "mpi_pt0_ref": ("MultipartonInteractions:pT0Ref", 0.5, 10.0),
}


@dataclass(frozen=True)
class GeneratorSettings:
    """What enters Pythia: the tune and parameters that override it (None: the tune's value)."""

    tune: int = 14
    fsr_alpha_s: float | None = None
    isr_alpha_s: float | None = None
    lund_a: float | None = None
    lund_b: float | None = None
    string_pt_sigma: float | None = None
    mpi_pt0_ref: float | None = None
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.tune, bool) or not isinstance(self.tune, (int, np.integer)) or not 1 <= self.tune <= 40:
            raise SqnnError(f"--tune must be a Pythia Tune:pp number (14 Monash, 21 A14), got {self.tune!r}")
        for name, (key, low, high) in _PYTHIA_PARAMETERS.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise SqnnError(f"--{name.replace('_', '-')} ({key}) must lie in [{low:g}, {high:g}], got {value!r}")
        for line in self.extra:
            if "=" not in line:
                raise SqnnError(f"--pythia takes 'Key = value', got {line!r}")

    @property
    def tune_name(self) -> str:
        return TUNE_NAMES.get(self.tune, f"Tune:pp = {self.tune}")

    def overrides(self) -> list[str]:
        lines = [f"{key} = {getattr(self, name)!r}" for name, (key, _, _) in _PYTHIA_PARAMETERS.items()
                 if getattr(self, name) is not None]
        return [*lines, *self.extra]

    def lines(self, process: Process, which: str) -> list[str]:
        # the tune first: it resets parameters that the overrides set again
        return [f"Tune:pp = {self.tune}", *BEAM, *process.lines(which), *self.overrides()]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "extra": list(self.extra)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GeneratorSettings:
        return cls(**{**values, "extra": tuple(values.get("extra", ()))})


@dataclass(frozen=True)
class Reconstruction:
    """What happens to the particles of a hard event: pileup, detector, jets."""

    detector: Detector = field(default_factory=Detector)
    pileup_mu: float = 0.0
    chs: bool = True
    radius: float = 0.8
    pt_min: float = 450.0
    pt_max: float = 650.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.pileup_mu <= 200.0:
            raise SqnnError(f"--pileup-mu must lie in [0, 200], got {self.pileup_mu!r}")
        if not 0.1 <= self.radius <= 2.0:
            raise SqnnError(f"--jet-radius must lie in [0.1, 2], got {self.radius!r}")
        if not 0.0 < self.pt_min < self.pt_max:
            raise SqnnError(f"the jet pT window needs 0 < --pt-min < --pt-max, got {self.pt_min!r}, {self.pt_max!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "detector": self.detector.to_dict()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Reconstruction:
        return cls(**{**values, "detector": Detector(**values["detector"])})

    def key(self) -> str:
        """A short name of these settings: the same reconstruction always gets the same key."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def entropy(self) -> int:
        return int(self.key()[:8], 16)


def _detector(base: str | Detector, jes: float | None, track_efficiency: float | None,
              calo_resolution: float | None) -> Detector:
    if isinstance(base, Detector):
        detector = base
    elif base in ("nominal", "shifted"):
        detector = Detector.nominal() if base == "nominal" else Detector.shifted()
    else:
        raise SqnnError(f"--detector must be nominal or shifted, got {base!r}")
    if jes is not None:
        if not 0.5 <= jes <= 1.5:
            raise SqnnError(f"--jes (jet energy scale) must lie in [0.5, 1.5], got {jes!r}")
        detector = replace(detector, energy_scale=float(jes))
    if track_efficiency is not None:
        if not 0.0 <= track_efficiency <= 1.0:
            raise SqnnError(f"--track-efficiency must lie in [0, 1], got {track_efficiency!r}")
        detector = replace(detector, track_efficiency=float(track_efficiency))
    if calo_resolution is not None:
        if not 0.0 <= calo_resolution <= 10.0:
            raise SqnnError(f"--calo-resolution (a factor on every calorimeter term) must lie in [0, 10], "
                            f"got {calo_resolution!r}")
        detector = replace(detector, **{name: getattr(detector, name) * float(calo_resolution) for name in
                                        ("photon_stochastic", "photon_constant", "hadron_stochastic", "hadron_constant")})
    return detector


def resolve(
    process: Process,
    domain: str,
    *,
    tune: int | None = None,
    fsr_alpha_s: float | None = None,
    isr_alpha_s: float | None = None,
    lund_a: float | None = None,
    lund_b: float | None = None,
    string_pt_sigma: float | None = None,
    mpi_pt0_ref: float | None = None,
    pythia: Sequence[str] = (),
    detector: str | Detector | None = None,
    jes: float | None = None,
    track_efficiency: float | None = None,
    calo_resolution: float | None = None,
    pileup_mu: float | None = None,
    chs: bool | None = None,
    jet_radius: float | None = None,
    pt_range: tuple[float, float] | None = None,
) -> tuple[GeneratorSettings, Reconstruction]:
    """The generator and reconstruction of ``domain`` with some knobs turned.

    Every knob left at None keeps the domain's default (:data:`DOMAIN_DEFAULTS`, the process's
    jet radius and pT window). ``tune`` is a Pythia ``Tune:pp`` number; ``fsr_alpha_s``,
    ``isr_alpha_s``, ``lund_a``, ``lund_b``, ``string_pt_sigma`` and ``mpi_pt0_ref`` set
    ``TimeShower:alphaSvalue``, ``SpaceShower:alphaSvalue``, ``StringZ:aLund``,
    ``StringZ:bLund``, ``StringPT:sigma`` and ``MultipartonInteractions:pT0Ref``; ``pythia``
    adds raw lines. ``detector`` is "nominal", "shifted" or a :class:`Detector`, then
    ``jes`` (energy scale), ``track_efficiency`` and ``calo_resolution`` (a factor on every
    calorimeter resolution term) change it. ``pileup_mu`` = 0 means no pileup; ``chs``
    (default True) removes tracked pileup particles.

    >>> from sqnn.cases.wjets import PROCESS
    >>> generator, reco = resolve(PROCESS, "sim", fsr_alpha_s=0.15, jes=1.03)
    >>> generator.overrides(), reco.detector.energy_scale
    (['TimeShower:alphaSvalue = 0.15'], 1.03)
    """
    if domain not in DOMAINS:
        raise SqnnError(f"unknown domain {domain!r}; choose sim or data")
    defaults = DOMAIN_DEFAULTS[domain]

    def number(value: float | None, default: float | None) -> float | None:
        return default if value is None else float(value)

    generator = GeneratorSettings(
        tune=defaults["tune"] if tune is None else tune,
        fsr_alpha_s=number(fsr_alpha_s, None),
        isr_alpha_s=number(isr_alpha_s, None),
        lund_a=number(lund_a, None),
        lund_b=number(lund_b, None),
        string_pt_sigma=number(string_pt_sigma, None),
        mpi_pt0_ref=number(mpi_pt0_ref, None),
        extra=tuple(pythia),
    )
    low, high = process.pt_range if pt_range is None else (float(pt_range[0]), float(pt_range[1]))
    reconstruction = Reconstruction(
        detector=_detector(defaults["detector"] if detector is None else detector, jes, track_efficiency,
                           calo_resolution),
        pileup_mu=float(defaults["pileup_mu"] if pileup_mu is None else pileup_mu),
        chs=True if chs is None else bool(chs),
        radius=process.radius if jet_radius is None else float(jet_radius),
        pt_min=low,
        pt_max=high,
    )
    return generator, reconstruction


# ---------------------------------------------------------------- streams and outputs


@dataclass(frozen=True)
class Output:
    """One file: the jets of one reconstruction, ``n_signal`` + ``n_background`` of them."""

    path: Path
    reconstruction: Reconstruction
    n_signal: int
    n_background: int
    domain: str
    # the fraction asked for, as recorded in the metadata (n_signal is its rounded share of n)
    signal_fraction: float
    # extra metadata under the key "sample" (suite files: the stream, role, request hash)
    sample: dict[str, Any] | None = None

    @property
    def n(self) -> int:
        return self.n_signal + self.n_background


@dataclass(frozen=True)
class Stream:
    """Hard events of one generator setting, seeded from ``seed`` and ``keys``.

    ``lanes`` True: the historical single-file layout (one Pythia run per worker lane; the
    only use of ``workers`` in what is generated). ``code`` goes into the event ids.
    """

    process: str
    generator: GeneratorSettings
    seed: int
    keys: tuple[int, ...]
    code: int
    parts: Path
    lanes: bool
    workers: int = 1
    constituents: bool = False
    variants: tuple[Reconstruction, ...] = ()
    # lane streams: the jets of each class that each lane makes
    needs: tuple[dict[str, list[int]], ...] = ()
    # chunk streams: the (class, chunk, variant indices) each worker makes in this pass
    tasks: tuple[tuple[tuple[str, int, tuple[int, ...]], ...], ...] = ()

    def to_json(self) -> str:
        values = {
            **{name: getattr(self, name) for name in ("process", "seed", "code", "lanes", "workers", "constituents")},
            "generator": self.generator.to_dict(),
            "keys": list(self.keys),
            "parts": str(self.parts),
            "variants": [variant.to_dict() for variant in self.variants],
            "needs": list(self.needs),
            "tasks": [[list(task[:2]) + [list(task[2])] for task in tasks] for tasks in self.tasks],
        }
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> Stream:
        values = json.loads(text)
        return cls(
            **{name: values[name] for name in ("process", "seed", "code", "lanes", "workers", "constituents")},
            generator=GeneratorSettings.from_dict(values["generator"]),
            keys=tuple(values["keys"]),
            parts=Path(values["parts"]),
            variants=tuple(Reconstruction.from_dict(v) for v in values["variants"]),
            needs=tuple(values["needs"]),
            tasks=tuple(tuple((task[0], task[1], tuple(task[2])) for task in tasks) for tasks in values["tasks"]),
        )

    def variant_dir(self, index: int) -> Path:
        # a lane stream has one reconstruction and keeps its chunks at the top
        return self.parts if self.lanes else self.parts / self.variants[index].key()

    def manifest(self) -> dict[str, Any]:
        """What the events of the kept chunks depend on; a rerun must match it."""
        wanted = {
            "format": FORMAT_VERSION,
            "process": self.process,
            "generator": self.generator.to_dict(),
            "seed": self.seed,
            "keys": list(self.keys),
            "code": self.code,
            "constituents": self.constituents,
        }
        if self.lanes:
            wanted.update(workers=self.workers, variant=self.variants[0].to_dict(), needs=list(self.needs))
        return wanted


def make_stream(process: str, generator: GeneratorSettings, seed: int, keys: Sequence[int], code: int,
                parts: Path, *, workers: int = 1, constituents: bool = False) -> Stream:
    """A chunk stream (see the module docstring); its outputs are made by :func:`produce`."""
    if not 0 <= code <= MAX_STREAM_CODE:
        raise SqnnError(f"stream code {code} is outside 0..{MAX_STREAM_CODE}")
    return Stream(process=process, generator=generator, seed=int(seed), keys=tuple(int(k) for k in keys),
                  code=int(code), parts=Path(parts), lanes=False, workers=int(workers),
                  constituents=bool(constituents))


# ---------------------------------------------------------------- one chunk of events


def _reconstruct(
    particles: dict[str, np.ndarray],
    n_events: int,
    process: Process,
    truth: dict[str, np.ndarray] | None,
    reco: Reconstruction,
    rng: np.random.Generator,
    pileup: dict[str, np.ndarray] | None,
    with_constituents: bool,
) -> dict[str, np.ndarray]:
    """Selected jets of one batch of hard events: features, the event index and constituents.

    ``truth`` is None for background; ``pileup`` are the overlaid pileup particles, if any.
    """
    if pileup is not None:
        particles = {**particles, "pileup": np.zeros(len(particles["px"]), dtype=bool)}
        pileup = {**pileup, "pileup": np.ones(len(pileup["px"]), dtype=bool)}
        merged = {key: np.concatenate([particles[key], pileup[key]]) for key in particles}
        order = np.argsort(merged["event"], kind="stable")
        particles = {key: value[order] for key, value in merged.items()}
    reco_particles = reco.detector.apply(particles, rng)
    if pileup is not None:
        from_pileup = reco_particles.pop("pileup")
        if reco.chs:
            # charged-hadron subtraction: every tracked pileup particle is known to come from
            # another vertex; pileup neutrals cannot be told apart and stay
            hard_or_neutral = ~from_pileup | (reco_particles["charge"] == 0)
            reco_particles = {key: value[hard_or_neutral] for key, value in reco_particles.items()}
    counts = np.bincount(reco_particles["event"], minlength=n_events)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])

    sequence = _pythia.cluster(reco_particles, counts, "antikt", reco.radius)
    cluster_pt_min = 0.8 * reco.pt_min
    jets = sequence.inclusive_jets(cluster_pt_min)
    members = sequence.constituent_index(cluster_pt_min)
    leading = ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False)[:, :LEADING_JETS]
    jets, members = jets[leading], members[leading]
    jet_event = np.repeat(np.arange(n_events), ak.to_numpy(ak.num(jets.px)))
    flat = {key: ak.to_numpy(ak.flatten(jets[name])) for key, name in
            (("px", "px"), ("py", "py"), ("pz", "pz"), ("e", "E"))}
    size = ak.to_numpy(ak.flatten(ak.num(members, axis=2)))
    kin = _pythia.kinematics(flat["px"], flat["py"], flat["pz"], flat["e"])
    keep = (
        (kin["pt"] > reco.pt_min)
        & (kin["pt"] < reco.pt_max)
        & (np.abs(kin["eta"]) < JET_ABS_ETA_MAX)
        & (size >= MIN_CONSTITUENTS)
    )
    if truth is not None:
        keep &= process.matched(truth, kin, jet_event, reco.radius)
    selected = np.flatnonzero(keep)
    local = ak.flatten(members, axis=1)[selected]
    n_jets = len(selected)
    jet_of = np.repeat(np.arange(n_jets), ak.to_numpy(ak.num(local)))
    index = ak.to_numpy(ak.flatten(local)) + offsets[jet_event[selected]][jet_of]
    constituents = {key: reco_particles[key][index] for key in ("px", "py", "pz", "e", "charge")}
    jet = {key: value[selected] for key, value in flat.items()}

    out = {
        "pt": kin["pt"][selected],
        "eta": kin["eta"][selected],
        "mass": kin["mass"][selected],
        **_pythia.jet_substructure(constituents, jet_of, jet, reco.radius),
        "event_in_chunk": jet_event[selected],
    }
    if with_constituents:
        out.update(_leading_constituents(constituents, jet_of, kin, selected))
    return out


def _leading_constituents(
    constituents: dict[str, np.ndarray], jet_of: np.ndarray, kin: dict[str, np.ndarray], selected: np.ndarray
) -> dict[str, np.ndarray]:
    part = _pythia.kinematics(constituents["px"], constituents["py"], constituents["pz"], constituents["e"])
    order = np.lexsort((-part["pt"], jet_of))
    counts = np.bincount(jet_of, minlength=len(selected))
    rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    taken = order[rank < N_CONSTITUENTS_KEPT]
    owner = jet_of[taken]
    return {
        "constituents_counts": np.minimum(counts, N_CONSTITUENTS_KEPT),
        "constituents_pt": part["pt"][taken],
        "constituents_deta": part["eta"][taken] - kin["eta"][selected][owner],
        "constituents_dphi": _pythia.wrap_phi(part["phi"][taken] - kin["phi"][selected][owner]),
        "constituents_charge": constituents["charge"][taken],
    }


def _table(jets: dict[str, np.ndarray], process: Process, which: str, stream_code: int, lane: int, chunk: int,
           reco: Reconstruction, with_constituents: bool) -> pa.Table:
    n_jets = len(jets["pt"])
    columns: dict[str, pa.Array] = {
        name: pa.array(jets[name].astype(np.float32)) for name in features(reco.radius)
    }
    mass = jets["mass"]
    region = process.control_region
    columns["is_signal"] = pa.array(np.full(n_jets, CLASS_CODE[which], dtype=np.int8))
    columns["weight"] = pa.array(np.ones(n_jets, dtype=np.float32))
    columns["control"] = pa.array((mass < region["mass_below"]) | (mass > region["mass_above"]))
    event = (
        (np.int64(stream_code) << 45)
        | (np.int64(CLASS_CODE[which]) << 44)
        | (np.int64(lane) << 36)
        | (np.int64(chunk) << 12)
        | jets["event_in_chunk"].astype(np.int64)
    )
    columns["event"] = pa.array(event.astype(np.int64))
    if with_constituents:
        records = pa.StructArray.from_arrays(
            [pa.array(jets[f"constituents_{name}"].astype(np.float32)) for name in CONSTITUENT_FIELDS],
            names=list(CONSTITUENT_FIELDS),
        )
        offsets = np.concatenate([[0], np.cumsum(jets["constituents_counts"])]).astype(np.int32)
        columns["constituents"] = pa.ListArray.from_arrays(pa.array(offsets), records)
    return pa.table(columns)


# ---------------------------------------------------------------- parts directory


def _part_name(which: str, lane: int, chunk: int) -> str:
    return f"{which}-w{lane:03d}-c{chunk:06d}.parquet"


def _scan_parts(parts: Path) -> dict[tuple[str, int], list[tuple[int, Path, int]]]:
    """(class, lane) -> [(chunk, path, rows)] sorted by chunk."""
    found: dict[tuple[str, int], list[tuple[int, Path, int]]] = {}
    for path in sorted(parts.glob("*-w*-c*.parquet")):
        which, lane, chunk = path.stem.split("-")
        rows = pq.read_metadata(path).num_rows
        found.setdefault((which, int(lane[1:])), []).append((int(chunk[1:]), path, rows))
    return found


def _prepare_parts(stream: Stream) -> None:
    manifest_path = stream.parts / "manifest.json"
    wanted = stream.manifest()
    if manifest_path.exists():
        try:
            kept = json.loads(manifest_path.read_text())
        except json.JSONDecodeError:
            kept = None
        if kept != wanted:
            raise SqnnError(
                f"{stream.parts} holds chunks of a run with other arguments ({kept}); "
                "rerun with those arguments or delete the directory"
            )
        return
    stream.parts.mkdir(parents=True, exist_ok=True)
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(wanted, indent=2) + "\n")


def _lane_jets_done(stream: Stream) -> int:
    found = _scan_parts(stream.parts)
    return sum(
        min(sum(rows for _, _, rows in found.get((which, lane), [])), target)
        for which in CLASSES
        for lane, target in enumerate(stream.needs[0][which])
    )


def _write_part(directory: Path, table: pa.Table, info: dict[str, Any], which: str, lane: int, chunk: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    table = table.replace_schema_metadata({"sqnn_part": json.dumps(info)})
    with atomic_path(directory / _part_name(which, lane, chunk)) as tmp:
        pq.write_table(table, tmp, compression="zstd")


# ---------------------------------------------------------------- one worker


class _Generator:
    """The Pythia instances, charge table and pileup pool of one worker process."""

    def __init__(self, stream: Stream, process: Process) -> None:
        self.stream = stream
        self.process = process
        self.pythias: dict[str, Any] = {}
        self.charges: _pythia.ChargeTable | None = None
        self.pool: _pythia.PileupPool | None = None
        self.pool_seed: int | None = None

    def pythia(self, which: str, seed: int) -> Any:
        """A new Pythia for a class (lanes start one per run)."""
        pythia = _pythia.new_pythia(self.stream.generator.lines(self.process, which), seed)
        self.charges = self.charges or _pythia.ChargeTable(pythia.particleData)
        return pythia

    def initialised(self, which: str, seed: int) -> Any:
        """The class's Pythia initialised once from ``seed``, re-seeded by the caller per chunk."""
        if which not in self.pythias:
            self.pythias[which] = self.pythia(which, seed)
        return self.pythias[which]

    def pileup_pool(self, seed: int) -> _pythia.PileupPool:
        if self.pool is None:
            self.pool_seed = seed
            self.pool = _pythia.PileupPool.generate(self.stream.generator.lines(self.process, "pileup"), seed,
                                                    PILEUP_POOL_EVENTS)
        return self.pool


def _run_lanes(stream: Stream, worker: int, report: Callable[[int, int], None],
               should_stop: Callable[[], bool]) -> None:
    """Generate this worker's lane of both classes, one chunk file at a time."""
    process = process_named(stream.process)
    reco = stream.variants[0]
    state = _Generator(stream, process)
    found = _scan_parts(stream.parts)
    for which in CLASSES:
        target = stream.needs[0][which][worker]
        kept = found.get((which, worker), [])
        done = sum(rows for _, _, rows in kept)
        chunk = kept[-1][0] + 1 if kept else 0
        if done >= target or should_stop():
            continue
        pool = None
        if reco.pileup_mu > 0:
            pool = state.pileup_pool(_pythia.derive_seed(stream.seed, *stream.keys, PILEUP_CODE, worker))
        keys = (*stream.keys, CLASS_CODE[which], worker, chunk)
        run = {
            "class": which,
            "worker": worker,
            "first_chunk": chunk,
            "pythia_seed": _pythia.derive_seed(stream.seed, *keys),
            # the detector and pileup draws: numpy's SeedSequence entropy, apart from Pythia's
            "rng_seed": [stream.seed, *keys, 1],
            "pileup_seed": state.pool_seed if pool is not None else None,
        }
        pythia = state.pythia(which, run["pythia_seed"])
        rng = np.random.default_rng(np.random.SeedSequence(run["rng_seed"]))
        while done < target:
            batch = pythia.nextBatch(CHUNK_EVENTS)
            particles = _pythia.final_state(batch, state.charges)
            overlay = pool.overlay(len(batch), reco.pileup_mu, rng) if pool is not None else None
            truth = process.truth(batch) if which == "signal" else None
            jets = _reconstruct(particles, len(batch), process, truth, reco, rng, overlay, stream.constituents)
            table = _table(jets, process, which, stream.code, worker, chunk, reco, stream.constituents)
            _write_part(stream.parts, table, {"events": len(batch), "chunk": chunk, "run": run}, which, worker, chunk)
            report(min(table.num_rows, target - done), len(batch))
            done += table.num_rows
            chunk += 1
            if should_stop():
                return


def _chunk_seeds(stream: Stream, which: str, chunk: int) -> dict[str, Any]:
    return {
        "init": _pythia.derive_seed(stream.seed, *stream.keys, CLASS_CODE[which], INIT_CODE),
        "pythia": _pythia.derive_seed(stream.seed, *stream.keys, CLASS_CODE[which], CHUNK_CODE, chunk),
        "pileup": [stream.seed, *stream.keys, CLASS_CODE[which], chunk, PILEUP_CODE],
        "detector": [stream.seed, *stream.keys, CLASS_CODE[which], chunk, DETECTOR_CODE],
    }


def _pool_seed(stream: Stream) -> int:
    return _pythia.derive_seed(stream.seed, *stream.keys, PILEUP_CODE)


def _run_chunks(stream: Stream, worker: int, report: Callable[[int, int], None],
                should_stop: Callable[[], bool]) -> None:
    """Make this worker's chunks of a chunk stream; each chunk re-seeds Pythia."""
    process = process_named(stream.process)
    state = _Generator(stream, process)
    for which, chunk, wanted in stream.tasks[worker]:
        if should_stop():
            return
        missing = [v for v in wanted if not (stream.variant_dir(v) / _part_name(which, 0, chunk)).exists()]
        if not missing:
            continue
        seeds = _chunk_seeds(stream, which, chunk)
        pythia = state.initialised(which, seeds["init"])
        pythia.rndm.init(seeds["pythia"])
        batch = pythia.nextBatch(CHUNK_EVENTS)
        particles = _pythia.final_state(batch, state.charges)
        truth = process.truth(batch) if which == "signal" else None
        for index in missing:
            reco = stream.variants[index]
            overlay = None
            if reco.pileup_mu > 0:
                # one draw per chunk and mu: variants that differ only in CHS see the same pileup
                pool = state.pileup_pool(_pool_seed(stream))
                overlay = pool.overlay(len(batch), reco.pileup_mu,
                                       np.random.default_rng(np.random.SeedSequence(seeds["pileup"])))
            rng = np.random.default_rng(np.random.SeedSequence([*seeds["detector"], reco.entropy()]))
            jets = _reconstruct(particles, len(batch), process, truth, reco, rng, overlay, stream.constituents)
            table = _table(jets, process, which, stream.code, 0, chunk, reco, stream.constituents)
            info = {"events": len(batch), "chunk": chunk, "pythia_seed": seeds["pythia"]}
            _write_part(stream.variant_dir(index), table, info, which, 0, chunk)
        report(1, len(batch))


def _run_worker(stream: Stream, worker: int, report: Callable[[int, int], None],
                should_stop: Callable[[], bool]) -> None:
    runner = _run_lanes if stream.lanes else _run_chunks
    runner(stream, worker, report, should_stop)


@contextmanager
def _stop_on_signals(on_signal: Callable[[], None]) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into a request to stop after the current chunk."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        on_signal()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _worker_main() -> None:
    """Entry point of a worker process: ``python -c ... STREAM_JSON WORKER FD``.

    Reports every finished chunk, and errors, as JSON lines on the file descriptor FD.
    """
    stream_json, worker_text, fd_text = sys.argv[1:4]
    worker = int(worker_text)
    stream = Stream.from_json(stream_json)
    stopped = threading.Event()
    with open(int(fd_text), "w", buffering=1) as messages, _stop_on_signals(stopped.set):

        def report(jets: int, events: int) -> None:
            messages.write(json.dumps({"jets": jets, "events": events}) + "\n")

        try:
            _run_worker(stream, worker, report, stopped.is_set)
        except SqnnError as error:
            messages.write(json.dumps({"error": str(error), "user": True}) + "\n")
            raise SystemExit(2) from None
        except Exception:
            messages.write(json.dumps({"error": traceback.format_exc(), "user": False}) + "\n")
            raise SystemExit(1) from None


class _Progress:
    def __init__(self, total: int, initial: int, enabled: bool, unit: str = "jet",
                 description: str | None = None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, unit=unit, file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True, smoothing=0.05, desc=description)
        self.events = 0
        self.start = time.monotonic()

    def __call__(self, jets: int, events: int) -> None:
        self.events += events
        elapsed = max(time.monotonic() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{self.events / elapsed:.0f} events/s", refresh=False)
        self.bar.update(jets)

    def close(self) -> None:
        self.bar.close()


def _run_in_processes(stream: Stream, progress: _Progress) -> bool:
    """Run every worker as its own Python process; True when a stop was requested.

    Workers are fresh interpreters (not forks) started with ``OMP_NUM_THREADS=1``; they
    share the terminal's process group, so Ctrl-C reaches them directly, and a SIGTERM
    to this process is passed on. Either way each stops after its current chunk.
    """
    package_root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    code = "from sqnn.cases.boosted import _worker_main; _worker_main()"
    messages: queue_module.Queue[tuple[int, str | None]] = queue_module.Queue()
    processes: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    errors: list[tuple[int, str, bool]] = []

    def request_stop() -> None:
        stop.set()
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def forward(worker: int, fd: int) -> None:
        with open(fd) as lines:
            for line in lines:
                messages.put((worker, line))
        messages.put((worker, None))

    with _stop_on_signals(request_stop):
        try:
            for worker in range(stream.workers):
                read_fd, write_fd = os.pipe()
                try:
                    processes.append(subprocess.Popen(
                        [sys.executable, "-c", code, stream.to_json(), str(worker), str(write_fd)],
                        pass_fds=(write_fd,), env=env, stdin=subprocess.DEVNULL,
                    ))
                finally:
                    os.close(write_fd)
                threading.Thread(target=forward, args=(worker, read_fd), daemon=True).start()
            running = set(range(stream.workers))
            while running:
                try:
                    worker, line = messages.get(timeout=0.5)
                except queue_module.Empty:
                    continue
                if line is None:
                    running.discard(worker)
                    continue
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "error" in message:
                    errors.append((worker, message["error"], message["user"]))
                    request_stop()
                else:
                    progress(message["jets"], message["events"])
        except BaseException:
            request_stop()
            raise
        finally:
            codes = [process.wait() for process in processes]
    for worker, text, user in errors:
        if user:
            raise SqnnError(text)
        raise RuntimeError(f"{stream.process} worker {worker} failed:\n{text}")
    for worker, code in enumerate(codes):
        if code != 0 and not stop.is_set():
            raise RuntimeError(f"{stream.process} worker {worker} exited with code {code}")
    return stop.is_set()


def _run_here(stream: Stream, progress: _Progress) -> bool:
    stopped = threading.Event()
    with _stop_on_signals(stopped.set):
        _run_worker(stream, 0, progress, stopped.is_set)
    return stopped.is_set()


def _run(stream: Stream, progress: _Progress) -> bool:
    runner = _run_here if stream.workers == 1 else _run_in_processes
    return runner(stream, progress)


# ---------------------------------------------------------------- assembling a file


def _shuffle_and_tag(table: pa.Table, shuffle_seed: list[int], metadata: dict[str, Any]) -> pa.Table:
    order = np.random.default_rng(np.random.SeedSequence(shuffle_seed)).permutation(table.num_rows)
    table = table.take(pa.array(order))
    return table.replace_schema_metadata({"sqnn": json.dumps(metadata)})


def _assemble_lanes(stream: Stream, output: Output) -> pa.Table:
    found = _scan_parts(stream.parts)
    tables, runs, events = [], {}, dict.fromkeys(CLASSES, 0)
    for which in CLASSES:
        for lane, target in enumerate(stream.needs[0][which]):
            pieces, rows = [], 0
            for _, path, n_rows in found.get((which, lane), []):
                if rows >= target:
                    break
                part = pq.read_table(path)
                info = json.loads(part.schema.metadata[b"sqnn_part"])
                run = info["run"]
                runs[(which, lane, run["first_chunk"])] = run
                events[which] += info["events"]
                pieces.append(part.replace_schema_metadata(None))
                rows += n_rows
            if rows < target:
                raise RuntimeError(f"{stream.parts}: {which} worker {lane} has {rows} of {target} jets")
            if target:
                tables.append(pa.concat_tables(pieces).slice(0, target))
    table = pa.concat_tables(tables)
    shuffle_seed = [stream.seed, *stream.keys, SHUFFLE_CODE]
    run_list = sorted(runs.values(), key=lambda r: (r["class"], r["worker"], r["first_chunk"]))
    pileup_seeds = sorted({run["pileup_seed"] for run in run_list if run["pileup_seed"] is not None})
    seeds = {"runs": run_list, "shuffle": shuffle_seed}
    return _shuffle_and_tag(table, shuffle_seed, _metadata(stream, output, seeds, events, pileup_seeds))


def _chunk_prefix(directory: Path, which: str) -> list[tuple[int, Path, int]]:
    """The chunks 0, 1, ... of a class that exist without a gap."""
    prefix = []
    for chunk, path, rows in _scan_parts(directory).get((which, 0), []):
        if chunk != len(prefix):
            break
        prefix.append((chunk, path, rows))
    return prefix


def _assemble_chunks(stream: Stream, output: Output, index: int) -> pa.Table:
    tables, events, chunk_seeds = [], dict.fromkeys(CLASSES, 0), {}
    targets = {"signal": output.n_signal, "background": output.n_background}
    for which in CLASSES:
        pieces, rows, used = [], 0, []
        for chunk, path, n_rows in _chunk_prefix(stream.variant_dir(index), which):
            if rows >= targets[which]:
                break
            part = pq.read_table(path)
            info = json.loads(part.schema.metadata[b"sqnn_part"])
            events[which] += info["events"]
            used.append(info["pythia_seed"])
            pieces.append(part.replace_schema_metadata(None))
            rows += n_rows
        if rows < targets[which]:
            raise RuntimeError(f"{stream.variant_dir(index)}: {which} has {rows} of {targets[which]} jets")
        chunk_seeds[which] = used
        if targets[which]:
            tables.append(pa.concat_tables(pieces).slice(0, targets[which]))
    table = pa.concat_tables(tables)
    reco = output.reconstruction
    shuffle_seed = [stream.seed, *stream.keys, SHUFFLE_CODE, reco.entropy(), output.n_signal, output.n_background]
    seeds = {
        "init": {which: _chunk_seeds(stream, which, 0)["init"] for which in CLASSES},
        "chunks": chunk_seeds,
        "chunk_entropy": "detector draws [seed, *keys, class, chunk, 6, variant], pileup draws "
                         "[seed, *keys, class, chunk, 2] (numpy SeedSequence)",
        "keys": list(stream.keys),
        "variant": reco.entropy(),
        "shuffle": shuffle_seed,
    }
    pileup_seeds = [_pool_seed(stream)] if reco.pileup_mu > 0 else []
    return _shuffle_and_tag(table, shuffle_seed, _metadata(stream, output, seeds, events, pileup_seeds))


def _metadata(stream: Stream, output: Output, seeds: dict[str, Any], events: dict[str, int],
              pileup_seeds: list[int]) -> dict[str, Any]:
    process = process_named(stream.process)
    reco = output.reconstruction
    generator = stream.generator
    pileup: dict[str, Any] | None = None
    if reco.pileup_mu > 0:
        pool_key = "pool_events_per_worker" if stream.lanes else "pool_events"
        subtraction = ("charged-hadron subtraction: tracked pileup charged particles removed, pileup neutrals kept"
                       if reco.chs else "none: every reconstructed pileup particle is kept")
        pileup = {
            "mu": reco.pileup_mu,
            pool_key: PILEUP_POOL_EVENTS,
            "process": PILEUP_PROCESS,
            "distribution": f"Poisson, drawn with replacement from the {'worker' if stream.lanes else 'stream'}'s "
                            "pool, each copy rotated in azimuth and mirrored in z at random",
            "subtraction": subtraction,
            "seeds": pileup_seeds,
        }
    region = process.control_region
    lane_event = "class << 44 | worker << 36 | chunk << 12 | index"
    event_layout = lane_event if stream.code == 0 else f"stream {stream.code} << 45 | {lane_event}"
    metadata = {
        "case": process.name,
        "format": FORMAT_VERSION,
        "domain": output.domain,
        "n": output.n,
        "n_signal": output.n_signal,
        "n_background": output.n_background,
        "signal_fraction": output.signal_fraction,
        "seed": stream.seed,
        "workers": stream.workers,
        "beam": BEAM,
        "processes": {"signal": list(process.signal), "background": list(process.background)},
        "tune": {"Tune:pp": generator.tune, "name": generator.tune_name},
        "pythia_settings": {which: ["Print:quiet = on", *generator.lines(process, which)]
                            for which in ("signal", "background", "pileup")},
        "detector": reco.detector.to_dict(),
        "pileup": pileup,
        "jets": {
            "algorithm": "anti-kt",
            "radius": reco.radius,
            "input": "reconstructed particles",
            "leading": LEADING_JETS,
            "pt_range_GeV": [reco.pt_min, reco.pt_max],
            "abs_eta_max": JET_ABS_ETA_MAX,
            "min_constituents": MIN_CONSTITUENTS,
            "signal_truth_match": process.truth_match(reco.radius),
        },
        "features": features(reco.radius),
        "control_region": {
            "column": "control",
            "definition": f"mass < {region['mass_below']:g} GeV or mass > {region['mass_above']:g} GeV",
            **region,
        },
        "event": f"int64 id of the generated event ({event_layout}); jets of the same event share it",
        "constituents": (f"{N_CONSTITUENTS_KEPT} leading by pT: {', '.join(CONSTITUENT_FIELDS)}"
                         if stream.constituents else None),
        "seeds": seeds,
        "events_generated": events,
        "chunk_events": CHUNK_EVENTS,
        "versions": _pythia.versions(),
    }
    if not stream.lanes:
        # a chunk stream's files do not depend on how many workers made them
        del metadata["workers"]
    if output.sample is not None:
        metadata["sample"] = output.sample
    return metadata


def _write(table: pa.Table, out: Path) -> None:
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        # the temporary file is private (0600); the result gets the usual umask permissions
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)


# ---------------------------------------------------------------- one file (lanes)


def _split(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if k < total % workers else 0) for k in range(workers)]


def generate_file(
    process_name: str,
    domain: str,
    n: int,
    seed: int,
    out: str | Path,
    *,
    workers: int = 1,
    constituents: bool = False,
    signal_fraction: float | None = None,
    progress: bool = True,
    **knobs: Any,
) -> Path:
    """One file of ``n`` signal and QCD jets of ``domain``; ``knobs`` as in :func:`resolve`."""
    _pythia.validate_generation(
        domain, n, seed, workers, signal_fraction, unit="jets", domains=DOMAINS, max_seed=MAX_SEED,
        max_workers=MAX_WORKERS,
    )
    process = process_named(process_name)
    unknown = sorted(set(knobs) - set(inspect.signature(resolve).parameters) - {"process", "domain"})
    if unknown:
        raise SqnnError(f"{process_name} has no knob {', '.join(unknown)}; see sqnn.cases.boosted.resolve")
    generator, reco = resolve(process, domain, **knobs)
    fraction = DOMAIN_DEFAULTS[domain]["signal_fraction"] if signal_fraction is None else float(signal_fraction)
    out = Path(out)
    n_signal = int(round(n * fraction))
    stream = Stream(
        process=process_name,
        generator=generator,
        seed=int(seed),
        keys=(DOMAIN_CODE[domain],),
        code=0,
        parts=out.parent / f"{out.name}.parts",
        lanes=True,
        workers=int(workers),
        constituents=bool(constituents),
        variants=(reco,),
        needs=({"signal": _split(n_signal, workers), "background": _split(int(n) - n_signal, workers)},),
    )
    _prepare_parts(stream)
    done = _lane_jets_done(stream)
    if done < n:
        bar = _Progress(int(n), done, progress)
        try:
            stopped = _run(stream, bar)
        finally:
            bar.close()
        done = _lane_jets_done(stream)
        if done < n:
            if stopped:
                raise GenerationInterrupted(
                    f"stopped after the current chunk with {done} of {n} jets; the finished "
                    f"chunks are kept in {stream.parts}: rerun the same command to resume"
                )
            raise RuntimeError(f"generation ended with {done} of {n} jets")
    output = Output(out, reco, n_signal, int(n) - n_signal, domain, fraction)
    _write(_assemble_lanes(stream, output), out)
    shutil.rmtree(stream.parts)
    return out


# ---------------------------------------------------------------- several files of one stream (chunks)


def _plan(stream: Stream, needs: Sequence[dict[str, int]], process: Process) -> list[tuple[str, int, tuple[int, ...]]]:
    """The chunks still to make so that every variant has its jets from chunks 0, 1, ...

    Missing chunks are counted at the variant's yield so far (or the process's typical yield
    for a new variant); a pass that falls short is followed by another.
    """
    wanted: dict[tuple[str, int], set[int]] = {}
    for index, need in enumerate(needs):
        directory = stream.variant_dir(index)
        found = _scan_parts(directory)
        for which in CLASSES:
            chunks = {chunk: rows for chunk, _, rows in found.get((which, 0), [])}
            if chunks:
                if len(chunks) >= 10 and not sum(chunks.values()):
                    raise SqnnError(f"{directory}: no {which} jet passed the selection in {len(chunks)} chunks; "
                                    "check the jet pT window and radius")
                per_chunk = max(sum(chunks.values()) / len(chunks), 1.0)
            else:
                # a new variant's first pass aims a little short, so that chunks made at the
                # typical yield are never wasted; the next pass counts at the measured yield
                per_chunk = max(1.15 * process.jets_per_event[which] * CHUNK_EVENTS, 1.0)
            rows, chunk = 0.0, 0
            while rows < need[which]:
                if chunk in chunks:
                    rows += chunks[chunk]
                else:
                    rows += per_chunk
                    wanted.setdefault((which, chunk), set()).add(index)
                chunk += 1
    # by class, then chunk: dealt round-robin, a worker's chunks are not consecutive
    return [(which, chunk, tuple(sorted(indices))) for (which, chunk), indices in sorted(wanted.items())]


def produce(stream: Stream, outputs: Sequence[Output], *, progress: bool = True,
            label: str | None = None) -> list[Path]:
    """Make every output of a chunk stream, reusing the chunks kept in ``stream.parts``.

    Outputs with the same reconstruction share its jets (a smaller file takes the first jets
    of a larger one). The kept chunks stay, so that a later, larger request only adds chunks.
    """
    process = process_named(stream.process)
    variants: list[Reconstruction] = []
    for output in outputs:
        if output.reconstruction not in variants:
            variants.append(output.reconstruction)
    needs = [{which: max(getattr(o, f"n_{which}") for o in outputs if o.reconstruction == reco)
              for which in CLASSES} for reco in variants]
    stream = replace(stream, variants=tuple(variants))
    _prepare_parts(stream)
    while True:
        tasks = _plan(stream, needs, process)
        if not tasks:
            break
        per_worker = tuple(tuple(tasks[k::stream.workers]) for k in range(stream.workers))
        bar = _Progress(len(tasks), 0, progress, unit="chunk", description=label)
        try:
            stopped = _run(replace(stream, tasks=per_worker), bar)
        finally:
            bar.close()
        if stopped:
            raise GenerationInterrupted(
                f"stopped after the current chunk; the finished chunks are kept in {stream.parts}: "
                "rerun the same command to resume"
            )
    written = []
    for output in outputs:
        table = _assemble_chunks(stream, output, variants.index(output.reconstruction))
        output.path.parent.mkdir(parents=True, exist_ok=True)
        _write(table, output.path)
        written.append(output.path)
    return written
