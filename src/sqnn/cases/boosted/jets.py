"""From the final-state particles of a batch of hard events to the rows of a jet table.

Pileup overlay and its charged-hadron subtraction, the detector, anti-kT clustering, the jet
selection (the leading two jets of each event, in the pT window, ``|eta| < 2``, at least three
constituents), the truth match of signal jets, the substructure features and the columns of a
file with their event ids. One call, :func:`reconstruct`, per batch and reconstruction.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pyarrow as pa

from sqnn.cases import _pythia
from sqnn.cases.boosted.physics import CLASS_CODE, Process, Reconstruction, features

__all__ = ["CONSTITUENT_FIELDS", "jet_table", "reconstruct"]

JET_ABS_ETA_MAX = 2.0
LEADING_JETS = 2
MIN_CONSTITUENTS = 3
N_CONSTITUENTS_KEPT = 30
CONSTITUENT_FIELDS = ("pt", "deta", "dphi", "charge")


def reconstruct(
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


def jet_table(jets: dict[str, np.ndarray], process: Process, which: str, sequence_code: int, lane: int, chunk: int,
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
        (np.int64(sequence_code) << 45)
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
