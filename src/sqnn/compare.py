"""Side by side: every method over a sweep of its strength γ, repeated over seeds.

:func:`run_compare` trains each (method, γ, seed) into ``DIR/runs/METHOD/gammaG/seedS/``,
evaluates it on the held-out splits (with the data labels when given — for reporting
only; they never reach training or selection), and writes ``DIR/summary.json`` and
``DIR/summary.md``: per method every setting with the mean and standard deviation over
seeds of every ``metrics.json`` key, and the setting the selection rule picks.

Selection rule (the same for every method, never reading a data label)
-----------------------------------------------------------------------
1. Accuracy guard: keep the settings whose simulation AUC (``auc_source``, mean over
   seeds) is within δ (default 0.005) of the best setting of that method.
2. Among those, take the one with the smallest label-free disagreement between data and
   simulation: ``ks_control`` — the KS distance of the score between the domains in the
   control region, background-dominated in both and so nearly free of the signal-fraction
   difference that moves the plain ``ks`` — when every setting of the comparison has it
   (a ``--control`` column was given); otherwise ``domain_auc``, the domain probe on the
   representation. The same metric is used for all methods of one comparison.
3. Exact ties go to the smaller γ.

``disagreement=`` (``--select-by``) can name another label-free metric instead:
``domain_auc`` or ``ks_reweighted`` (simulation reweighted per class to the data signal
fraction that EM estimates from the data scores). Measured on the W-jet case, the latter
is fooled by marginally aligned models, whose EM estimate drifts towards the simulation
fraction: it then picks the strengths that over-correct (background scale factor 2–4).

Without the guard the smallest disagreement always goes with the largest γ and the
worst classifier. ``auc_target`` and the per-class metrics are reported for the chosen
setting but never used to choose it.

An interrupted comparison continues: a run whose ``model.json`` matches the requested
method, γ, options, training settings and input files is not trained again.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from sqnn._atomic import write_json, write_text
from sqnn.data import ColumnSpec
from sqnn.errors import SqnnError
from sqnn.evaluation import METRIC_KEYS, evaluate
from sqnn.methods import METHODS, make_objective
from sqnn.pipeline import load_inputs, write_run
from sqnn.run import MODEL_JSON, input_fingerprint, json_safe, load_run
from sqnn.train import TrainConfig, fit

__all__ = [
    "DEFAULT_DELTA",
    "DISAGREEMENT_METRICS",
    "DEFAULT_GAMMAS",
    "SELECTION_RULE",
    "RESERVED_KEYS",
    "aggregate",
    "choose_disagreement",
    "format_cell",
    "format_markdown",
    "method_entries",
    "parse_gammas",
    "run_compare",
    "run_directory",
    "select_setting",
    "strength_grid",
    "TABLE_KEYS",
]

PathLike = str | os.PathLike[str]

DEFAULT_DELTA = 0.005
ACCURACY_METRIC = "auc_source"
DISAGREEMENT_METRICS = ("ks_control", "domain_auc", "ks_reweighted")

# a sensible grid per method: each penalty has its own scale (bits, nats, dCor², MMD²)
DEFAULT_GAMMAS: dict[str, tuple[float, ...]] = {
    "sqnn": (0.6, 1.0, 2.0),
    "dann": (0.03, 0.1, 0.3, 1.0),
    "disco": (1.0, 3.0, 10.0, 30.0),
    "mmd": (0.3, 1.0, 3.0, 10.0),
}
_FALLBACK_GAMMAS = (0.3, 1.0, 3.0, 10.0)

SELECTION_RULE = (
    "Per method: keep the settings whose mean simulation AUC (auc_source) over seeds is within "
    "delta of the method's best; among them find the smallest mean label-free data/simulation "
    "disagreement (ks_control when every setting has it, else domain_auc, unless another label-free "
    "metric is named; the same metric for all methods); of the settings whose disagreement is within "
    "the standard error over seeds of that smallest one (exact ties with one seed), take the one with "
    "the highest auc_source, and of those the smaller gamma. Data labels (auc_target, per-class "
    "metrics) are never used."
)

# top-level keys of summary.json that are not method names
RESERVED_KEYS = ("selection_rule", "selection", "inputs", "train", "seeds", "order")

TABLE_KEYS = (
    "auc_source",
    "auc_target",
    "rejection_at_50",
    "ks",
    "ks_control",
    "ks_reweighted",
    "ks_signal",
    "ks_background",
    "sf_signal",
    "sf_background",
    "domain_auc",
    "mi_bits",
)


def strength_grid(method: str, gammas: Mapping[str, Sequence[float]] | None = None) -> tuple[float, ...]:
    """The γ values to sweep for ``method``: one setting (0) for methods without a penalty."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if not METHODS[method].uses_data:
        return (0.0,)
    chosen = (gammas or {}).get(method)
    grid = tuple(float(g) for g in chosen) if chosen else DEFAULT_GAMMAS.get(method, _FALLBACK_GAMMAS)
    if any(g < 0 or not math.isfinite(g) for g in grid):
        raise ValueError(f"gamma values must be finite and non-negative, got {grid} for {method}")
    return tuple(dict.fromkeys(grid))


