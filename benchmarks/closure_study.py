"""Closure study on the W-jet case: SQNN variants against the baselines, over seeds.

For every setting and seed: train on labelled simulation + unlabelled data, evaluate with
the data labels (for reporting only), then choose one setting per method family with the
label-free rule of :func:`sqnn.workflows.selection.select_setting` (the rule `sqnn compare` applies).
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

import numpy as np

from sqnn.files import write_json
from sqnn.data import ColumnSpec
from sqnn.datasets import WJETS_FEATURES, wjets_path
from sqnn.workflows.train import evaluate_run, train_run
from sqnn.files import json_safe
from sqnn.workflows.selection import DEFAULT_DELTA, aggregate, select_setting
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings

FP16 = {"hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False], "samples": 1}
CCJ = {"region": "class-conditional", "estimator": "joint", "condition": "truth"}

FP16_K4 = {**FP16, "samples": 4}
CCJP = {**CCJ, "condition": "predicted"}
CCP = {"region": "class-conditional", "estimator": "factorized", "condition": "predicted"}
HEAD = {"hidden": [64, 16, 32], "stochastic": [False, True, False], "binary_weights": [False, False, False], "representation": 1,
        "samples": 4}
EXPLORE = (0.6, 1.0)
# the deployable networks: the default network on fixed-point grids (scored by its mean
# through the θ table), and an all-binary one (step units; sign weights in the second layer)
FIXED_K4 = {**FP16_K4, "fixed_point": {}}
ALL_BINARY_K4 = {"hidden": [64, 16], "stochastic": [True, True], "binary_weights": [False, True], "input_fixed": [10, 4],
                 "first_layer_fixed": [8, 2], "inference": "deterministic", "samples": 4}
ALL_BINARY_F32 = {"hidden": [64, 32], "stochastic": [True, True], "binary_weights": [False, True], "input_fixed": [10, 4],
                  "first_layer_fixed": [8, 2], "inference": "deterministic", "samples": 4, "representation": 1}
DEPLOY_GAMMAS = (0.6, 1.0, 2.0)


def scored(family: str, base: str, evaluation: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The runs of another family, scored another way (``evaluate_run`` options): no new training."""
    variants = []
    for name, method, gamma, options, network, *rest in GRID[base]:
        variants.append((f"{name} [{family}]", method, gamma, options, network, rest[0] if rest else {}, {"from": name, **evaluation}))
    return variants

