"""Pythia 8 and FastJet helpers shared by the physics case studies.

Everything here works on flat numpy arrays ("particles": a mapping of equal-length
1-D arrays with at least ``px``, ``py``, ``pz``, ``e``, ``pid`` and ``charge``, plus
an ``event`` index into the batch) because the detector, the pileup overlay and the
jet features are all vectorised over a whole batch of events.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from sqnn.errors import SqnnError, option

__all__ = [
    "MAX_PYTHIA_SEED",
    "ChargeTable",
    "PileupPool",
    "cluster",
    "derive_seed",
    "energy_correlators",
    "exclusive_axes",
    "final_state",
    "jet_substructure",
    "kinematics",
    "last_copy",
    "new_pythia",
    "quiet_fastjet",
    "versions",
    "wrap_phi",
    "xmldoc_dir",
]

# Pythia's Random:seed accepts 0 ... 900 000 000; 0 would mean "seed from the clock"
MAX_PYTHIA_SEED = 900_000_000
NEUTRINOS = (12, 14, 16)


def xmldoc_dir() -> Path:
    """The Pythia 8 xml data shipped with the ``pythia8mc`` wheel.

    Looked up in ``$PYTHIA8DATA``, then ``<prefix>/share/Pythia8/xmldoc`` of the
    interpreter's prefix and of the prefix the installed module lives under.
    """
    candidates: list[Path] = []
    if os.environ.get("PYTHIA8DATA"):
        candidates.append(Path(os.environ["PYTHIA8DATA"]))
    candidates.append(Path(sys.prefix) / "share" / "Pythia8" / "xmldoc")
    try:
        import pythia8mc

        module = Path(pythia8mc.__file__).resolve()
        # <prefix>/lib/pythonX.Y/site-packages/pythia8mc*.so -> <prefix>
        candidates.extend(parent / "share" / "Pythia8" / "xmldoc" for parent in module.parents[:5])
    except ImportError:
        pass
    for candidate in candidates:
        if (candidate / "Index.xml").is_file():
            return candidate
    raise SqnnError(
        "cannot find the Pythia 8 xml data (share/Pythia8/xmldoc); "
        "install the physics extra (pip install 'sqnn[physics]') or set PYTHIA8DATA"
    )


def new_pythia(settings: Sequence[str], seed: int) -> Any:
    """A silent, initialised ``pythia8mc.Pythia`` with ``settings`` and ``Random:seed = seed``."""
    try:
        import pythia8mc
    except ImportError as error:
        raise SqnnError(
            "the physics case studies need pythia8mc: pip install 'sqnn[physics]'"
        ) from error
    if not 0 < seed <= MAX_PYTHIA_SEED:
        raise SqnnError(f"Pythia seed {seed} is outside 1..{MAX_PYTHIA_SEED}")
    pythia = pythia8mc.Pythia(str(xmldoc_dir()), False)
    for line in ["Print:quiet = on", *settings, "Random:setSeed = on", f"Random:seed = {seed}"]:
        if not pythia.readString(line):
            raise SqnnError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise SqnnError(f"Pythia failed to initialise with {'; '.join(settings)}")
    return pythia


def derive_seed(seed: int, *keys: int) -> int:
    """A Pythia seed in 1..9e8 that depends on ``seed`` and every key (class, domain, worker...)."""
    state = np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(2, np.uint32)
    value = (int(state[0]) << 32) | int(state[1])
    return 1 + value % MAX_PYTHIA_SEED


class ChargeTable:
    """Electric charge per PDG id from Pythia's particle data, cached per id."""

    def __init__(self, particle_data: Any) -> None:
        self._particle_data = particle_data
        self._charge3: dict[int, int] = {}

    def __call__(self, pid: np.ndarray) -> np.ndarray:
        """Charges in units of e for an array of PDG ids."""
        unique, inverse = np.unique(pid, return_inverse=True)
        charge3 = np.empty(len(unique), dtype=np.float32)
        for k, code in enumerate(unique.tolist()):
            if code not in self._charge3:
                self._charge3[code] = int(self._particle_data.chargeType(code))
            charge3[k] = self._charge3[code]
        return charge3[inverse] / np.float32(3.0)


