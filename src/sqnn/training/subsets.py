"""Training on a chosen subset of a file's events: few-event training and fine-tuning.

Events of a channel are split as training splits a file (:func:`sqnn.data.split_indices`
with the settings' seed and fractions); a model trains on the first ``n_train`` events of
the training split and early-stops on the first ``n_validation`` of the validation split
(default ``max(n_train // 3, min(200, 2 n_train))``); the test split stays untouched for
evaluation, so evaluating on the same file uses exactly it.

To run these events through the unchanged loop, they are laid out in a sample whose own
split (zero test fraction) puts exactly the chosen events into training and validation;
the loop's splits are checked against it after the fit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sqnn.data import Sample, split_indices
from sqnn.errors import SqnnError, option
from sqnn.methods import Objective
from sqnn.nn import NetworkConfig
from sqnn.nn.set_model import SetConfig, SetModel
from sqnn.training.config import TrainConfig
from sqnn.training.loop import FitResult, fit
from sqnn.training.sets import check_objective, check_standardization, new_set_model

__all__ = ["FREEZE", "Selection", "default_validation_events", "fit_subset", "select_events"]

FREEZE = ("encoder", "none")


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
    split = split_indices(n_events, train_config.seed, "simulation", train_config.validation_fraction, train_config.test_fraction)
    if n_train < 2 or n_train > len(split["train"]):
        raise SqnnError(
            f"{source}: {option('n_train')} must lie in 2..{len(split['train'])} (the training split of its {n_events} events), "
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
    split = split_indices(n, seed, "simulation", fraction, 0.0)
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
    encoder_learning_rate: float | None = None,
    network: NetworkConfig | None = None,
    **loop: Any,
) -> FitResult:
    """Train on the selected events of ``simulation`` with the shared loop.

    With ``set_config`` a set model (its encoder copied from ``encoder_from`` when given, and
    frozen with ``freeze="encoder"``, or trained at its own ``encoder_learning_rate`` while
    the new head trains at the settings' rate); otherwise the objective's own network (``network``).
    ``data`` (unlabelled) enters only through the objective's penalty; without it the selected
    simulation stands in for it, which only objectives that ignore data accept. ``loop``
    passes on the loop's own options (``run_dir``, ``progress``).
    """
    if freeze not in FREEZE:
        raise SqnnError(f"{option('freeze')} must be one of {', '.join(FREEZE)}, got {freeze!r}")
    if freeze == "encoder" and encoder_from is None:
        raise SqnnError(f"{option('freeze', 'encoder', repr('encoder'))} needs a pretrained encoder")
    if encoder_learning_rate is not None:
        if set_config is None or encoder_from is None:
            raise SqnnError(f"{option('encoder_learning_rate')} belongs to fine-tuning a pretrained set model")
        if freeze == "encoder":
            raise SqnnError(
                f"{option('encoder_learning_rate')} trains the encoder: use it with {option('freeze', 'none', repr('none'))}"
            )
        if not 0 <= encoder_learning_rate <= 1:
            raise SqnnError(f"{option('encoder_learning_rate')} must lie in [0, 1], got {encoder_learning_rate}")
    if data is None and objective.uses_data:
        raise SqnnError(f"method {objective.name!r} needs unlabelled data: give {option('data', 'FILE')}")
    laid_out, fraction, train_positions = _lay_out(simulation, selection, train_config.seed)
    config = replace(train_config, validation_fraction=fraction, test_fraction=0.0)
    if data is None:
        data = replace(laid_out, label=None, domain="data")
    model = None
    if set_config is not None:
        check_objective(objective)
        model = new_set_model(set_config, laid_out.features[train_positions], config.seed, encoder_from)
        if freeze == "encoder":
            model.freeze_encoder()
    rates = None
    if encoder_learning_rate is not None:
        assert model is not None
        rates = {name: float(encoder_learning_rate) for name, _ in model.named_parameters()
                 if name.startswith(SetModel.ENCODER_PREFIXES)}
    result = fit(laid_out, data, objective, network=network, config=config, model=model, learning_rates=rates, **loop)
    if not np.array_equal(result.splits.simulation["train"], train_positions):
        raise RuntimeError("the training loop split the laid-out events differently than expected")
    if model is not None:
        check_standardization(model, result)
    return result
