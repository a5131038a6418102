"""The training loop shared by every method trained as a network.

Each step forwards a batch of labelled simulation and a batch of unlabelled data of
the same size through the network in one pass; the loss is the weighted
cross-entropy on simulation plus ``γ × penalty``. Early stopping watches the same
objective on a simulation (and data) validation split; a checkpoint with the model,
the optimiser and the random state is written atomically after every epoch, so
``resume=True`` continues to the same final model as an uninterrupted run.

``distributed=True`` trains on every process of a ``torchrun`` group: each process
takes its slice of every global batch, the gradients are averaged by
DistributedDataParallel and the penalty is that of the global batch
(:mod:`sqnn.training.parallel`); only rank 0 writes checkpoints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sqnn import info
from sqnn.data import Sample, Splits, Standardizer
from sqnn.devices import resolve_device
from sqnn import regions
from sqnn.methods import Batch, Objective
from sqnn.methods.base import RegionBatch, RegionCounts
from sqnn.metrics import roc_auc
from sqnn.nn import NetworkConfig
from sqnn.nn.layers import StochasticModule
from sqnn.runs import forward_in_batches
from sqnn.training.checkpoint import load_checkpoint, restore_optimizer, save_checkpoint, unprefixed
from sqnn.training.config import TrainConfig
from sqnn.training.events import InMemoryEvents, ChunkedEvents, ChunkedInput, Tensors, TrainingEvents, splits_of
from sqnn.training.parallel import Context, all_reduce_sum, local_rank, require_supported
from sqnn.training.parallel import context as process_group
from sqnn.training.progress import FitProgress, fit_progress

__all__ = ["FitResult", "fit", "splits_for", "weighted_bce"]


def splits_for(simulation: Sample, data: Sample, config: TrainConfig) -> Splits:
    """The train / validation / test splits that training with ``config`` uses."""
    return splits_of(len(simulation), len(data), config)


def weighted_bce(logit: torch.Tensor, label: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of w · BCE; weights are normalised to mean 1 over the training set, so negative ones are fine."""
    per_event = torch.nn.functional.binary_cross_entropy_with_logits(logit, label, reduction="none")
    return (weight * per_event).mean()


def _region_pools(objective: Objective, sim: Tensors, data: Tensors) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """For each region the penalty reads: the simulated events that stand for it and the data events inside it."""
    pools = {}
    for role in objective.region_roles():
        sim_flag, data_flag = sim.region(role), data.region(role)
        if sim_flag is None or data_flag is None:
            continue
        stand_for = torch.arange(len(sim)) if regions.INDEPENDENT[role] else torch.nonzero(sim_flag.cpu() > 0.5).squeeze(1)
        inside = torch.nonzero(data_flag.cpu() > 0.5).squeeze(1)
        if len(stand_for) and len(inside):
            pools[role] = (stand_for, inside)
    return pools


