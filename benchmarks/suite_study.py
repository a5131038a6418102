"""Closure across the suite of simulation/data shifts: every method on every case, the label-free choice, leave-one-case-out.

For every case of a suite folder (``sqnn suite make ... --out DIR``), every family of
settings and seed: train on the case's training files (simulation labelled, data never
labelled), evaluate on its separate evaluation files with the data labels (for reporting
only), and choose one setting per family and case with the label-free rule of
:func:`sqnn.workflows.selection.select_setting` (auc_source guard, then ks_control). Then:

- per case and family the chosen setting's auc_target, closure at 50 % and 80 % (mean and
  error over seeds) and the scale factors with their statistical errors;
- the scale-factor curve (data/simulation efficiency for signal and background from 10 %
  to 95 % signal efficiency in simulation, with binomial errors) of each chosen setting;
- whether SQNN's default is better than source-only at both working points, and on or
  beyond the Pareto front (auc_target up, closure down) of DANN's and reweighting's choices;
- leave-one-case-out: among the candidate SQNN families, the one with the smallest mean
  closure error over the other cases (AUC within ``--delta`` of source-only there), and
  whether it wins on the case left out.

Runs are kept in ``--workdir`` and in the JSON: a rerun trains only what is missing.

    python benchmarks/suite_study.py --suite suite --seeds 3 --out benchmarks/results/suite_study.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from sqnn import metrics
from sqnn.data import ColumnSpec, load_inputs
from sqnn.datasets import WJETS_FEATURES
from sqnn.evaluation import held_out, scorer_of
from sqnn.files import json_safe, write_json
from sqnn.runs import load_run
from sqnn.training import TrainConfig
from sqnn.runs.reweighter import load_reweighter, reweighted
from sqnn.workflows.selection import DEFAULT_DELTA, aggregate, select_setting
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import evaluate_run, train_run

SPEC = ColumnSpec(features=WJETS_FEATURES, label="is_signal", control="control", observer="pt")
CCJP = {"region": "class-conditional", "estimator": "joint", "condition": "predicted"}
GAMMAS = (0.6, 1.0, 2.0)

# family -> (method, options, network, strengths); None: the method's default network
FAMILIES: dict[str, tuple[str, dict[str, Any], dict[str, Any] | None, tuple[float, ...]]] = {
    "source-only": ("source-only", {}, None, (0.0,)),
    "sqnn": ("sqnn", {}, None, GAMMAS),
    "sqnn-reweight-all": ("sqnn", {"reweight": "all"}, None, GAMMAS),
    "sqnn-reweight-control": ("sqnn", {"reweight": "control"}, None, GAMMAS),
    "sqnn-truth": ("sqnn", {"condition": "truth"}, None, GAMMAS),
    "dann": ("dann", {}, None, (0.03, 0.1, 0.3, 1.0)),
    "reweight-control": ("reweight", {"region": "control"}, None, (0.0,)),
    "reweight-all": ("reweight", {"region": "all"}, None, (0.0,)),
}
DEFAULT_FAMILY = "sqnn"
BASELINES = ("dann", "reweight-control", "reweight-all")
CANDIDATES = ("sqnn", "sqnn-reweight-all", "sqnn-reweight-control", "sqnn-truth")
CURVE_EFFICIENCIES = tuple(np.round(np.arange(0.10, 0.951, 0.05), 2))


def _label(family: str, gamma: float) -> str:
    return f"{family} γ={gamma:g}"


def _curve(run_dir: Path, case: Path) -> dict[str, Any]:
    """Data/simulation efficiency of each class across working points fixed on simulation, with errors."""
    run = load_run(run_dir)
    simulation, data = load_inputs(case / "sim_eval.parquet", case / "data_eval.parquet", SPEC, data_label="is_signal")
    simulation = reweighted(held_out(run, simulation, "simulation"), load_reweighter(run.path, run.meta))
    data = held_out(run, data, "data")
    score = scorer_of(run)
    curve = metrics.scale_factor_curve(score(simulation.features), simulation.label, simulation.weight,
                                       score(data.features), data.label, data.weight, CURVE_EFFICIENCIES)
    return {"efficiency": list(CURVE_EFFICIENCIES), "signal": curve.signal.tolist(), "signal_err": curve.signal_err.tolist(),
            "background": curve.background.tolist(), "background_err": curve.background_err.tolist()}


def _chosen(runs: list[dict[str, Any]], case: str, family: str) -> dict[str, Any] | None:
    settings = []
    for gamma in FAMILIES[family][3]:
        members = [r for r in runs if r["case"] == case and r["family"] == family and r["gamma"] == gamma]
        if members:
            settings.append({"gamma": gamma, "seeds": [r["seed"] for r in members], "runs": members,
                             "metrics": aggregate([r["metrics"] for r in members])})
    if not settings:
        return None
    index, how = select_setting(settings, "ks_control", DEFAULT_DELTA)
    return {**settings[index], "how": how}


def _mean_error(setting: dict[str, Any], key: str) -> tuple[float | None, float | None]:
    stats = setting["metrics"].get(key) or {}
    mean, std, n = stats.get("mean"), stats.get("std"), stats.get("n") or 0
    return mean, (None if std is None or n < 2 else std / np.sqrt(n))


def summarise(runs: list[dict[str, Any]], cases: list[str], delta: float) -> dict[str, Any]:
    summary: dict[str, Any] = {"cases": {}, "checks": {}, "leave_one_out": {}}
    chosen: dict[str, dict[str, dict[str, Any]]] = {}
    for case in cases:
        chosen[case] = {f: c for f in FAMILIES if (c := _chosen(runs, case, f)) is not None}
        rows = {}
        for family, setting in chosen[case].items():
            row: dict[str, Any] = {"gamma": setting["gamma"], "seeds": len(setting["runs"])}
            for key in ("auc_target", "closure", "closure_80", "sf_signal", "sf_background", "sf_signal_80",
                        "sf_background_80", "sf_signal_err", "sf_background_err", "ks_signal", "ks_background"):
                row[key], row[f"{key}_error"] = _mean_error(setting, key)
            rows[family] = row
        summary["cases"][case] = rows
        default, source = rows.get(DEFAULT_FAMILY), rows.get("source-only")
        if default and source:
            better = all(default[k] < source[k] for k in ("closure", "closure_80"))
            dominated_by = [b for b in BASELINES if b in rows and rows[b]["auc_target"] >= default["auc_target"]
                            and rows[b]["closure"] <= default["closure"] and rows[b]["closure_80"] <= default["closure_80"]]
            summary["checks"][case] = {"better_than_source_only": better, "pareto": not dominated_by,
                                       "dominated_by": dominated_by}
    checks = summary["checks"].values()
    if checks:
        summary["fraction_on_pareto"] = float(np.mean([c["pareto"] for c in checks]))
        summary["fraction_better_than_source_only"] = float(np.mean([c["better_than_source_only"] for c in checks]))

    def score(case: str, family: str) -> float | None:
        row, source = summary["cases"][case].get(family), summary["cases"][case].get("source-only")
        if row is None or source is None or row["auc_target"] is None or row["auc_target"] < source["auc_target"] - delta:
            return None
        return row["closure"] + row["closure_80"]

    for left_out in cases:
        others = [c for c in cases if c != left_out]
        means = {}
        for family in CANDIDATES:
            values = [score(c, family) for c in others]
            if values and all(v is not None for v in values):
                means[family] = float(np.mean(values))
        if not means:
            continue
        best = min(means, key=means.get)
        row, source = summary["cases"][left_out].get(best), summary["cases"][left_out].get("source-only")
        wins = bool(row and source and row["closure"] < source["closure"] and row["closure_80"] < source["closure_80"])
        summary["leave_one_out"][left_out] = {"chosen": best, "mean_closure_elsewhere": means, "wins_here": wins}
    summary["chosen_settings"] = {case: {f: {"gamma": s["gamma"], "runs": [r["run"] for r in s["runs"]]}
                                         for f, s in per.items()} for case, per in chosen.items()}
    return summary


def _pm(row: dict[str, Any], key: str, digits: int) -> str:
    value, error = row.get(key), row.get(f"{key}_error")
    if value is None:
        return "–"
    return f"{value:.{digits}f}" + ("" if error is None else f" ± {error:.{digits}f}")


def markdown(summary: dict[str, Any]) -> str:
    """Per case the chosen setting of every family, then the checks and leave-one-case-out."""
    lines = [
        "| case | family | choice | seeds | auc_target | sf_S / sf_B 50 % (stat. err. of sf_B) | closure 50 % "
        "| sf_S / sf_B 80 % | closure 80 % |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case, rows in summary["cases"].items():
        for family, row in rows.items():
            lines.append(
                f"| {case} | {family} | {'γ = ' + format(row['gamma'], 'g') if row['gamma'] else '–'} | {row['seeds']} "
                f"| {_pm(row, 'auc_target', 4)} | {row['sf_signal']:.3f} / {row['sf_background']:.3f} "
                f"({row['sf_background_err']:.3f}) | {_pm(row, 'closure', 3)} "
                f"| {row['sf_signal_80']:.3f} / {row['sf_background_80']:.3f} | {_pm(row, 'closure_80', 3)} |")
    lines += ["", "| case | SQNN default better than source-only at 50 % and 80 % | on the Pareto front of "
              + ", ".join(BASELINES) + " | dominated by |", "|---|---|---|---|"]
    for case, check in summary["checks"].items():
        lines.append(f"| {case} | {'yes' if check['better_than_source_only'] else 'no'} | {'yes' if check['pareto'] else 'no'} "
                     f"| {', '.join(check['dominated_by']) or '–'} |")
    lines += ["", "| case left out | family chosen on the others | its mean closure (50 % + 80 %) there | wins on the case left out |",
              "|---|---|---|---|"]
    for case, entry in summary["leave_one_out"].items():
        means = ", ".join(f"{f} {v:.3f}" for f, v in entry["mean_closure_elsewhere"].items())
        lines.append(f"| {case} | {entry['chosen']} | {means} | {'yes' if entry['wins_here'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", type=Path, required=True, help="folder of `sqnn suite make`")
    parser.add_argument("--cases", help="comma-separated cases (default: every case folder)")
    parser.add_argument("--families", help=f"comma-separated families (default: {','.join(FAMILIES)})")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--delta", type=float, default=0.005, help="AUC guard of the leave-one-case-out choice")
    parser.add_argument("--workdir", type=Path, default=Path("suite-runs"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--reevaluate", action="store_true",
                        help="evaluate the runs already in --out again on the cases' evaluation files (e.g. after a larger --n-eval)")
    parser.add_argument("--curves", action="store_true", help="also compute the scale-factor curves of the chosen settings")
    parser.add_argument("--markdown", type=Path, help="also write the per-case table, the checks and leave-one-case-out as markdown")
    args = parser.parse_args()
    cases = args.cases.split(",") if args.cases else sorted(p.name for p in args.suite.iterdir() if (p / "case.json").exists())
    families = args.families.split(",") if args.families else list(FAMILIES)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    runs = previous["runs"]
    done = {(r["case"], r["family"], r["gamma"], r["seed"]) for r in runs}
    if args.reevaluate:
        for record in runs:
            if record["case"] in cases:
                folder = args.suite / record["case"]
                record["metrics"] = evaluate_run(Path(record["run"]), folder / "sim_eval.parquet", folder / "data_eval.parquet",
                                                 data_label="is_signal")
        write_json(args.out, json_safe({"runs": runs}))
    for case in [] if args.no_train else cases:
        folder = args.suite / case
        for family in families:
            method, options, network, gammas = FAMILIES[family]
            for gamma in gammas:
                for seed in range(args.seeds):
                    if (case, family, gamma, seed) in done:
                        continue
                    run_dir = args.workdir / case / _label(family, gamma).replace(" ", "_") / f"seed{seed}"
                    started = time.process_time()
                    settings = Settings(columns=SPEC, method=method, gamma=gamma if method in ("sqnn", "dann") else None,
                                        method_options=options, network=network, train=TrainConfig(epochs=args.epochs, seed=seed))
                    train_run(folder / "sim_train.parquet", folder / "data_train.parquet", settings, run_dir, reuse=True)
                    result = evaluate_run(run_dir, folder / "sim_eval.parquet", folder / "data_eval.parquet", data_label="is_signal")
                    runs.append({"case": case, "family": family, "gamma": gamma, "seed": seed, "run": str(run_dir),
                                 "metrics": result, "cpu_seconds": time.process_time() - started})
                    write_json(args.out, json_safe({"runs": runs}))
                    print(f"{case:22s} {_label(family, gamma):28s} seed {seed}: auc_t {result['auc_target']:.4f} "
                          f"closure {result['closure']:.3f} / {result['closure_80']:.3f}", flush=True)
    summary = summarise(runs, cases, args.delta)
    if args.curves:
        for case, per in summary["chosen_settings"].items():
            for family, chosen in per.items():
                chosen["curve"] = _curve(Path(chosen["runs"][0]), args.suite / case)
    write_json(args.out, json_safe({"runs": runs, "summary": summary}))
    if args.markdown:
        args.markdown.write_text(markdown(summary))
    for case, rows in summary["cases"].items():
        for family, row in rows.items():
            print(f"{case:22s} {family:24s} γ={row['gamma']:<5g} auc_t {row['auc_target']:.4f} "
                  f"closure {row['closure']:.3f} / {row['closure_80']:.3f}")


if __name__ == "__main__":
    main()
