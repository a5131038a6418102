"""Closure with enriched regions: every method family on every case, the label-free choice, paired differences.

For every case — a suite folder's case (``sqnn suite make NAME --out DIR``: four files) or
the shipped W-jet pair (``wjets``: evaluated on its held-out test split) — every family of
settings and seed: train on the training files with the background control region
(``control``) and the tag-and-probe region (``tag``) as the family uses them, score the
evaluation events, and choose one setting per family with the label-free rule of
:func:`sqnn.workflows.selection.select_setting` (auc_source guard, then the in-situ closure
at 80 % measured in the regions, or ks_control for families that see no region).

Then per case and family, for the chosen setting: auc_target, sf_S and sf_B at the 50 % and
80 % working points, the closure |1 − sf_S| + |1 − sf_B| and the in-situ scale factors with
their statistical and purity errors; and for each family its **paired** difference of closure
to the reference family (default: ``sqnn-regions``) on the same evaluation events: each
family's runs are scored on the same events, the events are resampled together (bootstrap),
and the error combines the spread of the difference over resamplings with its spread over
seeds, which a difference of two closures taken separately would exaggerate many times.

Runs are kept under ``--workdir``; a rerun trains only what is missing.

    python benchmarks/region_study.py --cases wjets --seeds 3 --out benchmarks/results/region_study_wjets.json
    python benchmarks/region_study.py --suite /work/suite --cases w-combined top-combined --seeds 3 \\
        --out benchmarks/results/region_study_suite.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sqnn import metrics
from sqnn.data import ColumnSpec, load_inputs
from sqnn.datasets import WJETS_FEATURES, wjets_path
from sqnn.evaluation import evaluate_scores
from sqnn.files import json_safe, write_json
from sqnn.runs import load_run
from sqnn.runs.scores import Scores, read_scores, write_scores
from sqnn.training import TrainConfig
from sqnn.workflows.selection import DEFAULT_DELTA, aggregate, select_setting
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import train_run

FEATURES = {"wjets": WJETS_FEATURES}
# the top-jet files have the same substructure features and pT
TOP_FEATURES = WJETS_FEATURES
SQNN_GAMMAS = (0.6, 1.0, 2.0)
DANN_GAMMAS = (0.03, 0.1, 0.3)

# family -> (method, options, strengths, sees the regions)
FAMILIES: dict[str, tuple[str, dict[str, Any], tuple[float, ...], bool]] = {
    "source-only": ("source-only", {}, (0.0,), False),
    "sqnn": ("sqnn", {"regions": "none"}, SQNN_GAMMAS, False),
    "sqnn-regions": ("sqnn", {"regions": "auto"}, SQNN_GAMMAS, True),
    "sqnn-signal": ("sqnn", {"regions": "signal"}, SQNN_GAMMAS, True),
    "dann": ("dann", {"regions": "none"}, DANN_GAMMAS, False),
    "dann-regions": ("dann", {"regions": "auto"}, DANN_GAMMAS, True),
    "reweight-control": ("reweight", {"region": "control"}, (0.0,), False),
    "reweight-enriched": ("reweight", {"region": "enriched"}, (0.0,), True),
}
REFERENCE = "sqnn-regions"
KEYS = ("auc_target", "sf_signal", "sf_background", "closure", "sf_signal_80", "sf_background_80", "closure_80",
        "insitu_sf_signal", "insitu_sf_background", "insitu_sf_signal_80", "insitu_sf_background_80")
BOOTSTRAP = 200


def _files(case: str, suite: Path | None) -> tuple[Path, Path, Path | None, Path | None]:
    if case == "wjets":
        return wjets_path("sim"), wjets_path("data"), None, None
    assert suite is not None, "suite cases need --suite DIR"
    folder = suite / case
    return (folder / "sim_train.parquet", folder / "data_train.parquet", folder / "sim_eval.parquet",
            folder / "data_eval.parquet")


def _spec(regions: bool) -> ColumnSpec:
    return ColumnSpec(features=WJETS_FEATURES, label="is_signal", control="control",
                      signal_control="tag" if regions else None, observer="pt")


def _run(case: str, family: str, gamma: float, seed: int, workdir: Path, suite: Path | None, epochs: int
         ) -> dict[str, Any]:
    """Train one run (unless it exists) and score the evaluation events; returns its label-free and true metrics."""
    method, options, _, sees = FAMILIES[family]
    sim, data, sim_eval, data_eval = _files(case, suite)
    run_dir = workdir / case / family / f"gamma{gamma:g}" / f"seed{seed}"
    settings = Settings(columns=_spec(sees), method=method, gamma=gamma if method in ("sqnn", "dann") else None,
                        method_options=options, train=TrainConfig(epochs=epochs, seed=seed))
    started = time.process_time()
    train_run(sim, data, settings, run_dir, data_label="is_signal", reuse=True)
    cpu = time.process_time() - started
    scores_dir = run_dir / "evaluation"
    metrics_file = scores_dir / "metrics.json"
    if not metrics_file.exists():
        run = load_run(run_dir)
        # every family is scored with the regions known, so that the in-situ measurement is there for all
        spec = _spec(True)
        simulation, labelled = load_inputs(sim_eval or sim, data_eval or data, replace(spec, features=tuple(run.features)),
                                           data_label="is_signal")
        measured, scores = evaluate_scores(run, simulation, labelled, seed=seed)
        scores_dir.mkdir(parents=True, exist_ok=True)
        write_scores(scores_dir, scores)
        write_json(metrics_file, json_safe(measured))
    measured = json.loads(metrics_file.read_text())
    return {"case": case, "family": family, "gamma": gamma, "seed": seed, "run": str(run_dir), "metrics": measured,
            "cpu_seconds": cpu}


def _label_free_metric(family: str) -> str:
    return "insitu_closure_80" if FAMILIES[family][3] else "ks_control"


def _chosen(runs: list[dict[str, Any]], case: str, family: str, delta: float) -> dict[str, Any] | None:
    settings = []
    for gamma in FAMILIES[family][2]:
        members = sorted((r for r in runs if r["case"] == case and r["family"] == family and r["gamma"] == gamma),
                         key=lambda r: r["seed"])
        if members:
            settings.append({"gamma": gamma, "seeds": [r["seed"] for r in members], "runs": members,
                             "metrics": aggregate([r["metrics"] for r in members])})
    if not settings:
        return None
    index, how = select_setting(settings, _label_free_metric(family), delta)
    return {**settings[index], "how": how}


def _closures(scores: Scores, index_sim: np.ndarray, index_data: np.ndarray) -> np.ndarray:
    """(closure 50 %, closure 80 %, sf_S 50, sf_B 50, sf_S 80, sf_B 80) on the given events."""
    s, d = scores.simulation, scores.data
    assert s.label is not None and d.label is not None
    score_s, label_s, weight_s = s.score[index_sim], s.label[index_sim], s.weight[index_sim]
    score_d, label_d, weight_d = d.score[index_data], d.label[index_data], d.weight[index_data]
    out = []
    for efficiency in (0.5, 0.8):
        point = metrics.WorkingPoint.from_simulation(score_s, label_s, weight_s, efficiency)
        sf = [metrics.scale_factor(point, score_s, label_s, weight_s, score_d, label_d, weight_d, c)[0] for c in (1, 0)]
        out.append((abs(1 - sf[0]) + abs(1 - sf[1]), sf[0], sf[1]))
    return np.array([out[0][0], out[1][0], out[0][1], out[0][2], out[1][1], out[1][2]])


def paired(chosen: dict[str, dict[str, Any]], reference: str, seed: int = 0) -> dict[str, Any]:
    """Each family's closure minus the reference's, on the same evaluation events, with its error."""
    if reference not in chosen:
        return {}
    scores = {f: [read_scores(Path(r["run"]) / "evaluation") for r in c["runs"]] for f, c in chosen.items()}
    first = scores[reference][0]
    n_sim, n_data = len(first.simulation), len(first.data)
    rng = np.random.default_rng(seed)
    draws = [(rng.integers(0, n_sim, n_sim), rng.integers(0, n_data, n_data)) for _ in range(BOOTSTRAP)]
    everything = (np.arange(n_sim), np.arange(n_data))

    def mean_over_seeds(family: str, index: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return np.mean([_closures(s, *index) for s in scores[family]], axis=0)

    reference_value = mean_over_seeds(reference, everything)
    reference_draws = np.array([mean_over_seeds(reference, i) for i in draws])
    result = {}
    for family in chosen:
        if family == reference:
            continue
        value = mean_over_seeds(family, everything) - reference_value
        resampled = np.array([mean_over_seeds(family, i) for i in draws]) - reference_draws
        per_seed = [_closures(a, *everything) - _closures(b, *everything)
                    for a, b in zip(scores[family], scores[reference])]
        seed_error = np.std(per_seed, axis=0, ddof=1) / math.sqrt(len(per_seed)) if len(per_seed) > 1 else np.zeros(6)
        event_error = np.nanstd(resampled, axis=0, ddof=1)
        error = np.sqrt(seed_error**2 + event_error**2)
        names = ("closure", "closure_80", "sf_signal", "sf_background", "sf_signal_80", "sf_background_80")
        result[family] = {name: {"difference": float(v), "error": float(e), "sigma": float(v / e) if e > 0 else None}
                          for name, v, e in zip(names, value, error)}
    return result


def summarise(runs: list[dict[str, Any]], cases: list[str], delta: float) -> dict[str, Any]:
    summary: dict[str, Any] = {"reference": REFERENCE, "cases": {}, "paired": {}}
    for case in cases:
        chosen = {f: c for f in FAMILIES if (c := _chosen(runs, case, f, delta)) is not None}
        rows = {}
        for family, setting in chosen.items():
            row: dict[str, Any] = {"gamma": setting["gamma"], "seeds": len(setting["runs"]),
                                   "selected_by": _label_free_metric(family)}
            for key in KEYS:
                stats = setting["metrics"].get(key) or {}
                row[key] = stats.get("mean")
                row[f"{key}_spread"] = None if stats.get("std") is None else stats["std"] / math.sqrt(stats["n"])
                err = (setting["metrics"].get(f"{key}_err") or {}).get("mean")
                if err is not None:
                    row[f"{key}_err"] = err
            rows[family] = row
        summary["cases"][case] = rows
        summary["paired"][case] = paired(chosen, REFERENCE)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", required=True, help="wjets and/or suite case names")
    parser.add_argument("--suite", type=Path, default=None, help="Suite folder (sqnn suite make --out)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--delta", type=float, default=DEFAULT_DELTA)
    parser.add_argument("--workdir", type=Path, default=Path("region-study-work"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    runs = []
    started = time.process_time()
    for case in args.cases:
        for family in args.families:
            for gamma in FAMILIES[family][2]:
                for seed in range(args.seeds):
                    runs.append(_run(case, family, gamma, seed, args.workdir, args.suite, args.epochs))
                    print(f"{case} {family} γ={gamma:g} seed {seed}: closure "
                          f"{runs[-1]['metrics'].get('closure')} / {runs[-1]['metrics'].get('closure_80')}", flush=True)
    summary = summarise(runs, args.cases, args.delta)
    summary["settings"] = {"seeds": args.seeds, "epochs": args.epochs, "delta": args.delta, "bootstrap": BOOTSTRAP,
                           "families": {f: {"method": FAMILIES[f][0], "options": FAMILIES[f][1],
                                            "strengths": FAMILIES[f][2], "regions": FAMILIES[f][3]}
                                        for f in args.families}}
    summary["cpu_seconds"] = {"this_process": time.process_time() - started,
                              "training": sum(r["cpu_seconds"] for r in runs)}
    summary["runs"] = [{k: v for k, v in r.items() if k != "metrics"} | {"metrics": {k: r["metrics"].get(k) for k in
                       (*KEYS, "auc_source", "ks_control", "insitu_closure_80", "insitu_closure_80_err")}} for r in runs]
    write_json(args.out, json_safe(summary))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
