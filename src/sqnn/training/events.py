"""The events a training reads: in memory, or read in chunks from files larger than memory.

Both kinds give the loop the same things: the splits' sizes, the standardisation fitted on
the simulated training events, the validation events, the first data training events (from
which the data's signal fraction is estimated), and the training events of an epoch as a
sequence of *blocks*, each a pair (simulated, data) of tensors that the loop shuffles into
batches.

In memory (:class:`InMemoryEvents`) an epoch is one block: every training event. Read in chunks
(:class:`ChunkedEvents`) an epoch reads the simulation file chunk by chunk (the chunks in a
new random order each epoch), each chunk's training events paired with a chunk of the data
file's training events, taken in turn; at most one chunk of each file and the validation
events (up to ``max_validation`` per domain) are held. Everything computed over the whole
file — the standardisation, the weight normalisation, the signal fraction of simulation —
is accumulated in one pass over the chunks before the first epoch; of the splits only the test
events' rows are kept (the evaluation reads them). A file that fits in one chunk gives
exactly the tensors, the random draws and so the model of the in-memory training.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from sqnn.data import ColumnSpec, Sample, Splits, Standardizer, make_splits
from sqnn.data.splits import TEST, TRAIN, VALIDATION, split_roles
from sqnn.data.chunks import DEFAULT_CHUNK, Piece, count_events, plan_pieces, sample_chunks
from sqnn.errors import DataError
from sqnn.training.config import TrainConfig

__all__ = ["InMemoryEvents", "ChunkedEvents", "ChunkedInput", "Tensors", "TrainingEvents"]



@dataclass
class Tensors:
    """Standardised features, normalised weights, labels and region flags of some events, on one device."""

    x: torch.Tensor
    weight: torch.Tensor
    label: torch.Tensor | None
    control: torch.Tensor | None
    signal_control: torch.Tensor | None = None

    def region(self, role: str) -> torch.Tensor | None:
        """The flag of the enriched region ``role`` (``control`` or ``signal_control``), None without it."""
        return {"control": self.control, "signal_control": self.signal_control}[role]

    @classmethod
    def of(cls, sample: Sample, index: np.ndarray, scaler: Standardizer, weight_scale: float, device: torch.device) -> "Tensors":
        sub = sample.subset(index)
        return cls(
            x=torch.from_numpy(scaler.transform(sub.features)).to(device),
            weight=torch.from_numpy((sub.weight / weight_scale).astype(np.float32)).to(device),
            label=None if sub.label is None else torch.from_numpy(sub.label.astype(np.float32)).to(device),
            control=None if sub.control is None else torch.from_numpy(sub.control.astype(np.float32)).to(device),
            signal_control=None if sub.signal_control is None
            else torch.from_numpy(sub.signal_control.astype(np.float32)).to(device),
        )

    @classmethod
    def joined(cls, parts: list["Tensors"]) -> "Tensors":
        def cat(tensors: list[torch.Tensor | None]) -> torch.Tensor | None:
            return None if tensors[0] is None else torch.cat(tensors)  # type: ignore[arg-type]

        if len(parts) == 1:
            return parts[0]
        return cls(
            x=torch.cat([p.x for p in parts]),
            weight=torch.cat([p.weight for p in parts]),
            label=cat([p.label for p in parts]),
            control=cat([p.control for p in parts]),
            signal_control=cat([p.signal_control for p in parts]),
        )

    def take(self, index: torch.Tensor | slice) -> "Tensors":
        return Tensors(
            x=self.x[index],
            weight=self.weight[index],
            label=None if self.label is None else self.label[index],
            control=None if self.control is None else self.control[index],
            signal_control=None if self.signal_control is None else self.signal_control[index],
        )

    def __len__(self) -> int:
        return int(self.x.shape[0])


class TrainingEvents(Protocol):
    """What the loop reads, whether the events are in memory or read in chunks."""

    splits: Splits
    standardizer: Standardizer
    val_sim: Tensors
    val_data: Tensors
    probe_data: Tensors
    sim_prior: float
    n_train_sim: int
    n_events: tuple[int, int]

    def blocks(self, generator: torch.Generator) -> Iterator[tuple[Tensors, Tensors]]:
        """The (simulated, data) training events of one epoch, block by block."""
        ...


def _weight_scale(total: float, count: int) -> float:
    """Weights are normalised to mean 1 on a domain's training events (1 when that mean is not positive)."""
    mean = total / count if count else 0.0
    return mean if mean > 0 else 1.0


def _sim_prior(sim: Tensors) -> float:
    assert sim.label is not None
    return float((sim.weight * sim.label).sum() / sim.weight.sum())


def _check_trainable(n_sim: int, n_data: int) -> None:
    if n_sim < 2 or n_data < 1:
        raise ValueError("too few events to train: need at least 2 simulated and 1 data event in the training split")


def splits_of(n_simulation: int, n_data: int, config: TrainConfig) -> Splits:
    """The train / validation / test splits that training with ``config`` uses."""
    return make_splits(n_simulation, n_data, config.seed, config.validation_fraction, config.test_fraction)


