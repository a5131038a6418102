"""Speed of the default network as deployed: torch, onnxruntime and the packed engine side by side in one run.

The default network of ``--method sqnn`` (14 inputs → 64 ReLU → 16 Bernoulli units
scored by their expectation → linear head) on fixed-point grids (``network:
{fixed_point: {}}``): every engine computes the same integer arithmetic, so the
decisions agree exactly and the comparison is of speed alone. Without ``--run`` the
network has random weights and its grids are chosen, as training chooses them, from
N(0, 1) standardised inputs; ``--run DIR`` benchmarks a trained run instead (e.g. the
W-jet model). The JSON holds every record, the ratios packed/onnxruntime and
packed/torch per batch, the latency per call at batch 1, and whether the targets hold
(packed ≥ 3× onnxruntime at batch 65 536 and ≥ 5× at batch 1).

    python benchmarks/default_network_bench.py --out default_network_bench.json [--run DIR] [--repeats 7]

One thread: the clock is the calling thread's CPU time (torch with
``set_num_threads(1)``, onnxruntime with ``intra_op_num_threads=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sqnn.data import Standardizer
from sqnn.engines.bench import benchmark, format_table, ratios
from sqnn.nn import build_network
from sqnn.runs import Run, load_run, write_run

N_INPUTS = 14
DEFAULT_NETWORK = {"hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False], "samples": 4,
                   "fixed_point": {}}
BATCHES = (1, 256, 65536)
TARGETS = {"1": 5.0, "65536": 3.0}


def default_run(directory: Path, seed: int = 0) -> Run:
    """The default fixed-point network with random weights, grids chosen from N(0, 1) inputs, saved as a run."""
    torch.manual_seed(seed)
    model = build_network(N_INPUTS, DEFAULT_NETWORK)
    model.calibrate(torch.randn(20_000, N_INPUTS))
    model.eval()
    standardizer = Standardizer(mean=np.zeros(N_INPUTS), scale=np.ones(N_INPUTS))
    meta = {"method": "benchmark", "network": model.config.to_dict(), "features": [f"f{i}" for i in range(N_INPUTS)],
            "preprocessing": standardizer.to_dict()}
    write_run(directory, "network", model, meta)
    return load_run(directory)


def run_one(name: str, run: Run, repeats: int) -> dict[str, Any]:
    records, summary = benchmark(run, BATCHES, threads=1, repeats=repeats)
    print(f"\n{name}\n{format_table(records)}")
    side_by_side = ratios(records, "packed", ("onnx", "torch"))
    for key, values in side_by_side.items():
        print(f"{key}: " + ", ".join(f"batch {b}: {v:.2f}×" for b, v in values.items()))
    latency = {r.engine: round(r.latency_us, 3) for r in records if r.batch == 1}
    targets = {f"packed/onnx at batch {b} ≥ {t}×": bool(side_by_side["packed/onnx"][b] >= t) for b, t in TARGETS.items()}
    print(f"latency per call at batch 1 (µs): {latency}")
    print(f"decision mismatches vs {summary['decision_reference']}: {summary['decision_mismatches']}")
    return {"name": name, "records": [r.to_dict() for r in records], "ratios": side_by_side, "latency_us_batch_1": latency,
            "targets": targets, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--run", type=Path, help="also benchmark this trained run (e.g. the W-jet model trained with fixed_point)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_start": os.getloadavg()},
        "versions": {p: metadata.version(p) for p in ("torch", "onnxruntime", "numba", "numpy")},
        "clock": "CPU time of the calling thread, one thread per engine",
        "input": "raw float64 features, standardisation included in every engine",
        "networks": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["networks"].append(run_one("default 14-64-16 fixed point, random weights", default_run(Path(tmp) / "default"), args.repeats))
    if args.run is not None:
        results["networks"].append(run_one(str(args.run), load_run(args.run), args.repeats))
    results["machine"]["load_average_end"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
