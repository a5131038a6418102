"""Boosted hadronic top jets against QCD jets: Pythia 8 + a parametric detector + FastJet.

``generate(domain, n, seed, out)`` writes one parquet file of ``n`` jets (rows), exactly as
:mod:`sqnn.cases.wjets` does for W jets (same engine, :mod:`sqnn.cases.boosted`: domains,
seeds, workers, resume, knobs and columns are the same); only the process differs.

Physics
    pp at 13 TeV. Signal: tt̄ (``Top:gg2ttbar``, ``Top:qqbar2ttbar``) with both W bosons
    decaying to quarks, so each top gives a t → bW → bqq̄' jet; background: QCD 2 -> 2. Both
    with pTHat > 500 GeV, from separate Pythia instances.
Jets
    anti-kT R = 0.8 on the reconstructed particles; of each event the leading two jets, kept
    if 550 < pT < 650 GeV, |eta| < 2 and with at least 3 constituents (the window and radius
    of the community top-tagging comparison). A jet of a signal event is a top jet when the
    top (its last copy) and its three decay quarks (the b and the two quarks of the W, as
    they leave the decay) all lie within dR < R (rapidity-azimuth) of the jet axis; other jets
    of signal events are dropped, so signal jets are fully merged tops.
Columns
    As the W case: ``pt eta mass n_constituents n_charged girth ptd tau1 tau2 tau3 tau21 tau32
    d2 c2``, ``is_signal``, ``weight``, ``control``, ``event``, ``tag`` (and ``constituents`` on
    request).
    Top jets are three-pronged: low ``tau32`` and a mass peak near the top mass.
Control region
    ``control`` is true for jets with mass < 120 GeV or mass > 230 GeV: the sidebands around
    the top peak, dominated by QCD.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from sqnn.cases import _pythia
from sqnn.cases.boosted import Process, features, generate_file

__all__ = ["CONTROL_REGION", "FEATURES", "PROCESS", "generate", "top_decays"]

PROCESSES = {
    "signal": [
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
        "PhaseSpace:pTHatMin = 500.",
    ],
    "background": ["HardQCD:all = on", "PhaseSpace:pTHatMin = 500."],
}
JET_RADIUS = 0.8
JET_PT_RANGE = (550.0, 650.0)
CONTROL_REGION = {"mass_below": 120.0, "mass_above": 230.0}
FEATURES = features(JET_RADIUS)
PARTONS = ("top", "b", "q1", "q2")


def top_decays(batch: ak.Array) -> dict[str, np.ndarray]:
    """Rapidity and azimuth of each top and its decay quarks, per event of a ``nextBatch`` record.

    Keys ``{t,tbar}_{top,b,q1,q2}_{rapidity,phi}``; NaN where the event has no such top or
    its W did not decay to two particles. The top is its last copy (after recoils, as it
    decays); the b is the top's daughter with ``|id| == 5``; q1 and q2 are the daughters of
    the last copy of the W of the same charge sign.
    """
    prt = batch.prt
    per_event = ak.to_numpy(ak.num(prt.id))
    n_events = len(per_event)
    offsets = np.concatenate([[0], np.cumsum(per_event)[:-1]])
    pid = ak.to_numpy(ak.flatten(prt.id))
    first = ak.to_numpy(ak.flatten(prt.daughter1))
    last = ak.to_numpy(ak.flatten(prt.daughter2))
    momentum = ak.flatten(prt.p)
    kin = _pythia.kinematics(*(ak.to_numpy(getattr(momentum, key)) for key in ("px", "py", "pz", "e")))
    event_of = np.repeat(np.arange(n_events), per_event)
    position = np.arange(len(pid))

    def last_copy(code: int) -> np.ndarray:
        found = np.full(n_events, -1)
        chosen = pid == code
        np.maximum.at(found, event_of[chosen], position[chosen])
        return found

    def daughter(mother: np.ndarray, which: np.ndarray) -> np.ndarray:
        # daughter indices are within the event; -1 where the mother is missing or has none
        valid = mother >= 0
        index = np.where(valid, which[np.where(valid, mother, 0)], 0)
        return np.where(valid & (index > 0), offsets + index, -1)

    out: dict[str, np.ndarray] = {}
    for name, sign in (("t", 1), ("tbar", -1)):
        top = last_copy(6 * sign)
        first_daughter, second_daughter = daughter(top, first), daughter(top, last)
        b = np.where((first_daughter >= 0) & (np.abs(pid[first_daughter]) == 5), first_daughter,
                     np.where((second_daughter >= 0) & (np.abs(pid[second_daughter]) == 5), second_daughter, -1))
        w = last_copy(24 * sign)
        q1, q2 = daughter(w, first), daughter(w, last)
        two_body = (q1 >= 0) & (q2 == q1 + 1)
        for parton, index in (("top", top), ("b", b), ("q1", np.where(two_body, q1, -1)),
                              ("q2", np.where(two_body, q2, -1))):
            present = index >= 0
            for coordinate in ("rapidity", "phi"):
                values = np.full(n_events, np.nan)
                values[present] = kin[coordinate][index[present]]
                out[f"{name}_{parton}_{coordinate}"] = values
    return out


def _matched(truth: dict[str, np.ndarray], kin: dict[str, np.ndarray], jet_event: np.ndarray,
             radius: float) -> np.ndarray:
    matched = np.zeros(len(jet_event), dtype=bool)
    for name in ("t", "tbar"):
        inside = np.ones(len(jet_event), dtype=bool)
        for parton in PARTONS:
            distance = np.hypot(
                kin["rapidity"] - truth[f"{name}_{parton}_rapidity"][jet_event],
                _pythia.wrap_phi(kin["phi"] - truth[f"{name}_{parton}_phi"][jet_event]),
            )
            inside &= distance < radius  # NaN (parton not found) compares false
        matched |= inside
    return matched


PROCESS = Process(
    name="topjets",
    signal=tuple(PROCESSES["signal"]),
    background=tuple(PROCESSES["background"]),
    radius=JET_RADIUS,
    pt_range=JET_PT_RANGE,
    control_region=CONTROL_REGION,
    truth_match=lambda radius: (f"dR < {radius:g} (rapidity-azimuth) between the jet and the last top copy, "
                                "its b and both quarks of its W"),
    truth=top_decays,
    matched=_matched,
    jets_per_event={"signal": 0.33, "background": 0.50},
)


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
    """Generate ``n`` top or QCD jets of ``domain`` ("sim" or "data") into the parquet file ``out``.

    ``knobs`` as for :func:`sqnn.cases.wjets.generate`.

    >>> generate("sim", 40, seed=1, out="top.parquet", progress=False)  # doctest: +SKIP
    PosixPath('top.parquet')
    """
    return generate_file("topjets", domain, n, seed, out, workers=workers, constituents=constituents,
                         signal_fraction=signal_fraction, progress=progress, **knobs)