def final_state(batch: ak.Array, charges: ChargeTable) -> dict[str, np.ndarray]:
    """Flat arrays of the visible final-state particles of a ``nextBatch`` record.

    Keeps ``status > 0`` and drops neutrinos; ``event`` is the index within the batch.
    """
    prt = batch.prt
    n_per_event = ak.to_numpy(ak.num(prt.id))
    flat = ak.flatten(prt)
    pid = ak.to_numpy(flat.id).astype(np.int32)
    visible = (ak.to_numpy(flat.status) > 0) & ~np.isin(np.abs(pid), NEUTRINOS)
    momentum = flat.p
    event = np.repeat(np.arange(len(n_per_event), dtype=np.int64), n_per_event)
    pid = pid[visible]
    return {
        "px": ak.to_numpy(momentum.px)[visible],
        "py": ak.to_numpy(momentum.py)[visible],
        "pz": ak.to_numpy(momentum.pz)[visible],
        "e": ak.to_numpy(momentum.e)[visible],
        "pid": pid,
        "charge": charges(pid),
        "event": event[visible],
    }


def last_copy(batch: ak.Array, pid: int) -> dict[str, np.ndarray]:
    """Four-momentum of the last copy of particle ``|id| == pid`` in each event (NaN if absent).

    The last copy is the one after initial- and final-state recoils, just before it decays.
    """
    prt = batch.prt
    index = ak.local_index(prt.id)
    last = ak.to_numpy(ak.max(ak.where(abs(prt.id) == pid, index, -1), axis=1), allow_missing=False)
    found = last >= 0
    out = {name: np.full(len(last), np.nan) for name in ("px", "py", "pz", "e")}
    if found.any():
        rows = np.flatnonzero(found)
        picked = prt[rows, last[found]]
        for name in out:
            out[name][rows] = ak.to_numpy(getattr(picked.p, name))
    return out


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Azimuthal differences mapped into [-pi, pi)."""
    return (phi + np.pi) % (2.0 * np.pi) - np.pi


def kinematics(px: np.ndarray, py: np.ndarray, pz: np.ndarray, e: np.ndarray) -> dict[str, np.ndarray]:
    """pt, eta, rapidity, phi and mass of four-momenta (massless-safe)."""
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), np.sign(pz) * 1e9))
        rapidity = 0.5 * np.log(np.maximum(e + pz, 1e-300) / np.maximum(e - pz, 1e-300))
    mass = np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))
    return {"pt": pt, "eta": eta, "rapidity": rapidity, "phi": np.arctan2(py, px), "mass": mass}


def quiet_fastjet() -> None:
    """Silence the FastJet banner that is otherwise printed to stdout at the first clustering."""
    import fastjet

    fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)


@contextmanager
def _no_exclusive_warning() -> Iterator[None]:
    # fastjet-python 3.5.2 compares the jet definition with an algorithm enum and so
    # warns about exclusive jets even for the kt algorithm, where they are well defined
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dcut and exclusive jets.*")
        yield


def cluster(
    particles: Mapping[str, np.ndarray], counts: np.ndarray, algorithm: str, radius: float
) -> Any:
    """A FastJet awkward ``ClusterSequence`` over groups of particles (events or jets).

    ``particles`` are flat and ordered by group; ``counts`` gives the size of each group.
    """
    import fastjet

    quiet_fastjet()
    vectors = ak.zip(
        {name: np.ascontiguousarray(particles[key], dtype=np.float64) for name, key in
         (("px", "px"), ("py", "py"), ("pz", "pz"), ("E", "e"))},
        with_name="Momentum4D",
    )
    grouped = ak.unflatten(vectors, np.asarray(counts, dtype=np.int64))
    definition = fastjet.JetDefinition(getattr(fastjet, f"{algorithm}_algorithm"), radius)
    return fastjet.ClusterSequence(grouped, definition)


def exclusive_axes(sequence: Any, n_jets: int) -> dict[str, np.ndarray]:
    """Exclusive jets of every group of a cluster sequence, as flat arrays (group-major)."""
    with _no_exclusive_warning():
        jets = sequence.exclusive_jets(n_jets=n_jets)
    return {name: ak.to_numpy(ak.flatten(jets[field])) for name, field in
            (("px", "px"), ("py", "py"), ("pz", "pz"), ("e", "E"))}


def versions() -> dict[str, str]:
    """Versions of the generator stack, for the metadata of generated files."""
    out = {}
    for package in ("pythia8mc", "fastjet", "awkward", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


class PileupPool:
    """A pool of minimum-bias events, overlaid on hard events by drawing from it.

    The pool is generated once (a few hundred events) and reused; every overlaid copy
    is rotated by a random azimuth and mirrored in z with probability 1/2, so that
    repeated draws of the same event do not put the same particles at the same place.
    """

    def __init__(self, particles: Mapping[str, np.ndarray], n_events: int) -> None:
        self.particles = {key: np.asarray(value) for key, value in particles.items()}
        counts = np.bincount(self.particles["event"], minlength=n_events)
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.n_events = n_events

    @classmethod
    def generate(cls, settings: Sequence[str], seed: int, n_events: int, abs_eta_max: float = 3.0,
                 batch_size: int = 200) -> PileupPool:
        """Generate ``n_events`` with ``settings``; particles beyond ``abs_eta_max`` are not kept."""
        pythia = new_pythia(settings, seed)
        charges = ChargeTable(pythia.particleData)
        pieces, produced = [], 0
        while produced < n_events:
            batch = pythia.nextBatch(min(batch_size, n_events - produced))
            particles = final_state(batch, charges)
            particles["event"] = particles["event"] + produced
            pieces.append(particles)
            produced += len(batch)
        merged = {key: np.concatenate([piece[key] for piece in pieces]) for key in pieces[0]}
        eta = kinematics(merged["px"], merged["py"], merged["pz"], merged["e"])["eta"]
        inside = np.abs(eta) < abs_eta_max
        return cls({key: value[inside] for key, value in merged.items()}, produced)

    def overlay(self, n_events: int, mu: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Particles of Poisson(``mu``) pool events per hard event; ``event`` is the hard event."""
        multiplicity = rng.poisson(mu, size=n_events)
        drawn = rng.integers(self.n_events, size=int(multiplicity.sum()))
        angle = rng.uniform(0.0, 2.0 * np.pi, size=len(drawn))
        mirror = np.where(rng.random(len(drawn)) < 0.5, -1.0, 1.0)
        sizes = self.counts[drawn]
        copy_of = np.repeat(np.arange(len(drawn)), sizes)
        # index of every particle of every drawn event, in draw order
        within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        index = self.offsets[drawn][copy_of] + within
        out = {key: value[index] for key, value in self.particles.items()}
        cos, sin = np.cos(angle)[copy_of], np.sin(angle)[copy_of]
        px, py = out["px"], out["py"]
        out["px"], out["py"] = px * cos - py * sin, px * sin + py * cos
        out["pz"] = out["pz"] * mirror[copy_of]
        out["event"] = np.repeat(np.arange(n_events, dtype=np.int64), multiplicity)[copy_of]
        return out


