"""Side by side: every method over a sweep of its strength γ, repeated over seeds.

:func:`run_compare` trains each (method, γ, seed) into ``DIR/runs/METHOD/gammaG/seedS/``
with :func:`sqnn.workflows.train.train_run`, evaluates it on the held-out splits (with the
data labels when given — for reporting only; they never reach training or selection),
and writes ``DIR/summary.json`` and ``DIR/summary.md``: per method every setting with the
mean and standard deviation over seeds of every ``metrics.json`` key, and the setting the
label-free selection rule (:mod:`sqnn.workflows.selection`) picks. ``summary.md`` shows them
with uncertainties (:mod:`sqnn.workflows.tables`).

An interrupted comparison continues: a run whose ``model.json`` matches the requested
method, γ, options, training settings and input files is not trained again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqnn.errors import SqnnError, option
from sqnn.files import json_safe, write_json, write_text
from sqnn.labels import Display
from sqnn.methods import METHODS
from sqnn.runs.scores import SCORES_FILE, read_scores
from sqnn.training.progress import Board, FitProgress
from sqnn.workflows.selection import (
    ACCURACY_METRIC,
    DEFAULT_DELTA,
    DISAGREEMENT_METRICS,
    SELECTION_RULE,
    aggregate,
    choose_disagreement,
    select_setting,
)
from sqnn.workflows.paired import paired_differences
from sqnn.workflows.settings import Settings
from sqnn.workflows.tables import RESERVED_KEYS, markdown_summary, method_entries
from sqnn.workflows.train import train_run

__all__ = [
    "RESERVED_KEYS",
    "format_markdown",
    "method_entries",
    "parse_gammas",
    "run_compare",
    "run_directory",
    "strength_grid",
]

PathLike = str | os.PathLike[str]
# resamplings of the held-out events for the paired differences of a comparison
PAIRED_BOOTSTRAP = 100

def strength_grid(method: str, gammas: Mapping[str, Sequence[float]] | None = None) -> tuple[float, ...]:
    """The γ values to sweep for ``method``: its own sweep unless ``gammas`` names one; γ = 0 without a penalty."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if not METHODS[method].uses_data:
        return (0.0,)
    chosen = (gammas or {}).get(method)
    grid = tuple(float(g) for g in chosen) if chosen else METHODS[method].sweep()
    if any(g < 0 or not math.isfinite(g) for g in grid):
        raise ValueError(f"gamma values must be finite and non-negative, got {grid} for {method}")
    return tuple(dict.fromkeys(grid))


def run_directory(out: PathLike, method: str, gamma: float, seed: int) -> Path:
    return Path(out) / "runs" / method / f"gamma{gamma:g}" / f"seed{seed}"


@dataclass(frozen=True)
class _Task:
    """One (method, γ, seed) of a comparison: picklable, so it can run in another process."""

    simulation: str
    data: str | None
    data_label: str | None
    settings: Settings
    run_dir: Path
    # a FitProgress only in a serial comparison, where the task runs in this process
    progress: bool | FitProgress = False
    engine: str = "torch"

    @property
    def method(self) -> str:
        return self.settings.method

    @property
    def gamma(self) -> float:
        return float(self.settings.gamma or 0.0)

    @property
    def seed(self) -> int:
        return self.settings.train.seed

    @property
    def display(self) -> Display:
        return METHODS[self.method].display(self.settings.method_options)

    @property
    def label(self) -> str:
        return self.display.label(self.method, self.gamma, self.seed)


def _train_and_evaluate(task: _Task) -> dict[str, Any]:
    """Train one run (unless it is already there) and write its metrics.json; returns the metrics."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(task.settings.train.threads)
    # OpenMP pools (the trees of bdt and of the domain probe) spin on a shared machine: ~7× slower
    with threadpool_limits(limits=task.settings.train.threads):
        _, metrics = train_run(
            task.simulation, task.data, task.settings, task.run_dir, data_label=task.data_label, reuse=True,
            progress=task.progress, engine=task.engine,
        )
    assert metrics is not None
    return metrics


Done = Callable[[int, _Task, dict[str, Any], "str | None"], None]


class _Here:
    """Every fit in this process, one after the other, each showing its epochs on the board."""

    def __init__(self, board: Board | None) -> None:
        self.board = board

    def run(self, tasks: Sequence[_Task], done: Done) -> None:
        for index, task in enumerate(tasks):
            shown = None
            if self.board is not None:
                self.board.begin_fit(index, task.label)
                shown = FitProgress(self.board, title=self.board.title)
                task = replace(task, progress=shown)
            metrics = _train_and_evaluate(task)
            done(index, task, metrics, None if shown is None else shown.outcome or "finished run reused")


class _Processes:
    """Fits in ``jobs`` processes of this machine (spawned: each imports torch afresh); results in task order."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def run(self, tasks: Sequence[_Task], done: Done) -> None:
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=get_context("spawn")) as pool:
            futures = [(task, pool.submit(_train_and_evaluate, task)) for task in tasks]
            for index, (task, future) in enumerate(futures):
                done(index, task, future.result(), None)


