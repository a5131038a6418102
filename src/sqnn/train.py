"""The training loop shared by every method.

Each step forwards a batch of labelled simulation and a batch of unlabelled data of
the same size through the network in one pass; the loss is the weighted
cross-entropy on simulation plus ``γ × penalty``. Early stopping watches the same
objective on a simulation (and data) validation split; a checkpoint with the model,
the optimiser and the random state is written atomically after every epoch, so
``resume=True`` continues to the same final model as an uninterrupted run.

``distributed=True`` trains on every process of a ``torchrun`` group: each process
takes its slice of every global batch, the gradients are averaged by
DistributedDataParallel and the penalty is that of the global batch
(:mod:`sqnn.distributed`); only rank 0 writes checkpoints.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from sqnn import info
from sqnn._atomic import atomic_path, json_safe, write_json
from sqnn.data import Sample, Standardizer
from sqnn.distributed import context as process_group
from sqnn.distributed import reducing, require_supported
from sqnn.methods import Batch, Objective
from sqnn.nn import SQNN, NetworkConfig

__all__ = ["TrainConfig", "Splits", "FitResult", "fit", "split_indices", "weighted_bce"]

CHECKPOINT_TENSORS = "checkpoint.safetensors"
CHECKPOINT_STATE = "checkpoint.json"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    patience: int = 6
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0
    threads: int = 1
    monitor_events: int = 2000

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.patience < 1:
            raise ValueError("epochs and patience must be ≥ 1, batch_size ≥ 2")
        if not (0 < self.validation_fraction < 1 and 0 <= self.test_fraction < 1):
            raise ValueError("validation/test fractions must lie in (0, 1)")
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError("validation + test fractions leave too little for training")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Splits:
    """Indices of the train / validation / test events of each domain."""

    simulation: dict[str, np.ndarray]
    data: dict[str, np.ndarray]


def split_indices(n: int, seed: int, stream: int, validation: float, test: float) -> dict[str, np.ndarray]:
    """Deterministic split of ``n`` events; ``stream`` separates domains."""
    order = np.random.default_rng([int(seed), 7919, int(stream)]).permutation(n)
    n_test = int(round(n * test))
    n_val = max(1, int(round(n * validation)))
    return {
        "test": np.sort(order[:n_test]),
        "validation": np.sort(order[n_test : n_test + n_val]),
        "train": np.sort(order[n_test + n_val :]),
    }


def make_splits(simulation: Sample, data: Sample, config: TrainConfig) -> Splits:
    return Splits(
        simulation=split_indices(len(simulation), config.seed, 0, config.validation_fraction, config.test_fraction),
        data=split_indices(len(data), config.seed, 1, config.validation_fraction, config.test_fraction),
    )


def weighted_bce(logit: torch.Tensor, label: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of w · BCE; weights are normalised to mean 1 over the training set, so negative ones are fine."""
    per_event = torch.nn.functional.binary_cross_entropy_with_logits(logit, label, reduction="none")
    return (weight * per_event).mean()


@dataclass
class _Tensors:
    x: torch.Tensor
    weight: torch.Tensor
    label: torch.Tensor | None
    control: torch.Tensor | None

    @classmethod
    def of(cls, sample: Sample, index: np.ndarray, scaler: Standardizer, weight_scale: float) -> "_Tensors":
        sub = sample.subset(index)
        return cls(
            x=torch.from_numpy(scaler.transform(sub.features)),
            weight=torch.from_numpy((sub.weight / weight_scale).astype(np.float32)),
            label=None if sub.label is None else torch.from_numpy(sub.label.astype(np.float32)),
            control=None if sub.control is None else torch.from_numpy(sub.control.astype(np.float32)),
        )

    def take(self, index: torch.Tensor) -> "_Tensors":
        return _Tensors(
            x=self.x[index],
            weight=self.weight[index],
            label=None if self.label is None else self.label[index],
            control=None if self.control is None else self.control[index],
        )

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _batch(model: SQNN, sim: _Tensors, data: _Tensors, epoch: int, forward: torch.nn.Module | None = None) -> Batch:
    """One forward pass over simulation and data together (through ``forward``, e.g. a DDP wrapper, if given)."""
    logit = (forward or model)(torch.cat([sim.x, data.x]))
    theta = model.representation_theta
    output = model.representation_output
    assert theta is not None and output is not None and sim.label is not None
    n = len(sim)
    return Batch(
        sim_logit=logit[:n],
        sim_theta=theta[:n],
        sim_label=sim.label,
        sim_weight=sim.weight,
        data_logit=logit[n:],
        data_theta=theta[n:],
        data_weight=data.weight,
        sim_control=sim.control,
        data_control=data.control,
        sim_output=output[:n],
        data_output=output[n:],
        epoch=epoch,
    )


