"""From files to a run directory and its metrics: what `sqnn train` and `sqnn evaluate` do.

One path for every training: :func:`fit_model` trains the model the settings describe
(a network in the shared loop, a set model, or a method with its own trainer such as
trees), :func:`record_run` writes the run directory and its ``metrics.json``, and
:func:`train_run` does both from files — on one process, or on every process of a
``torchrun`` group (``distributed=True``, rank 0 writes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch.distributed as dist

from sqnn.data import ColumnSpec, Sample, load_inputs
from sqnn.data.chunks import DEFAULT_CHUNK, sample_rows
from sqnn.data.io import split_path
from sqnn.data.sample import columns_of, require_same_columns
from sqnn.data.splits import split_indices
from sqnn.devices import resolve_device
from sqnn.errors import DataError, SqnnError, option
from sqnn.evaluation import evaluate, evaluate_scores
from sqnn.files import json_safe, refuse_overwriting, write_json
from sqnn.methods import Objective, OwnTrainer
from sqnn.runs import MODEL_FILE, MODEL_JSON, Run, file_fingerprint, input_fingerprint, load_run, write_run
from sqnn.runs.reweighter import Reweighter, reweighted, save_reweighter
from sqnn.runs.scores import SCORES_FILE, write_scores
from sqnn.training import FitResult, TrainConfig, fit, splits_for
from sqnn.training import parallel
from sqnn.training.checkpoint import CHECKPOINT_STATE, CHECKPOINT_TENSORS, read_checkpoint_state, settings_differences
from sqnn.training.events import ChunkedInput
from sqnn.training.progress import FitProgress, fit_progress
from sqnn.training.reweight import fit_reweighter
from sqnn.training.sets import fit_set_model, set_config_for
from sqnn.workflows.settings import Settings

__all__ = ["RUN_FILES", "Trained", "checkpoint_settings", "evaluate_run", "fit_model", "record_run", "train_run"]

PathLike = str | os.PathLike[str]

# below this the train/validation/test split leaves sets too small to fit or to stop on
MIN_SIMULATION_EVENTS = 20
MIN_DATA_EVENTS = 10
# a training on chunks is evaluated on at most this many held-out events of each file
CHUNKED_EVALUATION_EVENTS = 500_000
# what a training writes into its run directory (and --overwrite removes first)
RUN_FILES = (MODEL_JSON, MODEL_FILE, "history.json", "metrics.json", SCORES_FILE, CHECKPOINT_STATE, CHECKPOINT_TENSORS)
# the settings that messages name, as train_run's parameters (Python) or sqnn train's flags (the command line)
_RESUME = option("resume", python_value="True")
_OVERWRITE = option("overwrite", python_value="True")
_DISTRIBUTED = option("distributed", python_value="True")
_CHUNKED = option("chunked", python_value="True")
_SET_MODEL = option("model", "set", repr("set"))


@dataclass
class Trained:
    """A fitted model and what its run directory records about the fit."""

    kind: str
    model: Any
    objective: Objective
    history: list[dict[str, Any]]
    train_seconds: float
    # the model.json fields of this kind of model (architecture, preprocessing, early stopping)
    description: dict[str, Any]
    fit: FitResult | None = None
    # simulation reweighted to data before training, when the method asks for it
    reweighter: Reweighter | None = None

    @classmethod
    def of_network(cls, result: FitResult, kind: str = "network") -> "Trained":
        return cls(
            kind=kind,
            model=result.model,
            objective=result.objective,
            history=result.history,
            train_seconds=result.train_seconds,
            description={
                "network": result.network.to_dict(),
                "preprocessing": result.standardizer.to_dict(),
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "stopped_early": result.stopped_early,
                "n_params": int(sum(p.numel() for p in result.model.parameters())),
                "trained_on": result.extras.get("device", "cpu"),
            },
            fit=result,
        )


def _check_sizes(simulation: Sample, data: Sample) -> None:
    for sample, minimum in ((simulation, MIN_SIMULATION_EVENTS), (data, MIN_DATA_EVENTS)):
        if len(sample) < minimum:
            raise DataError(
                f"{sample.source}: only {len(sample)} {sample.domain} events; training needs at least {minimum} "
                "to split into train, validation and test sets"
            )


def _check_classes(simulation: Sample, config: TrainConfig) -> None:
    """Each class must be in the training split with a positive weight, and in the validation split.

    The loop estimates the simulated signal fraction on the training split (it must lie
    strictly between 0 and 1) and stops early on the validation split.
    """
    if simulation.label is None:
        return
    parts = split_indices(len(simulation), config.seed, "simulation", config.validation_fraction, config.test_fraction)
    for part in ("train", "validation"):
        label, weight = simulation.label[parts[part]], simulation.weight[parts[part]]
        for cls, name in ((1, "signal"), (0, "background")):
            chosen = label == cls
            if not chosen.any() or (part == "train" and not weight[chosen].sum() > 0):
                total = int((simulation.label == cls).sum())
                raise DataError(
                    f"{simulation.source}: {total} {name} events in simulation leave the {part} split "
                    f"{'without them' if not chosen.any() else 'with a total weight of ' + format(float(weight[chosen].sum()), 'g')}; "
                    f"training needs {name} events with a positive total weight in the training and validation splits"
                )


def _check_inputs(settings: Settings, objective: Objective, simulation: Sample, data: Sample) -> None:
    _check_sizes(simulation, data)
    _check_classes(simulation, settings.train)
    for role in sorted(objective.needs(objective.options)):
        if getattr(simulation, role) is None or getattr(data, role) is None:
            method = option("method", objective.name, repr(objective.name))
            raise SqnnError(f"{method} with these options needs {option(role, 'COL')} in both simulation and data")


def fit_model(
    simulation: Sample,
    data: Sample,
    settings: Settings,
    *,
    run_dir: PathLike | None = None,
    resume: bool = False,
    progress: bool | FitProgress = False,
    distributed: bool = False,
) -> Trained:
    """Train the model ``settings`` describe on labelled simulation and unlabelled ``data``.

    A method that reweights simulation to data first learns the density ratio on the same
    training splits, then trains on the reweighted simulation.
    """
    objective = settings.objective()
    loop: dict[str, Any] = {"run_dir": run_dir, "resume": resume, "progress": progress}
    if run_dir is not None:
        loop["checkpoint_settings"] = checkpoint_settings(settings, objective, simulation.feature_names,
                                                          simulation.source, data.source)
    reweighter, reweight_seconds = None, 0.0
    if objective.reweighting is not None:
        reweighter, reweight_seconds = fit_reweighter(
            simulation, data, splits_for(simulation, data, settings.train), seed=settings.train.seed,
            threads=settings.train.threads, region=objective.reweighting.region, clip=objective.reweighting.clip,
        )
        simulation = reweighted(simulation, reweighter)
    if isinstance(objective, OwnTrainer):
        if distributed:
            raise SqnnError(f"method {objective.name!r} is not a network; it does not train with {_DISTRIBUTED}")
        trained = _fit_own(objective, simulation, data, settings.train, fit_progress(progress))
    elif settings.model == "set":
        if distributed:
            raise SqnnError(f"{_DISTRIBUTED} trains dense networks; drop {_SET_MODEL}")
        result = fit_set_model(simulation, data, objective, set_config_for(simulation, dict(settings.network or {})),
                               settings.train, **loop)
        trained = Trained.of_network(result, kind="set")
    else:
        result = fit(simulation, data, objective, network=settings.network_config(objective), config=settings.train,
                     distributed=distributed, **loop)
        trained = Trained.of_network(result)
    trained.reweighter = reweighter
    trained.train_seconds += reweight_seconds
    return trained


def _file_identity(source: str) -> dict[str, Any]:
    path, _ = split_path(source)
    return {"path": str(path.resolve()), "bytes": path.stat().st_size if path.exists() else None}


def checkpoint_settings(
    settings: Settings, objective: Objective, features: list[str], simulation: str, data: str
) -> dict[str, Any]:
    """What a checkpoint records of its training, so that ``--resume`` can refuse other settings or inputs."""
    network = (
        settings.network_config(objective).to_dict()
        if settings.model == "dense" and not objective.own_trainer
        else dict(settings.network or {})
    )
    return json_safe({
        "model": settings.model,
        "method": objective.name,
        "gamma": objective.gamma,
        "method_options": objective.options,
        "network": network,
        "train": settings.train.to_dict(),
        "features": list(features),
        "columns": {**settings.columns.role_columns(), "objects": settings.columns.objects,
                    "max_objects": settings.columns.max_objects, "domain": settings.domain_column},
        "inputs": {"simulation": _file_identity(simulation), "data": _file_identity(data)},
    })


def _prepare_run_directory(out: Path, *, resume: bool, overwrite: bool, reuse: bool) -> list[Path]:
    """Check what ``out`` holds against the request; returns the files of an old run to remove before training.

    A directory that holds a run is replaced only with ``overwrite`` (or by a comparison,
    ``reuse``, which manages its own run directories); ``resume`` needs a checkpoint.
    """
    if out.exists() and not out.is_dir():
        raise SqnnError(f"{out}: exists and is not a directory; choose another {option('out')} for the run directory")
    if resume and overwrite:
        raise SqnnError(f"{_RESUME} continues the run in {option('out')}, {_OVERWRITE} replaces it; give one of them")
    held = [out / name for name in RUN_FILES if (out / name).exists()]
    if resume:
        if read_checkpoint_state(out) is None:
            raise SqnnError(
                f"{out}: no checkpoint to resume from ({CHECKPOINT_STATE} is missing); train without {_RESUME}"
            )
        return []
    if held and not (overwrite or reuse):
        raise SqnnError(
            f"{out}: already holds a run ({', '.join(p.name for p in held)}); give {_OVERWRITE} to replace it "
            f"or {_RESUME} to continue it"
        )
    return held


def _check_resumable(out: Path, tag: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint whose training had other settings or inputs, naming them."""
    differ = settings_differences((read_checkpoint_state(out) or {}).get("settings"), tag)
    if differ:
        shown = ", ".join(differ[:8]) + (f" and {len(differ) - 8} more" if len(differ) > 8 else "")
        raise SqnnError(
            f"{out}: {_RESUME} with settings that differ from the checkpoint's ({shown}); resume with the "
            f"same settings and inputs, or train afresh with {_OVERWRITE}"
        )