def energy_correlators(
    z: np.ndarray, rapidity: np.ndarray, phi: np.ndarray, counts: np.ndarray, block_elements: int = 1_000_000
) -> tuple[np.ndarray, np.ndarray]:
    """Energy correlation functions e2 and e3 (beta = 1) of every jet.

    ``z`` are the constituents' momentum fractions, flat and ordered by jet, ``counts`` the
    constituents per jet. e2 = sum_{i<j} z_i z_j R_ij and e3 = sum_{i<j<k} z_i z_j z_k R_ij R_ik R_jk.
    Jets are padded (z = 0) in blocks of similar size, so that the triple sum becomes
    batched matrix products: sum_{ijk} = sum_i z_i a_i^T R a_i with a_i = z * R[i, :].
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_jets = len(counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    e2 = np.zeros(n_jets)
    e3 = np.zeros(n_jets)
    order = np.argsort(counts, kind="stable")
    first = 0
    while first < n_jets:
        tentative = order[min(first + 64, n_jets) - 1]
        size = max(int(counts[tentative]), 1)
        block = int(np.clip(block_elements // (size * size), 1, 64))
        jets = order[first:first + block]
        size = max(int(counts[jets].max()), 1)
        slot = np.arange(size)
        present = slot[None, :] < counts[jets][:, None]
        index = np.where(present, starts[jets][:, None] + slot[None, :], 0)
        zp = np.where(present, z[index], 0.0)
        yp, php = rapidity[index], phi[index]
        distance = np.hypot(yp[:, :, None] - yp[:, None, :], wrap_phi(php[:, :, None] - php[:, None, :]))
        e2[jets] = 0.5 * np.einsum("bi,bij,bj->b", zp, distance, zp)
        weighted = distance * zp[:, None, :]
        e3[jets] = np.einsum("bi,bik,bik->b", zp, weighted @ distance, weighted) / 6.0
        first += block
    return e2, e3


def jet_substructure(
    constituents: Mapping[str, np.ndarray], jet_of: np.ndarray, jets: Mapping[str, np.ndarray], radius: float
) -> dict[str, np.ndarray]:
    """Substructure of jets from their constituents (flat, ordered by jet, >= 3 per jet).

    Angular distances use rapidity and azimuth, as the clustering does. Returns
    ``n_constituents``, ``n_charged``, ``girth`` (sum pT_i dR_i / pT_jet), ``ptd``
    (sqrt(sum pT_i^2) / sum pT_i), ``tau1..3`` (normalised N-subjettiness, beta = 1,
    exclusive-kT axes, R0 = ``radius``), ``tau21``, ``tau32``, ``c2`` = e3/e2^2 and
    ``d2`` = e3/e2^3 (beta = 1).
    """
    n_jets = len(jets["px"])
    part = kinematics(constituents["px"], constituents["py"], constituents["pz"], constituents["e"])
    axis = kinematics(jets["px"], jets["py"], jets["pz"], jets["e"])
    counts = np.bincount(jet_of, minlength=n_jets)
    pt = part["pt"]
    delta_r = np.hypot(part["rapidity"] - axis["rapidity"][jet_of], wrap_phi(part["phi"] - axis["phi"][jet_of]))
    sum_pt = np.bincount(jet_of, weights=pt, minlength=n_jets)
    out = {
        "n_constituents": counts.astype(np.float64),
        "n_charged": np.bincount(jet_of, weights=(constituents["charge"] != 0), minlength=n_jets),
        "girth": np.bincount(jet_of, weights=pt * delta_r, minlength=n_jets) / axis["pt"],
        "ptd": np.sqrt(np.bincount(jet_of, weights=pt * pt, minlength=n_jets)) / sum_pt,
    }
    # exclusive-kT axes: kt clustering with the largest allowed R, so nothing merges with the beam
    sequence = cluster(constituents, counts, "kt", 1000.0)
    for n_axes in (1, 2, 3):
        axes = exclusive_axes(sequence, n_axes)
        found = kinematics(axes["px"], axes["py"], axes["pz"], axes["e"])
        rapidity = found["rapidity"].reshape(n_jets, n_axes)[jet_of]
        phi = found["phi"].reshape(n_jets, n_axes)[jet_of]
        nearest = np.hypot(part["rapidity"][:, None] - rapidity, wrap_phi(part["phi"][:, None] - phi)).min(axis=1)
        out[f"tau{n_axes}"] = np.bincount(jet_of, weights=pt * nearest, minlength=n_jets) / (sum_pt * radius)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["tau21"] = np.where(out["tau1"] > 0, out["tau2"] / out["tau1"], 0.0)
        out["tau32"] = np.where(out["tau2"] > 0, out["tau3"] / out["tau2"], 0.0)
        e2, e3 = energy_correlators(pt / sum_pt[jet_of], part["rapidity"], part["phi"], counts)
        out["c2"] = np.where(e2 > 0, e3 / e2**2, 0.0)
        out["d2"] = np.where(e2 > 0, e3 / e2**3, 0.0)
    return out


def validate_generation(
    domain: str,
    n: int,
    seed: int,
    workers: int,
    signal_fraction: float | None,
    *,
    unit: str,
    domains: Sequence[str],
    max_seed: int,
    max_workers: int,
) -> None:
    """The arguments every generator shares, checked with one-line errors for the command line."""
    if domain not in domains:
        raise SqnnError(f"unknown domain {domain!r}; choose {' or '.join(domains)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise SqnnError(f"{option('n')} must be a positive number of {unit}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= max_seed:
        raise SqnnError(f"{option('seed')} must be an integer in 0..{max_seed}, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or not 1 <= workers <= max_workers:
        raise SqnnError(f"{option('workers')} must be an integer in 1..{max_workers}, got {workers!r}")
    if signal_fraction is not None and not 0.0 <= signal_fraction <= 1.0:
        raise SqnnError(f"{option('signal_fraction')} must lie in [0, 1], got {signal_fraction!r}")
