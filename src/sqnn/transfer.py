"""Set models in the shared training loop, and fine-tuning a trained one on another channel.

Training a set model (``sqnn train --model set --objects COL``) uses the same loop as every
other model: the objects column is padded into flat columns by the loader, the set model
is built beforehand (it needs the loop's standardisation to undo it, see
:mod:`sqnn.nn.set_model`) and handed to the objective as its network. Methods whose network
is the classifier alone (``source-only``, ``sqnn``, ``disco``, ``mmd``) work with it.

Fine-tuning (``sqnn finetune RUN --sim F --n-train N``) starts from a trained set model: its
object encoder (φ, the pooling and the object normalisation) is copied into a model with a
freshly initialised head (Bernoulli units, ρ, output), and ``freeze="encoder"`` keeps the
encoder fixed. Events of the new channel are split as ``sqnn train`` splits a file
(:func:`sqnn.train.split_indices` with the run's seed and fractions); the model trains on the
first ``n_train`` events of the training split and early-stops on the first ``n_validation``
of the validation split (default ``max(n_train // 3, min(200, 2 n_train))``); the test split
stays untouched for evaluation, so ``sqnn evaluate`` on the same file uses exactly it.

To run these events through the unchanged loop, they are laid out in a sample whose own
split (the loop's :func:`~sqnn.train.split_indices` with zero test fraction) puts exactly the
chosen events into training and validation; the loop's splits are checked against it after
the fit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from sqnn._atomic import write_json
from sqnn.data import ColumnSpec, Sample, Standardizer, load_sample
from sqnn.errors import SqnnError
from sqnn.methods import Objective, make_objective
from sqnn.nn import NetworkConfig
from sqnn.nn.set_model import SetConfig, SetModel
from sqnn.train import FitResult, TrainConfig, fit, split_indices

__all__ = [
    "FREEZE",
    "Selection",
    "default_validation_events",
    "finetune",
    "fit_set_model",
    "fit_subset",
    "scores",
    "select_events",
    "set_config_for",
    "set_run_meta",
]

FREEZE = ("encoder", "none")
PathLike = str | os.PathLike[str]


def set_config_for(sample: Sample, overrides: dict[str, Any] | None = None) -> SetConfig:
    """A set-model config matching the padded objects (and global features) of ``sample``."""
    if not sample.object_fields:
        raise SqnnError(f"{sample.source}: a set model needs an objects column (--objects COL)")
    per_object = len(sample.object_fields) + 1
    settings = dict(overrides or {})
    for fixed in ("fields", "max_objects", "n_global"):
        settings.pop(fixed, None)
    try:
        return SetConfig.for_objects(
            sample.object_fields,
            sample.object_columns // per_object,
            len(sample.global_feature_names),
            **settings,
        )
    except (TypeError, ValueError) as exc:
        raise SqnnError(f"invalid set-model settings: {exc}") from None


def _check_objective(objective: Objective) -> None:
    if type(objective).build is not Objective.build:
        raise SqnnError(
            f"method {objective.name!r} builds its own network and cannot train a set model; "
            "use source-only, sqnn, disco or mmd"
        )


def _hand_over(objective: Objective, model: nn.Module) -> Objective:
    """Make the loop's ``objective.build`` return ``model`` (built beforehand)."""

    def build(n_inputs: int, config: Any) -> nn.Module:
        if n_inputs != model.n_inputs:
            raise ValueError(f"the model reads {model.n_inputs} inputs, the sample has {n_inputs}")
        return model

    objective.build = build  # type: ignore[method-assign]
    return objective


