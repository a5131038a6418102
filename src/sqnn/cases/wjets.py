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
    file, shared by the two jets of one background event, so splits can be made by event).
    With ``constituents=True`` also ``constituents``: the 30 leading constituents of each jet,
    a jagged list of records (pt [GeV], deta, dphi to the jet axis, charge [e]).
Control region
    ``control`` is true for jets with mass < 50 GeV or mass > 120 GeV: the mass sidebands
    around the W peak, dominated by QCD in both domains.
Class mix and seeds
    ``n_signal = round(n * f)`` with f = 0.5 (sim) or 0.3 (data) unless ``signal_fraction``
    is given. Every (class, worker) stream runs its own Pythia instance, the pileup pool of
    every worker its own, each seeded from (``seed``, domain, class, worker, first chunk of
    the run); all seeds, settings and versions are stored as JSON under the key ``sqnn`` of
    the parquet key-value metadata.
Interruption and resume
    Every finished chunk of ~200 events is kept in ``<out>.parts/``. Ctrl-C or SIGTERM stops
    after the current chunk; a rerun with the same arguments continues from the kept chunks
    (a resumed stream is seeded from its first new chunk, so it gives other, equally valid
    events than an uninterrupted run). ``<out>`` is written atomically when all jets exist.
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
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
    "CONTROL_REGION",
    "FEATURES",
    "GenerationInterrupted",
    "domain_settings",
    "generate",
]

FORMAT_VERSION = 1
DOMAINS = ("sim", "data")
CLASSES = ("signal", "background")
DOMAIN_CODE = {"sim": 0, "data": 1}
CLASS_CODE = {"background": 0, "signal": 1}
PILEUP_CODE = 2
SHUFFLE_CODE = 3
DEFAULT_SIGNAL_FRACTION = {"sim": 0.5, "data": 0.3}
MAX_SEED = 2**32 - 1
MAX_WORKERS = 255

BEAM = ["Beams:idA = 2212", "Beams:idB = 2212", "Beams:eCM = 13000."]
PROCESSES = {
    "signal": [
        "WeakBosonAndParton:qqbar2Wg = on",
        "WeakBosonAndParton:qg2Wq = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
        "PhaseSpace:pTHatMin = 400.",
    ],
    "background": ["HardQCD:all = on", "PhaseSpace:pTHatMin = 400."],
    "pileup": ["SoftQCD:nonDiffractive = on"],
}
TUNES = {"sim": (14, "Monash 2013"), "data": (21, "ATLAS A14, NNPDF2.3LO")}
PILEUP = {"mu": 10.0, "pool_events_per_worker": 400}

CHUNK_EVENTS = 200
JET_RADIUS = 0.8
JET_PT_RANGE = (450.0, 650.0)
JET_ABS_ETA_MAX = 2.0
LEADING_JETS = 2
MIN_CONSTITUENTS = 3
TRUTH_MATCH_DR = 0.6
N_CONSTITUENTS_KEPT = 30
CONTROL_REGION = {"mass_below": 50.0, "mass_above": 120.0}

FEATURES = {
    "pt": "jet transverse momentum [GeV]",
    "eta": "jet pseudorapidity",
    "mass": "jet mass [GeV]",
    "n_constituents": "number of reconstructed constituents",
    "n_charged": "number of charged (tracked) constituents",
    "girth": "sum_i pT_i dR_i / pT_jet",
    "ptd": "sqrt(sum_i pT_i^2) / sum_i pT_i",
    "tau1": "N-subjettiness, beta = 1, exclusive-kT axes, normalised by sum pT_i * 0.8",
    "tau2": "as tau1 with 2 axes",
    "tau3": "as tau1 with 3 axes",
    "tau21": "tau2 / tau1",
    "tau32": "tau3 / tau2",
    "d2": "e3 / e2^3 (energy correlation functions, beta = 1)",
    "c2": "e3 / e2^2 (energy correlation functions, beta = 1)",
}
CONSTITUENT_FIELDS = ("pt", "deta", "dphi", "charge")


class GenerationInterrupted(SqnnError):
    """Generation stopped by Ctrl-C or SIGTERM; the finished chunks are kept for a rerun."""

    exit_code = 130


def domain_settings(domain: str) -> dict[str, Any]:
    """Tune, detector and pileup of a domain."""
    tune, tune_name = TUNES[domain]
    return {
        "tune": tune,
        "tune_name": tune_name,
        "detector": Detector.nominal() if domain == "sim" else Detector.shifted(),
        "pileup": None if domain == "sim" else dict(PILEUP),
    }