@dataclass
class FitResult:
    model: SQNN
    objective: Objective
    network: NetworkConfig
    standardizer: Standardizer
    splits: Splits
    history: list[dict[str, Any]]
    train_seconds: float
    best_epoch: int
    stopped_early: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


def _auc(score: np.ndarray, label: np.ndarray, weight: np.ndarray) -> float:
    from sqnn.metrics import roc_auc

    return roc_auc(score, label, weight)


def _monitor(
    model: SQNN, objective: Objective, sim: _Tensors, data: _Tensors, epoch: int, monitor_events: int
) -> dict[str, float]:
    """Validation objective and the information measures of the penalised layer."""
    model.eval()
    with torch.no_grad():
        batch = _batch(model, sim, data, epoch)
        assert sim.label is not None
        classification = float(weighted_bce(batch.sim_logit, sim.label, sim.weight))
        terms = objective.penalty(batch) if objective.uses_data else {}
        penalty = float(terms.get("penalty", 0.0))
        gamma = objective.gamma_at(epoch)
        theta = torch.cat([batch.sim_theta, batch.data_theta]).double()
        domain = torch.cat([torch.zeros(len(sim)), torch.ones(len(data))]).long()
        weight = torch.cat([sim.weight, data.weight]).double()
        record = {
            "val_classification": classification,
            "val_penalty": penalty,
            "val_loss": classification + gamma * penalty,
            "val_auc": _auc(batch.sim_logit.numpy(), sim.label.numpy(), sim.weight.numpy()),
            "mi_bits": float(info.factorized_mi(theta, domain, weight, n_values=2, prior="balanced")),
        }
        m = theta.shape[1]
        if model.representation_is_stochastic and m <= info.MAX_JOINT_UNITS:
            # the joint measures enumerate 2^m codes per event: use a fixed subsample
            k = min(monitor_events, len(sim), len(data))
            pick = torch.cat([torch.arange(k), len(sim) + torch.arange(k)])
            record["mi_joint_bits"] = float(
                info.joint_mi(theta[pick], domain[pick], weight[pick], n_values=2, prior="balanced")
            )
            sim_theta = batch.sim_theta[:k].double()
            record["i_tx_bits"] = float(info.mi_with_input(sim_theta, sim.weight[:k].double()))
            record["i_ty_bits"] = float(
                info.joint_mi(sim_theta, sim.label[:k].long(), sim.weight[:k].double(), n_values=2)
            )
        for key, value in terms.items():
            if key not in ("penalty", "mi_bits"):
                record[f"val_{key}"] = float(value)
    return record


def _data_probability(model: SQNN, data: _Tensors, max_events: int) -> tuple[torch.Tensor, torch.Tensor]:
    """P(signal|x) of the current model on (up to ``max_events``) data training events."""
    model.eval()
    with torch.no_grad():
        probability = torch.sigmoid(model(data.x[:max_events]).double())
    return probability, data.weight[:max_events].double()


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value.contiguous()
            else:
                scalars["state"].setdefault(str(index), {})[key] = value
    return tensors, scalars


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entries in scalars["state"].items():
        state.setdefault(int(index), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})


def _prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in state.items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    head = prefix + "."
    return {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}


def _modules(model: SQNN, objective: Objective) -> torch.nn.ModuleDict:
    return torch.nn.ModuleDict({"model": model, "extra": objective.extra})