def _clear(files: list[Path]) -> None:
    for path in files:
        path.unlink(missing_ok=True)


def _fit_own(objective: OwnTrainer, simulation: Sample, data: Sample, config: TrainConfig, shown: FitProgress) -> Trained:
    """A method trained outside the shared loop (trees): its own fit on the same splits."""
    shown.start_trees(objective, objective.max_iterations())
    result = objective.fit_own(simulation, splits_for(simulation, data, config), seed=config.seed, threads=config.threads)
    shown.trees_done(len(result.history), result.stopped_early, result.patience)
    return Trained(
        kind="trees",
        model=result.model,
        objective=objective,
        history=result.history,
        train_seconds=result.train_seconds,
        description={
            "trees": result.model.describe(),
            "preprocessing": {"kind": "none"},
            "best_epoch": len(result.history) - 1,
            "epochs_run": len(result.history),
            "stopped_early": result.stopped_early,
            "n_params": result.model.n_params,
        },
    )


def set_model_meta(columns: ColumnSpec, simulation: Sample) -> dict[str, Any]:
    """What ``model.json`` needs beyond the usual keys to rebuild and feed a set model."""
    return {
        "objects": {
            "column": columns.objects,
            "max_objects": columns.max_objects,
            "fields": list(simulation.object_fields),
            "global_features": simulation.global_feature_names,
        },
    }