# family -> list of (setting name, method, gamma, method options, network[, training overrides]);
# every sqnn network names its K (samples), since the method's default is K = 4
GRID: dict[str, list[tuple[Any, ...]]] = {
    "source-only": [("source-only", "source-only", None, {}, None)],
    # where the penalty applies
    "sqnn-marginal": [(f"marginal γ={g:g}", "sqnn", g, {"region": "all", "estimator": "factorized"}, FP16_K4) for g in (0.1, 0.3, 1.0)],
    "sqnn-prior-corrected": [
        (f"prior-corrected γ={g:g}", "sqnn", g, {"region": "prior-corrected", "estimator": "joint"}, FP16) for g in (0.3, 0.6, 1.0)
    ],
    "sqnn-control": [(f"control γ={g:g}", "sqnn", g, {"region": "control", "estimator": "factorized"}, FP16_K4) for g in (0.3, 1.0, 3.0)],
    # class-conditional: factorised or exact joint, true or predicted class in simulation
    "sqnn-cc": [
        (f"cc γ={g:g}", "sqnn", g, {"region": "class-conditional", "estimator": "factorized", "condition": "truth"}, FP16_K4)
        for g in (0.3, 0.6, 1.0)
    ],
    "sqnn-cc-joint": [(f"cc-joint γ={g:g}", "sqnn", g, CCJ, FP16) for g in (0.3, 0.6, 1.0)],
    "sqnn-cc-predicted": [(f"cc-pred γ={g:g}", "sqnn", g, CCP, FP16) for g in (0.3, 0.6, 1.0)],
    "sqnn-ccj-predicted": [(f"ccj-pred γ={g:g}", "sqnn", g, CCJP, FP16) for g in (0.3, 0.6, 1.0, 2.0)],
    # placement, width and optimisation, on the predicted-class joint penalty
    "sqnn-ccjp-warmup": [(f"ccjp-warmup γ={g:g}", "sqnn", g, {**CCJP, "warmup": 5}, FP16) for g in EXPLORE],
    "sqnn-ccjp-k4": [(f"ccjp-K4 γ={g:g}", "sqnn", g, CCJP, {**FP16, "samples": 4}) for g in (0.6, 1.0, 2.0)],
    "sqnn-ccjp-k16": [(f"ccjp-K16 γ={g:g}", "sqnn", g, CCJP, {**FP16, "samples": 16}) for g in (1.0, 2.0)],
    "sqnn-ccjp-k4-warmup": [
        (f"ccjp-K4-warmup γ={g:g}", "sqnn", g, {**CCJP, "warmup": 5}, {**FP16, "samples": 4}) for g in (1.0, 2.0)
    ],
    "sqnn-ccjp-8": [
        (f"ccjp-8 γ={g:g}", "sqnn", g, CCJP, {"hidden": [64, 8], "stochastic": [False, True], "binary_weights": [False, False], "samples": 1})
        for g in EXPLORE
    ],
    "sqnn-ccjp-two-layers": [
        (f"ccjp-2stoch γ={g:g}", "sqnn", g, CCJP, {"hidden": [64, 16], "stochastic": [True, True], "binary_weights": [False, False], "samples": 1})
        for g in EXPLORE
    ],
    "sqnn-ccjp-deep": [
        (f"ccjp-deep γ={g:g}", "sqnn", g, CCJP,
         {"hidden": [64, 64, 16], "stochastic": [False, False, True], "binary_weights": [False, False, False], "samples": 1}) for g in EXPLORE
    ],
    "sqnn-ccjp-stochastic-first": [
        (f"ccjp-first γ={g:g}", "sqnn", g, CCJP, {"hidden": [16], "stochastic": [True], "binary_weights": [False], "samples": 4}) for g in EXPLORE
    ],
    "sqnn-ccjp-batch1024": [(f"ccjp-b1024 γ={g:g}", "sqnn", g, CCJP, FP16_K4, {"batch_size": 1024}) for g in EXPLORE],
    "sqnn-ccjp-relu-head": [(f"ccjp-head γ={g:g}", "sqnn", g, CCJP, HEAD) for g in EXPLORE],
    "sqnn-ccjp-anneal": [(f"ccjp-anneal γ={g:g}", "sqnn", g, {**CCJP, "anneal": 10}, FP16) for g in EXPLORE],
    "sqnn-ccjp-temperature": [
        (f"ccjp-τ{t:g} γ=1", "sqnn", 1.0, CCJP, {**FP16, "temperature": t}) for t in (2.0, 12.0)
    ],
    "sqnn-ccjp-threshold": [
        (f"ccjp-threshold γ={g:g}", "sqnn", g, CCJP, {**FP16, "inference": "deterministic"}) for g in EXPLORE
    ],
    "dann": [(f"dann λ={g:g}", "dann", g, {}, None) for g in (0.03, 0.1, 0.3, 1.0)],
    "dann-k4": [(f"dann-K4 λ={g:g}", "dann", g, {}, {**FP16, "samples": 4}) for g in (0.1, 0.3, 1.0)],
    "dann-drawn": [(f"dann-drawn λ={g:g}", "dann", g, {"reads": "drawn"}, None) for g in (0.03, 0.1, 0.3, 1.0)],
    "dann-threshold": [(f"dann-threshold λ={g:g}", "dann", g, {}, {**FP16, "inference": "deterministic"}) for g in (0.3, 1.0)],
    "disco": [(f"disco λ={g:g}", "disco", g, {}, None) for g in (1.0, 3.0, 10.0)],
    "mmd": [(f"mmd λ={g:g}", "mmd", g, {}, None) for g in (0.1, 1.0, 10.0)],
    # deployable variants of the default (predicted-class joint penalty, K = 4)
    # the penalty on one step in k (scaled by k): the cost of training
    "sqnn-ccjp-k4-every4": [(f"ccjp-K4-every4 γ={g:g}", "sqnn", g, {**CCJP, "every": 4}, FP16_K4, {}) for g in DEPLOY_GAMMAS],
    "sqnn-ccjp-k4-every8": [(f"ccjp-K4-every8 γ={g:g}", "sqnn", g, {**CCJP, "every": 8}, FP16_K4, {}) for g in DEPLOY_GAMMAS],
    "sqnn-fixed": [(f"fixed γ={g:g}", "sqnn", g, CCJP, FIXED_K4, {}) for g in DEPLOY_GAMMAS],
    "sqnn-fixed-every4": [(f"fixed-every4 γ={g:g}", "sqnn", g, {**CCJP, "every": 4}, FIXED_K4, {}) for g in DEPLOY_GAMMAS],
    "sqnn-fixed-every8": [(f"fixed-every8 γ={g:g}", "sqnn", g, {**CCJP, "every": 8}, FIXED_K4, {}) for g in DEPLOY_GAMMAS],
    # finer grids: 10-bit weights and ReLU outputs, θ on 6 bits
    # with simulation reweighted to data in the control region before training (option reweight)
    "sqnn-fixed-every8-rw-control": [
        (f"fixed-every8-rw γ={g:g}", "sqnn", g, {**CCJP, "every": 8, "reweight": "control"}, FIXED_K4, {}) for g in DEPLOY_GAMMAS
    ],
    "sqnn-fixed-every8-rw-all": [
        (f"fixed-every8-rw-all γ={g:g}", "sqnn", g, {**CCJP, "every": 8, "reweight": "all"}, FIXED_K4, {}) for g in DEPLOY_GAMMAS
    ],
    "reweight-control": [("reweight control fixed", "reweight", None, {"region": "control"}, FIXED_K4, {})],
    "reweight-all": [("reweight all fixed", "reweight", None, {"region": "all"}, FIXED_K4, {})],
    "sqnn-fixed-fine-every8": [
        (f"fixed-fine-every8 γ={g:g}", "sqnn", g, {**CCJP, "every": 8},
         {**FP16_K4, "fixed_point": {"weight": 10, "activation": 10, "theta_bits": 6}}, {}) for g in DEPLOY_GAMMAS
    ],
    "all-binary": [(f"all-binary γ={g:g}", "sqnn", g, CCJP, ALL_BINARY_K4, {}) for g in DEPLOY_GAMMAS],
    "all-binary-32": [(f"all-binary-32 γ={g:g}", "sqnn", g, CCJP, ALL_BINARY_F32, {}) for g in DEPLOY_GAMMAS],
    "source-only-fixed": [("source-only fixed", "source-only", None, {}, FIXED_K4, {})],
}
GRID.update({
    "sqnn-fixed-packed": scored("packed", "sqnn-fixed", {"engine": "packed"}),
    "sqnn-fixed-threshold": scored("threshold", "sqnn-fixed", {"inference": "deterministic"}),
    "sqnn-fixed-draws-1": scored("K=1", "sqnn-fixed", {"inference": "stochastic", "draws": 1}),
    "sqnn-fixed-draws-4": scored("K=4", "sqnn-fixed", {"inference": "stochastic", "draws": 4}),
    "sqnn-fixed-draws-16": scored("K=16", "sqnn-fixed", {"inference": "stochastic", "draws": 16}),
    "sqnn-fixed-every4-packed": scored("packed", "sqnn-fixed-every4", {"engine": "packed"}),
    "sqnn-fixed-every4-threshold": scored("threshold", "sqnn-fixed-every4", {"inference": "deterministic"}),
    "sqnn-fixed-every8-packed": scored("packed", "sqnn-fixed-every8", {"engine": "packed"}),
    "sqnn-fixed-every8-threshold": scored("threshold", "sqnn-fixed-every8", {"inference": "deterministic"}),
    "sqnn-fixed-every8-draws-1": scored("K=1", "sqnn-fixed-every8", {"inference": "stochastic", "draws": 1}),
    "sqnn-fixed-every8-draws-4": scored("K=4", "sqnn-fixed-every8", {"inference": "stochastic", "draws": 4}),
    "sqnn-fixed-every8-draws-16": scored("K=16", "sqnn-fixed-every8", {"inference": "stochastic", "draws": 16}),
    "sqnn-float-threshold": scored("threshold", "sqnn-ccjp-k4", {"inference": "deterministic"}),
})