class _Cluster:
    """Fits on a Dask cluster (a scheduler address, or ``local`` for one on this machine)."""

    def __init__(self, scheduler: str, workers: int) -> None:
        self.scheduler, self.workers = scheduler, workers

    def run(self, tasks: Sequence[_Task], done: Done) -> None:
        from sqnn.cluster import map_tasks

        map_tasks(_train_and_evaluate, tasks, self.scheduler, workers=self.workers,
                  on_result=lambda index, metrics: done(index, tasks[index], metrics, None))


def _backend(jobs: int, scheduler: str | None, board: Board | None) -> _Here | _Processes | _Cluster:
    """Where the fits of a comparison run: here, in processes of this machine, or on a cluster."""
    if scheduler is not None:
        return _Cluster(scheduler, jobs)
    return _Here(board) if jobs == 1 else _Processes(jobs)


def format_markdown(summary: Mapping[str, Any]) -> str:
    """summary.md: the chosen setting of every method, then every setting, with uncertainties."""
    return markdown_summary(summary)


def run_compare(
    simulation: PathLike,
    data: PathLike | None,
    settings: Settings,
    out: PathLike,
    *,
    methods: Sequence[str],
    gammas: Mapping[str, Sequence[float]] | None = None,
    seeds: int = 3,
    data_label: str | None = None,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    network: Mapping[str, Mapping[str, Any]] | None = None,
    delta: float = DEFAULT_DELTA,
    disagreement: str | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    engine: str = "torch",
) -> dict[str, Any]:
    """Train and evaluate every (method, γ, seed); write and return the summary.

    ``settings`` holds what all runs share (columns, the training loop; its seed is the
    first seed); ``gammas``, ``method_options`` and ``network`` map a method name to its
    sweep, its options and its network overrides. Seeds are ``settings.train.seed + k``.
    ``disagreement`` fixes the selection rule's label-free metric (default: see
    :mod:`sqnn.workflows.selection`). ``engine`` computes every run's metrics from a
    deployment engine's arithmetic (torch by default), so the selection and the closure are
    those of what runs in the trigger.
    """
    if seeds < 1:
        raise SqnnError(f"{option('seeds')} must be at least 1, got {seeds}")
    if jobs < 1:
        raise SqnnError(f"{option('jobs')} must be at least 1, got {jobs}")
    if not methods:
        raise SqnnError(f"give at least one method ({option('methods')})")
    if not 0 <= delta < 1:
        raise SqnnError(f"{option('delta')} must lie in [0, 1), got {delta}")
    if disagreement is not None and disagreement not in DISAGREEMENT_METRICS:
        raise SqnnError(f"{option('disagreement', flag='--select-by')} must be one of {', '.join(DISAGREEMENT_METRICS)}, got {disagreement!r}")
    methods = list(dict.fromkeys(methods))
    out = Path(out)
    try:
        grids = {m: strength_grid(m, gammas) for m in methods}
    except ValueError as exc:
        raise SqnnError(str(exc)) from None
    first_seed = settings.train.seed
    seed_values = [first_seed + k for k in range(seeds)]
    tasks = [
        _Task(
            simulation=str(simulation),
            data=None if data is None else str(data),
            data_label=data_label,
            settings=settings.with_run(
                method=m, gamma=g, seed=s, method_options=dict((method_options or {}).get(m, {})),
                network=None if network is None or m not in network else dict(network[m]),
            ),
            run_dir=run_directory(out, m, g, s),
            progress=progress and jobs == 1 and scheduler is None,
            engine=engine,
        )
        for m in methods
        for g in grids[m]
        for s in seed_values
    ]
    # fail on bad settings before any training starts
    for task in {(t.method, t.gamma): t for t in tasks}.values():
        task.settings.objective(f"settings for {task.method}")
    results: dict[Path, dict[str, Any]] = {}
    board = Board(fits=len(tasks)) if progress else None
    if board is not None:
        where = "here" if scheduler is None and jobs == 1 else f"in {jobs} processes" if scheduler is None else f"on {scheduler}"
        board.write(f"{len(tasks)} fits ({len(methods)} methods × their strengths × {seeds} "
                    f"seed{'s' if seeds != 1 else ''}, up to {settings.train.epochs} epochs each), {where}")

    def done(index: int, task: _Task, metrics: dict[str, Any], outcome: str | None = None) -> None:
        results[task.run_dir] = metrics
        label = task.label
        line = f"fit {index + 1}/{len(tasks)} · {label}: " + " · ".join(([outcome] if outcome else []) + _fit_metrics(metrics))
        if board is not None:
            board.title = f"fit {index + 1}/{len(tasks)} · {label}"
            board.end_fit(line)
        elif echo is not None:
            echo(line)

    try:
        _backend(jobs, scheduler, board).run(tasks, done)
    finally:
        if board is not None:
            board.close()

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
    columns = settings.columns
    summary: dict[str, Any] = {
        "selection_rule": SELECTION_RULE,
        "selection": {"accuracy_metric": ACCURACY_METRIC, "delta": delta, "disagreement_metric": disagreement},
        "inputs": {
            "simulation": str(Path(simulation).resolve()),
            "data": None if data is None else str(Path(data).resolve()),
            "domain_column": settings.domain_column,
            "data_label": data_label,
            "columns": {"features": None if columns.features is None else list(columns.features), **columns.role_columns()},
        },
        "train": replace(settings.train, seed=first_seed).to_dict(),
        "engine": engine,
        "seeds": seed_values,
        "order": methods,
        # how each method is named and drawn, so that tables and reports need not know the methods
        "display": {m: next(t for t in tasks if t.method == m).display.to_dict() for m in methods},
    }
    for m in methods:
        entries = settings_by_method[m]
        index, how = select_setting(entries, disagreement, delta)
        summary[m] = {
            "selected": {
                "gamma": entries[index]["gamma"],
                "index": index,
                "runs": entries[index]["runs"],
                "metrics": entries[index]["metrics"],
                **how,
            },
            "settings": entries,
        }
    if data_label is not None:
        summary["paired"] = _paired(out, summary, methods)
    summary = json_safe(summary)
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", format_markdown(summary))
    return summary