def record_run(
    out: PathLike,
    trained: Trained,
    simulation: Sample,
    data: Sample,
    settings: Settings,
    *,
    extra: dict[str, Any] | None = None,
    metrics_of: Callable[[Run], dict[str, Any]] | None = None,
    engine: str = "torch",
) -> tuple[Run, dict[str, Any]]:
    """Write the run directory of a fit, then its ``metrics.json``; return the loaded run and the metrics.

    The metrics are those of :func:`sqnn.evaluation.evaluate` on ``simulation`` and ``data``
    (their test splits when they are the training files; ``data.label``, when present, only
    for the per-class metrics), scored by ``engine``, unless ``metrics_of`` computes them
    otherwise. ``extra`` adds (or replaces) keys of ``model.json``.
    """
    out = Path(out)
    objective = trained.objective
    meta: dict[str, Any] = {
        "method": objective.name,
        "gamma": objective.gamma,
        "method_options": objective.options,
        "features": simulation.feature_names,
        "columns": settings.columns.role_columns(),
        "train": settings.train.to_dict(),
        "inputs": {"simulation": input_fingerprint(simulation), "data": input_fingerprint(data)},
        "train_seconds": trained.train_seconds,
        **trained.description,
    }
    if trained.kind == "network":
        # the network as asked for: a fixed-point network's grids are chosen in training, so the
        # recorded `network` holds more than the request a finished run is recognised by
        meta["network_requested"] = settings.network_config(objective).to_dict()
    if trained.kind == "set":
        meta.update(set_model_meta(settings.columns, simulation))
    if trained.reweighter is not None:
        # the reweighter travels with the run: evaluation weights the held-out simulation with it
        save_reweighter(out, trained.reweighter, simulation.feature_names)
        meta["reweight"] = trained.reweighter.describe(simulation)
    meta.update(extra or {})
    write_run(out, trained.kind, trained.model, meta)
    write_json(out / "history.json", json_safe(trained.history))
    run = load_run(out)
    if metrics_of is not None:
        metrics = metrics_of(run)
    else:
        metrics, scores = evaluate_scores(run, simulation, data, seed=settings.train.seed, engine=engine)
        write_scores(out, scores)
    write_json(out / "metrics.json", json_safe(metrics))
    return run, metrics


