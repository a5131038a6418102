"""Inference speed of torch, onnxruntime and the packed engine, side by side in one run.

Benchmarks the 57-64-32-1 reference network (step hidden layers, binary weights in layer
2, random weights, a standardizer of zeros and ones), its quantisation-aware twin
(inputs on ap_fixed<10,4>, first layer on ap_fixed<8,2>), and optionally a trained run
(``--run DIR``, e.g. the case-study model). For each: events/s and per-call latency per
engine and batch (medians of the repeats), model bytes, decision agreement between the
engines, and the ratios packed/onnx and packed/torch.

    python benchmarks/deploy_bench.py --out deploy_bench.json [--run DIR] [--batch 1,256,65536] [--repeats 7]

With ``--threads 1`` (the default) the clock is the calling thread's CPU time, so other
work on the machine does not inflate it; torch runs with ``set_num_threads(1)`` and
onnxruntime with ``intra_op_num_threads=1``.
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

# thresholded step units: the arithmetic these networks were built to benchmark
REFERENCE = {"hidden": [64, 32], "stochastic": [True, True], "binary_weights": [False, True], "inference": "deterministic"}
REFERENCE_QAT = {**REFERENCE, "input_fixed": [10, 4], "first_layer_fixed": [8, 2]}
N_INPUTS = 57


def reference_run(directory: Path, network: dict[str, Any], seed: int = 0) -> Run:
    """The reference network with random weights, saved as a run directory."""
    rng = np.random.default_rng(seed)
    model = build_network(N_INPUTS, network)
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter.shape[-1] if parameter.ndim == 2 else 1
            parameter.copy_(torch.from_numpy(rng.normal(scale=1 / np.sqrt(fan_in), size=tuple(parameter.shape)).astype(np.float32)))
    standardizer = Standardizer(mean=np.zeros(N_INPUTS), scale=np.ones(N_INPUTS))
    meta = {"method": "reference", "network": model.config.to_dict(), "features": [f"f{i}" for i in range(N_INPUTS)],
            "preprocessing": standardizer.to_dict()}
    write_run(directory, "network", model, meta)
    return load_run(directory)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_one(name: str, run: Run, batches: list[int], threads: int, repeats: int) -> dict[str, Any]:
    records, summary = benchmark(run, batches, threads=threads, repeats=repeats)
    print(f"\n{name}\n{format_table(records)}")
    side_by_side = ratios(records, "packed", ("onnx", "torch"))
    for key, values in side_by_side.items():
        print(f"{key}: " + ", ".join(f"batch {b}: {v:.2f}×" for b, v in values.items()))
    return {"name": name, "records": [r.to_dict() for r in records], "ratios": side_by_side, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--run", type=Path, help="also benchmark this run directory (e.g. the case-study model)")
    parser.add_argument("--batch", default="1,256,65536", help="comma-separated batch sizes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch.split(",") if b.strip()]

    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpu": cpu_model(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "load_average_start": os.getloadavg()},
        "versions": {p: metadata.version(p) for p in ("torch", "onnxruntime", "numba", "numpy")},
        "clock": "CPU time of the calling thread" if args.threads == 1 else "wall time",
        "input": "raw float64 features, standardisation included in every engine",
        "networks": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, network in (("reference 57-64-32-1", REFERENCE), ("reference 57-64-32-1, quantisation-aware", REFERENCE_QAT)):
            run = reference_run(Path(tmp) / name.replace(" ", "_").replace(",", ""), network)
            results["networks"].append(run_one(name, run, batches, args.threads, args.repeats))
    if args.run is not None:
        results["networks"].append(run_one(str(args.run), load_run(args.run), batches, args.threads, args.repeats))
    results["machine"]["load_average_end"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