@dataclass
class InMemoryEvents:
    """Both samples in memory: an epoch is one block of every training event."""

    splits: Splits
    standardizer: Standardizer
    train_sim: Tensors
    train_data: Tensors
    val_sim: Tensors
    val_data: Tensors
    probe_events: int

    @classmethod
    def of(cls, simulation: Sample, data: Sample, config: TrainConfig, device: torch.device) -> "InMemoryEvents":
        splits = splits_of(len(simulation), len(data), config)
        sim_train, data_train = splits.simulation["train"], splits.data["train"]
        standardizer = Standardizer.fit(simulation.features[sim_train])
        sim_scale = _weight_scale(float(np.sum(simulation.weight[sim_train])), len(sim_train))
        data_scale = _weight_scale(float(np.sum(data.weight[data_train])), len(data_train))
        events = cls(
            splits=splits,
            standardizer=standardizer,
            train_sim=Tensors.of(simulation, sim_train, standardizer, sim_scale, device),
            train_data=Tensors.of(data, data_train, standardizer, data_scale, device),
            val_sim=Tensors.of(simulation, splits.simulation["validation"], standardizer, sim_scale, device),
            val_data=Tensors.of(data, splits.data["validation"], standardizer, data_scale, device),
            probe_events=config.monitor_events * 10,
        )
        _check_trainable(len(events.train_sim), len(events.train_data))
        return events

    @property
    def sim_prior(self) -> float:
        return _sim_prior(self.train_sim)

    @property
    def probe_data(self) -> Tensors:
        return self.train_data.take(slice(0, self.probe_events))

    @property
    def n_train_sim(self) -> int:
        return len(self.train_sim)

    @property
    def n_events(self) -> tuple[int, int]:
        """Events of (simulation, data), all splits."""
        return tuple(sum(len(v) for v in split.values()) for split in (self.splits.simulation, self.splits.data))  # type: ignore[return-value]

    def blocks(self, generator: torch.Generator) -> Iterator[tuple[Tensors, Tensors]]:
        yield self.train_sim, self.train_data


@dataclass(frozen=True)
class ChunkedInput:
    """A file read in chunks of ``chunk`` events, with the columns of ``columns``."""

    path: str
    columns: ColumnSpec
    domain: str
    chunk: int = DEFAULT_CHUNK

    def pieces(self) -> list[Piece]:
        return plan_pieces(self.path, self.chunk)

    def chunks(self, pieces: list[Piece] | None = None) -> Iterator[tuple[int, Sample]]:
        return sample_chunks(self.path, self.columns, self.domain, self.chunk, pieces)  # type: ignore[arg-type]


@dataclass
class _Moments:
    """Running count, mean and sum of squared deviations per feature (Chan et al.'s parallel update).

    One chunk gives exactly :meth:`Standardizer.fit` of that chunk.
    """

    count: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            return
        mean = x.mean(0)
        deviation = x - mean
        m2 = np.multiply(deviation, deviation).sum(0)
        if self.count == 0:
            self.count, self.mean, self.m2 = len(x), mean, m2
            return
        assert self.mean is not None and self.m2 is not None
        total = self.count + len(x)
        delta = mean - self.mean
        self.mean = self.mean + delta * (len(x) / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.count * len(x) / total)
        self.count = total

    def standardizer(self) -> Standardizer:
        assert self.mean is not None and self.m2 is not None
        scale = np.sqrt(self.m2 / self.count)
        return Standardizer(mean=self.mean, scale=np.where(scale > 1e-12, scale, 1.0))


@dataclass
class _FileSums:
    """What the first pass learns of one file's training events."""

    events: int = 0
    weight: float = 0.0
    weighted_signal: float = 0.0
    chunks: int = 0
    classes: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    # the file's only chunk, when it has one: it then stays in memory
    single: Sample | None = None