def finished_run(run_dir: Path, settings: Settings, simulation: Sample, data: Sample) -> bool:
    """Whether ``run_dir`` already holds the finished model that ``settings`` ask for on these inputs."""
    path = run_dir / MODEL_JSON
    if not (path.exists() and (run_dir / "history.json").exists()):
        return False
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    objective = settings.objective()
    same = (
        meta.get("method") == objective.name
        and meta.get("gamma") == objective.gamma
        and meta.get("method_options") == json_safe(objective.options)
        and meta.get("train") == json_safe(settings.train.to_dict())
        and meta.get("inputs") == {"simulation": input_fingerprint(simulation), "data": input_fingerprint(data)}
    )
    if not same or objective.own_trainer or settings.model != "dense":
        return same
    return meta.get("network_requested") == json_safe(settings.network_config(objective).to_dict())


def train_run(
    simulation: PathLike,
    data: PathLike | None,
    settings: Settings,
    out: PathLike,
    *,
    data_label: str | None = None,
    resume: bool = False,
    reuse: bool = False,
    progress: bool | FitProgress = False,
    distributed: bool = False,
    chunked: bool = False,
    chunk: int = DEFAULT_CHUNK,
    engine: str = "torch",
    overwrite: bool = False,
) -> tuple[Run | None, dict[str, Any] | None]:
    """Train one model into the run directory ``out`` and write its metrics.

    A directory that already holds a run is refused unless ``overwrite`` (replace it),
    ``resume`` (continue its checkpoint, which must exist and have the same settings and
    inputs) or ``reuse`` is given.

    ``data_label`` reads the data's class column for the per-class metrics only; training
    never sees it; ``engine`` computes the metrics' scores (torch, or the deployed arithmetic
    of packed, onnx or hls4ml). ``reuse`` keeps a finished run of the same settings and inputs instead
    of training it again. ``chunked`` reads both files in chunks of ``chunk`` events instead
    of loading them (for inputs larger than memory; see :mod:`sqnn.training.events`). With
    ``distributed`` every process of the ``torchrun`` group trains; rank 0 writes the run
    directory and returns ``(run, metrics)``, the others ``(None, None)`` (the run directory
    must be on a file system every process sees).
    """
    columns = settings.columns
    if settings.model == "set":
        if not columns.objects:
            raise SqnnError(f"{simulation}: a set model reads an objects column: give {option('objects', 'COL')}")
        if columns.features is None:
            settings = replace(settings, columns=replace(columns, features=()))
    objective = settings.objective()
    out = Path(out)
    stale = _prepare_run_directory(out, resume=resume, overwrite=overwrite, reuse=reuse)
    if resume and objective.own_trainer:
        raise SqnnError(f"method {objective.name!r} trains in one go and writes no checkpoints; train without {_RESUME}")
    if chunked:
        return _train_chunked(simulation, data, settings, out, data_label=data_label, resume=resume,
                               progress=progress, chunk=chunk, engine=engine, stale=stale)
    sim, labelled = load_inputs(simulation, data, settings.columns, domain_column=settings.domain_column, data_label=data_label)
    _check_inputs(settings, objective, sim, labelled)
    # the data labels are read for evaluation only: training sees data without them
    dat = replace(labelled, label=None)
    if resume:
        _check_resumable(out, checkpoint_settings(settings, objective, sim.feature_names, sim.source, dat.source))
    if reuse and finished_run(out, settings, sim, dat):
        run = load_run(out)
        metrics, scores = evaluate_scores(run, sim, labelled, seed=settings.train.seed, engine=engine)
        write_scores(out, scores)
        write_json(out / "metrics.json", json_safe(metrics))
        return run, metrics
    if not distributed:
        _clear(stale)
        out.mkdir(parents=True, exist_ok=True)
        trained = fit_model(sim, dat, settings, run_dir=out, resume=resume, progress=progress)
        return record_run(out, trained, sim, labelled, settings, engine=engine)
    joined_here = not (dist.is_available() and dist.is_initialized())
    group = parallel.init_from_environment(parallel.backend_for(resolve_device(settings.train.device)))
    try:
        parallel.require_supported(objective)
        if group.is_main:
            _clear(stale)
            out.mkdir(parents=True, exist_ok=True)
        group.barrier()
        trained = fit_model(sim, dat, settings, run_dir=out, resume=resume, progress=progress and group.is_main,
                            distributed=True)
        run, metrics = None, None
        if group.is_main:
            extra = {"distributed": {"world_size": group.world_size, "backend": dist.get_backend()}}
            run, metrics = record_run(out, trained, sim, labelled, settings, extra=extra, engine=engine)
        group.barrier()
        return run, metrics
    finally:
        if joined_here:
            parallel.shutdown()