# the families the report's figure shows (the table has them all)
REPORT_FAMILIES = ("source-only", "sqnn-ccjp-k4", "sqnn-ccj-predicted", "sqnn-cc-joint", "dann", "dann-drawn", "dann-k4", "disco", "mmd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated families (default: all)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/closure-study"))
    parser.add_argument("--select-by", default="ks_control", help="label-free disagreement metric of the selection rule")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--merge", type=Path, nargs="*", default=[], help="add the runs of other output files of this script")
    parser.add_argument("--no-train", action="store_true", help="only summarise the runs already in --out / --merge")
    parser.add_argument("--markdown", type=Path, help="also write the table of every setting as markdown")
    parser.add_argument("--reference", default="dann", help="family whose chosen setting the others are compared with, seed by seed")
    parser.add_argument("--report", type=Path, help="also write the study as an HTML report section (needs the plot extra)")
    parser.add_argument("--show", help="comma-separated families the report plots (default: the main families of the float study)")
    args = parser.parse_args()
    families = args.only.split(",") if args.only else list(GRID)
    sim, data = wjets_path("sim"), wjets_path("data")
    spec = ColumnSpec(features=WJETS_FEATURES, label="is_signal", control="control", observer="pt")
    previous = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    runs = previous["runs"]
    for other in args.merge:
        runs += json.loads(other.read_text())["runs"]
    unique = {(r["setting"], r["seed"], r["epochs"]): r for r in runs}
    runs = list(unique.values())
    done = set(unique)
    for family in [] if args.no_train else families:
        for name, method, gamma, options, network, *rest in GRID[family]:
            train = rest[0] if rest else {}
            evaluation = dict(rest[1]) if len(rest) > 1 else {}
            trained = evaluation.pop("from", name)
            for seed in range(args.seeds):
                if (name, seed, args.epochs) in done:
                    continue
                run_dir = args.workdir / trained.replace(" ", "_") / f"seed{seed}"
                started = time.process_time()
                settings = Settings(
                    columns=spec, method=method, gamma=gamma, method_options=options, network=network,
                    train=TrainConfig(epochs=args.epochs, seed=seed, **train),
                )
                # a scoring variant reuses the trained run of its base setting
                train_run(sim, data, settings, run_dir, reuse=True)
                metrics = evaluate_run(run_dir, sim, data, data_label="is_signal", **evaluation)
                runs.append({"family": family, "setting": name, "method": method, "gamma": gamma, "options": options,
                             "network": network, "train": train, "evaluation": evaluation, "seed": seed, "epochs": args.epochs,
                             "metrics": metrics, "cpu_seconds": time.process_time() - started})
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
    public = [{k: v for k, v in s.items() if k != "runs"} for s in settings]
    chosen_public = {f: {k: v for k, v in s.items() if k != "runs"} for f, s in selected.items()}
    differences = paired(selected, args.reference) if args.reference in selected else {}
    write_json(args.out, json_safe({"runs": runs, "settings": public, "selected": chosen_public, "select_by": args.select_by,
                                    "reference": args.reference, "paired": differences}))
    for family, chosen in selected.items():
        m = chosen["metrics"]
        print(f"{family:28s} {chosen['setting']:20s} " + " ".join(
            f"{k} {m[k]['mean']:.4f}±{(m[k]['std'] or 0):.4f}" for k in ("auc_target", "sf_signal", "sf_background", "ks_control")))
    if args.markdown:
        args.markdown.write_text(markdown(settings, selected) + paired_markdown(differences, args.reference))
    if args.report:
        from sqnn.files import write_text
        from sqnn.report.studies import closure_study_page

        wanted = args.show.split(",") if args.show else REPORT_FAMILIES
        shown = [f for f in wanted if f in selected] or None
        write_text(args.report, closure_study_page(json.loads(args.out.read_text()), families=shown, zoom=(0.5, 0.898)))


