"""From files to a run directory and its metrics: what `sqnn train` and `sqnn evaluate` do."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqnn._atomic import write_json
from sqnn.data import ColumnSpec, Sample, check_same_features, default_features, list_columns, load_mixed, load_sample
from sqnn.data.sample import require_same_columns
from sqnn.errors import DataError, SqnnError
from sqnn.evaluation import evaluate
from sqnn.methods import Objective, make_objective
from sqnn.nn import NetworkConfig
from sqnn.run import Run, input_fingerprint, input_spec, json_safe, load_run, save_run
from sqnn.train import FitResult, TrainConfig, fit

__all__ = ["load_inputs", "train_run", "evaluate_run", "write_run"]

PathLike = str | os.PathLike[str]

# below this the train/validation/test split leaves sets too small to fit or to stop on
MIN_SIMULATION_EVENTS = 20
MIN_DATA_EVENTS = 10


def load_inputs(
    simulation: PathLike,
    data: PathLike | None,
    spec: ColumnSpec,
    *,
    domain_column: str | None = None,
    data_label: str | None = None,
) -> tuple[Sample, Sample]:
    """Load simulation (labelled) and data; the data label is read only when asked for (evaluation)."""
    if domain_column is not None:
        sim, dat = load_mixed(simulation, spec, domain_column)
    else:
        if data is None:
            raise SqnnError("give the data sample with --data FILE (or one mixed file with --domain COL)")
        sim = load_sample(simulation, spec, "simulation", require_label=True)
        if spec.features is None:
            data_features = [c for c in default_features(list_columns(data), spec) if c != data_label]
            require_same_columns(sim.source, sim.global_feature_names, str(data), data_features)
        dat = load_sample(data, replace(spec, label=data_label, features=tuple(sim.global_feature_names)), "data")
    check_same_features(sim, dat)
    return sim, dat


def write_run(
    out: PathLike,
    result: FitResult,
    simulation: Sample,
    data: Sample,
    spec: ColumnSpec,
    train_config: TrainConfig,
    extra: dict[str, Any] | None = None,
) -> Run:
    """Save model, description and history of a fit; return the loaded run.

    ``extra`` adds (or replaces) keys of ``model.json``, e.g. what rebuilds a set model.
    """
    out = Path(out)
    objective = result.objective
    meta: dict[str, Any] = {
        "method": objective.name,
        "gamma": objective.gamma,
        "method_options": objective.options,
        "network": result.network.to_dict(),
        "features": simulation.feature_names,
        "columns": {"label": spec.label, "weight": spec.weight, "control": spec.control, "observer": spec.observer},
        "preprocessing": result.standardizer.to_dict(),
        "train": train_config.to_dict(),
        "inputs": {"simulation": input_fingerprint(simulation), "data": input_fingerprint(data)},
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "train_seconds": result.train_seconds,
        "n_params": int(sum(p.numel() for p in result.model.parameters())),
    }
    meta.update(extra or {})
    save_run(out, result.model, meta)
    write_json(out / "history.json", json_safe(result.history))
    return load_run(out)


def prepare_training(
    simulation: PathLike,
    data: PathLike | None,
    spec: ColumnSpec,
    *,
    method: str,
    gamma: float | None,
    method_options: dict[str, Any] | None,
    network: dict[str, Any] | None,
    train_config: TrainConfig | None,
    domain_column: str | None,
) -> tuple[Sample, Sample, Objective, NetworkConfig, TrainConfig]:
    """Load and check the inputs and the settings of one training, before any work starts."""
    sim, dat = load_inputs(simulation, data, spec, domain_column=domain_column)
    for sample, minimum in ((sim, MIN_SIMULATION_EVENTS), (dat, MIN_DATA_EVENTS)):
        if len(sample) < minimum:
            raise DataError(
                f"{sample.source}: only {len(sample)} {sample.domain} events; training needs at least {minimum} "
                "to split into train, validation and test sets"
            )
    try:
        objective = make_objective(method, gamma, **(method_options or {}))
        network_config = objective.network_config(network)
    except (TypeError, ValueError) as exc:
        raise SqnnError(f"invalid training settings: {exc}") from None
    if getattr(objective, "region", None) == "control" and (sim.control is None or dat.control is None):
        raise SqnnError("--method sqnn with region 'control' needs --control COL in both simulation and data")
    return sim, dat, objective, network_config, train_config or TrainConfig()


def train_run(
    simulation: PathLike,
    data: PathLike | None,
    spec: ColumnSpec,
    out: PathLike,
    *,
    method: str = "sqnn",
    gamma: float | None = None,
    method_options: dict[str, Any] | None = None,
    network: dict[str, Any] | None = None,
    train_config: TrainConfig | None = None,
    domain_column: str | None = None,
    resume: bool = False,
    progress: bool = False,
    model: str = "dense",
) -> tuple[Run, dict[str, Any]]:
    """Train one model into the run directory ``out`` and write its label-free metrics.

    ``model="set"`` trains a permutation-invariant set model on the objects column
    ``spec.objects`` (plus the ``spec.features`` columns as event-level inputs, none by
    default); ``network`` then holds :class:`~sqnn.nn.set_model.SetConfig` settings.
    """
    if model not in ("dense", "set"):
        raise SqnnError(f"unknown model {model!r}; choose dense or set")
    if model == "set":
        if not spec.objects:
            raise SqnnError(f"{simulation}: a set model reads an objects column: give --objects COL")
        if spec.features is None:
            spec = replace(spec, features=())
    sim, dat, objective, network_config, train_config = prepare_training(
        simulation, data, spec, method=method, gamma=gamma, method_options=method_options,
        network=network if model == "dense" else None, train_config=train_config, domain_column=domain_column,
    )
    Path(out).mkdir(parents=True, exist_ok=True)
    fit_and_save = getattr(objective, "fit_and_save", None)
    if model == "set":
        from sqnn.transfer import fit_set_model, set_config_for, set_run_meta

        set_config = set_config_for(sim, network)
        result = fit_set_model(
            sim, dat, objective, set_config, train_config, run_dir=out, resume=resume, progress=progress
        )
        run = write_run(out, result, sim, dat, spec, train_config, extra=set_run_meta(spec, sim))
    elif fit_and_save is not None:
        # models that are not networks (bdt) train and write their own run directory
        run = fit_and_save(sim, dat, spec, out, train_config, progress=progress)
    else:
        result = fit(
            sim, dat, objective, network=network_config, config=train_config, run_dir=out, resume=resume, progress=progress
        )
        run = write_run(out, result, sim, dat, spec, train_config)
    metrics = evaluate(run, sim, dat, seed=train_config.seed)
    write_json(Path(out) / "metrics.json", json_safe(metrics))
    return run, metrics


def evaluate_run(
    run_dir: PathLike,
    simulation: PathLike,
    data: PathLike | None,
    *,
    data_label: str | None = None,
    spec: ColumnSpec | None = None,
    domain_column: str | None = None,
    out: PathLike | None = None,
    inference: str | None = None,
) -> dict[str, Any]:
    """Metrics of a saved run on the given files (their test split if they are the training files).

    ``inference`` overrides the network's own scoring mode (``mean`` or ``deterministic``).
    """
    run = load_run(run_dir)
    columns = run.meta.get("columns", {})
    base = input_spec(
        run.meta,
        label=columns.get("label"),
        weight=columns.get("weight"),
        control=columns.get("control"),
        observer=columns.get("observer"),
    )
    if spec is not None:
        base = replace(
            base,
            label=spec.label or base.label,
            weight=spec.weight or base.weight,
            control=spec.control or base.control,
            observer=spec.observer or base.observer,
        )
    sim, dat = load_inputs(simulation, data, base, domain_column=domain_column, data_label=data_label)
    metrics = evaluate(run, sim, dat, seed=int(run.meta.get("train", {}).get("seed", 0)), inference=inference)
    if out is not None:
        write_json(out, json_safe(metrics))
    return metrics
