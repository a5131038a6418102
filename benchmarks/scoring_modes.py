"""The same trained networks scored two ways: the expected logit (``mean``) and thresholded units.

Evaluates every run directory given on the shipped W-jet files (their held-out test splits)
with ``inference: mean`` and ``inference: deterministic`` and writes, per run and per
setting (the run's parent directory name, as `closure_study.py --workdir` lays them out),
auc_target and the closure errors in both modes.

    python benchmarks/closure_study.py --only sqnn-ccjp-k4,dann --seeds 5 --epochs 30 --workdir W --out c.json
    python benchmarks/scoring_modes.py W/*/seed* --out scoring_modes.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from sqnn.files import write_json
from sqnn.datasets import wjets_path
from sqnn.workflows.train import evaluate_run
from sqnn.files import json_safe

KEYS = ("auc_target", "closure", "closure_80", "ks_signal", "ks_background")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sim, data = wjets_path("sim"), wjets_path("data")
    runs: list[dict[str, Any]] = []
    for run_dir in args.runs:
        modes = {mode: evaluate_run(run_dir, sim, data, data_label="is_signal", inference=mode) for mode in ("mean", "deterministic")}
        runs.append({"run": str(run_dir), "setting": run_dir.parent.name,
                     **{mode: {k: m[k] for k in KEYS} for mode, m in modes.items()}})
        print(f"{run_dir}: auc_target {modes['deterministic']['auc_target']:.4f} -> {modes['mean']['auc_target']:.4f}", flush=True)
    settings = {}
    for name in dict.fromkeys(r["setting"] for r in runs):
        members = [r for r in runs if r["setting"] == name]
        gain = np.array([r["mean"]["auc_target"] - r["deterministic"]["auc_target"] for r in members])
        settings[name] = {
            "runs": len(members),
            **{f"{mode}_{k}": float(np.mean([r[mode][k] for r in members])) for mode in ("mean", "deterministic") for k in KEYS},
            "auc_gain": float(gain.mean()),
            "auc_gain_error": float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else None,
        }
        s = settings[name]
        print(f"{name:28s} {len(members)} runs: auc_target {s['deterministic_auc_target']:.4f} -> {s['mean_auc_target']:.4f} "
              f"(+{s['auc_gain']:.4f}), closure {s['deterministic_closure']:.3f} -> {s['mean_closure']:.3f}")
    write_json(args.out, json_safe({"runs": runs, "settings": settings}))


if __name__ == "__main__":
    main()
