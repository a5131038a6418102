"""Set models from simulation to data: source-only, SQNN and DANN on an event-level simulation/data pair.

The set model (per-object network, sum and mean pooling) has 16 Bernoulli units after the
pooling — the representation the SQNN penalty (the default: class-conditional exact joint
I(T;S|Y)) and DANN's domain head act on — and an event-level head; it scores with the
thresholded units. Every strength given is reported (none is chosen with data labels). Each method trains with
``sqnn.workflows.train.train_run`` on labelled simulation and unlabelled data (the same
settings as ``sqnn train --model set --objects objects``) and is evaluated as
``sqnn evaluate --data-label`` does: AUC on simulation and data, the scale factors
sf_signal/sf_background at the working points keeping 50 % and 80 % of simulated signal,
and the closure errors ``closure``/``closure_80`` (|1 − sf_S| + |1 − sf_B|).

Every (method, seed) is a run directory under ``--runs``; a rerun keeps the finished ones
and the results already in ``--out``. Output: JSON with every run's metrics and, per method,
mean ± standard error over seeds, and the paired difference to source-only (same seed, same split)
of the data AUC and the closure errors.

    python benchmarks/set_closure_study.py --sim tth_sim.parquet --data tth_data.parquet \\
        --seeds 0,1,2 --out set_closure_study.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from sqnn.data import ColumnSpec
from sqnn.files import json_safe, write_json
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import train_run

KEYS = ("auc_source", "auc_target", "auc_target_err", "sf_signal", "sf_background", "closure", "sf_signal_80",
        "sf_background_80", "closure_80", "sf_signal_err", "sf_background_err", "ks_signal", "ks_background",
        "ks_control", "domain_auc", "mi_joint_bits", "train_seconds")
PAIRED_KEYS = ("auc_target", "closure", "closure_80")
DEFAULT_METHODS = "source-only:0,sqnn:1,sqnn:2,dann:0.1,dann:0.3"


def methods_from(text: str) -> list[tuple[str, str, float]]:
    """(label, method, gamma) of every METHOD:GAMMA in ``text``."""
    methods = []
    for item in text.split(","):
        method, _, gamma = item.partition(":")
        value = float(gamma or 0)
        methods.append((method if method == "source-only" else f"{method} γ={value:g}", method, value))
    return methods


def mean_err(values: list[float]) -> dict[str, Any]:
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"mean": None, "err": None, "std": None, "seeds": 0}
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {"mean": float(finite.mean()), "err": std / math.sqrt(finite.size), "std": std, "seeds": int(finite.size)}


def file_meta(path: str) -> dict[str, Any]:
    meta = json.loads(pq.read_schema(path).metadata[b"sqnn"])
    return {key: meta.get(key) for key in ("channel", "domain", "n", "signal_fraction", "seed", "tune", "pileup")} | {
        "detector": (meta.get("detector") or {}).get("name")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="METHOD:GAMMA,... to run")
    parser.add_argument("--max-objects", type=int, default=12)
    parser.add_argument("--bottleneck", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4, help="Bernoulli draws per unit in training")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--runs", default=None, help="directory of the run directories [default: OUT.runs]")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    wanted = methods_from(args.methods)
    out = Path(args.out)
    runs_dir = Path(args.runs) if args.runs else out.with_suffix(".runs")
    columns = ColumnSpec(features=(), label="is_signal", weight="weight", control="control", objects="objects",
                         max_objects=args.max_objects)
    network = {"bottleneck": args.bottleneck, "samples": args.samples}
    settings_record = json_safe({
        "sim": file_meta(args.sim), "data": file_meta(args.data), "max_objects": args.max_objects,
        "network": network, "epochs": args.epochs, "patience": args.patience, "batch_size": args.batch_size,
    })
    results: dict[str, Any] = {}
    if out.exists():
        results = json.loads(out.read_text())
        if results.get("settings") != settings_record:
            raise SystemExit(f"{out} was written with other settings; move it away to start afresh")
    results.update({
        "description": __doc__.split("\n\n")[0],
        "title": f"{settings_record['sim']['channel']}, simulation (μ = {(settings_record['sim']['pileup'] or {}).get('mu', 0):g}) "
                 f"→ data (A14, shifted detector, μ = {(settings_record['data']['pileup'] or {}).get('mu', 0):g})",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch_threads": 1},
        "settings": settings_record,
    })
    results.setdefault("runs", {})
    for label, method, gamma in wanted:
        for seed in seeds:
            if str(seed) in results["runs"].get(label, {}):
                continue
            train = TrainConfig(epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, seed=seed)
            settings = Settings(columns=columns, method=method, gamma=gamma, network=network, train=train, model="set")
            started = time.process_time()
            run_dir = runs_dir / f"{method}-{gamma:g}-seed{seed}"
            _, metrics = train_run(args.sim, args.data, settings, run_dir, data_label="is_signal", reuse=True)
            assert metrics is not None
            record = {key: metrics.get(key) for key in KEYS}
            record["cpu_seconds"] = round(time.process_time() - started, 1)
            results["runs"].setdefault(label, {})[str(seed)] = json_safe(record)
            write_json(out, results)
            print(f"{label:12s} seed {seed}: AUC data {record['auc_target']:.4f}, sf {record['sf_signal']:.3f}/"
                  f"{record['sf_background']:.3f}, closure {record['closure']:.3f} / {record['closure_80']:.3f} "
                  f"({record['cpu_seconds']:.0f} CPU-s)", flush=True)
    results["summary"] = {
        label: {key: mean_err([run.get(key) for run in by_seed.values()]) for key in KEYS}
        for label, by_seed in results["runs"].items()
    }
    # seed by seed on the same split, so that what every method shares at a seed cancels
    source = results["runs"].get("source-only", {})
    results["paired_vs_source_only"] = {
        label: {key: mean_err([run[key] - source[seed][key] for seed, run in by_seed.items()
                               if seed in source and run.get(key) is not None and source[seed].get(key) is not None])
                for key in PAIRED_KEYS}
        for label, by_seed in results["runs"].items() if label != "source-only"
    }
    write_json(out, results)


if __name__ == "__main__":
    main()
