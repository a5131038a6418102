"""The physics of a boosted-jet sample: what is generated and how it is reconstructed.

* :class:`Process`: the signal and background Pythia settings of a case (W jets in
  :mod:`sqnn.cases.wjets`, top jets in :mod:`sqnn.cases.topjets`), its truth matching, jet
  window and control region; :func:`process_named` finds a case's process by name.
* :class:`GeneratorSettings`: what enters Pythia (tune, shower alpha_s, hadronisation,
  multiple interactions, extra lines), written after the tune because the tune resets them.
* :class:`Reconstruction`: what happens after Pythia (detector, pileup with or without
  charged-hadron subtraction, jet radius and pT window).
* :data:`DOMAIN_DEFAULTS` and :func:`resolve`: the simulation and "data" of a single file,
  with some knobs turned.

Nothing here runs Pythia; :mod:`sqnn.cases.boosted.jets` turns a batch of events into jets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import import_module
from typing import Any

import awkward as ak
import numpy as np

from sqnn.cases.detector import Detector
from sqnn.errors import SqnnError, option, phrase

__all__ = [
    "BEAM",
    "CLASSES",
    "CLASS_CODE",
    "DOMAINS",
    "DOMAIN_CODE",
    "DOMAIN_DEFAULTS",
    "PILEUP_POOL_EVENTS",
    "PILEUP_PROCESS",
    "GeneratorSettings",
    "Process",
    "Reconstruction",
    "features",
    "process_named",
    "resolve",
]

DOMAINS = ("sim", "data")
CLASSES = ("signal", "background")
DOMAIN_CODE = {"sim": 0, "data": 1}
CLASS_CODE = {"background": 0, "signal": 1}

BEAM = ["Beams:idA = 2212", "Beams:idB = 2212", "Beams:eCM = 13000."]
PILEUP_PROCESS = ["SoftQCD:nonDiffractive = on"]
PILEUP_POOL_EVENTS = 400
TUNE_NAMES = {14: "Monash 2013", 21: "ATLAS A14, NNPDF2.3LO"}

# the simulation and "data" of a single file; a knob of `resolve` replaces one of these. The
# tag efficiencies are those of the emulated tag-and-probe selection (`tag_and_probe`), which
# data mismodels
DOMAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "sim": {"tune": 14, "detector": "nominal", "pileup_mu": 0.0, "signal_fraction": 0.5,
            "tag_signal": 0.30, "tag_background": 0.02},
    "data": {"tune": 21, "detector": "shifted", "pileup_mu": 10.0, "signal_fraction": 0.3,
             "tag_signal": 0.27, "tag_background": 0.025},
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
            raise SqnnError(f"{option('tune')} must be a Pythia Tune:pp number (14 Monash, 21 A14), got {self.tune!r}")
        for name, (key, low, high) in _PYTHIA_PARAMETERS.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise SqnnError(f"{option(name)} ({key}) must lie in [{low:g}, {high:g}], got {value!r}")
        for line in self.extra:
            if "=" not in line:
                raise SqnnError(f"{option('pythia')} takes 'Key = value', got {line!r}")

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
            raise SqnnError(f"{option('pileup_mu')} must lie in [0, 200], got {self.pileup_mu!r}")
        if not 0.1 <= self.radius <= 2.0:
            raise SqnnError(f"{option('jet_radius')} must lie in [0.1, 2], got {self.radius!r}")
        if not 0.0 < self.pt_min < self.pt_max:
            window = phrase("pt_range=(low, high) with 0 < low < high", "0 < --pt-min < --pt-max")
            raise SqnnError(f"the jet pT window needs {window}, got {self.pt_min!r}, {self.pt_max!r}")

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
        raise SqnnError(f"{option('detector')} must be nominal or shifted, got {base!r}")
    if jes is not None:
        if not 0.5 <= jes <= 1.5:
            raise SqnnError(f"{option('jes')} (jet energy scale) must lie in [0.5, 1.5], got {jes!r}")
        detector = replace(detector, energy_scale=float(jes))
    if track_efficiency is not None:
        if not 0.0 <= track_efficiency <= 1.0:
            raise SqnnError(f"{option('track_efficiency')} must lie in [0, 1], got {track_efficiency!r}")
        detector = replace(detector, track_efficiency=float(track_efficiency))
    if calo_resolution is not None:
        if not 0.0 <= calo_resolution <= 10.0:
            raise SqnnError(f"{option('calo_resolution')} (a factor on every calorimeter term) must lie in [0, 10], "
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