# the metrics compared seed by seed with the reference family
PAIRED = ("auc_target", "closure", "closure_80")


def paired(selected: dict[str, dict[str, Any]], reference: str) -> dict[str, dict[str, Any]]:
    """Each family's chosen setting minus the reference family's, seed by seed (same splits), mean ± error.

    A seed fixes the train/validation/test split of both domains, so the difference on one
    seed is free of the test-sample fluctuation the two settings share.
    """
    base = {r["seed"]: r["metrics"] for r in selected[reference]["runs"]}
    out = {}
    for family, chosen in selected.items():
        mine = {r["seed"]: r["metrics"] for r in chosen["runs"]}
        seeds = sorted(set(mine) & set(base))
        if family == reference or len(seeds) < 2:
            continue
        entry: dict[str, Any] = {"setting": chosen["setting"], "against": selected[reference]["setting"], "seeds": seeds}
        for key in PAIRED:
            d = np.array([mine[s][key] - base[s][key] for s in seeds])
            entry[key] = {"mean": float(d.mean()), "error": float(d.std(ddof=1) / np.sqrt(len(d)))}
        out[family] = entry
    return out


def paired_markdown(differences: dict[str, dict[str, Any]], reference: str) -> str:
    lines = ["", f"Chosen setting minus the chosen `{reference}` setting, seed by seed (mean ± spread/√n):", "",
             "| family | setting | against | seeds | Δ auc_target | Δ closure 50 % | Δ closure 80 % |", "|---|---|---|---:|---:|---:|---:|"]
    for family, d in differences.items():
        cells = " | ".join(f"{d[k]['mean']:+.4f} ± {d[k]['error']:.4f}" for k in PAIRED)
        lines.append(f"| {family} | {d['setting']} | {d['against']} | {len(d['seeds'])} | {cells} |")
    return "\n".join(lines) + "\n"