def run_directory(out: PathLike, method: str, gamma: float, seed: int) -> Path:
    return Path(out) / "runs" / method / f"gamma{gamma:g}" / f"seed{seed}"


@dataclass(frozen=True)
class _Task:
    simulation: str
    data: str | None
    spec: ColumnSpec
    domain_column: str | None
    data_label: str | None
    method: str
    gamma: float
    seed: int
    options: dict[str, Any]
    network: dict[str, Any] | None
    config: TrainConfig
    run_dir: Path
    progress: bool = False


def _matches(run_dir: Path, task: _Task, network: dict[str, Any] | None, fingerprints: dict[str, Any]) -> bool:
    """Whether ``run_dir`` already holds the finished model that ``task`` asks for."""
    path = run_dir / MODEL_JSON
    if not (path.exists() and (run_dir / "history.json").exists()):
        return False
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    same = (
        meta.get("method") == task.method
        and meta.get("gamma") == task.gamma
        and meta.get("method_options") == json_safe(task.options)
        and meta.get("train") == json_safe(task.config.to_dict())
        and meta.get("inputs") == fingerprints
    )
    return same and (network is None or meta.get("network") == json_safe(network))


def _train_and_evaluate(task: _Task) -> dict[str, Any]:
    """Train one run (unless it is already there) and write its metrics.json; returns the metrics."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(task.config.threads)
    # OpenMP pools (the trees of bdt and of the domain probe) spin on a shared machine: ~7× slower
    with threadpool_limits(limits=task.config.threads):
        return _train_and_evaluate_limited(task)


def _train_and_evaluate_limited(task: _Task) -> dict[str, Any]:
    simulation, data = load_inputs(
        task.simulation, task.data, task.spec, domain_column=task.domain_column, data_label=task.data_label
    )
    # the data labels are read for evaluation only: training sees data without them
    unlabelled = replace(data, label=None)
    objective = make_objective(task.method, task.gamma, **task.options)
    fit_and_save = getattr(objective, "fit_and_save", None)
    network = None if fit_and_save is not None else objective.network_config(task.network)
    fingerprints = {"simulation": input_fingerprint(simulation), "data": input_fingerprint(unlabelled)}
    network_dict = None if network is None else network.to_dict()
    if _matches(task.run_dir, task, network_dict, fingerprints):
        run = load_run(task.run_dir)
    elif fit_and_save is not None:
        run = fit_and_save(simulation, unlabelled, task.spec, task.run_dir, task.config, progress=task.progress)
    else:
        result = fit(
            simulation, unlabelled, objective, network=network, config=task.config, run_dir=task.run_dir,
            progress=task.progress,
        )
        run = write_run(task.run_dir, result, simulation, unlabelled, task.spec, task.config)
    metrics = evaluate(run, simulation, data, seed=task.config.seed)
    write_json(task.run_dir / "metrics.json", json_safe(metrics))
    return metrics


def aggregate(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and sample standard deviation over seeds of every numeric metric.

    Keys missing or None in some runs are averaged over the others (``n`` says how many);
    ``std`` is None with fewer than two values.
    """
    keys = list(METRIC_KEYS) + sorted({k for r in runs for k in r} - set(METRIC_KEYS))
    result: dict[str, dict[str, Any]] = {}
    for key in keys:
        values = [
            float(r[key])
            for r in runs
            if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) and math.isfinite(float(r[key]))
        ]
        result[key] = {
            "mean": float(np.mean(values)) if values else None,
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "n": len(values),
        }
    return result