def _new_set_model(config: SetConfig, raw_train: np.ndarray, seed: int, encoder_from: SetModel | None) -> SetModel:
    """A set model whose preprocessing matches the loop's standardisation of ``raw_train``."""
    torch.manual_seed(seed)
    model = SetModel(config.n_inputs, config)
    standardizer = Standardizer.fit(raw_train)
    model.set_input_standardization(standardizer.mean, standardizer.scale)
    if encoder_from is None:
        model.fit_object_scaling(raw_train)
    else:
        try:
            model.load_encoder(encoder_from.encoder_state())
        except ValueError as exc:
            raise SqnnError(f"the pretrained encoder does not fit the new channel's objects: {exc}") from None
    return model


def _check_standardization(model: SetModel, result: FitResult) -> None:
    expected_mean = result.standardizer.mean.astype(np.float32)
    expected_scale = result.standardizer.scale.astype(np.float32)
    if not (
        np.allclose(model.input_mean.numpy(), expected_mean, rtol=1e-5, atol=1e-6)
        and np.allclose(model.input_scale.numpy(), expected_scale, rtol=1e-5, atol=1e-6)
    ):
        raise RuntimeError("the set model's input standardisation differs from the training loop's")


def fit_set_model(
    simulation: Sample,
    data: Sample,
    objective: Objective,
    config: SetConfig,
    train_config: TrainConfig,
    *,
    run_dir: PathLike | None = None,
    resume: bool = False,
    progress: bool = False,
) -> FitResult:
    """Train a set model from scratch with the shared loop (what ``sqnn train --model set`` does)."""
    _check_objective(objective)
    train = split_indices(
        len(simulation), train_config.seed, 0, train_config.validation_fraction, train_config.test_fraction
    )["train"]
    model = _new_set_model(config, simulation.features[train], train_config.seed, None)
    result = fit(
        simulation, data, _hand_over(objective, model), network=config,  # type: ignore[arg-type]
        config=train_config, run_dir=run_dir, resume=resume, progress=progress,
    )
    _check_standardization(model, result)
    return result


def set_run_meta(spec: ColumnSpec, simulation: Sample) -> dict[str, Any]:
    """What ``model.json`` needs beyond the usual keys to rebuild and feed a set model."""
    return {
        "model_kind": "set",
        "objects": {
            "column": spec.objects,
            "max_objects": spec.max_objects,
            "fields": list(simulation.object_fields),
            "global_features": simulation.global_feature_names,
        },
    }


# ---------------------------------------------------------------- a subset of a channel


@dataclass(frozen=True)
class Selection:
    """Events of one file (indices into it) used for training, validation and the held-out test."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def default_validation_events(n_train: int) -> int:
    return max(n_train // 3, min(200, 2 * n_train))


def select_events(
    n_events: int, n_train: int, train_config: TrainConfig, n_validation: int | None = None, source: str = "the sample"
) -> Selection:
    """The first ``n_train`` training and ``n_validation`` validation events of the file's split."""
    split = split_indices(n_events, train_config.seed, 0, train_config.validation_fraction, train_config.test_fraction)
    if n_train < 2 or n_train > len(split["train"]):
        raise SqnnError(
            f"{source}: --n-train must lie in 2..{len(split['train'])} (the training split of its {n_events} events), "
            f"got {n_train}"
        )
    n_validation = default_validation_events(n_train) if n_validation is None else int(n_validation)
    n_validation = min(n_validation, len(split["validation"]))
    if n_validation < 1:
        raise SqnnError(f"{source}: no validation events left ({n_events} events)")
    return Selection(split["train"][:n_train], split["validation"][:n_validation], split["test"])


def _lay_out(sample: Sample, selection: Selection, seed: int) -> tuple[Sample, float, np.ndarray]:
    """``sample`` reordered so that the loop's split (zero test fraction) returns exactly the selection."""
    n_train, n_validation = len(selection.train), len(selection.validation)
    n = n_train + n_validation
    fraction = n_validation / n
    split = split_indices(n, seed, 0, fraction, 0.0)
    if len(split["validation"]) != n_validation:
        raise RuntimeError(f"cannot lay out {n_train} training and {n_validation} validation events")
    order = np.empty(n, dtype=np.int64)
    order[split["train"]] = selection.train
    order[split["validation"]] = selection.validation
    return sample.subset(order), fraction, split["train"]