def _paired(out: Path, summary: Mapping[str, Any], methods: Sequence[str]) -> dict[str, Any]:
    """Each method's chosen setting against the reference (source-only, else the first method), on the same events."""
    reference = "source-only" if "source-only" in methods else methods[0]
    runs = {}
    for m in methods:
        chosen = summary[m]["selected"]
        runs[m] = {seed: read_scores(out / run) for seed, run in zip(summary["seeds"], chosen["runs"])
                   if (out / run / SCORES_FILE).exists()}
    return {"reference": reference, "bootstrap": PAIRED_BOOTSTRAP,
            "differences": paired_differences(runs, reference, bootstrap=PAIRED_BOOTSTRAP)}


def _fit_metrics(metrics: Mapping[str, Any]) -> list[str]:
    """What one finished fit is judged by: its simulation AUC, the label-free disagreement, and closure if known."""
    shown = []
    label_free = next(k for k in ("insitu_closure_80", "ks_control", "domain_auc") if metrics.get(k) is not None
                      or k == "domain_auc")
    for key in ("auc_source", label_free, "closure"):
        if isinstance(metrics.get(key), (int, float)):
            shown.append(f"{key} {metrics[key]:.4f}")
    return shown


def parse_gammas(items: Iterable[str], methods: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """``"0.1,1"`` applies to every method with a penalty; ``"dann=0.03,0.1"`` to one method."""
    result: dict[str, tuple[float, ...]] = {}
    for item in items:
        target, _, values = item.rpartition("=")
        target = target.strip()
        try:
            grid = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"{item!r}: expected numbers separated by commas") from None
        if not grid:
            raise ValueError(f"{item!r}: no values")
        if target:
            if target not in methods:
                raise ValueError(f"{item!r}: {target!r} is not one of the methods compared ({', '.join(methods)})")
            result[target] = grid
        else:
            for m in methods:
                result.setdefault(m, grid)
    return result
