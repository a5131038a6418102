"""Training on files larger than memory: `sqnn train --chunked` on tens of millions of events.

Writes a toy simulation and data file of ``--events`` events each (written row group by
row group, never held whole), trains on them with ``sqnn train --chunked`` in a child
process and measures that process's peak resident memory and CPU time; the same
command without ``--chunked`` would need the files in memory (about 36 bytes per event
for the six features, the weight and the flags, before any copy). Writes JSON.

    python benchmarks/streaming_train.py --events 20000000 --out benchmarks/results/streaming_train.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sqnn.cases.toy import make_toy
from sqnn.files import write_json

ROW_GROUP = 1_000_000


def write_large(path: Path, domain: str, events: int, seed: int) -> Path:
    """A toy file of ``events`` events, one row group of independent events at a time."""
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == events:
        return path
    writer = None
    try:
        for block, start in enumerate(range(0, events, ROW_GROUP)):
            columns = make_toy(domain, min(ROW_GROUP, events - start), seed * 1_000_003 + block)
            columns["event"] = columns["event"] + start
            table = pa.table(columns)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000, help="Events per domain.")
    parser.add_argument("--chunk", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--method", default="sqnn")
    parser.add_argument("--workdir", type=Path, default=Path("streaming-work"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.process_time()
    sim = write_large(args.workdir / "sim.parquet", "sim", args.events, 1)
    data = write_large(args.workdir / "data.parquet", "data", args.events, 2)
    generation = time.process_time() - started
    command = [
        sys.executable, "-m", "sqnn", "train", "--sim", str(sim), "--data", str(data),
        "--features", "x0,x1,x2,x3,x4,x5", "--label", "is_signal", "--weight", "weight", "--control", "control",
        "--method", args.method, "--epochs", str(args.epochs), "--chunked", "--chunk", str(args.chunk), "--quiet",
        "--out", str(args.workdir / "run"),
    ]
    wall = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter() - wall
    if result.returncode != 0:
        raise SystemExit(f"training failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    meta = json.loads((args.workdir / "run" / "model.json").read_text())
    metrics = json.loads((args.workdir / "run" / "metrics.json").read_text())
    record = {
        "events_per_domain": args.events,
        "file_bytes": {"simulation": sim.stat().st_size, "data": data.stat().st_size},
        "chunk": args.chunk,
        "epochs": args.epochs,
        "method": args.method,
        "training_events_simulation": meta["streamed"]["train_events_simulation"],
        "evaluated_events": meta["streamed"]["evaluated_events"],
        # ru_maxrss of the children is the largest peak of any child (kilobytes on Linux)
        "peak_rss_mb": after.ru_maxrss / 1024.0,
        "cpu_seconds": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "wall_seconds": wall,
        "train_seconds": meta["train_seconds"],
        "generation_cpu_seconds": generation,
        "auc_source": metrics["auc_source"],
        "auc_target": metrics.get("auc_target"),
        "command": " ".join(command[1:]),
    }
    write_json(args.out, record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