def fit_subset(
    simulation: Sample,
    data: Sample | None,
    objective: Objective,
    selection: Selection,
    train_config: TrainConfig,
    *,
    set_config: SetConfig | None = None,
    encoder_from: SetModel | None = None,
    freeze: str = "none",
    network: NetworkConfig | None = None,
    run_dir: PathLike | None = None,
    progress: bool = False,
) -> FitResult:
    """Train on the selected events of ``simulation`` with the shared loop.

    With ``set_config`` a set model (its encoder copied from ``encoder_from`` when given, and
    frozen with ``freeze="encoder"``); otherwise the objective's own network (``network``).
    ``data`` (unlabelled) enters only through the objective's penalty; without it the selected
    simulation stands in for it, which only objectives that ignore data accept.
    """
    if freeze not in FREEZE:
        raise SqnnError(f"--freeze must be one of {', '.join(FREEZE)}, got {freeze!r}")
    if freeze == "encoder" and encoder_from is None:
        raise SqnnError("--freeze encoder needs a pretrained encoder")
    if data is None and objective.uses_data:
        raise SqnnError(f"method {objective.name!r} needs unlabelled data: give --data FILE")
    laid_out, fraction, train_positions = _lay_out(simulation, selection, train_config.seed)
    config = replace(train_config, validation_fraction=fraction, test_fraction=0.0)
    if data is None:
        data = replace(laid_out, label=None, domain="data")
    model = None
    if set_config is not None:
        _check_objective(objective)
        model = _new_set_model(set_config, laid_out.features[train_positions], config.seed, encoder_from)
        if freeze == "encoder":
            model.freeze_encoder()
        _hand_over(objective, model)
        network = set_config  # type: ignore[assignment]
    result = fit(laid_out, data, objective, network=network, config=config, run_dir=run_dir, progress=progress)
    if not np.array_equal(result.splits.simulation["train"], train_positions):
        raise RuntimeError("the training loop split the laid-out events differently than expected")
    if model is not None:
        _check_standardization(model, result)
    return result


