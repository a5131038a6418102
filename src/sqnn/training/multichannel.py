"""Pretraining a set model on several analysis channels at once.

Fine-tuning reuses a set model's object encoder (:mod:`sqnn.training.subsets`). Pretrained on
one channel, the encoder learns what separates that channel's signal from its background —
for a 1.5 TeV Z′ against tt̄ little more than the scalar sum of pT. Pretrained on several
channels at once it must tell all their processes apart, which takes more of what a new
channel can use (b-tag multiplicity, object pairs near a mass, boosted tops). Two tasks:

``processes``
    one class per process — the background the channel files share and the signal of each
    channel — and a head of that many logits trained with the event-weighted cross-entropy;
``signal``
    every channel's signal against the background in one binary task, through the shared
    training loop (:func:`sqnn.training.sets.fit_set_model`).

The events of all channel files form one sample, split into training, validation and test
events as training splits a file (the seed and fractions of the :class:`TrainConfig`). Early
stopping keeps the epoch with the smallest validation loss. On the test events every
channel's signal is scored against the background events of the same file (for
``processes`` by the logit difference of the two classes) and reported as an AUC.

>>> result = fit_channels({"zprime": zprime, "wprime": wprime}, config, TrainConfig())  # doctest: +SKIP
>>> result.model.encoder_state()  # what fine-tuning on a new channel starts from  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from sqnn import metrics
from sqnn.data import Sample, Standardizer, split_indices
from sqnn.errors import SqnnError, option
from sqnn.methods import make_objective
from sqnn.nn.set_model import SetConfig, SetModel
from sqnn.runs import forward_in_batches
from sqnn.training.config import TrainConfig
from sqnn.training.sets import fit_set_model, new_set_model

__all__ = ["TASKS", "ChannelPretraining", "fit_channels", "joined_channels"]

TASKS = ("processes", "signal")
BACKGROUND_CLASS = 0
_SCORE_BATCH = 8192


@dataclass
class ChannelPretraining:
    """A set model pretrained on several channels and what its pretraining measured.

    ``classes``: the process of every output (``processes``) or ``["background", "signal"]``;
    ``test_auc``: per channel, its signal against its file's background on the test events.
    """

    model: SetModel
    task: str
    classes: list[str]
    history: list[dict[str, float]]
    best_epoch: int
    train_seconds: float
    events: dict[str, int]
    test_auc: dict[str, float]
    test_accuracy: float | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "classes": self.classes,
            "events": self.events,
            "epochs_run": len(self.history),
            "best_epoch": self.best_epoch,
            "cpu_seconds": round(self.train_seconds, 2),
            "test_auc": self.test_auc,
            "test_accuracy": self.test_accuracy,
        }


def joined_channels(samples: Mapping[str, Sample]) -> tuple[Sample, np.ndarray, np.ndarray]:
    """One sample of every channel's events, each event's channel (index into ``samples``) and process class.

    The class is 0 for background events of any channel and k + 1 for the signal of the k-th.
    """
    if len(samples) < 1:
        raise SqnnError("pretraining on channels needs at least one channel file")
    names = list(samples)
    first = samples[names[0]]
    for name in names[1:]:
        other = samples[name]
        if other.feature_names != first.feature_names or other.object_fields != first.object_fields:
            raise SqnnError(
                f"{other.source}: its objects ({', '.join(other.object_fields)}; {len(other.feature_names)} columns) "
                f"differ from {first.source}'s; every channel needs the same object layout and {option('max_objects')}"
            )
    for name in names:
        if samples[name].label is None:
            raise SqnnError(f"{samples[name].source}: pretraining needs the label column in every channel file")
    joined = Sample.joined([samples[name] for name in names])
    channel = np.concatenate([np.full(len(samples[name]), k, dtype=np.int64) for k, name in enumerate(names)])
    assert joined.label is not None
    process = np.where(joined.label > 0.5, channel + 1, BACKGROUND_CLASS).astype(np.int64)
    return joined, channel, process


def _weighted_cross_entropy(logit: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    per_event = torch.nn.functional.cross_entropy(logit, target, reduction="none")
    return (weight * per_event).sum() / weight.sum().clamp(min=1e-12)


def _logits(model: SetModel, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(forward_in_batches(model, None, x.numpy(), batch_size=_SCORE_BATCH))


def _fit_processes(
    joined: Sample, process: np.ndarray, n_classes: int, config: SetConfig, train_config: TrainConfig,
    split: dict[str, np.ndarray],
) -> tuple[SetModel, list[dict[str, float]], int, float]:
    torch.set_num_threads(train_config.threads)
    seed = train_config.seed
    raw_train = joined.features[split["train"]]
    model = new_set_model(replace(config, outputs=n_classes), raw_train, seed, None)
    standardizer = Standardizer.fit(raw_train)
    x = {part: torch.from_numpy(standardizer.transform(joined.features[index])) for part, index in split.items()}
    y = {part: torch.from_numpy(process[index]) for part, index in split.items()}
    w = {part: torch.from_numpy(joined.weight[index].astype(np.float32)) for part, index in split.items()}
    generator = torch.Generator().manual_seed(seed)
    model.set_training_generator(generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_config.learning_rate, weight_decay=train_config.weight_decay)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    best_loss, best_epoch, since_best, elapsed = float("inf"), -1, 0, 0.0
    history: list[dict[str, float]] = []
    n_train = len(split["train"])
    for epoch in range(train_config.epochs):
        started = time.process_time()
        model.train()
        order = torch.randperm(n_train, generator=generator)
        total, seen = 0.0, 0
        for start in range(0, n_train, train_config.batch_size):
            batch = order[start : start + train_config.batch_size]
            loss = _weighted_cross_entropy(model(x["train"][batch]), y["train"][batch], w["train"][batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
        model.eval()
        logit = _logits(model, x["validation"])
        val_loss = float(_weighted_cross_entropy(logit, y["validation"], w["validation"]))
        val_accuracy = float((logit.argmax(1) == y["validation"]).double().mean())
        elapsed += time.process_time() - started
        history.append({"epoch": epoch, "loss": total / max(seen, 1), "val_loss": val_loss,
                        "val_accuracy": val_accuracy, "cpu_seconds": elapsed})
        if val_loss < best_loss:
            best_loss, best_epoch, since_best = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
            if since_best >= train_config.patience:
                break
    model.load_state_dict(best_state)
    model.set_training_generator(None)
    model.eval()
    return model, history, best_epoch, elapsed


def fit_channels(
    samples: Mapping[str, Sample], config: SetConfig, train_config: TrainConfig, task: str = "processes"
) -> ChannelPretraining:
    """Pretrain a set model of ``config`` on the channel files ``samples`` (name → labelled sample) at once."""
    if task not in TASKS:
        raise SqnnError(f"the pretraining task must be one of {', '.join(TASKS)}, got {task!r}")
    joined, channel, process = joined_channels(samples)
    names = list(samples)
    split = split_indices(len(joined), train_config.seed, "simulation", train_config.validation_fraction,
                          train_config.test_fraction)
    test = split["test"]
    if task == "processes":
        classes = ["background", *names]
        model, history, best_epoch, seconds = _fit_processes(joined, process, len(classes), config, train_config, split)
        standardizer = Standardizer.fit(joined.features[split["train"]])
        logit = _logits(model, torch.from_numpy(standardizer.transform(joined.features[test]))).numpy()
        accuracy: float | None = float((logit.argmax(1) == process[test]).mean())
    else:
        classes = ["background", "signal"]
        result = fit_set_model(joined, joined, make_objective("source-only"), replace(config, outputs=1), train_config)
        assert isinstance(result.model, SetModel)
        model, history, best_epoch, seconds = result.model, result.history, result.best_epoch, result.train_seconds
        score = result.probability(joined.features[test])
        accuracy = None
    test_auc = {}
    for k, name in enumerate(names):
        mine = channel[test] == k
        kind = process[test][mine]
        if task == "processes":
            # signal of this channel against background: the difference of their two logits
            value = logit[mine, k + 1] - logit[mine, BACKGROUND_CLASS]
        else:
            value = score[mine]
        test_auc[name] = float(metrics.roc_auc(value, (kind > 0).astype(np.int8), joined.weight[test][mine]))
    return ChannelPretraining(
        model=model,
        task=task,
        classes=classes,
        history=history,
        best_epoch=best_epoch,
        train_seconds=seconds,
        events={"train": len(split["train"]), "validation": len(split["validation"]), "test": len(test),
                **{name: len(samples[name]) for name in names}},
        test_auc=test_auc,
        test_accuracy=accuracy,
    )