def _train_chunked(
    simulation: PathLike,
    data: PathLike | None,
    settings: Settings,
    out: Path,
    *,
    data_label: str | None,
    resume: bool,
    progress: bool | FitProgress,
    chunk: int,
    engine: str,
    stale: list[Path],
) -> tuple[Run, dict[str, Any]]:
    """:func:`train_run` reading both files in chunks; evaluated on their first held-out events."""
    objective = settings.objective()
    if settings.model != "dense" or objective.own_trainer:
        raise SqnnError(f"{_CHUNKED} trains dense networks in the shared loop; drop {_SET_MODEL}, or use a network method")
    if objective.reweighting is not None:
        raise SqnnError(f"{_CHUNKED} does not reweight simulation (the density ratio is learnt on events in memory)")
    if settings.columns.signal_control is not None:
        raise SqnnError(f"{_CHUNKED} does not read enriched regions (their composition and events are drawn from memory); "
                        f"drop {option('signal_control', 'COL')} or train in memory")
    if settings.domain_column is not None or data is None:
        raise SqnnError(
            f"{_CHUNKED} reads simulation and data from two files: give {option('data', 'FILE')} instead of "
            f"{option('domain_column', flag='--domain')}"
        )
    if chunk < 1:
        raise SqnnError(f"{option('chunk')} must be at least 1, got {chunk}")
    columns = settings.columns
    if columns.label is None:
        raise SqnnError(f"{simulation}: simulation needs a label column ({option('label', 'COL')})")
    features, _ = columns_of(simulation, columns, require_label=True)
    data_columns = replace(columns, label=None, features=tuple(features))
    require_same_columns(str(simulation), features, str(data), columns_of(data, data_columns)[0])
    sim_input = ChunkedInput(str(simulation), replace(columns, features=tuple(features)), "simulation", chunk)
    data_input = ChunkedInput(str(data), data_columns, "data", chunk)
    tag = checkpoint_settings(settings, objective, list(features), str(simulation), str(data))
    if resume:
        _check_resumable(out, tag)
    _clear(stale)
    out.mkdir(parents=True, exist_ok=True)
    result = fit(sim_input, data_input, objective, network=settings.network_config(objective), config=settings.train,
                 run_dir=out, resume=resume, progress=progress, checkpoint_settings=tag)
    n_sim, n_data = result.extras["events"]
    # evaluation holds the first held-out events of each file, never a whole file
    sim_test = sample_rows(sim_input.path, sim_input.columns, "simulation", result.splits.simulation["test"], chunk,
                           CHUNKED_EVALUATION_EVENTS)
    data_test = sample_rows(data_input.path, replace(data_columns, label=data_label), "data", result.splits.data["test"],
                            chunk, CHUNKED_EVALUATION_EVENTS)
    extra = {
        "inputs": {"simulation": file_fingerprint(sim_input.path, n_sim), "data": file_fingerprint(data_input.path, n_data)},
        "streamed": {"chunk": chunk, "train_events_simulation": result.extras.get("train_events"),
                     "evaluated_events": {"simulation": len(sim_test), "data": len(data_test)}},
    }
    return record_run(out, Trained.of_network(result), sim_test, data_test, settings, extra=extra, engine=engine)