def scores(result: FitResult, features: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """Deterministic probabilities of a fitted model for raw features."""
    model = result.model
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            x = torch.from_numpy(result.standardizer.transform(features[start : start + batch_size]))
            out.append(torch.sigmoid(model(x)).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


# ---------------------------------------------------------------- sqnn finetune


def _trainable(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _source_metrics(run: Any, simulation: Sample, selection: Selection) -> dict[str, Any]:
    """Metrics of the held-out simulation alone (no data given): the classification keys."""
    from sqnn import metrics
    from sqnn.evaluation import METRIC_KEYS

    test = simulation.subset(selection.test)
    assert test.label is not None
    score = run.score(test.features)
    result: dict[str, Any] = dict.fromkeys(METRIC_KEYS)
    result["n_events_simulation"] = len(test)
    result["n_events_data"] = 0
    result["auc_source"] = metrics.roc_auc(score, test.label, test.weight)
    result["rejection_at_50"] = metrics.rejection_at(score, test.label, test.weight, 0.5)
    result["rejection_at_30"] = metrics.rejection_at(score, test.label, test.weight, 0.3)
    result["n_params"] = run.n_params
    result["model_bytes"] = run.meta.get("model_bytes")
    result["train_seconds"] = run.meta.get("train_seconds")
    return result


def finetune(
    pretrained: PathLike,
    simulation: PathLike,
    data: PathLike | None,
    out: PathLike,
    *,
    n_train: int,
    freeze: str = "encoder",
    method: str = "source-only",
    gamma: float | None = None,
    method_options: dict[str, Any] | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    learning_rate: float | None = None,
    n_validation: int | None = None,
    columns: dict[str, str | None] | None = None,
    progress: bool = False,
    on_fit: Callable[[FitResult], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune the set model of the run ``pretrained`` on the first ``n_train`` events of ``simulation``.

    Writes the run directory ``out`` (``model.json`` records where the encoder came from)
    and its ``metrics.json``; returns the loaded run and the metrics.
    """
    from sqnn.evaluation import evaluate
    from sqnn.pipeline import load_inputs, write_run
    from sqnn.run import input_fingerprint, json_safe, load_run

    source = load_run(pretrained)
    if source.meta.get("model_kind") != "set" or not isinstance(source.model, SetModel):
        raise SqnnError(f"{pretrained}: not a set model (train one with sqnn train --model set --objects COL)")
    spec = source.input_spec()
    roles = {k: v for k, v in (columns or {}).items() if v}
    saved = source.meta.get("columns", {})
    spec = replace(
        spec,
        label=roles.get("label") or saved.get("label"),
        weight=roles.get("weight") or saved.get("weight"),
        control=roles.get("control") or saved.get("control"),
        observer=roles.get("observer") or saved.get("observer"),
    )
    if spec.label is None:
        raise SqnnError(f"{simulation}: simulation needs a label column (--label COL)")
    data_full: Sample | None
    if data is None:
        sim_full, data_full = load_sample(simulation, spec, "simulation", require_label=True), None
    else:
        sim_full, data_full = load_inputs(simulation, data, spec)

    settings = dict(source.meta.get("train") or {})
    if epochs is not None:
        settings["epochs"] = epochs
    if seed is not None:
        settings["seed"] = seed
    if learning_rate is not None:
        settings["learning_rate"] = learning_rate
    try:
        train_config = TrainConfig(**settings)
        objective = make_objective(method, gamma, **(method_options or {}))
    except (TypeError, ValueError) as exc:
        raise SqnnError(f"invalid training settings: {exc}") from None
    selection = select_events(len(sim_full), int(n_train), train_config, n_validation, str(simulation))
    data_used = None
    if data_full is not None:
        # unlabelled data enters training only through its training and validation splits
        data_split = split_indices(
            len(data_full), train_config.seed, 1, train_config.validation_fraction, train_config.test_fraction
        )
        data_used = data_full.subset(np.sort(np.concatenate([data_split["train"], data_split["validation"]])))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = fit_subset(
        sim_full,
        data_used,
        objective,
        selection,
        train_config,
        set_config=source.model.config,
        encoder_from=source.model,
        freeze=freeze,
        run_dir=out,
        progress=progress,
    )
    if on_fit is not None:
        on_fit(result)
    meta = set_run_meta(spec, sim_full)
    meta["inputs"] = {
        "simulation": input_fingerprint(sim_full),
        "data": None if data_full is None else input_fingerprint(data_full),
    }
    meta["finetune"] = {
        "pretrained": str(Path(pretrained).resolve()),
        "pretrained_inputs": source.meta.get("inputs"),
        "reused": "object encoder (per-object network, pooling, object normalisation); new head",
        "freeze": freeze,
        "n_train": len(selection.train),
        "n_validation": len(selection.validation),
        "selection": "first n_train events of the training split and first n_validation of the validation "
                     "split of the file, split with train.seed, validation_fraction and test_fraction",
        "loop_validation_fraction": len(selection.validation) / (len(selection.train) + len(selection.validation)),
        "trainable_params": _trainable(result.model),
        "data": None if data_full is None else "training and validation splits, unlabelled",
    }
    # "train" keeps the file's split fractions, so evaluating on this file uses its test split
    run = write_run(out, result, sim_full, data_full if data_full is not None else sim_full, spec, train_config,
                    extra=meta)
    if data_full is None:
        metrics = _source_metrics(run, sim_full, selection)
    else:
        metrics = evaluate(run, sim_full, data_full, seed=train_config.seed)
    write_json(out / "metrics.json", json_safe(metrics))
    return run, metrics