def _pythia_settings(domain: str, process: str) -> list[str]:
    # the tune first: it resets parameters that later lines may set
    return [f"Tune:pp = {TUNES[domain][0]}", *BEAM, *PROCESSES[process]]


def _split(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if k < total % workers else 0) for k in range(workers)]


@dataclass(frozen=True)
class _Config:
    domain: str
    n: int
    seed: int
    workers: int
    constituents: bool
    signal_fraction: float
    parts: Path
    targets: dict[str, list[int]] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "domain": self.domain,
            "n": self.n,
            "seed": self.seed,
            "workers": self.workers,
            "constituents": self.constituents,
            "signal_fraction": self.signal_fraction,
        }

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "parts": str(self.parts)})

    @classmethod
    def from_json(cls, text: str) -> _Config:
        values = json.loads(text)
        return cls(**{**values, "parts": Path(values["parts"])})


# ---------------------------------------------------------------- one chunk of events


def _reconstruct(
    batch: ak.Array,
    process: str,
    detector: Detector,
    rng: np.random.Generator,
    charges: _pythia.ChargeTable,
    pool: _pythia.PileupPool | None,
    mu: float,
    with_constituents: bool,
) -> dict[str, np.ndarray]:
    """Selected jets of one batch of hard events: features, the event index and constituents."""
    n_events = len(batch)
    particles = _pythia.final_state(batch, charges)
    if pool is not None:
        pileup = pool.overlay(n_events, mu, rng)
        particles["pileup"] = np.zeros(len(particles["px"]), dtype=bool)
        pileup["pileup"] = np.ones(len(pileup["px"]), dtype=bool)
        merged = {key: np.concatenate([particles[key], pileup[key]]) for key in particles}
        order = np.argsort(merged["event"], kind="stable")
        particles = {key: value[order] for key, value in merged.items()}
    reco = detector.apply(particles, rng)
    if pool is not None:
        # charged-hadron subtraction: every tracked pileup particle is known to come from
        # another vertex; pileup neutrals cannot be told apart and stay
        hard_or_neutral = ~reco.pop("pileup") | (reco["charge"] == 0)
        reco = {key: value[hard_or_neutral] for key, value in reco.items()}
    counts = np.bincount(reco["event"], minlength=n_events)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])

    sequence = _pythia.cluster(reco, counts, "antikt", JET_RADIUS)
    cluster_pt_min = 0.8 * JET_PT_RANGE[0]
    jets = sequence.inclusive_jets(cluster_pt_min)
    members = sequence.constituent_index(cluster_pt_min)
    leading = ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False)[:, :LEADING_JETS]
    jets, members = jets[leading], members[leading]
    jet_event = np.repeat(np.arange(n_events), ak.to_numpy(ak.num(jets.px)))
    flat = {key: ak.to_numpy(ak.flatten(jets[field])) for key, field in
            (("px", "px"), ("py", "py"), ("pz", "pz"), ("e", "E"))}
    size = ak.to_numpy(ak.flatten(ak.num(members, axis=2)))
    kin = _pythia.kinematics(flat["px"], flat["py"], flat["pz"], flat["e"])
    keep = (
        (kin["pt"] > JET_PT_RANGE[0])
        & (kin["pt"] < JET_PT_RANGE[1])
        & (np.abs(kin["eta"]) < JET_ABS_ETA_MAX)
        & (size >= MIN_CONSTITUENTS)
    )
    if process == "signal":
        w = _pythia.last_copy(batch, 24)
        w_kin = _pythia.kinematics(w["px"], w["py"], w["pz"], w["e"])
        distance = np.hypot(
            kin["rapidity"] - w_kin["rapidity"][jet_event],
            _pythia.wrap_phi(kin["phi"] - w_kin["phi"][jet_event]),
        )
        keep &= distance < TRUTH_MATCH_DR  # NaN (no W found) compares false
    selected = np.flatnonzero(keep)
    local = ak.flatten(members, axis=1)[selected]
    n_jets = len(selected)
    jet_of = np.repeat(np.arange(n_jets), ak.to_numpy(ak.num(local)))
    index = ak.to_numpy(ak.flatten(local)) + offsets[jet_event[selected]][jet_of]
    constituents = {key: reco[key][index] for key in ("px", "py", "pz", "e", "charge")}
    jet = {key: value[selected] for key, value in flat.items()}

    out = {
        "pt": kin["pt"][selected],
        "eta": kin["eta"][selected],
        "mass": kin["mass"][selected],
        **_pythia.jet_substructure(constituents, jet_of, jet, JET_RADIUS),
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


def _table(jets: dict[str, np.ndarray], process: str, worker: int, chunk: int, with_constituents: bool) -> pa.Table:
    n_jets = len(jets["pt"])
    columns: dict[str, pa.Array] = {name: pa.array(jets[name].astype(np.float32)) for name in FEATURES}
    mass = jets["mass"]
    columns["is_signal"] = pa.array(np.full(n_jets, CLASS_CODE[process], dtype=np.int8))
    columns["weight"] = pa.array(np.ones(n_jets, dtype=np.float32))
    columns["control"] = pa.array((mass < CONTROL_REGION["mass_below"]) | (mass > CONTROL_REGION["mass_above"]))
    event = (
        (np.int64(CLASS_CODE[process]) << 44)
        | (np.int64(worker) << 36)
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


def _part_name(process: str, worker: int, chunk: int) -> str:
    return f"{process}-w{worker:03d}-c{chunk:06d}.parquet"


def _scan_parts(parts: Path) -> dict[tuple[str, int], list[tuple[int, Path, int]]]:
    """(class, worker) -> [(chunk, path, rows)] sorted by chunk."""
    found: dict[tuple[str, int], list[tuple[int, Path, int]]] = {}
    for path in sorted(parts.glob("*-w*-c*.parquet")):
        process, worker, chunk = path.stem.split("-")
        rows = pq.read_metadata(path).num_rows
        found.setdefault((process, int(worker[1:])), []).append((int(chunk[1:]), path, rows))
    return found


def _prepare_parts(config: _Config) -> None:
    manifest_path = config.parts / "manifest.json"
    wanted = config.manifest()
    if manifest_path.exists():
        try:
            kept = json.loads(manifest_path.read_text())
        except json.JSONDecodeError:
            kept = None
        if kept != wanted:
            raise SqnnError(
                f"{config.parts} holds chunks of a run with other arguments ({kept}); "
                "rerun with those arguments or delete the directory"
            )
        return
    config.parts.mkdir(parents=True, exist_ok=True)
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(wanted, indent=2) + "\n")


def _jets_done(config: _Config) -> int:
    found = _scan_parts(config.parts)
    return sum(
        min(sum(rows for _, _, rows in found.get((process, worker), [])), target)
        for process in CLASSES
        for worker, target in enumerate(config.targets[process])
    )


# ---------------------------------------------------------------- one worker


def _run_worker(config: _Config, worker: int, report: Callable[[int, int], None],
                should_stop: Callable[[], bool]) -> None:
    """Generate this worker's share of both classes, one chunk file at a time."""
    settings = domain_settings(config.domain)
    detector: Detector = settings["detector"]
    domain_code = DOMAIN_CODE[config.domain]
    pool = None
    found = _scan_parts(config.parts)
    for process in CLASSES:
        target = config.targets[process][worker]
        kept = found.get((process, worker), [])
        done = sum(rows for _, _, rows in kept)
        chunk = kept[-1][0] + 1 if kept else 0
        if done >= target or should_stop():
            continue
        if settings["pileup"] is not None and pool is None:
            pileup_seed = _pythia.derive_seed(config.seed, domain_code, PILEUP_CODE, worker)
            pool = _pythia.PileupPool.generate(
                _pythia_settings(config.domain, "pileup"), pileup_seed, PILEUP["pool_events_per_worker"]
            )
        keys = (domain_code, CLASS_CODE[process], worker, chunk)
        run = {
            "class": process,
            "worker": worker,
            "first_chunk": chunk,
            "pythia_seed": _pythia.derive_seed(config.seed, *keys),
            # the detector and pileup draws: numpy's SeedSequence entropy, apart from Pythia's
            "rng_seed": [config.seed, *keys, 1],
            "pileup_seed": (_pythia.derive_seed(config.seed, domain_code, PILEUP_CODE, worker)
                            if pool is not None else None),
        }
        pythia = _pythia.new_pythia(_pythia_settings(config.domain, process), run["pythia_seed"])
        charges = _pythia.ChargeTable(pythia.particleData)
        rng = np.random.default_rng(np.random.SeedSequence(run["rng_seed"]))
        while done < target:
            batch = pythia.nextBatch(CHUNK_EVENTS)
            jets = _reconstruct(batch, process, detector, rng, charges, pool,
                                PILEUP["mu"], config.constituents)
            table = _table(jets, process, worker, chunk, config.constituents)
            part_info = {"events": len(batch), "chunk": chunk, "run": run}
            table = table.replace_schema_metadata({"sqnn_part": json.dumps(part_info)})
            with atomic_path(config.parts / _part_name(process, worker, chunk)) as tmp:
                pq.write_table(table, tmp, compression="zstd")
            report(min(table.num_rows, target - done), len(batch))
            done += table.num_rows
            chunk += 1
            if should_stop():
                return


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
    """Entry point of a worker process: ``python -c ... CONFIG_JSON WORKER FD``.

    Reports every finished chunk, and errors, as JSON lines on the file descriptor FD.
    """
    config_json, worker_text, fd_text = sys.argv[1:4]
    worker = int(worker_text)
    config = _Config.from_json(config_json)
    stopped = threading.Event()
    with open(int(fd_text), "w", buffering=1) as messages, _stop_on_signals(stopped.set):

        def report(jets: int, events: int) -> None:
            messages.write(json.dumps({"jets": jets, "events": events}) + "\n")

        try:
            _run_worker(config, worker, report, stopped.is_set)
        except SqnnError as error:
            messages.write(json.dumps({"error": str(error), "user": True}) + "\n")
            raise SystemExit(2) from None
        except Exception:
            messages.write(json.dumps({"error": traceback.format_exc(), "user": False}) + "\n")
            raise SystemExit(1) from None


class _Progress:
    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="jet", file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True, smoothing=0.05)
        self.events = 0
        self.start = time.monotonic()

    def __call__(self, jets: int, events: int) -> None:
        self.events += events
        elapsed = max(time.monotonic() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{self.events / elapsed:.0f} events/s", refresh=False)
        self.bar.update(jets)

    def close(self) -> None:
        self.bar.close()


def _run_in_processes(config: _Config, progress: _Progress) -> bool:
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
    code = "from sqnn.cases.wjets import _worker_main; _worker_main()"
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
            for worker in range(config.workers):
                read_fd, write_fd = os.pipe()
                try:
                    processes.append(subprocess.Popen(
                        [sys.executable, "-c", code, config.to_json(), str(worker), str(write_fd)],
                        pass_fds=(write_fd,), env=env, stdin=subprocess.DEVNULL,
                    ))
                finally:
                    os.close(write_fd)
                threading.Thread(target=forward, args=(worker, read_fd), daemon=True).start()
            running = set(range(config.workers))
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
        raise RuntimeError(f"wjets worker {worker} failed:\n{text}")
    for worker, code in enumerate(codes):
        if code != 0 and not stop.is_set():
            raise RuntimeError(f"wjets worker {worker} exited with code {code}")
    return stop.is_set()


def _run_here(config: _Config, progress: _Progress) -> bool:
    stopped = threading.Event()
    with _stop_on_signals(stopped.set):
        _run_worker(config, 0, progress, stopped.is_set)
    return stopped.is_set()


def _assemble(config: _Config) -> pa.Table:
    found = _scan_parts(config.parts)
    tables, runs, events = [], {}, dict.fromkeys(CLASSES, 0)
    for process in CLASSES:
        for worker, target in enumerate(config.targets[process]):
            stream, rows = [], 0
            for _, path, n_rows in found.get((process, worker), []):
                if rows >= target:
                    break
                part = pq.read_table(path)
                info = json.loads(part.schema.metadata[b"sqnn_part"])
                run = info["run"]
                runs[(process, worker, run["first_chunk"])] = run
                events[process] += info["events"]
                stream.append(part.replace_schema_metadata(None))
                rows += n_rows
            if rows < target:
                raise RuntimeError(f"{config.parts}: {process} worker {worker} has {rows} of {target} jets")
            if target:
                tables.append(pa.concat_tables(stream).slice(0, target))
    table = pa.concat_tables(tables)
    shuffle_seed = [config.seed, DOMAIN_CODE[config.domain], SHUFFLE_CODE]
    order = np.random.default_rng(np.random.SeedSequence(shuffle_seed)).permutation(table.num_rows)
    table = table.take(pa.array(order))
    metadata = _metadata(config, sorted(runs.values(), key=lambda r: (r["class"], r["worker"], r["first_chunk"])),
                         events, shuffle_seed)
    return table.replace_schema_metadata({"sqnn": json.dumps(metadata)})


def _metadata(config: _Config, runs: list[dict[str, Any]], events: dict[str, int],
              shuffle_seed: list[int]) -> dict[str, Any]:
    settings = domain_settings(config.domain)
    n_signal = sum(config.targets["signal"])
    pileup = settings["pileup"]
    if pileup is not None:
        pileup = {
            **pileup,
            "process": PROCESSES["pileup"],
            "distribution": "Poisson, drawn with replacement from the worker's pool, "
                            "each copy rotated in azimuth and mirrored in z at random",
            "subtraction": "charged-hadron subtraction: tracked pileup charged particles removed, "
                           "pileup neutrals kept",
            "seeds": sorted({run["pileup_seed"] for run in runs if run["pileup_seed"] is not None}),
        }
    return {
        "case": "wjets",
        "format": FORMAT_VERSION,
        "domain": config.domain,
        "n": config.n,
        "n_signal": n_signal,
        "n_background": config.n - n_signal,
        "signal_fraction": config.signal_fraction,
        "seed": config.seed,
        "workers": config.workers,
        "beam": BEAM,
        "processes": {"signal": PROCESSES["signal"], "background": PROCESSES["background"]},
        "tune": {"Tune:pp": settings["tune"], "name": settings["tune_name"]},
        "pythia_settings": {process: ["Print:quiet = on", *_pythia_settings(config.domain, process)]
                            for process in ("signal", "background", "pileup")},
        "detector": settings["detector"].to_dict(),
        "pileup": pileup,
        "jets": {
            "algorithm": "anti-kt",
            "radius": JET_RADIUS,
            "input": "reconstructed particles",
            "leading": LEADING_JETS,
            "pt_range_GeV": list(JET_PT_RANGE),
            "abs_eta_max": JET_ABS_ETA_MAX,
            "min_constituents": MIN_CONSTITUENTS,
            "signal_truth_match": f"dR(jet, last W copy) < {TRUTH_MATCH_DR} in rapidity-azimuth",
        },
        "features": FEATURES,
        "control_region": {
            "column": "control",
            "definition": f"mass < {CONTROL_REGION['mass_below']:g} GeV or mass > {CONTROL_REGION['mass_above']:g} GeV",
            **CONTROL_REGION,
        },
        "event": "int64 id of the generated event (class << 44 | worker << 36 | chunk << 12 | index); "
                 "jets of the same event share it",
        "constituents": (f"{N_CONSTITUENTS_KEPT} leading by pT: {', '.join(CONSTITUENT_FIELDS)}"
                         if config.constituents else None),
        "seeds": {"runs": runs, "shuffle": shuffle_seed},
        "events_generated": events,
        "chunk_events": CHUNK_EVENTS,
        "versions": _pythia.versions(),
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
) -> Path:
    """Generate ``n`` W or QCD jets of ``domain`` ("sim" or "data") into the parquet file ``out``.

    >>> generate("sim", 40, seed=1, out="wjets.parquet", progress=False)  # doctest: +SKIP
    PosixPath('wjets.parquet')
    """
    _pythia.validate_generation(
        domain, n, seed, workers, signal_fraction, unit="jets", domains=DOMAINS, max_seed=MAX_SEED, max_workers=MAX_WORKERS
    )
    fraction = DEFAULT_SIGNAL_FRACTION[domain] if signal_fraction is None else float(signal_fraction)
    out = Path(out)
    n_signal = int(round(n * fraction))
    config = _Config(
        domain=domain,
        n=int(n),
        seed=int(seed),
        workers=int(workers),
        constituents=bool(constituents),
        signal_fraction=fraction,
        parts=out.parent / f"{out.name}.parts",
        targets={"signal": _split(n_signal, workers), "background": _split(int(n) - n_signal, workers)},
    )
    _prepare_parts(config)
    done = _jets_done(config)
    if done < config.n:
        bar = _Progress(config.n, done, progress)
        try:
            runner = _run_here if config.workers == 1 else _run_in_processes
            stopped = runner(config, bar)
        finally:
            bar.close()
        done = _jets_done(config)
        if done < config.n:
            if stopped:
                raise GenerationInterrupted(
                    f"stopped after the current chunk with {done} of {config.n} jets; the finished "
                    f"chunks are kept in {config.parts}: rerun the same command to resume"
                )
            raise RuntimeError(f"generation ended with {done} of {config.n} jets")
    table = _assemble(config)
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        # the temporary file is private (0600); the result gets the usual umask permissions
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
    shutil.rmtree(config.parts)
    return out