def evaluate_run(
    run_dir: PathLike,
    simulation: PathLike,
    data: PathLike | None,
    *,
    data_label: str | None = None,
    columns: ColumnSpec | None = None,
    domain_column: str | None = None,
    out: PathLike | None = None,
    inference: str | None = None,
    device: str | None = None,
    engine: str = "torch",
    draws: int = 1,
) -> dict[str, Any]:
    """Metrics of a saved run on the given files (their test split if they are the training files).

    ``columns`` names role columns (label, weight, control, observer) that replace the
    run's own; ``inference`` overrides the network's own scoring mode (``mean`` or
    ``deterministic``, or ``stochastic`` averaging ``draws`` draws per unit); ``engine`` scores with
    a deployment engine's arithmetic (packed, onnx, hls4ml); ``device`` scores on another device
    than the CPU.
    """
    if out is not None:
        inputs = [split_path(p)[0] for p in (simulation, data) if p is not None]
        refuse_overwriting([out], [*inputs, Path(run_dir) / MODEL_JSON, Path(run_dir) / MODEL_FILE])
    run = load_run(run_dir)
    spec = run.input_spec(**(run.meta.get("columns") or {}))
    if columns is not None:
        spec = spec.with_roles(**columns.role_columns())
    sim, dat = load_inputs(simulation, data, spec, domain_column=domain_column, data_label=data_label)
    metrics = evaluate(run, sim, dat, seed=int(run.meta.get("train", {}).get("seed", 0)), inference=inference, device=device,
                       engine=engine, draws=draws)
    if out is not None:
        write_json(out, json_safe(metrics))
    return metrics
