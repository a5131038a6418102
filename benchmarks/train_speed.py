"""Training and evaluation speed on the W-jet case, every method in one run, one CPU thread.

Writes JSON with, per method, the training CPU seconds of ``sqnn.training.fit`` (its
``train_seconds``: every epoch's steps and validation) and the simulated training events
per CPU-second at the default batch (256 simulated + 256 data events per step); the ratio
of each method's ``train_seconds`` to source-only's; the wall time of ``sqnn evaluate``
against ``sqnn predict`` on the same files (each the median of ``--repeats`` runs of the
command line, alternating); and, where a GPU is present, the default SQNN's training rate
with ``--device cuda`` at batches of 512, 8192 and 131 072 events (simulation + data).

    OMP_NUM_THREADS=1 python benchmarks/train_speed.py --out train_speed.json
    OMP_NUM_THREADS=1 python benchmarks/train_speed.py --methods source-only,sqnn --epochs 3 --out quick.json

Ratios within one run are what to compare: CPU seconds on a shared machine move with the
load (the load average before and after is recorded).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sqnn.files import json_safe, write_json
from sqnn.data import ColumnSpec, load_sample
from sqnn.datasets import wjets_path
from sqnn.methods import make_objective
from sqnn.training import TrainConfig, fit
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import train_run

FEATURES = ("pt", "eta", "mass", "n_constituents", "n_charged", "girth", "ptd",
            "tau1", "tau2", "tau3", "tau21", "tau32", "d2", "c2")
SPEC = ColumnSpec(features=FEATURES, label="is_signal", control="control")
METHODS = ("source-only", "sqnn", "dann", "disco", "mmd")
GPU_BATCHES = (512, 8192, 131072)


def training(methods: list[str], epochs: int, seed: int) -> dict[str, dict[str, Any]]:
    """``train_seconds`` and simulated training events per CPU-second of each method."""
    simulation = load_sample(wjets_path("sim"), SPEC, "simulation", require_label=True)
    data = load_sample(wjets_path("data"), SPEC, "data")
    results = {}
    for method in methods:
        # patience = epochs: every method runs every epoch, so the rates compare like with like
        config = TrainConfig(epochs=epochs, seed=seed, threads=1, patience=epochs)
        result = fit(simulation, data, make_objective(method), config=config)
        events = len(result.splits.simulation["train"]) * len(result.history)
        results[method] = {
            "train_seconds": result.train_seconds,
            "epochs": len(result.history),
            "seconds_per_epoch": [
                b["cpu_seconds"] - a for a, b in zip([0.0] + [h["cpu_seconds"] for h in result.history], result.history)
            ],
            "simulated_events_per_second": events / result.train_seconds,
            "batch": {"simulation": config.batch_size, "data": config.batch_size if result.objective.uses_data else 0},
        }
        print(f"{method:12s} train_seconds {result.train_seconds:7.2f}  "
              f"{results[method]['simulated_events_per_second']:9.0f} simulated events/s", flush=True)
    return results


def _command_seconds(arguments: list[str]) -> float:
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sqnn", *arguments], check=True, env=environment, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def evaluate_against_predict(workdir: Path, epochs: int, repeats: int) -> dict[str, Any]:
    """Wall time of ``sqnn evaluate`` and ``sqnn predict`` of one trained SQNN run on the same two files."""
    sim, data = str(wjets_path("sim")), str(wjets_path("data"))
    run_dir = workdir / "sqnn"
    train_run(sim, data, Settings(columns=SPEC, method="sqnn", train=TrainConfig(epochs=epochs, threads=1)), run_dir)
    predict = ["predict", str(run_dir), sim, data, "--out", str(workdir / "scores.parquet")]
    evaluate = ["evaluate", str(run_dir), "--sim", sim, "--data", data, "--data-label", "is_signal",
                "--out", str(workdir / "metrics.json")]
    times: dict[str, list[float]] = {"predict": [], "evaluate": []}
    for _ in range(repeats):
        times["predict"].append(_command_seconds(predict))
        times["evaluate"].append(_command_seconds(evaluate))
    ratios = [e / p for p, e in zip(times["predict"], times["evaluate"])]
    result = {
        "predict_seconds": statistics.median(times["predict"]),
        "evaluate_seconds": statistics.median(times["evaluate"]),
        "evaluate_over_predict": statistics.median(ratios),
        "runs": times,
        "commands": {"predict": "sqnn " + " ".join(predict), "evaluate": "sqnn " + " ".join(evaluate)},
    }
    print(f"predict {result['predict_seconds']:.2f} s, evaluate {result['evaluate_seconds']:.2f} s wall: "
          f"ratio {result['evaluate_over_predict']:.2f}", flush=True)
    return result


def device_training(batches: tuple[int, ...] = GPU_BATCHES, device: str = "cuda", events: int = 1_000_000,
                    epochs: int = 2) -> dict[str, Any] | None:
    """Training rate of the default SQNN on ``device`` (a GPU; None without one), per batch of sim + data events.

    The package's own loop (:func:`sqnn.training.fit` with ``device``) on a toy sample of
    ``events`` simulated and as many data events, ``epochs`` epochs; the rate is simulated
    training events per wall-clock second of the whole fit (steps, validation, the prior).
    """
    if device == "cuda" and not torch.cuda.is_available():
        return None
    from sqnn.cases.toy import make_toy
    from sqnn.data import Sample

    def toy(domain: str, seed: int) -> Sample:
        columns = make_toy(domain, events, seed)
        names = ["x0", "x1", "x2", "x3", "x4", "x5"]
        return Sample(features=np.column_stack([columns[c] for c in names]), feature_names=names,
                      weight=columns["weight"].astype(np.float64), domain="simulation" if domain == "sim" else "data",
                      source=f"<toy {domain}>", label=columns["is_signal"] if domain == "sim" else None)

    simulation, data = toy("sim", 1), toy("data", 2)
    results: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device == "cuda" else device,
                               "events": events, "epochs": epochs}
    for batch in batches:
        config = TrainConfig(epochs=epochs, seed=0, batch_size=batch // 2, patience=epochs, device=device)
        started = time.perf_counter()
        result = fit(simulation, data, make_objective("sqnn"), config=config)
        seconds = time.perf_counter() - started
        trained = result.extras["train_events"] * len(result.history)
        results[str(batch)] = {"wall_seconds": seconds, "simulated_events_per_second": trained / seconds,
                               "steps_per_second": len(result.history) * -(-result.extras["train_events"] // (batch // 2)) / seconds}
        print(f"{device} batch {batch}: {trained / seconds:,.0f} simulated training events/s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="runs of predict and of evaluate (median)")
    parser.add_argument("--no-evaluate", action="store_true", help="skip the evaluate/predict timing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    methods = args.methods.split(",")
    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "load_average_before": load_before},
        "epochs": args.epochs,
        "training": training(methods, args.epochs, args.seed),
    }
    if "source-only" in methods:
        reference = result["training"]["source-only"]["train_seconds"]
        result["train_seconds_over_source_only"] = {m: r["train_seconds"] / reference for m, r in result["training"].items()}
        print("train_seconds / source-only: " + ", ".join(
            f"{m} {v:.2f}" for m, v in result["train_seconds_over_source_only"].items()), flush=True)
    if not args.no_evaluate:
        with tempfile.TemporaryDirectory() as workdir:
            result["evaluate_vs_predict"] = evaluate_against_predict(Path(workdir), args.epochs, args.repeats)
    result["gpu"] = device_training()
    result["machine"]["load_average_after"] = os.getloadavg()
    write_json(args.out, json_safe(result))


if __name__ == "__main__":
    main()