def markdown(settings: list[dict[str, Any]], selected: dict[str, dict[str, Any]]) -> str:
    """Every setting, the label-free choice per family marked: closure at both working points, per-class KS."""
    def mean(setting: dict[str, Any], key: str, digits: int) -> str:
        return f"{setting['metrics'][key]['mean']:.{digits}f}"

    def cell(setting: dict[str, Any], key: str, digits: int) -> str:
        """Mean ± its error, the spread over seeds / √n (the mean alone for one seed)."""
        stats = setting["metrics"][key]
        if stats["std"] is None:
            return mean(setting, key, digits)
        return f"{stats['mean']:.{digits}f} ± {stats['std'] / np.sqrt(stats['n']):.{digits}f}"

    lines = [
        "| family | setting | seeds | auc_source | auc_target | sf_S | sf_B | closure 50 % | sf_S / sf_B 80 % | closure 80 % | KS_S / KS_B | ks_control |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for setting in settings:
        mark = " ✔" if selected[setting["family"]]["setting"] == setting["setting"] else ""
        lines.append(
            f"| {setting['family']} | {setting['setting']}{mark} | {setting['seeds']} | {mean(setting, 'auc_source', 4)} | "
            f"{cell(setting, 'auc_target', 4)} | {cell(setting, 'sf_signal', 3)} | {cell(setting, 'sf_background', 3)} | "
            f"{cell(setting, 'closure', 3)} | {mean(setting, 'sf_signal_80', 3)} / {mean(setting, 'sf_background_80', 3)} | "
            f"{cell(setting, 'closure_80', 3)} | {mean(setting, 'ks_signal', 3)} / {mean(setting, 'ks_background', 3)} | "
            f"{mean(setting, 'ks_control', 3)} |"
        )
    lines += ["", "± is the spread over seeds / √n (the error of the mean); ✔ the label-free choice of the family.", ""]
    return "\n".join(lines)


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (family, setting): mean and spread over seeds of every metric."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["family"], run["setting"]), []).append(run)
    return [
        {"family": family, "setting": setting, "method": members[0]["method"], "gamma": members[0]["gamma"] or 0.0,
         "options": members[0]["options"], "network": members[0]["network"], "seeds": len(members),
         "metrics": aggregate([m["metrics"] for m in members]), "runs": members}
        for (family, setting), members in groups.items()
    ]

if __name__ == "__main__":
    main()
