"""Closure study on the W-jet case: SQNN variants against the baselines, over seeds.

For every setting and seed: train on labelled simulation + unlabelled data, evaluate with
the data labels (for reporting only), then choose one setting per method family with the
label-free rule of :func:`sqnn.compare.select_setting` (the rule `sqnn compare` applies).
Writes JSON (every run's metrics, per setting mean ± std, the selected settings) to ``--out``.

    python benchmarks/closure_study.py --seeds 3 --epochs 20 --out closure.json
    python benchmarks/closure_study.py --only sqnn-cc --seeds 1 --out quick.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from sqnn._atomic import write_json
from sqnn.data import ColumnSpec
from sqnn.datasets import WJETS_FEATURES, wjets_path
from sqnn.pipeline import evaluate_run, train_run
from sqnn.run import json_safe
from sqnn.compare import DEFAULT_DELTA, aggregate, select_setting
from sqnn.train import TrainConfig

FP16 = {"hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False]}
CCJ = {"region": "class-conditional", "estimator": "joint"}

# family -> list of (setting name, method, gamma, method options, network)
GRID: dict[str, list[tuple[str, str, float | None, dict[str, Any], dict[str, Any] | None]]] = {
    "source-only": [("source-only", "source-only", None, {}, None)],
    "sqnn-marginal": [(f"marginal γ={g:g}", "sqnn", g, {"region": "all"}, FP16) for g in (0.1, 0.3, 1.0)],
    "sqnn-control": [(f"control γ={g:g}", "sqnn", g, {"region": "control"}, FP16) for g in (0.3, 1.0, 3.0)],
    "sqnn-cc": [(f"cc γ={g:g}", "sqnn", g, {"region": "class-conditional"}, FP16) for g in (0.1, 0.3, 0.6, 1.0)],
    "sqnn-cc-joint": [
        (f"cc-joint γ={g:g}", "sqnn", g, CCJ, FP16) for g in (0.3, 0.6, 1.0)
    ],
    "sqnn-ccj-warmup": [
        (f"ccj-warmup γ={g:g}", "sqnn", g, {**CCJ, "warmup": 5}, FP16) for g in (0.6, 1.0)
    ],
    "sqnn-ccj-stochastic-first": [
        (f"ccj-first γ={g:g}", "sqnn", g, CCJ, {"hidden": [16], "stochastic": [True], "binary_weights": [False]})
        for g in (0.3, 0.6)
    ],
    "sqnn-ccj-deep": [
        (f"ccj-deep γ={g:g}", "sqnn", g, CCJ,
         {"hidden": [64, 64, 16], "stochastic": [False, False, True], "binary_weights": [False, False, False]}) for g in (0.6, 1.0)
    ],
    "sqnn-ccj-8": [
        (f"ccj-8 γ={g:g}", "sqnn", g, CCJ, {"hidden": [64, 8], "stochastic": [False, True], "binary_weights": [False, False]})
        for g in (0.6, 1.0)
    ],
    "sqnn-ccj-k4": [(f"ccj-K4 γ={g:g}", "sqnn", g, CCJ, {**FP16, "samples": 4}) for g in (0.6, 1.0)],
    "sqnn-ccj-two-layers": [
        (f"ccj-2stoch γ={g:g}", "sqnn", g, CCJ, {"hidden": [64, 16], "stochastic": [True, True], "binary_weights": [False, False]})
        for g in (0.6, 1.0)
    ],
    "dann": [(f"dann λ={g:g}", "dann", g, {}, None) for g in (0.03, 0.1, 0.3, 1.0)],
    # the two settings that matter most, for a longer head-to-head run
    "head-to-head-sqnn": [("cc-joint γ=0.6", "sqnn", 0.6, CCJ, FP16)],
    "head-to-head-dann": [("dann λ=0.3", "dann", 0.3, {}, None)],
    "disco": [(f"disco λ={g:g}", "disco", g, {}, None) for g in (1.0, 3.0, 10.0)],
    "mmd": [(f"mmd λ={g:g}", "mmd", g, {}, None) for g in (0.1, 1.0, 10.0)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated families (default: all)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/closure-study"))
    parser.add_argument("--select-by", default="ks_control", help="label-free disagreement metric of the selection rule")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    families = args.only.split(",") if args.only else list(GRID)
    sim, data = wjets_path("sim"), wjets_path("data")
    spec = ColumnSpec(features=WJETS_FEATURES, label="is_signal", control="control", observer="pt")
    previous = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    done = {(r["setting"], r["seed"], r["epochs"]) for r in previous["runs"]}
    runs = previous["runs"]
    for family in families:
        for name, method, gamma, options, network in GRID[family]:
            for seed in range(args.seeds):
                if (name, seed, args.epochs) in done:
                    continue
                run_dir = args.workdir / name.replace(" ", "_") / f"seed{seed}"
                started = time.process_time()
                train_run(
                    sim, data, spec, run_dir, method=method, gamma=gamma, method_options=options, network=network,
                    train_config=TrainConfig(epochs=args.epochs, seed=seed),
                )
                metrics = evaluate_run(run_dir, sim, data, data_label="is_signal")
                runs.append({"family": family, "setting": name, "method": method, "gamma": gamma, "options": options,
                             "network": network, "seed": seed, "epochs": args.epochs, "metrics": metrics,
                             "cpu_seconds": time.process_time() - started})
                write_json(args.out, json_safe({"runs": runs}))
                m = metrics
                print(f"{name:24s} seed {seed}: auc_t {m['auc_target']:.4f} sf_s {m['sf_signal']:.3f} "
                      f"sf_b {m['sf_background']:.3f} ks_rw {m['ks_reweighted']:.4f} auc_s {m['auc_source']:.4f}", flush=True)
    settings = summarise(runs)
    selected = {}
    for family in dict.fromkeys(r["family"] for r in runs):
        candidates = [s for s in settings if s["family"] == family]
        index, how = select_setting(candidates, args.select_by, DEFAULT_DELTA)
        selected[family] = {**candidates[index], "how": how}
    write_json(args.out, json_safe({"runs": runs, "settings": settings, "selected": selected, "select_by": args.select_by}))
    for family, chosen in selected.items():
        m = chosen["metrics"]
        print(f"{family:28s} {chosen['setting']:20s} " + " ".join(
            f"{k} {m[k]['mean']:.4f}±{(m[k]['std'] or 0):.4f}" for k in ("auc_target", "sf_signal", "sf_background", "ks_control")))


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (family, setting): mean and spread over seeds of every metric."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["family"], run["setting"]), []).append(run)
    return [
        {"family": family, "setting": setting, "method": members[0]["method"], "gamma": members[0]["gamma"] or 0.0,
         "options": members[0]["options"], "network": members[0]["network"], "seeds": len(members),
         "metrics": aggregate([m["metrics"] for m in members])}
        for (family, setting), members in groups.items()
    ]

if __name__ == "__main__":
    main()