@dataclass
class ChunkedEvents:
    """Simulation and data read chunk by chunk from their files, never whole."""

    simulation: ChunkedInput
    data: ChunkedInput
    splits: Splits
    standardizer: Standardizer
    scales: dict[str, float]
    roles: dict[str, np.ndarray]
    device: torch.device
    n_train_sim: int
    val_sim: Tensors | None = None
    val_data: Tensors | None = None
    probe_data: Tensors | None = None
    sim_prior: float = 0.0
    # the training events of a file that is one chunk, kept as the in-memory training keeps them
    _kept: dict[str, Tensors] = field(default_factory=dict)
    _next_data_chunk: int = 0

    @classmethod
    def of(
        cls, simulation: ChunkedInput, data: ChunkedInput, config: TrainConfig, device: torch.device,
        max_validation: int = 100_000,
    ) -> "ChunkedEvents":
        roles = {
            role: split_roles(count_events(source.path), config.seed, role, config.validation_fraction, config.test_fraction)
            for role, source in (("simulation", simulation), ("data", data))
        }
        # the roles say where every event goes; of the index arrays only the held-out events are kept
        splits = Splits(**{role: {"test": np.flatnonzero(r == TEST)} for role, r in roles.items()})
        moments = _Moments()
        sums = {"simulation": _sum_file(simulation, roles["simulation"], moments), "data": _sum_file(data, roles["data"], None)}
        classes = sums["simulation"].classes
        if (classes == 0).any():
            missing = "signal" if classes[1] == 0 else "background"
            raise DataError(f"{simulation.path}: label column {simulation.columns.label!r} has no {missing} events "
                            f"({int(classes.sum())} events); simulation needs both classes")
        _check_trainable(sums["simulation"].events, sums["data"].events)
        events = cls(
            simulation=simulation, data=data, splits=splits, standardizer=moments.standardizer(),
            scales={role: _weight_scale(s.weight, s.events) for role, s in sums.items()},
            roles=roles, device=device, n_train_sim=sums["simulation"].events,
        )
        for role, file_sums in sums.items():
            if file_sums.single is not None:
                events._kept[role] = events._tensors(role, file_sums.single, 0, TRAIN)
        events.val_sim = events._validation("simulation", max_validation)
        events.val_data = events._validation("data", max_validation)
        events.probe_data = events._first_training_events("data", config.monitor_events * 10)
        if "simulation" in events._kept:
            events.sim_prior = _sim_prior(events._kept["simulation"])
        else:
            events.sim_prior = sums["simulation"].weighted_signal / sums["simulation"].weight
        return events

    @property
    def n_events(self) -> tuple[int, int]:
        """Events of (simulation, data), all splits."""
        return len(self.roles["simulation"]), len(self.roles["data"])

    def _source(self, role: str) -> ChunkedInput:
        return self.simulation if role == "simulation" else self.data

    def _tensors(self, role: str, chunk: Sample, first: int, split: int) -> Tensors:
        where = np.flatnonzero(self.roles[role][first : first + len(chunk)] == split)
        return Tensors.of(chunk, where, self.standardizer, self.scales[role], self.device)

    def _validation(self, role: str, limit: int) -> Tensors:
        """The validation events of one file, its first ``limit`` when it has more."""
        parts: list[Tensors] = []
        held = 0
        for first, chunk in self._source(role).chunks():
            parts.append(self._tensors(role, chunk, first, VALIDATION).take(slice(0, limit - held)))
            held += len(parts[-1])
            if held >= limit:
                break
        return Tensors.joined(parts)

    def _first_training_events(self, role: str, limit: int) -> Tensors:
        if role in self._kept:
            return self._kept[role].take(slice(0, limit))
        parts: list[Tensors] = []
        held = 0
        for first, chunk in self._source(role).chunks():
            parts.append(self._tensors(role, chunk, first, TRAIN).take(slice(0, limit - held)))
            held += len(parts[-1])
            if held >= limit:
                break
        return Tensors.joined(parts)

    def _training_chunks(self, role: str, pieces: list[Piece] | None = None) -> Iterator[Tensors]:
        if role in self._kept:
            yield self._kept[role]
            return
        for first, chunk in self._source(role).chunks(pieces):
            yield self._tensors(role, chunk, first, TRAIN)

    def blocks(self, generator: torch.Generator) -> Iterator[tuple[Tensors, Tensors]]:
        """Each simulated chunk's training events with the next data chunk's; the pieces of the file in a new order each epoch."""
        pieces = self.simulation.pieces()
        if len(pieces) > 1 and "simulation" not in self._kept:
            pieces = [pieces[i] for i in torch.randperm(len(pieces), generator=generator).tolist()]
        data_chunks = self._data_cycle()
        for sim in self._training_chunks("simulation", pieces):
            if len(sim):
                yield sim, next(data_chunks)

    def _data_cycle(self) -> Iterator[Tensors]:
        """The data file's training chunks, in turn, carrying on where the last epoch stopped."""
        while True:
            produced = resumed = False
            for index, chunk in enumerate(self._training_chunks("data")):
                resumed = resumed or index < self._next_data_chunk
                if index < self._next_data_chunk or not len(chunk):
                    continue
                produced = True
                self._next_data_chunk = index + 1
                yield chunk
            if not (produced or resumed):
                raise DataError(f"{self.data.path}: no training events in the data file")
            self._next_data_chunk = 0


def _sum_file(source: ChunkedInput, roles: np.ndarray, moments: _Moments | None) -> _FileSums:
    """One pass over a file: the sums over its training events (and their feature moments)."""
    sums = _FileSums()
    for first, chunk in source.chunks():
        train = roles[first : first + len(chunk)] == TRAIN
        if moments is not None:
            moments.add(chunk.features[train])
        weight = chunk.weight[train]
        sums.weight += float(np.sum(weight))
        sums.events += int(train.sum())
        if chunk.label is not None:
            label = chunk.label[train]
            sums.weighted_signal += float(np.sum(weight * label))
            sums.classes += np.bincount(chunk.label.astype(np.int64), minlength=2)[:2]
        sums.chunks += 1
        sums.single = chunk if sums.chunks == 1 else None
    return sums


