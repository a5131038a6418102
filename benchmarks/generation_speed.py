"""Speed of the W vs QCD generator against Pythia's own event rate, in CPU seconds.

For each domain: the full chain (`sqnn.cases.wjets.generate`: Pythia, pileup, detector,
jets, features, parquet) on a small sample with one worker, in jets per CPU-second and
hard events per CPU-second; next to it, Pythia alone (plain ``nextBatch``, no detector or
jets, initialisation excluded) in hard events per CPU-second for each process.

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

import pyarrow.parquet as pq

from sqnn.cases import _pythia, wjets


def full_chain(domain: str, n: int, seed: int) -> dict[str, float]:
    """CPU time of ``generate`` in this process (one worker runs in-process)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{domain}.parquet"
        cpu, wall = time.process_time(), time.perf_counter()
        wjets.generate(domain, n, seed, out, workers=1, progress=False)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        metadata = json.loads(pq.read_schema(out).metadata[b"sqnn"])
    events = sum(metadata["events_generated"].values())
    return {
        "jets": n,
        "hard_events": events,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "jets_per_cpu_s": round(n / cpu, 2),
        "hard_events_per_cpu_s": round(events / cpu, 1),
    }


def pythia_alone(domain: str, process: str, events: int, seed: int) -> dict[str, float]:
    """Hard events per CPU-second of plain ``nextBatch``, initialisation timed apart."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--n", type=int, default=300, help="jets per domain for the full chain")
    parser.add_argument("--events", type=int, default=400, help="events per process for Pythia alone")
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()

    results: dict[str, object] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": _pythia.versions(),
        "notes": "CPU seconds of this process; the full chain includes Pythia initialisation "
                 "(and, for data, the pileup pool) and stops at the last chunk needed",
        "domains": {},
    }
    for domain in wjets.DOMAINS:
        chain = full_chain(domain, args.n, args.seed)
        alone = {process: pythia_alone(domain, process, args.events, args.seed)
                 for process in ("signal", "background")}
        results["domains"][domain] = {"full_chain": chain, "pythia_alone": alone}
        print(f"{domain}: {chain['jets_per_cpu_s']} jets/CPU-s, {chain['hard_events_per_cpu_s']} events/CPU-s "
              f"(Pythia alone: signal {alone['signal']['events_per_cpu_s']}, "
              f"background {alone['background']['events_per_cpu_s']} events/CPU-s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
