"""Boosted hadronic W jets against QCD jets: Pythia 8 + a parametric detector + FastJet.

``generate(domain, n, seed, out)`` writes one parquet file of ``n`` jets (rows).

Physics
    pp at 13 TeV. Signal: W + jet (``qqbar -> W g``, ``q g -> W q``) with W -> quarks,
    background: QCD 2 -> 2; both with pTHat > 400 GeV, from separate Pythia instances.
    ``sim``: Monash tune, nominal detector, no pileup. ``data``: A14 tune, shifted detector
    (see :mod:`sqnn.cases.detector`) and Poisson(mu = 10) pileup from a pool of soft-QCD
    events with charged-hadron subtraction (tracked pileup charged particles removed,
    pileup neutrals kept).
Jets
    anti-kT R = 0.8 on the reconstructed particles; of each event the leading two jets, kept
    if 450 < pT < 650 GeV, |eta| < 2 and with at least 3 constituents. Signal jets must lie
    within dR < 0.6 (rapidity-azimuth) of the W of the hard process (its last copy in the
    event record); unmatched jets of signal events are dropped.
Columns
    float32 features ``pt eta mass n_constituents n_charged girth ptd tau1 tau2 tau3 tau21
    tau32 d2 c2`` (see :func:`sqnn.cases._pythia.jet_substructure`), ``is_signal`` (int8, the
    true class, for evaluation only in data), ``weight`` (float32, 1), ``control`` and
    ``event`` (int64: the generated event the jet comes from; unique per event within the
    file, shared by the two jets of one background event, so splits can be made by event) and
    ``tag`` (bool: the other side of the jet's event passes an emulated tag selection, drawn
    per jet with probability 0.30 for W and 0.02 for QCD jets in ``sim``, 0.27 and 0.025 in
    ``data``, independent of the jet given its class; see
    :mod:`sqnn.cases.boosted.tag_and_probe`).
    With ``constituents=True`` also ``constituents``: the 30 leading constituents of each jet,
    a jagged list of records (pt [GeV], deta, dphi to the jet axis, charge [e]).
Control region
    ``control`` is true for jets with mass < 50 GeV or mass > 120 GeV: the mass sidebands
    around the W peak, dominated by QCD in both domains.
Class mix and seeds
    ``n_signal = round(n * f)`` with f = 0.5 (sim) or 0.3 (data) unless ``signal_fraction``
    is given. Every (class, worker) sequence runs its own Pythia instance, the pileup pool of
    every worker its own, each seeded from (``seed``, domain, class, worker, first chunk of
    the run); all seeds, settings and versions are stored as JSON under the key ``sqnn`` of
    the parquet key-value metadata.
Interruption and resume
    Every finished chunk of ~200 events is kept in ``<out>.parts/``. Ctrl-C or SIGTERM stops
    after the current chunk; a rerun with the same arguments continues from the kept chunks
    (a resumed sequence is seeded from its first new chunk, so it gives other, equally valid
    events than an uninterrupted run). ``<out>`` is written atomically when all jets exist.
Knobs
    Keyword arguments of :func:`generate` (and options of ``sqnn generate wjets``) replace one
    setting of the domain at a time: ``tune``, ``fsr_alpha_s``, ``isr_alpha_s``, ``lund_a``,
    ``lund_b``, ``string_pt_sigma``, ``mpi_pt0_ref``, ``pythia`` (raw lines), ``detector``,
    ``jes``, ``track_efficiency``, ``calo_resolution``, ``pileup_mu``, ``chs``,
    ``jet_radius`` and ``pt_range`` (see :func:`sqnn.cases.boosted.resolve`), and the tag
    efficiencies ``tag_signal`` and ``tag_background``. With none of them the file is the one
    described above, byte for byte. The engine is shared with the top case in
    :mod:`sqnn.cases.boosted`; the simulation/data suite is :mod:`sqnn.cases.suite`. A file
    written before the ``tag`` column existed gets it from :func:`sqnn.cases.boosted.add_tag`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sqnn.cases import _pythia
from sqnn.cases.boosted import (
    DOMAIN_DEFAULTS,
    PILEUP_POOL_EVENTS,
    GenerationInterrupted,
    Process,
    features,
    generate_file,
)
from sqnn.cases.detector import Detector

__all__ = [
    "CONTROL_REGION",
    "FEATURES",
    "PROCESS",
    "GenerationInterrupted",
    "domain_settings",
    "generate",
]

PROCESSES = {
    "signal": [
        "WeakBosonAndParton:qqbar2Wg = on",
        "WeakBosonAndParton:qg2Wq = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
        "PhaseSpace:pTHatMin = 400.",
    ],
    "background": ["HardQCD:all = on", "PhaseSpace:pTHatMin = 400."],
}
TUNES = {"sim": (14, "Monash 2013"), "data": (21, "ATLAS A14, NNPDF2.3LO")}
PILEUP = {"mu": DOMAIN_DEFAULTS["data"]["pileup_mu"], "pool_events_per_worker": PILEUP_POOL_EVENTS}

JET_RADIUS = 0.8
JET_PT_RANGE = (450.0, 650.0)
TRUTH_MATCH_DR = 0.6
CONTROL_REGION = {"mass_below": 50.0, "mass_above": 120.0}
FEATURES = features(JET_RADIUS)


def _truth(batch: Any) -> dict[str, np.ndarray]:
    w = _pythia.last_copy(batch, 24)
    return _pythia.kinematics(w["px"], w["py"], w["pz"], w["e"])


def _matched(truth: dict[str, np.ndarray], kin: dict[str, np.ndarray], jet_event: np.ndarray,
             radius: float) -> np.ndarray:
    distance = np.hypot(
        kin["rapidity"] - truth["rapidity"][jet_event],
        _pythia.wrap_phi(kin["phi"] - truth["phi"][jet_event]),
    )
    return distance < TRUTH_MATCH_DR  # NaN (no W found) compares false


PROCESS = Process(
    name="wjets",
    signal=tuple(PROCESSES["signal"]),
    background=tuple(PROCESSES["background"]),
    radius=JET_RADIUS,
    pt_range=JET_PT_RANGE,
    control_region=CONTROL_REGION,
    truth_match=lambda radius: f"dR(jet, last W copy) < {TRUTH_MATCH_DR} in rapidity-azimuth",
    truth=_truth,
    matched=_matched,
    jets_per_event={"signal": 0.42, "background": 0.71},
)


def domain_settings(domain: str) -> dict[str, Any]:
    """Tune, detector and pileup of a domain."""
    tune, tune_name = TUNES[domain]
    return {
        "tune": tune,
        "tune_name": tune_name,
        "detector": Detector.nominal() if domain == "sim" else Detector.shifted(),
        "pileup": None if domain == "sim" else dict(PILEUP),
    }


def generate(
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
    """Generate ``n`` W or QCD jets of ``domain`` ("sim" or "data") into the parquet file ``out``.

    ``knobs`` turn one setting of the domain each (see the module docstring).

    >>> generate("sim", 40, seed=1, out="wjets.parquet", progress=False)  # doctest: +SKIP
    PosixPath('wjets.parquet')
    >>> generate("sim", 40, seed=1, out="fsr.parquet", fsr_alpha_s=0.15)  # doctest: +SKIP
    PosixPath('fsr.parquet')
    """
    return generate_file("wjets", domain, n, seed, out, workers=workers, constituents=constituents,
                         signal_fraction=signal_fraction, progress=progress, **knobs)