def _save_checkpoint(
    run_dir: Path,
    modules: torch.nn.ModuleDict,
    best_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    state: dict[str, Any],
) -> None:
    tensors = _prefixed("current", modules.state_dict())
    tensors.update(_prefixed("best", best_state))
    optim_tensors, optim_scalars = _flatten_optimizer(optimizer)
    tensors.update(optim_tensors)
    tensors["rng.generator"] = generator.get_state()
    with atomic_path(run_dir / CHECKPOINT_TENSORS) as tmp:
        save_file(tensors, str(tmp))
    # strict JSON: an undefined metric (NaN) is stored as null, an infinite best loss too
    write_json(run_dir / CHECKPOINT_STATE, json_safe({**state, "optimizer": optim_scalars}))


def _load_checkpoint(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    tensors_path, state_path = run_dir / CHECKPOINT_TENSORS, run_dir / CHECKPOINT_STATE
    if not (tensors_path.exists() and state_path.exists()):
        return None
    return load_file(str(tensors_path)), json.loads(state_path.read_text())


def fit(
    simulation: Sample,
    data: Sample,
    objective: Objective,
    *,
    network: NetworkConfig | None = None,
    config: TrainConfig | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    distributed: bool = False,
) -> FitResult:
    """Train ``objective`` on labelled ``simulation`` and unlabelled ``data``.

    ``data.label`` is ignored: nothing here reads it. ``distributed=True`` needs an
    initialised process group (see :mod:`sqnn.distributed`).
    """
    config = config or TrainConfig()
    network = network or objective.network_config()
    if simulation.label is None:
        raise ValueError("simulation needs labels")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    splits = make_splits(simulation, data, config)
    standardizer = Standardizer.fit(simulation.features[splits.simulation["train"]])
    # normalise each domain's weights to mean 1 on its training events
    sim_scale = float(np.mean(simulation.weight[splits.simulation["train"]]))
    data_scale = float(np.mean(data.weight[splits.data["train"]])) or 1.0
    sim_scale = sim_scale if sim_scale > 0 else 1.0
    data_scale = data_scale if data_scale > 0 else 1.0
    train_sim = _Tensors.of(simulation, splits.simulation["train"], standardizer, sim_scale)
    train_data = _Tensors.of(data, splits.data["train"], standardizer, data_scale)
    val_sim = _Tensors.of(simulation, splits.simulation["validation"], standardizer, sim_scale)
    val_data = _Tensors.of(data, splits.data["validation"], standardizer, data_scale)
    if len(train_sim) < 2 or len(train_data) < 1:
        raise ValueError("too few events to train: need at least 2 simulated and 1 data event in the training split")

    model = objective.build(simulation.features.shape[1], network)
    modules = _modules(model, objective)
    optimizer = torch.optim.Adam(modules.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    model.set_training_generator(generator)
    group, forward, sampling = None, model, None
    if distributed:
        group = process_group()
        require_supported(objective)
        forward = torch.nn.parallel.DistributedDataParallel(model)
        # batch order stays on the shared generator; Bernoulli draws differ per process
        sampling = torch.Generator()
        model.set_training_generator(sampling)

    history: list[dict[str, Any]] = []
    best_loss, best_epoch, bad_epochs, start_epoch, elapsed = math.inf, -1, 0, 0, 0.0
    best_state = {k: v.detach().clone() for k, v in modules.state_dict().items()}
    run_path = Path(run_dir) if run_dir is not None else None
    stopped_early = False

    if resume and run_path is not None:
        loaded = _load_checkpoint(run_path)
        if loaded is not None:
            tensors, state = loaded
            modules.load_state_dict(_unprefixed("current", tensors))
            best_state = _unprefixed("best", tensors)
            _restore_optimizer(optimizer, tensors, state["optimizer"])
            generator.set_state(tensors["rng.generator"])
            history = state["history"]
            best_loss = math.inf if state["best_loss"] is None else state["best_loss"]
            best_epoch, bad_epochs = state["best_epoch"], state["bad_epochs"]
            start_epoch, elapsed, stopped_early = state["epoch"] + 1, state["train_seconds"], state["stopped"]

    batch_size = config.batch_size
    steps = max(1, math.ceil(len(train_sim) / batch_size))
    epochs = range(start_epoch, config.epochs) if not stopped_early else range(0)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.epochs, initial=start_epoch, desc=objective.name, unit="epoch", leave=False)
    sim_prior = float((train_sim.weight * train_sim.label).sum() / train_sim.weight.sum()) if train_sim.label is not None else 0.5
    for epoch in epochs:
        started = time.process_time()
        epoch_log = objective.start_epoch(epoch, *_data_probability(model, train_data, config.monitor_events * 10), sim_prior)
        if group is not None and sampling is not None:
            sampling.manual_seed(group.sampling_seed(config.seed, epoch))
        model.train()
        gamma = objective.gamma_at(epoch)
        sim_order = torch.randperm(len(train_sim), generator=generator)
        data_order = torch.randint(len(train_data), (steps * batch_size,), generator=generator)
        sums = {"classification": 0.0, "penalty": 0.0}
        for step in range(steps):
            sim_batch = train_sim.take(sim_order[step * batch_size : (step + 1) * batch_size])
            n = len(sim_batch)
            data_batch = train_data.take(data_order[step * batch_size : step * batch_size + n])
            if group is not None:
                part = group.shard(n)
                sim_batch, data_batch = sim_batch.take(part), data_batch.take(part)
            if objective.uses_data:
                batch = _batch(model, sim_batch, data_batch, epoch, forward)
            else:
                logit = forward(sim_batch.x)
                batch = Batch(logit, logit, sim_batch.label, sim_batch.weight, logit[:0], logit[:0], data_batch.weight[:0])
            assert sim_batch.label is not None
            if group is None:
                classification = weighted_bce(batch.sim_logit, sim_batch.label, sim_batch.weight)
            else:
                # this process's share of the global batch mean, times W: DDP averages over the W processes
                per_event = torch.nn.functional.binary_cross_entropy_with_logits(batch.sim_logit, sim_batch.label, reduction="none")
                classification = (sim_batch.weight * per_event).sum() * (group.world_size / n)
            loss = classification
            if objective.uses_data and gamma > 0:
                if group is None:
                    penalty = objective.penalty(batch)["penalty"]
                else:
                    # the same global value on every process; its reduction sums the gradients over them
                    with reducing(objective):
                        penalty = objective.penalty(batch)["penalty"]
                loss = loss + gamma * penalty
                sums["penalty"] += float(penalty.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["classification"] += float(classification.detach())
        if group is not None:
            sums["classification"] = float(group.sum(torch.tensor(sums["classification"], dtype=torch.float64))) / group.world_size
        record: dict[str, Any] = {
            "epoch": epoch,
            "gamma": gamma,
            "loss_classification": sums["classification"] / steps,
            "loss_penalty": sums["penalty"] / steps,
        }
        record["loss_total"] = record["loss_classification"] + gamma * record["loss_penalty"]
        record.update(epoch_log)
        record.update(_monitor(model, objective, val_sim, val_data, epoch, config.monitor_events))
        elapsed += time.process_time() - started
        record["cpu_seconds"] = elapsed
        if group is not None:
            # every process follows rank 0's record, so all take the same early-stopping decisions
            record = group.from_main(record)
        history.append(record)
        if record["val_loss"] < best_loss - 1e-6:
            best_loss, best_epoch, bad_epochs = record["val_loss"], epoch, 0
            best_state = {k: v.detach().clone() for k, v in modules.state_dict().items()}
        else:
            bad_epochs += 1
        stopped_early = bad_epochs >= config.patience and epoch + 1 < config.epochs
        if run_path is not None and (group is None or group.is_main):
            _save_checkpoint(
                run_path,
                modules,
                best_state,
                optimizer,
                generator,
                {
                    "epoch": epoch,
                    "history": history,
                    "best_loss": best_loss,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                    "train_seconds": elapsed,
                    "stopped": stopped_early,
                },
            )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['val_loss']:.4f}", auc=f"{record['val_auc']:.4f}", mi=f"{record['mi_bits']:.4f}")
        if stopped_early:
            break
    if bar is not None:
        bar.close()
    modules.load_state_dict(best_state)
    model.eval()
    return FitResult(
        model=model,
        objective=objective,
        # the fitted network's own config: fixed-point grids chosen in training are part of it
        network=getattr(model, "config", network),
        standardizer=standardizer,
        splits=splits,
        history=history,
        train_seconds=elapsed,
        best_epoch=best_epoch,
        stopped_early=stopped_early,
    )
