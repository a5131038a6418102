"""Set models in the shared training loop.

A set model (:mod:`sqnn.nn.set_model`) is built before the loop runs: it undoes the loop's
per-column standardisation itself (a per-slot scaling would break its permutation
invariance), so it needs that standardisation, fitted here on the same training events
as the loop fits it, and it measures its own object normalisation on them. The loop then
trains it like any network (:func:`sqnn.training.fit` with ``model=``); methods whose
network is the classifier alone work with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sqnn.data import Sample, Standardizer, split_indices
from sqnn.errors import SqnnError, option
from sqnn.methods import Objective
from sqnn.nn.set_model import SetConfig, SetModel
from sqnn.training.config import TrainConfig
from sqnn.training.loop import FitResult, fit

__all__ = ["check_objective", "check_standardization", "fit_set_model", "new_set_model", "set_config_for"]


def set_config_for(sample: Sample, overrides: dict[str, Any] | None = None) -> SetConfig:
    """A set-model config matching the padded objects (and global features) of ``sample``."""
    if not sample.object_fields:
        raise SqnnError(f"{sample.source}: a set model needs an objects column ({option('objects', 'COL')})")
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


def check_objective(objective: Objective) -> None:
    """Refuse methods that build their own network or train outside the loop.

    Methods that only add modules next to the network through ``attach`` (DANN's domain head,
    built from ``model.representation_width``) train a set model like any network.
    """
    if not objective.trains_set_models:
        raise SqnnError(
            f"method {objective.name!r} builds its own network and cannot train a set model; "
            "use source-only, sqnn, dann, disco or mmd"
        )


def new_set_model(config: SetConfig, raw_train: np.ndarray, seed: int, encoder_from: SetModel | None) -> SetModel:
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


def check_standardization(model: SetModel, result: FitResult) -> None:
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
    **loop: Any,
) -> FitResult:
    """Train a set model from scratch with the shared loop (what ``sqnn train --model set`` does).

    ``loop`` passes on the loop's own options (``run_dir``, ``resume``, ``progress``).
    """
    check_objective(objective)
    train = split_indices(
        len(simulation), train_config.seed, "simulation", train_config.validation_fraction, train_config.test_fraction
    )["train"]
    model = new_set_model(config, simulation.features[train], train_config.seed, None)
    result = fit(simulation, data, objective, config=train_config, model=model, **loop)
    check_standardization(model, result)
    return result