def _mean(setting: Mapping[str, Any], key: str) -> float | None:
    value = setting.get("metrics", {}).get(key, {}).get("mean")
    return None if value is None or not math.isfinite(value) else float(value)


def choose_disagreement(settings_by_method: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """``ks_control`` when every setting of every method has it, else ``domain_auc``."""
    all_settings = [s for settings in settings_by_method.values() for s in settings]
    if all_settings and all(_mean(s, "ks_control") is not None for s in all_settings):
        return "ks_control"
    return "domain_auc"


def select_setting(
    settings: Sequence[Mapping[str, Any]], disagreement: str, delta: float = DEFAULT_DELTA
) -> tuple[int, dict[str, Any]]:
    """Index of the chosen setting and how it was chosen; reads only ``auc_source`` and ``disagreement``."""
    if disagreement not in DISAGREEMENT_METRICS:
        raise ValueError(f"disagreement must be one of {', '.join(DISAGREEMENT_METRICS)}, got {disagreement!r}")
    if not settings:
        raise ValueError("no settings to select from")
    accuracy = [_mean(s, ACCURACY_METRIC) for s in settings]
    known = [a for a in accuracy if a is not None]
    if not known:
        return 0, {"reason": "no setting has a simulation AUC; took the first", "candidates": [settings[0]["gamma"]]}
    best = max(known)
    candidates = [i for i, a in enumerate(accuracy) if a is not None and a >= best - delta]

    def key(i: int) -> tuple[float, float]:
        value = _mean(settings[i], disagreement)
        return (math.inf if value is None else value, float(settings[i]["gamma"]))

    closest = min(candidates, key=key)
    smallest = key(closest)[0]
    # a difference in disagreement below its statistical resolution is no reason to give up accuracy
    resolution = _standard_error(settings[closest], disagreement)
    agreeing = [i for i in candidates if key(i)[0] <= smallest + resolution]
    chosen = min(agreeing, key=lambda i: (-(accuracy[i] or -math.inf), float(settings[i]["gamma"])))
    return chosen, {
        "best_auc_source": best,
        "candidates": [float(settings[i]["gamma"]) for i in candidates],
        "smallest_disagreement": None if math.isinf(smallest) else smallest,
        "resolution": resolution,
        "agreeing": [float(settings[i]["gamma"]) for i in agreeing],
        "disagreement": _mean(settings[chosen], disagreement),
    }


def _standard_error(setting: Mapping[str, Any], key: str) -> float:
    """Standard error of a setting's mean over seeds (0 with one seed or no spread known)."""
    stats = setting.get("metrics", {}).get(key, {})
    std, n = stats.get("std"), stats.get("n") or 0
    if std is None or n < 2 or not math.isfinite(std):
        return 0.0
    return float(std) / math.sqrt(n)


def method_entries(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-method entries of a summary, in the order they were run."""
    order = summary.get("order") or [k for k in summary if k not in RESERVED_KEYS]
    return {name: summary[name] for name in order if name in summary}


def format_cell(stats: Mapping[str, Any] | None) -> str:
    if not stats or stats.get("mean") is None:
        return "—"
    text = f"{stats['mean']:.4f}"
    if stats.get("std") is not None:
        text += f" ± {stats['std']:.4f}"
    return text


def format_markdown(summary: Mapping[str, Any], keys: Sequence[str] = TABLE_KEYS) -> str:
    """summary.md: the selected setting of every method, then every setting; mean ± std over seeds."""
    entries = method_entries(summary)
    selection = summary.get("selection", {})
    lines = [
        "# Comparison",
        "",
        f"Selection rule: {summary.get('selection_rule', SELECTION_RULE)}",
        "",
        f"delta = {selection.get('delta', DEFAULT_DELTA)}, disagreement metric = "
        f"`{selection.get('disagreement_metric', 'domain_auc')}`; seeds: {len(summary.get('seeds', []))}; "
        f"values are mean ± standard deviation over seeds.",
        "",
        "## Selected setting per method",
        "",
        "| method | gamma | " + " | ".join(keys) + " |",
        "|---|---:|" + "---:|" * len(keys),
    ]
    for name, entry in entries.items():
        selected = entry["selected"]
        lines.append(
            f"| {name} | {selected['gamma']:g} | " + " | ".join(format_cell(selected["metrics"].get(k)) for k in keys) + " |"
        )
    lines += ["", "## Every setting", "", "| method | gamma | selected | " + " | ".join(keys) + " |"]
    lines.append("|---|---:|:---:|" + "---:|" * len(keys))
    for name, entry in entries.items():
        for setting in entry["settings"]:
            mark = "✔" if setting["gamma"] == entry["selected"]["gamma"] else ""
            lines.append(
                f"| {name} | {setting['gamma']:g} | {mark} | "
                + " | ".join(format_cell(setting["metrics"].get(k)) for k in keys)
                + " |"
            )
    return "\n".join(lines) + "\n"


def run_compare(
    simulation: PathLike,
    data: PathLike | None,
    spec: ColumnSpec,
    out: PathLike,
    *,
    methods: Sequence[str],
    gammas: Mapping[str, Sequence[float]] | None = None,
    seeds: int = 3,
    train_config: TrainConfig | None = None,
    data_label: str | None = None,
    domain_column: str | None = None,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    network: Mapping[str, Mapping[str, Any]] | None = None,
    delta: float = DEFAULT_DELTA,
    disagreement: str | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate every (method, γ, seed); write and return the summary.

    ``gammas``, ``method_options`` and ``network`` map a method name to its sweep,
    its options and its network overrides. Seeds are ``train_config.seed + k``.
    ``disagreement`` fixes the selection rule's label-free metric (default: see the module).
    """
    if seeds < 1:
        raise SqnnError(f"--seeds must be at least 1, got {seeds}")
    if jobs < 1:
        raise SqnnError(f"--jobs must be at least 1, got {jobs}")
    if not methods:
        raise SqnnError("give at least one method (--methods)")
    if not 0 <= delta < 1:
        raise SqnnError(f"--delta must lie in [0, 1), got {delta}")
    if disagreement is not None and disagreement not in DISAGREEMENT_METRICS:
        raise SqnnError(f"--select-by must be one of {', '.join(DISAGREEMENT_METRICS)}, got {disagreement!r}")
    methods = list(dict.fromkeys(methods))
    config = train_config or TrainConfig()
    out = Path(out)
    try:
        grids = {m: strength_grid(m, gammas) for m in methods}
    except ValueError as exc:
        raise SqnnError(str(exc)) from None
    seed_values = [config.seed + k for k in range(seeds)]
    tasks = [
        _Task(
            simulation=str(simulation),
            data=None if data is None else str(data),
            spec=spec,
            domain_column=domain_column,
            data_label=data_label,
            method=m,
            gamma=g,
            seed=s,
            options=dict((method_options or {}).get(m, {})),
            network=None if network is None or m not in network else dict(network[m]),
            config=replace(config, seed=s),
            run_dir=run_directory(out, m, g, s),
            progress=progress and jobs == 1 and scheduler is None,
        )
        for m in methods
        for g in grids[m]
        for s in seed_values
    ]
    # fail on bad settings before any training starts
    for task in {(t.method, t.gamma): t for t in tasks}.values():
        try:
            objective = make_objective(task.method, task.gamma, **task.options)
            objective.network_config(task.network)
        except (TypeError, ValueError) as exc:
            raise SqnnError(f"invalid settings for {task.method}: {exc}") from None
    results: dict[Path, dict[str, Any]] = {}

    def done(task: _Task, metrics: dict[str, Any]) -> None:
        results[task.run_dir] = metrics
        if echo is not None:
            echo(
                f"[{len(results)}/{len(tasks)}] {task.method} gamma={task.gamma:g} seed={task.seed}: "
                f"auc_source={_fmt(metrics.get('auc_source'))} ks={_fmt(metrics.get('ks'))} "
                f"domain_auc={_fmt(metrics.get('domain_auc'))}"
            )

    if scheduler is not None:
        from sqnn.scale import map_tasks

        map_tasks(_train_and_evaluate, tasks, scheduler, workers=jobs, on_result=lambda index, metrics: done(tasks[index], metrics))
    elif jobs == 1:
        for task in tasks:
            done(task, _train_and_evaluate(task))
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = [(task, pool.submit(_train_and_evaluate, task)) for task in tasks]
            for task, future in futures:
                done(task, future.result())

    settings_by_method: dict[str, list[dict[str, Any]]] = {}
    for m in methods:
        settings_by_method[m] = []
        for g in grids[m]:
            runs = [t for t in tasks if t.method == m and t.gamma == g]
            settings_by_method[m].append(
                {
                    "gamma": g,
                    "seeds": [t.seed for t in runs],
                    "runs": [str(t.run_dir.relative_to(out)) for t in runs],
                    "metrics": aggregate([results[t.run_dir] for t in runs]),
                }
            )
    disagreement = disagreement or choose_disagreement(settings_by_method)
    summary: dict[str, Any] = {
        "selection_rule": SELECTION_RULE,
        "selection": {"accuracy_metric": ACCURACY_METRIC, "delta": delta, "disagreement_metric": disagreement},
        "inputs": {
            "simulation": str(Path(simulation).resolve()),
            "data": None if data is None else str(Path(data).resolve()),
            "domain_column": domain_column,
            "data_label": data_label,
            "columns": {
                "features": None if spec.features is None else list(spec.features),
                "label": spec.label,
                "weight": spec.weight,
                "control": spec.control,
                "observer": spec.observer,
            },
        },
        "train": config.to_dict(),
        "seeds": seed_values,
        "order": methods,
    }
    for m in methods:
        settings = settings_by_method[m]
        index, how = select_setting(settings, disagreement, delta)
        summary[m] = {
            "selected": {
                "gamma": settings[index]["gamma"],
                "index": index,
                "runs": settings[index]["runs"],
                "metrics": settings[index]["metrics"],
                **how,
            },
            "settings": settings,
        }
    summary = json_safe(summary)
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", format_markdown(summary))
    return summary


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}"


def parse_gammas(items: Iterable[str], methods: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """``"0.1,1"`` applies to every method with a penalty; ``"dann=0.03,0.1"`` to one method."""
    result: dict[str, tuple[float, ...]] = {}
    for item in items:
        target, _, values = item.rpartition("=")
        target = target.strip()
        try:
            grid = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"--gammas {item!r}: expected numbers separated by commas") from None
        if not grid:
            raise ValueError(f"--gammas {item!r}: no values")
        if target:
            if target not in methods:
                raise ValueError(f"--gammas {item!r}: {target!r} is not one of the methods compared ({', '.join(methods)})")
            result[target] = grid
        else:
            for m in methods:
                result.setdefault(m, grid)
    return result
