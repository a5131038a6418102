"""`sqnn finetune`: a trained set model's object encoder with a new head, on another channel.

Fine-tuning starts from a trained set model: its object encoder (φ, the pooling and the
object normalisation) is copied into a model with a freshly initialised head (Bernoulli
units, ρ, output), and ``freeze="encoder"`` keeps the encoder fixed; with ``freeze="none"``
an ``encoder_learning_rate`` below the head's lets it move only slowly away from what it
learnt before (the head's rate is ``learning_rate``). The model trains on
the first ``n_train`` events of the new channel's training split
(:mod:`sqnn.training.subsets`); its test split stays untouched for evaluation, so
``sqnn evaluate`` on the same file uses exactly it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from sqnn.data import Sample, load_inputs, load_sample, split_indices
from sqnn.errors import SqnnError, option, phrase
from sqnn.evaluation import evaluate, evaluate_simulation
from sqnn.nn.set_model import SetModel
from sqnn.runs import MODEL_FILE, MODEL_JSON, Run, input_fingerprint, load_run
from sqnn.training import FitResult
from sqnn.training.subsets import fit_subset, select_events
from sqnn.workflows.settings import Settings, train_config_from
from sqnn.workflows.train import Trained, record_run

__all__ = ["finetune"]

PathLike = str | os.PathLike[str]


def _trainable(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


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
    encoder_learning_rate: float | None = None,
    n_validation: int | None = None,
    columns: dict[str, str | None] | None = None,
    device: str | None = None,
    progress: bool = False,
    on_fit: Callable[[FitResult], None] | None = None,
) -> tuple[Run, dict[str, Any]]:
    """Fine-tune the set model of the run ``pretrained`` on the first ``n_train`` events of ``simulation``.

    Writes the run directory ``out`` (``model.json`` records where the encoder came from)
    and its ``metrics.json``; returns the loaded run and the metrics.
    """
    held = [name for name in (MODEL_JSON, MODEL_FILE) if (Path(out) / name).exists()]
    if held:
        # the pretrained run among them: fine-tuning into it would replace the model it reads
        raise SqnnError(f"{out}: already holds a run ({', '.join(held)}); fine-tune into another directory")
    source = load_run(pretrained)
    if source.kind != "set" or not isinstance(source.model, SetModel):
        how = phrase("train_run with Settings(model='set') and an objects column", "sqnn train --model set --objects COL")
        raise SqnnError(f"{pretrained}: not a set model (train one with {how})")
    spec = source.input_spec(**source.meta.get("columns", {})).with_roles(**(columns or {}))
    if spec.label is None:
        label = option("columns", "COL", "{'label': ...}", flag="--label")
        raise SqnnError(f"{simulation}: simulation needs a label column ({label})")
    data_full: Sample | None
    if data is None:
        sim_full, data_full = load_sample(simulation, spec, "simulation", require_label=True), None
    else:
        sim_full, data_full = load_inputs(simulation, data, spec)

    train_config = train_config_from(source.meta, epochs=epochs, seed=seed, learning_rate=learning_rate, device=device)
    settings = Settings(columns=spec, method=method, gamma=gamma, method_options=dict(method_options or {}),
                        train=train_config, model="set")
    objective = settings.objective()
    selection = select_events(len(sim_full), int(n_train), train_config, n_validation, str(simulation))
    data_used = None
    if data_full is not None:
        # unlabelled data enters training only through its training and validation splits
        data_split = split_indices(
            len(data_full), train_config.seed, "data", train_config.validation_fraction, train_config.test_fraction
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
        encoder_learning_rate=encoder_learning_rate,
        run_dir=out,
        progress=progress,
    )
    if on_fit is not None:
        on_fit(result)
    extra = {
        "inputs": {
            "simulation": input_fingerprint(sim_full),
            "data": None if data_full is None else input_fingerprint(data_full),
        },
        "finetune": {
            "pretrained": str(Path(pretrained).resolve()),
            "pretrained_inputs": source.meta.get("inputs"),
            "reused": "object encoder (per-object network, pooling, object normalisation); new head",
            "freeze": freeze,
            "encoder_learning_rate": encoder_learning_rate,
            "n_train": len(selection.train),
            "n_validation": len(selection.validation),
            "selection": "first n_train events of the training split and first n_validation of the validation "
                         "split of the file, split with train.seed, validation_fraction and test_fraction",
            "loop_validation_fraction": len(selection.validation) / (len(selection.train) + len(selection.validation)),
            "trainable_params": _trainable(result.model),
            "data": None if data_full is None else "training and validation splits, unlabelled",
        },
    }

    def metrics_of(run: Run) -> dict[str, Any]:
        if data_full is None:
            return evaluate_simulation(run, sim_full.subset(selection.test))
        return evaluate(run, sim_full, data_full, seed=train_config.seed)

    # "train" keeps the file's split fractions, so evaluating on this file uses its test split
    return record_run(out, Trained.of_network(result, kind="set"), sim_full, data_full if data_full is not None else sim_full,
                      settings, extra=extra, metrics_of=metrics_of)