def _region_batches(
    model: torch.nn.Module, sim: Tensors, data: Tensors, pools: dict[str, tuple[torch.Tensor, torch.Tensor]],
    picks: dict[str, tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, RegionBatch]:
    """One forward pass over the events ``picks`` chose from each region's pools (positions into the pools)."""
    if not picks:
        return {}
    parts_sim = {role: sim.take(pools[role][0][s]) for role, (s, _) in picks.items()}
    parts_data = {role: data.take(pools[role][1][d]) for role, (_, d) in picks.items()}
    x = torch.cat([torch.cat([parts_sim[r].x, parts_data[r].x]) for r in picks])
    logit, theta, output = model(x, outputs=True)
    out, start = {}, 0
    for role in picks:
        n_sim, n_data = len(parts_sim[role]), len(parts_data[role])
        label = parts_sim[role].label
        assert label is not None
        out[role] = RegionBatch(
            sim_theta=theta[start : start + n_sim], sim_logit=logit[start : start + n_sim], sim_label=label,
            sim_weight=parts_sim[role].weight, data_theta=theta[start + n_sim : start + n_sim + n_data],
            data_logit=logit[start + n_sim : start + n_sim + n_data], data_weight=parts_data[role].weight,
            sim_output=output[start : start + n_sim], data_output=output[start + n_sim : start + n_sim + n_data],
        )
        start += n_sim + n_data
    return out


def region_counts(sim: Tensors, data: Tensors) -> dict[str, RegionCounts]:
    """Each enriched region given in both domains: its simulated selection efficiency per class and its share of data."""
    counts = {}
    assert sim.label is not None
    label, weight = sim.label.cpu().numpy(), sim.weight.double().cpu().numpy()
    data_weight = data.weight.double().cpu().numpy()
    for role in regions.REGION_ROLES:
        sim_flag, data_flag = sim.region(role), data.region(role)
        if sim_flag is None or data_flag is None:
            continue
        e_s, e_b = regions.selection_efficiencies(sim_flag.cpu().numpy() > 0.5, label, weight)
        total = float(data_weight.sum())
        rate = float(data_weight[data_flag.cpu().numpy() > 0.5].sum()) / total if total > 0 else float("nan")
        counts[role] = RegionCounts(e_s, e_b, rate)
    return counts


def _batch(model: StochasticModule, sim: Tensors, data: Tensors, epoch: int, forward: torch.nn.Module | None = None) -> Batch:
    """One forward pass over simulation and data together (through ``forward``, e.g. a DDP wrapper, if given)."""
    logit, theta, output = (forward or model)(torch.cat([sim.x, data.x]), outputs=True)
    assert sim.label is not None
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
    model: StochasticModule
    objective: Objective
    network: Any
    standardizer: Standardizer
    splits: Splits
    history: list[dict[str, Any]]
    train_seconds: float
    best_epoch: int
    stopped_early: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def probability(self, features: np.ndarray) -> np.ndarray:
        """P(signal|x) of the fitted model for raw features, as it scores by default."""
        logit = forward_in_batches(self.model, self.standardizer, features)
        return torch.sigmoid(torch.from_numpy(logit)).double().numpy()


def _monitor(
    model: StochasticModule, objective: Objective, sim: Tensors, data: Tensors, epoch: int, monitor_events: int
) -> dict[str, float]:
    """Validation objective and the information measures of the penalised layer."""
    model.eval()
    with torch.no_grad():
        batch = _batch(model, sim, data, epoch)
        assert sim.label is not None
        classification = float(weighted_bce(batch.sim_logit, sim.label, sim.weight))
        # the penalty of the validation events, on a fixed subsample as the joint measures below
        k = min(monitor_events, len(sim), len(data))
        first = batch.first(k, k)
        pools = _region_pools(objective, sim, data)
        first.regions = _region_batches(model, sim, data, pools, {
            role: (torch.arange(min(k, len(s))), torch.arange(min(k, len(d)))) for role, (s, d) in pools.items()
        })
        terms = objective.penalty(first) if objective.uses_data else {}
        penalty = float(terms.get("penalty", 0.0))
        gamma = objective.gamma_at(epoch)
        theta = batch.theta.double()
        domain = batch.domain
        weight = batch.weight.double()
        record = {
            "val_classification": classification,
            "val_penalty": penalty,
            "val_loss": classification + gamma * penalty,
            "val_auc": roc_auc(batch.sim_logit.cpu().numpy(), sim.label.cpu().numpy(), sim.weight.cpu().numpy()),
            "mi_bits": float(info.factorized_mi(theta, domain, weight, n_values=2, prior="balanced")),
        }
        m = theta.shape[1]
        if model.representation_is_stochastic and m <= info.MAX_JOINT_UNITS:
            # the joint measures enumerate 2^m codes per event: use the fixed subsample
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


def _data_probability(model: StochasticModule, data: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
    """P(signal|x) of the current model on the first data training events."""
    model.eval()
    with torch.no_grad():
        probability = torch.sigmoid(model(data.x).double())
    return probability, data.weight.double()


@dataclass
class _Progress:
    """The early-stopping state of a training, as the checkpoint stores it."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    next_epoch: int = 0
    elapsed: float = 0.0
    stopped: bool = False

    def record(self, entry: dict[str, Any], patience: int, last_epoch: bool) -> bool:
        """Add an epoch's record; returns whether it is the best so far."""
        self.history.append(entry)
        improved = entry["val_loss"] < self.best_loss - 1e-6
        if improved:
            self.best_loss, self.best_epoch, self.bad_epochs = entry["val_loss"], entry["epoch"], 0
        else:
            self.bad_epochs += 1
        self.stopped = self.bad_epochs >= patience and not last_epoch
        self.next_epoch = entry["epoch"] + 1
        return improved

    def state(self) -> dict[str, Any]:
        return {
            "epoch": self.next_epoch - 1,
            "history": self.history,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "train_seconds": self.elapsed,
            "stopped": self.stopped,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "_Progress":
        return cls(
            history=state["history"],
            best_loss=math.inf if state["best_loss"] is None else state["best_loss"],
            best_epoch=state["best_epoch"],
            bad_epochs=state["bad_epochs"],
            next_epoch=state["epoch"] + 1,
            elapsed=state["train_seconds"],
            stopped=state["stopped"],
        )


def _train_epoch(
    model: StochasticModule,
    forward: torch.nn.Module,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    events: TrainingEvents,
    epoch: int,
    batch_size: int,
    group: Context | None,
) -> dict[str, float]:
    """One pass over the simulated training events, block by block; returns the mean loss terms."""
    model.train()
    gamma = objective.gamma_at(epoch)
    # a distributed penalty is that of the global batch: its event sums are added over processes
    reduce = None if group is None else all_reduce_sum
    sums = {"classification": 0.0, "penalty": 0.0}
    steps_run = penalised = 0
    for train_sim, train_data in events.blocks(generator):
        pools = _region_pools(objective, train_sim, train_data)
        steps = max(1, math.ceil(len(train_sim) / batch_size))
        sim_order = torch.randperm(len(train_sim), generator=generator)
        data_order = torch.randint(len(train_data), (steps * batch_size,), generator=generator)
        for step in range(steps):
            sim_batch = train_sim.take(sim_order[step * batch_size : (step + 1) * batch_size])
            n = len(sim_batch)
            data_batch = train_data.take(data_order[step * batch_size : step * batch_size + n])
            if group is not None:
                part = group.shard(n)
                sim_batch, data_batch = sim_batch.take(part), data_batch.take(part)
            assert sim_batch.label is not None
            scale = objective.penalty_scale(steps_run + step)
            penalised_step = objective.uses_data and gamma > 0 and scale > 0
            if penalised_step:
                batch = _batch(model, sim_batch, data_batch, epoch, forward)
            else:
                # a step without the penalty reads no data: the classification loss is on simulation alone
                logit = forward(sim_batch.x)
                batch = Batch(logit, logit, sim_batch.label, sim_batch.weight, logit[:0], logit[:0], data_batch.weight[:0])
            if group is None:
                classification = weighted_bce(batch.sim_logit, sim_batch.label, sim_batch.weight)
            else:
                # this process's share of the global batch mean, times W: DDP averages over the W processes
                per_event = torch.nn.functional.binary_cross_entropy_with_logits(batch.sim_logit, sim_batch.label, reduction="none")
                classification = (sim_batch.weight * per_event).sum() * (group.world_size / n)
            loss = classification
            if penalised_step:
                if pools:
                    # each region's own events, drawn for the penalised steps only
                    batch.regions = _region_batches(forward, train_sim, train_data, pools, {
                        role: (torch.randint(len(s), (batch_size,), generator=generator),
                               torch.randint(len(d), (batch_size,), generator=generator))
                        for role, (s, d) in pools.items()
                    })
                penalty = objective.penalty(batch, reduce)["penalty"]
                loss = loss + gamma * scale * penalty
                sums["penalty"] += float(penalty.detach())
                penalised += 1
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["classification"] += float(classification.detach())
        steps_run += steps
    if group is not None:
        sums["classification"] = float(group.sum(torch.tensor(sums["classification"], dtype=torch.float64))) / group.world_size
    return {
        "epoch": epoch,
        "gamma": gamma,
        "loss_classification": sums["classification"] / steps_run,
        "loss_penalty": sums["penalty"] / max(penalised, 1),
    }


def parameter_groups(
    modules: torch.nn.ModuleDict, learning_rate: float, learning_rates: Mapping[str, float] | None
) -> list[dict[str, Any]]:
    """Optimiser groups: the model's parameters named by a prefix of ``learning_rates`` get its rate.

    Without ``learning_rates`` one group of every parameter, in the order checkpoints store them.
    """
    if not learning_rates:
        return [{"params": list(modules.parameters())}]
    for prefix, rate in learning_rates.items():
        if not rate >= 0:
            raise ValueError(f"the learning rate of {prefix!r} must be non-negative, got {rate}")
    named = list(modules.named_parameters())
    unmatched = [p for p in learning_rates if not any(name.startswith("model." + p) for name, _ in named)]
    if unmatched:
        raise ValueError(f"no parameter name of the model starts with {', '.join(unmatched)}")
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, parameter in named:
        rate = next((r for p, r in learning_rates.items() if name.startswith("model." + p)), learning_rate)
        groups.setdefault(float(rate), []).append(parameter)
    return [{"params": params, "lr": rate} for rate, params in groups.items()]


def _epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the Bernoulli draws of ``epoch`` on a GPU: independent per epoch, resumable."""
    return int(np.random.SeedSequence([int(seed), 7877, int(epoch)]).generate_state(1, np.uint64)[0] >> 1)


def fit(
    simulation: Sample | ChunkedInput,
    data: Sample | ChunkedInput,
    objective: Objective,
    *,
    network: NetworkConfig | None = None,
    config: TrainConfig | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | FitProgress = False,
    distributed: bool = False,
    model: StochasticModule | None = None,
    checkpoint_settings: dict[str, Any] | None = None,
    learning_rates: Mapping[str, float] | None = None,
) -> FitResult:
    """Train ``objective`` on labelled ``simulation`` and unlabelled ``data``.

    ``data.label`` is ignored: nothing here reads it. Samples in memory, or files read in
    chunks (:class:`~sqnn.training.events.ChunkedInput`) when they are larger than memory.
    ``model`` is a network built beforehand (a set model); otherwise the objective builds
    its own from ``network``. ``config.device`` says where the tensors live; the model that
    is returned is on the CPU. ``distributed=True`` needs an initialised process group (see
    :mod:`sqnn.training.parallel`). ``progress`` shows the epochs on stderr (``True``) or
    tells them to a :class:`~sqnn.training.progress.FitProgress`.
    ``checkpoint_settings`` are recorded in every checkpoint, so that a resumed training can
    be checked against them (:func:`sqnn.training.checkpoint.settings_differences`).
    ``learning_rates`` maps prefixes of the model's parameter
    names to their own learning rate (e.g. a pretrained encoder that moves slower than a new
    head); the other parameters use ``config.learning_rate``.
    """
    config = config or TrainConfig()
    device = resolve_device(config.device)
    if distributed and device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    events: TrainingEvents
    if isinstance(simulation, ChunkedInput):
        assert isinstance(data, ChunkedInput)
        events = ChunkedEvents.of(simulation, data, config, device)
        n_inputs = events.val_sim.x.shape[1]  # type: ignore[union-attr]
    else:
        assert isinstance(data, Sample)
        if simulation.label is None:
            raise ValueError("simulation needs labels")
        events = InMemoryEvents.of(simulation, data, config, device)
        n_inputs = simulation.features.shape[1]

    if model is None:
        network = network or objective.network_config()
        model = objective.build(n_inputs, network)
    else:
        if model.n_inputs != n_inputs:
            raise ValueError(f"the model reads {model.n_inputs} inputs, the sample has {n_inputs}")
        objective.attach(model)
        network = model.config
    modules = torch.nn.ModuleDict({"model": model, "extra": objective.extra}).to(device)
    optimizer = torch.optim.Adam(
        parameter_groups(modules, config.learning_rate, learning_rates), lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    # batch order always comes from a CPU generator: the same batches on every device
    generator = torch.Generator().manual_seed(config.seed)
    model.set_training_generator(generator)
    group, forward, sampling = None, model, None
    if device.type == "cuda":
        # Bernoulli draws of a GPU run come from a generator on the GPU, seeded per epoch
        sampling = torch.Generator(device=device)
        model.set_training_generator(sampling)
    if distributed:
        group = process_group()
        require_supported(objective)
        forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        # batch order stays on the shared generator; Bernoulli draws differ per process
        sampling = torch.Generator(device=device)
        model.set_training_generator(sampling)

    state = _Progress()
    best_state = {k: v.detach().clone() for k, v in modules.state_dict().items()}
    run_path = Path(run_dir) if run_dir is not None else None
    if resume and run_path is not None:
        loaded = load_checkpoint(run_path)
        if loaded is not None:
            tensors, saved = loaded
            modules.load_state_dict(unprefixed("current", tensors))
            best_state = {k: v.to(device) for k, v in unprefixed("best", tensors).items()}
            restore_optimizer(optimizer, tensors, saved["optimizer"])
            generator.set_state(tensors["rng.generator"])
            state = _Progress.from_state(saved)

    epochs = range(state.next_epoch, config.epochs) if not state.stopped else range(0)
    shown = fit_progress(progress)
    shown.start_fit(objective, config.epochs, state.next_epoch)
    sim_prior = events.sim_prior
    if isinstance(events, InMemoryEvents):
        objective.set_regions(region_counts(events.train_sim, events.train_data), sim_prior)
    for epoch in epochs:
        started = time.process_time()
        epoch_log = objective.start_epoch(epoch, *_data_probability(model, events.probe_data), sim_prior)
        if group is not None and sampling is not None:
            sampling.manual_seed(group.sampling_seed(config.seed, epoch))
        elif sampling is not None:
            sampling.manual_seed(_epoch_seed(config.seed, epoch))
        record: dict[str, Any] = _train_epoch(
            model, forward, objective, optimizer, generator, events, epoch, config.batch_size, group
        )
        # what the network fixes from what training observed (the grids of a fixed-point network): an explicit step
        model.finish_epoch()
        record["loss_total"] = record["loss_classification"] + record["gamma"] * record["loss_penalty"]
        record.update(epoch_log)
        record.update(_monitor(model, objective, events.val_sim, events.val_data, epoch, config.monitor_events))
        state.elapsed += time.process_time() - started
        record["cpu_seconds"] = state.elapsed
        if group is not None:
            # every process follows rank 0's record, so all take the same early-stopping decisions
            record = group.from_main(record)
        if state.record(record, config.patience, last_epoch=epoch + 1 >= config.epochs):
            best_state = {k: v.detach().clone() for k, v in modules.state_dict().items()}
        if run_path is not None and (group is None or group.is_main):
            save_checkpoint(run_path, modules, best_state, optimizer, generator, state.state(), checkpoint_settings)
        shown.epoch_done(record, state.best_epoch)
        if state.stopped:
            break
    shown.fit_done(state.best_epoch, len(state.history), state.stopped, config.patience)
    modules.load_state_dict(best_state)
    modules.cpu()
    model.set_training_generator(None)
    model.eval()
    return FitResult(
        model=model,
        objective=objective,
        # the fitted network's own config: fixed-point grids chosen in training are part of it
        network=getattr(model, "config", network),
        standardizer=events.standardizer,
        splits=events.splits,
        history=state.history,
        train_seconds=state.elapsed,
        best_epoch=state.best_epoch,
        stopped_early=state.stopped,
        extras={"device": device.type, "train_events": events.n_train_sim, "events": events.n_events},
    )
