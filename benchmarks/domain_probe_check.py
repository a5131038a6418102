"""The domain probe of `sqnn evaluate` against scikit-learn's trees on raw weighted features.

For each trained run on the shipped W-jet files: the probe AUC of ``metrics.domain_probe_auc``
(features binned once, boosted trees in numpy) and of the previous probe
(HistGradientBoostingClassifier fitted on the raw representation with sample weights, which
bins with one weighted percentile per edge), on the same events and folds, with the CPU
seconds of each; the statistical error of the probe AUC (Hanley–McNeil per test fold with
effective counts, combined over the two folds) and its spread over probe seeds.

    python benchmarks/domain_probe_check.py RUN_DIR [RUN_DIR ...] --out probe_check.json
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sqnn import metrics
from sqnn.files import json_safe, write_json
from sqnn.data import ColumnSpec, load_sample
from sqnn.datasets import wjets_path
from sqnn.evaluation import held_out
from sqnn.runs import load_run


def folds(sim: np.ndarray, data: np.ndarray, w_sim: np.ndarray, w_data: np.ndarray, seed: int, max_events: int = 20000):
    """The events, labels, weights and folds the probe draws (as in ``metrics.domain_probe_auc``)."""
    rng = np.random.default_rng(seed)
    parts = []
    for rep, weight in ((sim, w_sim), (data, w_data)):
        rep = np.asarray(rep, dtype=np.float32).reshape(len(rep), -1)
        pick = rng.permutation(len(rep))[: max_events // 2]
        parts.append((rep[pick], np.asarray(weight, dtype=np.float64)[pick]))
    x = np.concatenate([parts[0][0], parts[1][0]])
    y = np.r_[np.zeros(len(parts[0][0])), np.ones(len(parts[1][0]))]
    w = np.concatenate([parts[0][1] / parts[0][1].sum(), parts[1][1] / parts[1][1].sum()])
    return x, y, w, rng.permutation(len(x)) % 2


def previous_probe(sim, data, w_sim, w_data, seed: int) -> float:  # noqa: ANN001
    """The probe before: scikit-learn's trees binning the raw weighted features themselves."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    x, y, w, fold = folds(sim, data, w_sim, w_data, seed)
    aucs = []
    for k in range(2):
        train, test = fold != k, fold == k
        probe = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15, random_state=seed)
        with threadpool_limits(1):
            probe.fit(x[train], y[train], sample_weight=np.abs(w[train]) * len(x))
            auc = metrics.roc_auc(probe.predict_proba(x[test])[:, 1], y[test], w[test])
        aucs.append(max(auc, 1 - auc))
    return float(np.mean(aucs))


def probe_error(auc: float, sim, data, w_sim, w_data, seed: int) -> float:  # noqa: ANN001
    """Statistical error of the two-fold mean AUC: Hanley–McNeil on each test fold, combined."""
    x, y, w, fold = folds(sim, data, w_sim, w_data, seed)
    errors = [metrics.roc_auc_error(auc, y[fold == k], w[fold == k]) for k in range(2)]
    return math.sqrt(sum(e * e for e in errors)) / 2


def check(run_dir: Path, seeds: int) -> dict[str, Any]:
    run = load_run(run_dir)
    spec = ColumnSpec(features=tuple(run.meta["features"]), label="is_signal")
    simulation = held_out(run, load_sample(wjets_path("sim"), spec, "simulation", require_label=True), "simulation")
    data = held_out(run, load_sample(wjets_path("data"), spec, "data"), "data")
    sim_rep, data_rep = run.representation(simulation.features), run.representation(data.features)
    rows = []
    for seed in range(seeds):
        started = time.process_time()
        new = metrics.domain_probe_auc(sim_rep, data_rep, simulation.weight, data.weight, seed=seed)
        middle = time.process_time()
        old = previous_probe(sim_rep, data_rep, simulation.weight, data.weight, seed)
        rows.append({"seed": seed, "probe_auc": new, "previous_probe_auc": old, "difference": new - old,
                     "error": probe_error(new, sim_rep, data_rep, simulation.weight, data.weight, seed),
                     "cpu_seconds": middle - started, "previous_cpu_seconds": time.process_time() - middle})
    result = {
        "run": str(run_dir), "method": run.meta.get("method"), "seeds": rows,
        "max_abs_difference": max(abs(r["difference"]) for r in rows),
        "error": float(np.mean([r["error"] for r in rows])),
        "spread_over_seeds": float(np.std([r["probe_auc"] for r in rows], ddof=1)) if seeds > 1 else None,
    }
    print(f"{run_dir}: probe {rows[0]['probe_auc']:.4f} (previous {rows[0]['previous_probe_auc']:.4f}), "
          f"max |difference| {result['max_abs_difference']:.1e}, error ±{result['error']:.4f}, "
          f"spread over seeds {result['spread_over_seeds'] or 0:.4f}, CPU s {rows[0]['cpu_seconds']:.2f} "
          f"(previous {rows[0]['previous_cpu_seconds']:.2f})", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--seeds", type=int, default=3, help="probe seeds per run (subsample and folds)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write_json(args.out, json_safe({"runs": [check(run, args.seeds) for run in args.runs]}))


if __name__ == "__main__":
    main()
