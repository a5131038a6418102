"""The simulation/data suite: one pair of samples per shift factor, for W jets and top jets.

A suite case (:data:`CASES`) names a process and the two sides of a pair. The simulation
side is the same everywhere (Monash 2013, nominal detector, no pileup, signal fraction 0.5,
the process's jet radius and pT window); the data side changes one factor (or, for the
combined cases, several):

=================  ===========================================================
factor             what the data side changes
=================  ===========================================================
``tune``           ``Tune:pp = 21`` (ATLAS A14) instead of 14 (Monash)
``fsr``            ``TimeShower:alphaSvalue`` 0.1365 → 0.150
``isr``            ``SpaceShower:alphaSvalue`` 0.1365 → 0.150
``hadronisation``  ``StringZ:aLund`` 0.68 → 0.85 and ``StringPT:sigma`` 0.335 → 0.30
                   (softer fragmentation, narrower string breaks: both raise the multiplicity)
``mpi``            ``MultipartonInteractions:pT0Ref`` 2.28 → 2.0 (more underlying event)
``detector``       tracking efficiency and every resolution of the shifted detector,
                   jet energy scale kept at 1
``jes``            jet energy scale 1.03, nothing else
``pileup``         Poisson(μ) pileup, with or without charged-hadron subtraction
``fraction``       the signal fraction of the data files
``tag``            the tag side of tag-and-probe: tag efficiencies 0.27 (signal) and
                   0.025 (background) instead of 0.30 and 0.02, nothing else
=================  ===========================================================

Every file has a ``tag`` column (:mod:`sqnn.cases.boosted.tag_and_probe`); the combined
cases mismodel the tag side as the ``tag`` case does, every other case (and ``null``) has the
simulation's tag efficiencies on both sides. The tag is drawn from the file's seed and its
jets' event ids without a random number of the sequences, so no sequence, seed or other column
depends on it.

``make(names, out, n_train, n_eval)`` writes for every case four files, linked from
``<out>/<case>/``: ``sim_train``, ``data_train``, ``sim_eval`` and ``data_eval``
(``.parquet``), and ``case.json`` (what differs, the sizes and the command).

Honesty
    Each file comes from a sequence of hard events with its own seeds: (process, generator
    setting, role) with role one of sim_train, sim_eval, data_train, data_eval. Simulation and
    data never share a sequence, nor do training and evaluation files, so they never share a
    generated event (event ids carry the sequence code; :func:`verify` checks ids and Pythia
    seeds). Data files of different cases may share a sequence: several reconstructions
    (detector, energy scale, pileup) of the same events, and a file that differs only in the
    signal fraction takes the first jets of the same reconstruction.
Cost
    One Pythia run per (generator setting, role) feeds every reconstruction asked of it; all
    single-factor pairs of a process share one simulation. Sequences keep their finished chunks
    in ``<out>/.parts/`` and are seeded per chunk (see :mod:`sqnn.cases.boosted`), so a rerun
    resumes, a larger request only adds chunks, and a file that exists with the same request
    (settings, seeds, sizes) is not made again. The files depend on the seed, not on the
    number of workers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sqnn.files import atomic_path
from sqnn.cases import boosted
from sqnn.cases.boosted import GeneratorSettings, Output, Reconstruction
from sqnn.cases.boosted.tag_and_probe import TagEfficiencies
from sqnn.cases.detector import Detector
from sqnn.errors import SqnnError, option

__all__ = [
    "CASES",
    "FACTORS",
    "GROUPS",
    "RECOMMENDED_SIZES",
    "ROLES",
    "SETTINGS",
    "Side",
    "SuiteCase",
    "changed_factors",
    "estimate",
    "make",
    "measure",
    "plan",
    "select",
    "verify",
]

SUITE_FORMAT = 1
# the first key of every suite seed, so suite sequences never meet single-file sequences
SUITE_KEY = 7
PROCESS_CODE = {"wjets": 1, "topjets": 2}
PREFIX = {"wjets": "w", "topjets": "top"}
ROLES = {"sim_train": 0, "sim_eval": 1, "data_train": 2, "data_eval": 3}
FACTORS = ("tune", "fsr", "isr", "hadronisation", "mpi", "detector", "jes", "pileup", "fraction", "tag")

# jets per file: the evaluation size keeps the statistical error of the background scale
# factor at the 50 % signal-efficiency working point at or below 0.05 (see docs/suite.md)
RECOMMENDED_SIZES = {"wjets": {"train": 50_000, "eval": 110_000}, "topjets": {"train": 40_000, "eval": 200_000}}


@dataclass(frozen=True)
class Setting:
    """A generator setting of the suite; its code enters the seeds and event ids of its sequences."""

    code: int
    generator: GeneratorSettings
    description: str


SETTINGS: dict[str, Setting] = {
    "nominal": Setting(0, GeneratorSettings(tune=14), "Monash 2013"),
    "tune": Setting(1, GeneratorSettings(tune=21), "ATLAS A14 tune"),
    "fsr": Setting(2, GeneratorSettings(tune=14, fsr_alpha_s=0.150), "Monash, TimeShower:alphaSvalue = 0.150"),
    "isr": Setting(3, GeneratorSettings(tune=14, isr_alpha_s=0.150), "Monash, SpaceShower:alphaSvalue = 0.150"),
    "hadronisation": Setting(4, GeneratorSettings(tune=14, lund_a=0.85, string_pt_sigma=0.30),
                             "Monash, StringZ:aLund = 0.85, StringPT:sigma = 0.30"),
    "mpi": Setting(5, GeneratorSettings(tune=14, mpi_pt0_ref=2.0), "Monash, MultipartonInteractions:pT0Ref = 2.0"),
    "modelling": Setting(6, GeneratorSettings(tune=14, fsr_alpha_s=0.150, isr_alpha_s=0.150, lund_a=0.85,
                                              string_pt_sigma=0.30, mpi_pt0_ref=2.0),
                         "Monash with the fsr, isr, hadronisation and mpi shifts together"),
}

# the detector of the `detector` factor: the shifted detector's tracking and calorimetry
# without its energy scale, which is a factor of its own
RESOLUTION_DETECTOR = replace(Detector.shifted(), name="shifted-resolution", energy_scale=1.0)
JES_DETECTOR = replace(Detector.nominal(), name="nominal-jes", energy_scale=1.03)
# the tag efficiencies of simulation, and of data where the tag side is mismodelled (the `tag` factor)
SIMULATION_TAG = TagEfficiencies.of_domain("sim")
MISMODELLED_TAG = TagEfficiencies.of_domain("data")


@dataclass(frozen=True)
class Side:
    """One side of a pair: generator setting, detector, pileup, signal fraction and tag efficiencies."""

    setting: str = "nominal"
    detector: Detector = field(default_factory=Detector.nominal)
    pileup_mu: float = 0.0
    chs: bool = True
    signal_fraction: float = 0.5
    tag: TagEfficiencies = SIMULATION_TAG
    # a short name for file names (the reconstruction's hash follows it)
    label: str = "nominal"

    def reconstruction(self, process: str) -> Reconstruction:
        defaults = boosted.process_named(process)
        return Reconstruction(detector=self.detector, pileup_mu=self.pileup_mu, chs=self.chs,
                              radius=defaults.radius, pt_min=defaults.pt_range[0], pt_max=defaults.pt_range[1])

    def describe(self) -> str:
        parts = [SETTINGS[self.setting].description, f"detector {self.detector.name}"]
        if self.detector.energy_scale != 1.0:
            parts[-1] += f" (energy scale {self.detector.energy_scale:g})"
        if self.pileup_mu > 0:
            parts.append(f"pileup mu = {self.pileup_mu:g} {'with' if self.chs else 'without'} CHS")
        else:
            parts.append("no pileup")
        parts.append(f"signal fraction {self.signal_fraction:g}")
        parts.append(f"tag efficiency {self.tag.signal:g} signal, {self.tag.background:g} background")
        return ", ".join(parts)


SIMULATION = Side()


@dataclass(frozen=True)
class SuiteCase:
    """A simulation/data pair: ``factors`` names what the data side changes."""

    name: str
    process: str
    factors: tuple[str, ...]
    data: Side
    sim: Side = SIMULATION

    @property
    def combined(self) -> bool:
        return len(self.factors) > 1

    def describe(self) -> str:
        return f"data: {self.data.describe()}"


def changed_factors(sim: Side, data: Side) -> tuple[str, ...]:
    """The factors in which two sides differ, in the order of :data:`FACTORS`."""
    changed = set()
    a, b = SETTINGS[sim.setting].generator, SETTINGS[data.setting].generator
    if a.tune != b.tune:
        changed.add("tune")
    for factor, names in (("fsr", ("fsr_alpha_s",)), ("isr", ("isr_alpha_s",)),
                          ("hadronisation", ("lund_a", "lund_b", "string_pt_sigma")), ("mpi", ("mpi_pt0_ref",))):
        if any(getattr(a, name) != getattr(b, name) for name in names):
            changed.add(factor)
    if a.extra != b.extra:
        changed.add("generator")
    if sim.detector.energy_scale != data.detector.energy_scale:
        changed.add("jes")
    response = [name for name in Detector.__dataclass_fields__ if name not in ("name", "energy_scale")]
    if any(getattr(sim.detector, name) != getattr(data.detector, name) for name in response):
        changed.add("detector")
    if (sim.pileup_mu, sim.pileup_mu > 0 and sim.chs) != (data.pileup_mu, data.pileup_mu > 0 and data.chs):
        changed.add("pileup")
    if sim.signal_fraction != data.signal_fraction:
        changed.add("fraction")
    if sim.tag != data.tag:
        changed.add("tag")
    return tuple(name for name in (*FACTORS, "generator") if name in changed)


def _cases_of(process: str) -> list[SuiteCase]:
    p = PREFIX[process]
    pairs = [
        ("tune", ("tune",), Side(setting="tune")),
        ("fsr", ("fsr",), Side(setting="fsr")),
        ("isr", ("isr",), Side(setting="isr")),
        ("hadronisation", ("hadronisation",), Side(setting="hadronisation")),
        ("mpi", ("mpi",), Side(setting="mpi")),
        ("detector", ("detector",), Side(detector=RESOLUTION_DETECTOR, label="resolution")),
        ("jes", ("jes",), Side(detector=JES_DETECTOR, label="jes1.03")),
        ("pileup", ("pileup",), Side(pileup_mu=15.0, label="pu15")),
        ("pileup-nochs", ("pileup",), Side(pileup_mu=15.0, chs=False, label="pu15-nochs")),
        ("fraction", ("fraction",), Side(signal_fraction=0.2)),
        # the jets of the null case with the tag side of data: only the tag column differs
        ("tag", ("tag",), Side(tag=MISMODELLED_TAG)),
        # the case the package's defaults were chosen on, with the suite's seeds
        ("combined", ("tune", "detector", "jes", "pileup", "fraction", "tag"),
         Side(setting="tune", detector=Detector.shifted(), pileup_mu=10.0, signal_fraction=0.3,
              tag=MISMODELLED_TAG, label="shifted-pu10")),
        ("combined-modelling", ("fsr", "isr", "hadronisation", "mpi", "jes", "fraction", "tag"),
         Side(setting="modelling", detector=JES_DETECTOR, signal_fraction=0.3, tag=MISMODELLED_TAG,
              label="jes1.03")),
        # a harder shower, the energy scale and pileup together: one more reconstruction of the fsr sequence
        ("combined-shower", ("fsr", "jes", "pileup", "fraction", "tag"),
         Side(setting="fsr", detector=JES_DETECTOR, pileup_mu=10.0, signal_fraction=0.3, tag=MISMODELLED_TAG,
              label="jes1.03-pu10")),
        # differs in nothing but the seeds: what a method reports when there is no shift
        ("null", (), Side()),
    ]
    return [SuiteCase(f"{p}-{name}", process, factors, side) for name, factors, side in pairs]


CASES: dict[str, SuiteCase] = {case.name: case for process in PROCESS_CODE for case in _cases_of(process)}
GROUPS = {"all": tuple(CASES), **{process: tuple(n for n, c in CASES.items() if c.process == process)
                                   for process in PROCESS_CODE}}


def select(names: Iterable[str]) -> list[SuiteCase]:
    """Cases by name; ``all``, ``wjets`` and ``topjets`` name groups."""
    chosen: list[str] = []
    for name in names:
        members = GROUPS.get(name, (name,))
        for member in members:
            if member not in CASES:
                raise SqnnError(f"unknown suite case {member!r}; `sqnn suite list` shows them "
                                f"(groups: {', '.join(GROUPS)})")
            if member not in chosen:
                chosen.append(member)
    if not chosen:
        raise SqnnError("name at least one suite case, or a group: " + ", ".join(GROUPS))
    return [CASES[name] for name in chosen]


# ---------------------------------------------------------------- planning


@dataclass(frozen=True)
class Planned:
    """One file of the suite and the sequence it comes from."""

    sequence: boosted.EventSequence
    sequence_name: str
    output: Output
    request: str


def _sequence(process: str, setting: str, role: str, seed: int, out: Path,
              workers: int) -> tuple[str, boosted.EventSequence]:
    code = PROCESS_CODE[process] << 6 | SETTINGS[setting].code << 2 | ROLES[role]
    keys = (SUITE_KEY, PROCESS_CODE[process], SETTINGS[setting].code, ROLES[role])
    name = f"{process}-{setting}-{role}"
    sequence = boosted.make_sequence(process, SETTINGS[setting].generator, seed, keys, code, out / ".parts" / name,
                                     workers=workers)
    digest = hashlib.sha256(json.dumps(sequence.manifest(), sort_keys=True).encode()).hexdigest()[:8]
    return name, replace(sequence, parts=out / ".parts" / f"{name}-{digest}")


def _planned(case: SuiteCase, side: Side, role: str, n: int, seed: int, out: Path, workers: int) -> Planned:
    name, sequence = _sequence(case.process, side.setting, role, seed, out, workers)
    reco = side.reconstruction(case.process)
    n_signal = int(round(n * side.signal_fraction))
    # the stored key names ("stream") stay: the request hash and the files' metadata depend on them
    request_fields = {
        "suite_format": SUITE_FORMAT,
        "stream": sequence.manifest(),
        "reconstruction": reco.to_dict(),
        "n_signal": n_signal,
        "n_background": n - n_signal,
        "tag": side.tag.to_dict(),
    }
    request = hashlib.sha256(json.dumps(request_fields, sort_keys=True).encode()).hexdigest()[:16]
    tag = f"t{side.tag.signal:g}-{side.tag.background:g}"
    path = out / "files" / f"{name}-{side.label}-{reco.key()[:6]}-f{side.signal_fraction:g}-{tag}-n{n}.parquet"
    sample = {"suite_format": SUITE_FORMAT, "stream": name, "setting": side.setting, "role": role,
              "side": side.describe(), "request": request}
    output = Output(path, reco, n_signal, n - n_signal, role.split("_")[0], side.signal_fraction, sample,
                    tag=side.tag)
    return Planned(sequence, name, output, request)


def plan(cases: Sequence[SuiteCase], out: str | Path, *, n_train: int | None = None, n_eval: int | None = None,
         seed: int = 0, workers: int = 1) -> dict[str, dict[str, Planned]]:
    """The four files of every case: ``{case: {role: Planned}}``; sizes default to :data:`RECOMMENDED_SIZES`."""
    out = Path(out)
    for value, name in ((n_train, "n_train"), (n_eval, "n_eval")):
        if value is not None and (isinstance(value, bool) or value <= 0):
            raise SqnnError(f"{option(name)} must be a positive number of jets, got {value!r}")
    if not 0 <= seed <= boosted.MAX_SEED:
        raise SqnnError(f"{option('seed')} must be an integer in 0..{boosted.MAX_SEED}, got {seed!r}")
    planned: dict[str, dict[str, Planned]] = {}
    for case in cases:
        sizes = RECOMMENDED_SIZES[case.process]
        train = sizes["train"] if n_train is None else int(n_train)
        evaluation = sizes["eval"] if n_eval is None else int(n_eval)
        planned[case.name] = {
            role: _planned(case, case.sim if role.startswith("sim") else case.data, role,
                           train if role.endswith("train") else evaluation, seed, out, workers)
            for role in ROLES
        }
    return planned


def _is_done(item: Planned) -> bool:
    path = item.output.path
    if not path.exists():
        return False
    try:
        metadata = json.loads(pq.read_schema(path).metadata[b"sqnn"])
    except (OSError, KeyError, TypeError, ValueError):  # an unreadable file is one to make again
        return False
    return metadata.get("sample", {}).get("request") == item.request


# ---------------------------------------------------------------- making and checking


def make(names: Iterable[str], out: str | Path, *, n_train: int | None = None, n_eval: int | None = None,
         seed: int = 0, workers: int = 1, progress: bool = True, log: Any = None) -> dict[str, Path]:
    """Make the files of the named cases (or groups) under ``out``; returns ``{case: folder}``.

    Files that exist with the same request are kept; sequences resume from ``out/.parts``.

    >>> make(["w-fsr", "w-jes"], "suite", n_train=2000, n_eval=4000)  # doctest: +SKIP
    {'w-fsr': PosixPath('suite/w-fsr'), 'w-jes': PosixPath('suite/w-jes')}
    """
    out = Path(out)
    cases = select(names)
    planned = plan(cases, out, n_train=n_train, n_eval=n_eval, seed=seed, workers=workers)
    by_sequence: dict[str, list[Planned]] = {}
    for files in planned.values():
        for item in files.values():
            group = by_sequence.setdefault(item.sequence_name, [])
            if all(other.output.path != item.output.path for other in group):
                group.append(item)
    for name, items in by_sequence.items():
        todo = [item for item in items if not _is_done(item)]
        if log is not None:
            log(f"{name}: {len(items) - len(todo)} of {len(items)} files already made")
        if todo:
            boosted.produce(todo[0].sequence, [item.output for item in todo], progress=progress, label=name)
    folders = {}
    for case in cases:
        folders[case.name] = _link_case(case, planned[case.name], out, seed)
        verify(folders[case.name])
    return folders


def _link_case(case: SuiteCase, files: dict[str, Planned], out: Path, seed: int) -> Path:
    folder = out / case.name
    folder.mkdir(parents=True, exist_ok=True)
    for role, item in files.items():
        link = folder / f"{role}.parquet"
        target = os.path.relpath(item.output.path, folder)
        if link.is_symlink() or link.exists():
            if link.is_symlink() and os.readlink(link) == target:
                continue
            link.unlink()
        link.symlink_to(target)
    sizes = {role: item.output.n for role, item in files.items()}
    description = {
        "name": case.name,
        "process": case.process,
        "factors": list(case.factors),
        "sim": case.sim.describe(),
        "data": case.data.describe(),
        "files": {role: f"{role}.parquet" for role in files},
        "sources": {role: os.path.relpath(item.output.path, out) for role, item in files.items()},
        "streams": {role: item.sequence_name for role, item in files.items()},  # the stored key of case.json
        "sizes": sizes,
        "seed": seed,
        "command": (f"sqnn suite make {case.name} --n-train {sizes['sim_train']} --n-eval {sizes['sim_eval']} "
                    f"--seed {seed} --out {out}"),
    }
    with atomic_path(folder / "case.json") as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n")
    return folder


def _pythia_seeds(metadata: dict[str, Any]) -> set[int]:
    seeds = metadata["seeds"]
    found = set(seeds.get("init", {}).values())
    for chunk_seeds in seeds.get("chunks", {}).values():
        found.update(chunk_seeds)
    found.update((metadata.get("pileup") or {}).get("seeds", []))
    return found


def verify(folder: str | Path) -> None:
    """Raise unless the four files of a case share no event id and no Pythia seed."""
    folder = Path(folder)
    events, seeds = {}, {}
    for role in ROLES:
        path = folder / f"{role}.parquet"
        if not path.exists():
            raise SqnnError(f"{path} is missing; rerun `sqnn suite make {folder.name}`")
        events[role] = set(pq.read_table(path, columns=["event"]).column("event").to_pylist())
        seeds[role] = _pythia_seeds(json.loads(pq.read_schema(path).metadata[b"sqnn"]))
    for a, b in combinations(ROLES, 2):
        if events[a] & events[b]:
            raise SqnnError(f"{folder}: {a} and {b} share {len(events[a] & events[b])} generated events")
        if seeds[a] & seeds[b]:
            raise SqnnError(f"{folder}: {a} and {b} share Pythia seeds {sorted(seeds[a] & seeds[b])[:3]}")


# ---------------------------------------------------------------- cost


def _cost_reconstructions(process: str) -> dict[str, Reconstruction]:
    sides = {"nominal": SIMULATION, "pu10-chs-shifted": CASES[f"{PREFIX[process]}-combined"].data,
             "pu15-chs": CASES[f"{PREFIX[process]}-pileup"].data,
             "pu15-nochs": CASES[f"{PREFIX[process]}-pileup-nochs"].data}
    return {name: side.reconstruction(process) for name, side in sides.items()}


def measure(process: str, setting: str = "nominal", *, events: int = 400, seed: int = 1) -> dict[str, Any]:
    """CPU seconds (``time.process_time``, this process only) of one generator setting.

    Per class: Pythia's initialisation, its events per CPU-second, and for each kind of
    reconstruction (no pileup; mu = 10 with CHS; mu = 15 with and without CHS) the CPU
    seconds per event and the selected jets per event. Chunks of 200 events, as generation.
    """
    import time

    import numpy as np

    from sqnn.cases import _pythia
    from sqnn.cases.boosted import sequences
    from sqnn.cases.boosted.jets import reconstruct
    from sqnn.cases.boosted.worker import Generators

    if setting not in SETTINGS:
        raise SqnnError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    if events <= 0:
        raise SqnnError(f"{option('events')} must be positive, got {events}")
    definition = boosted.process_named(process)
    sequence = boosted.make_sequence(process, SETTINGS[setting].generator, seed, (SUITE_KEY, 0, 0, 0), 0, Path("."))
    state = Generators(sequence, definition)
    reconstructions = _cost_reconstructions(process)
    start = time.process_time()
    pool = state.pileup_pool(_pythia.derive_seed(seed, boosted.PILEUP_CODE))
    result: dict[str, Any] = {
        "process": process, "setting": setting, "events_per_class": events,
        "pileup_pool_cpu_s": round(time.process_time() - start, 3), "classes": {},
    }
    for which in boosted.CLASSES:
        start = time.process_time()
        pythia = state.pythia(which, _pythia.derive_seed(seed, boosted.CLASS_CODE[which]))
        init = time.process_time() - start
        generation = 0.0
        reco_cpu = dict.fromkeys(reconstructions, 0.0)
        jets = dict.fromkeys(reconstructions, 0)
        made = 0
        rng = np.random.default_rng(seed)
        while made < events:
            start = time.process_time()
            batch = pythia.nextBatch(min(sequences.CHUNK_EVENTS, events - made))
            generation += time.process_time() - start
            start = time.process_time()
            particles = _pythia.final_state(batch, state.charges)
            truth = definition.truth(batch) if which == "signal" else None
            shared = time.process_time() - start
            for name, reco in reconstructions.items():
                start = time.process_time()
                overlay = pool.overlay(len(batch), reco.pileup_mu, rng) if reco.pileup_mu > 0 else None
                selected = reconstruct(particles, len(batch), definition, truth, reco, rng, overlay, False)
                reco_cpu[name] += time.process_time() - start + shared
                jets[name] += len(selected["pt"])
            made += len(batch)
        result["classes"][which] = {
            "init_cpu_s": round(init, 3),
            "pythia_events_per_cpu_s": round(made / generation, 1),
            "reconstruction_cpu_s_per_event": {name: round(cpu / made, 5) for name, cpu in reco_cpu.items()},
            "jets_per_event": {name: round(count / made, 4) for name, count in jets.items()},
        }
    return result


# Measured with `sqnn suite measure PROCESS --setting SETTING --events 400` (1 thread, CPU seconds
# of this process, 2-core Xeon VM shared with other jobs; see docs/suite.md). Per setting and class:
# Pythia events per CPU-second and selected jets per event with the nominal reconstruction.
MEASURED_SETTINGS: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "wjets": {
        "nominal": {"signal": (155.1, 0.4225), "background": (142.6, 0.7075)},
        "tune": {"signal": (177.7, 0.4525), "background": (141.1, 0.7175)},
        "fsr": {"signal": (121.3, 0.4475), "background": (81.8, 0.7625)},
        "isr": {"signal": (124.2, 0.4375), "background": (121.2, 0.7825)},
        "hadronisation": {"signal": (167.1, 0.435), "background": (119.9, 0.68)},
        "mpi": {"signal": (93.2, 0.4375), "background": (82.1, 0.70)},
        "modelling": {"signal": (70.1, 0.3975), "background": (50.0, 0.71)},
    },
    "topjets": {
        "nominal": {"signal": (156.0, 0.3325), "background": (121.4, 0.505)},
        "tune": {"signal": (170.0, 0.395), "background": (145.9, 0.4825)},
        "fsr": {"signal": (88.9, 0.335), "background": (75.0, 0.4975)},
        "isr": {"signal": (124.9, 0.315), "background": (115.2, 0.515)},
        "hadronisation": {"signal": (151.6, 0.385), "background": (122.1, 0.5475)},
        "mpi": {"signal": (103.2, 0.3325), "background": (93.8, 0.4525)},
        "modelling": {"signal": (66.1, 0.3525), "background": (58.8, 0.47)},
    },
}
# Per kind of reconstruction (nominal setting): CPU seconds per hard event (final state, pileup
# overlay, detector, clustering, substructure) and jets per event relative to no pileup.
MEASURED_RECONSTRUCTION: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "wjets": {
        "none": {"signal": (0.00050, 1.0), "background": (0.00043, 1.0)},
        "pu10-chs": {"signal": (0.00076, 0.98), "background": (0.00070, 1.0)},
        "pu15-chs": {"signal": (0.00093, 1.07), "background": (0.00089, 1.09)},
        "pu15-nochs": {"signal": (0.00132, 1.24), "background": (0.00144, 1.26)},
    },
    "topjets": {
        "none": {"signal": (0.00062, 1.0), "background": (0.00051, 1.0)},
        "pu10-chs": {"signal": (0.00087, 0.93), "background": (0.00078, 1.07)},
        "pu15-chs": {"signal": (0.00108, 1.08), "background": (0.00090, 1.08)},
        "pu15-nochs": {"signal": (0.00152, 1.09), "background": (0.00128, 1.23)},
    },
}


def _reconstruction_kind(reco: Reconstruction) -> str:
    if reco.pileup_mu == 0:
        return "none"
    if reco.chs:
        return "pu10-chs" if reco.pileup_mu <= 12.5 else "pu15-chs"
    return "pu15-nochs"


def estimate(names: Iterable[str], *, n_train: int | None = None, n_eval: int | None = None,
             seed: int = 0) -> dict[str, Any]:
    """Hard events and CPU hours the named cases need, from the measured speeds above.

    Each sequence is counted once, at the events its most demanding reconstruction needs, plus one
    reconstruction per file kind; Pythia's initialisation and the pileup pools (seconds per
    worker and sequence) are left out.
    """
    cases = select(names)
    planned = plan(cases, Path("."), n_train=n_train, n_eval=n_eval, seed=seed)
    sequences: dict[str, dict[Reconstruction, dict[str, int]]] = {}
    for files in planned.values():
        for item in files.values():
            needs = sequences.setdefault(item.sequence_name, {}).setdefault(
                item.output.reconstruction, dict.fromkeys(boosted.CLASSES, 0))
            needs["signal"] = max(needs["signal"], item.output.n_signal)
            needs["background"] = max(needs["background"], item.output.n_background)
    report: dict[str, Any] = {}
    total = 0.0
    for name, variants in sequences.items():
        process, setting = name.split("-")[:2]
        events = dict.fromkeys(boosted.CLASSES, 0.0)
        cpu = 0.0
        for reco, needs in variants.items():
            kind = _reconstruction_kind(reco)
            for which in boosted.CLASSES:
                _, jets_per_event = MEASURED_SETTINGS[process][setting][which]
                reco_cpu, relative_yield = MEASURED_RECONSTRUCTION[process][kind][which]
                needed = needs[which] / (jets_per_event * relative_yield)
                events[which] = max(events[which], needed)
                cpu += needed * reco_cpu
        cpu += sum(events[which] / MEASURED_SETTINGS[process][setting][which][0] for which in boosted.CLASSES)
        report[name] = {
            "events": {which: int(round(value)) for which, value in events.items()},
            "reconstructions": len(variants),
            "cpu_seconds": round(cpu, 1),
        }
        total += cpu
    # "streams": the key that `sqnn suite plan` has always printed them under
    return {"cases": [case.name for case in cases], "streams": report, "cpu_seconds": round(total, 1),
            "cpu_hours": round(total / 3600.0, 2)}
