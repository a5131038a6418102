"""Speed of the W vs QCD generator next to Pythia's own event rate, in CPU seconds.

Three views per domain, side by side:

* ``pythia_alone``: plain ``nextBatch`` of the hard process (no pileup, detector or jets),
  initialisation timed apart: hard events per CPU-second;
* ``chain``: the same chunks of events through the whole per-chunk pipeline (pileup overlay,
  detector, anti-kT, truth matching, substructure, parquet part): hard events and selected
  jets per CPU-second, what a large sample converges to;
* ``generate``: ``sqnn.cases.wjets.generate`` end to end on a small sample with one worker
  (in this process), including Pythia initialisation, the pileup pool and the jets lost
  when the last chunk of each class is cut to size.

    python benchmarks/generation_speed.py --out generation_speed.json [--n 300] [--events 400]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sqnn.cases import _pythia, wjets


def pythia_alone(domain: str, process: str, events: int, seed: int) -> dict[str, float]:
    start = time.process_time()
    pythia = _pythia.new_pythia(wjets._pythia_settings(domain, process), seed)
    init = time.process_time() - start
    start = time.process_time()
    produced = 0
    while produced < events:
        produced += len(pythia.nextBatch(min(wjets.CHUNK_EVENTS, events - produced)))
    cpu = time.process_time() - start
    return {"events": produced, "cpu_s": round(cpu, 2), "init_cpu_s": round(init, 2),
            "events_per_cpu_s": round(produced / cpu, 1)}


def chain(domain: str, process: str, events: int, seed: int) -> dict[str, float]:
    settings = wjets.domain_settings(domain)
    pool, pool_cpu = None, 0.0
    if settings["pileup"] is not None:
        start = time.process_time()
        pool = _pythia.PileupPool.generate(wjets._pythia_settings(domain, "pileup"), seed + 1,
                                           wjets.PILEUP["pool_events_per_worker"])
        pool_cpu = time.process_time() - start
    pythia = _pythia.new_pythia(wjets._pythia_settings(domain, process), seed)
    charges = _pythia.ChargeTable(pythia.particleData)
    rng = np.random.default_rng(seed)
    produced = jets = 0
    generation = reconstruction = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        chunk = 0
        while produced < events:
            start = time.process_time()
            batch = pythia.nextBatch(min(wjets.CHUNK_EVENTS, events - produced))
            middle = time.process_time()
            selected = wjets._reconstruct(batch, process, settings["detector"], rng, charges, pool,
                                          wjets.PILEUP["mu"], False)
            table = wjets._table(selected, process, 0, chunk, False)
            pq.write_table(table, Path(tmp) / f"{chunk}.parquet", compression="zstd")
            generation += middle - start
            reconstruction += time.process_time() - middle
            produced += len(batch)
            jets += table.num_rows
            chunk += 1
    cpu = generation + reconstruction
    return {
        "events": produced,
        "jets": jets,
        "jets_per_event": round(jets / produced, 3),
        "cpu_s": round(cpu, 2),
        "reconstruction_share": round(reconstruction / cpu, 3),
        "pileup_pool_cpu_s": round(pool_cpu, 2),
        "events_per_cpu_s": round(produced / cpu, 1),
        "jets_per_cpu_s": round(jets / cpu, 1),
    }


def end_to_end(domain: str, n: int, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{domain}.parquet"
        cpu, wall = time.process_time(), time.perf_counter()
        wjets.generate(domain, n, seed, out, workers=1, progress=False)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        metadata = json.loads(pq.read_schema(out).metadata[b"sqnn"])
    events = sum(metadata["events_generated"].values())
    return {"jets": n, "events": events, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
            "jets_per_cpu_s": round(n / cpu, 1), "events_per_cpu_s": round(events / cpu, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--n", type=int, default=300, help="jets per domain for generate()")
    parser.add_argument("--events", type=int, default=400, help="hard events per process for the other views")
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()

    results: dict[str, object] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "load_average": os.getloadavg()},
        "versions": _pythia.versions(),
        "unit": "CPU seconds of this process (time.process_time)",
        "domains": {},
    }
    for domain in wjets.DOMAINS:
        entry: dict[str, object] = {}
        for process in wjets.CLASSES:
            entry[process] = {
                "pythia_alone": pythia_alone(domain, process, args.events, args.seed),
                "chain": chain(domain, process, args.events, args.seed),
            }
        entry["generate"] = end_to_end(domain, args.n, args.seed)
        results["domains"][domain] = entry
        for process in wjets.CLASSES:
            alone, full = entry[process]["pythia_alone"], entry[process]["chain"]
            print(f"{domain:4s} {process:10s} Pythia alone {alone['events_per_cpu_s']:6.1f} events/CPU-s | "
                  f"chain {full['events_per_cpu_s']:6.1f} events/CPU-s, {full['jets_per_cpu_s']:6.1f} jets/CPU-s")
        print(f"{domain:4s} generate(n={args.n}) {entry['generate']['jets_per_cpu_s']} jets/CPU-s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
