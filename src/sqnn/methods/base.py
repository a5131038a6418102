"""What a training objective is: a network, optional extra modules and a penalty — and how the method describes itself.

The shared loop in :mod:`sqnn.training` forwards one balanced batch of simulation and
data through the network, computes the weighted cross-entropy on labelled simulation,
and adds ``gamma × objective.penalty(batch)``. A new method is one module defining a
subclass and one line in :data:`sqnn.methods.METHODS`.

Everything the rest of the package needs to know about a method is declared on its class
(:class:`Objective`'s class attributes and class methods): its options with their types and
ranges (:attr:`Objective.option_rules`, checked once, here), the strengths a comparison and
the demo sweep, the letter of its strength, what its penalty measures and in which unit,
the column roles it needs in both domains (a control region), whether it trains outside the
shared loop, whether it can train a set model, and how it is drawn. Code outside
``sqnn.methods`` asks these; it never inspects an objective's attributes.

An objective never reads or writes files. Methods that are not trained by the shared
loop (trees) subclass :class:`OwnTrainer` and provide their own fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from sqnn.data.splits import domain_labels
from sqnn.info import Reduce
from sqnn.labels import Display, Penalty
from sqnn.nn import SQNN, NetworkConfig, build_network
from sqnn.nn.layers import BernoulliActivation, StochasticModule
from sqnn.schema import Choice, Fields, Rule

if TYPE_CHECKING:
    from sqnn.data import Sample, Splits
    from sqnn.nn.trees import TreeEnsemble

__all__ = [
    "ARITHMETIC_SETTINGS", "Batch", "DEPLOYABLE_NETWORK", "Objective", "OwnFit", "OwnTrainer", "READS", "RegionBatch",
    "RegionCounts", "Reweighting",
]

# how a penalty on the representation reads it: as the network scores (θ under mean
# inference) or the drawn bits (DANN, MMD)
READS = Choice("scored", "drawn")

# network settings that choose the arithmetic of the layers rather than their size
ARITHMETIC_SETTINGS = frozenset({"stochastic", "binary_weights", "input_fixed", "first_layer_fixed"})

# the network sqnn trains by default, and source-only (the same network, γ = 0): a 64-unit
# ReLU layer, 16 Bernoulli units (K = 4 draws in training) and a linear head, on fixed-point
# grids chosen from the data, scored by the expected logit through the θ table — the
# arithmetic the packed engine, ONNX and the firmware compute bit for bit
DEPLOYABLE_NETWORK: dict[str, Any] = {
    "hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False], "samples": 4, "fixed_point": {},
}


@dataclass
class RegionBatch:
    """Events drawn for one enriched region in a training step: data inside it, simulation standing for it.

    For a tag-and-probe region the simulated events are drawn from every simulated event (the
    selection is independent of the jet given its class), for a control region from those
    inside it.
    """

    sim_theta: torch.Tensor
    sim_logit: torch.Tensor
    sim_label: torch.Tensor
    sim_weight: torch.Tensor
    data_theta: torch.Tensor
    data_logit: torch.Tensor
    data_weight: torch.Tensor
    sim_output: torch.Tensor | None = None
    data_output: torch.Tensor | None = None


@dataclass(frozen=True)
class RegionCounts:
    """What training knows of an enriched region: its selection efficiency per class in simulation, its share of data."""

    signal_efficiency: float
    background_efficiency: float
    data_fraction: float


@dataclass
class Batch:
    """One training step's events. Data carries no label: it is never used for training."""

    sim_logit: torch.Tensor
    sim_theta: torch.Tensor
    sim_label: torch.Tensor
    sim_weight: torch.Tensor
    data_logit: torch.Tensor
    data_theta: torch.Tensor
    data_weight: torch.Tensor
    sim_control: torch.Tensor | None = None
    data_control: torch.Tensor | None = None
    sim_output: torch.Tensor | None = None
    data_output: torch.Tensor | None = None
    epoch: int = 0
    # events drawn for the enriched regions the penalty reads (Objective.region_roles), by role
    regions: dict[str, RegionBatch] = field(default_factory=dict)

    def first(self, n_simulation: int, n_data: int) -> "Batch":
        """The first ``n_simulation`` simulated and ``n_data`` data events of this batch."""

        def cut(value: torch.Tensor | None, n: int) -> torch.Tensor | None:
            return None if value is None else value[:n]

        return Batch(
            sim_logit=self.sim_logit[:n_simulation], sim_theta=self.sim_theta[:n_simulation],
            sim_label=self.sim_label[:n_simulation], sim_weight=self.sim_weight[:n_simulation],
            data_logit=self.data_logit[:n_data], data_theta=self.data_theta[:n_data], data_weight=self.data_weight[:n_data],
            sim_control=cut(self.sim_control, n_simulation), data_control=cut(self.data_control, n_data),
            sim_output=cut(self.sim_output, n_simulation), data_output=cut(self.data_output, n_data), epoch=self.epoch,
        )

    @property
    def n_simulation(self) -> int:
        return len(self.sim_weight)

    @property
    def n_data(self) -> int:
        return len(self.data_weight)

    @property
    def domain(self) -> torch.Tensor:
        """The domain code of every event: the simulated ones first, then data."""
        return torch.from_numpy(domain_labels(self.n_simulation, self.n_data)).to(self.sim_weight.device)

    @property
    def theta(self) -> torch.Tensor:
        """θ of the penalised layer for all events, in the order of :attr:`domain`."""
        return torch.cat([self.sim_theta, self.data_theta])

    @property
    def weight(self) -> torch.Tensor:
        """Event weights, in the order of :attr:`domain`."""
        return torch.cat([self.sim_weight, self.data_weight])


@dataclass(frozen=True)
class Reweighting:
    """Simulation reweighted to data before training: where the density ratio is learnt, and its largest value."""

    region: str
    clip: float


class Objective:
    """Source-only training: the classification loss alone. Subclasses add a penalty."""

    name: ClassVar[str] = "source-only"
    # one line for help texts
    summary: ClassVar[str] = "the network trained on simulation alone"
    # whether the penalty needs data events in the batch at all
    uses_data: ClassVar[bool] = False
    # trained outside the shared loop (its own fit, see OwnTrainer), e.g. gradient-boosted trees
    own_trainer: ClassVar[bool] = False
    # the penalty is a function of sums over events, so it can be taken over the global
    # batch of a data-parallel run (see sqnn.training.parallel)
    distributable: ClassVar[bool] = True
    # the options of the method, by type and range (sqnn.schema): checked once, when an objective is made
    option_rules: ClassVar[Mapping[str, Rule]] = {}
    default_network: ClassVar[dict[str, Any]] = {}
    # the strengths `sqnn compare` and the demo sweep (a method without a penalty has one setting, γ = 0)
    strengths: ClassVar[tuple[float, ...]] = (0.3, 1.0, 3.0, 10.0)
    # the letter its strength goes by in the literature
    strength_symbol: ClassVar[str] = "γ"
    # what the penalty measures and its unit (None: no penalty)
    penalty_label: ClassVar[Penalty | None] = None
    # whether it can train a permutation-invariant set model (it uses the network it is given)
    trains_set_models: ClassVar[bool] = True
    # how it is drawn: one colour in every figure (Okabe & Ito's colour-blind-safe set), a line style
    colour: ClassVar[str] = "#444444"
    linestyle: ClassVar[str] = "-"
    # in which demo it is compared: "full" (`sqnn demo`) and "quick" (`sqnn demo --quick`)
    demo: ClassVar[tuple[str, ...]] = ()

    def __init__(self, gamma: float = 0.0, **options: Any) -> None:
        self.options = self.check_options(options)
        if not gamma >= 0:
            raise ValueError(f"gamma must be non-negative, got {gamma}")
        self.gamma = float(gamma)
        self.extra = nn.ModuleDict()
        self.reads = str(self.options.get("reads", "scored"))
        # simulation reweighted to data before training, or None
        self.reweighting: Reweighting | None = None
        # the trained network's config and Bernoulli layers (for schedules), known once attached
        self.network: NetworkConfig | None = None
        self.bernoulli_layers: list[BernoulliActivation] = []
        self._mean_head: nn.Module | None = None

    # ------------------------------------------------------------ the description
    @classmethod
    def check_options(cls, options: Mapping[str, Any] | None, path: str = "method_options") -> dict[str, Any]:
        """``options`` checked by type and range; :class:`~sqnn.schema.SchemaError` names the first wrong one."""
        return Fields(cls.option_rules).check(dict(options or {}), path)

    @classmethod
    def sweep(cls) -> tuple[float, ...]:
        """The strengths a comparison tries: one setting, γ = 0, for a method without a penalty."""
        return cls.strengths if cls.uses_data else (0.0,)

    @classmethod
    def penalty_for(cls, options: Mapping[str, Any]) -> Penalty | None:
        """What the penalty of this method with ``options`` measures, and its unit."""
        if not cls.uses_data:
            return None
        return cls.penalty_label or Penalty("penalty", "penalty")

    @classmethod
    def needs(cls, options: Mapping[str, Any]) -> frozenset[str]:
        """The column roles (e.g. ``control``) that both domains must have for this method with ``options``."""
        return frozenset()

    @classmethod
    def display(cls, options: Mapping[str, Any]) -> Display:
        """How a comparison names and draws this method with ``options``."""
        return Display(
            strength=cls.strength_symbol if cls.uses_data else None,
            penalty=cls.penalty_for(options),
            colour=cls.colour,
            linestyle=cls.linestyle,
        )

    @property
    def penalty_measure(self) -> Penalty | None:
        """What this objective's penalty measures, in its unit (None without a penalty)."""
        return self.penalty_for(self.options)

    def check_representation(self, width: int) -> None:
        """Refuse a penalised layer of ``width`` units that the penalty cannot handle (ValueError)."""

    def region_roles(self) -> tuple[str, ...]:
        """The enriched regions whose events the penalty reads at each penalised step (the loop draws them)."""
        return ()

    def set_regions(self, counts: Mapping[str, RegionCounts], sim_prior: float) -> None:
        """Before training: the enriched regions given in both domains' training events (role → counts)."""

    def network_config(self, overrides: dict[str, Any] | None = None) -> NetworkConfig:
        """The method's network with ``overrides``.

        The default network's ``fixed_point`` grids belong to its arithmetic: overrides that
        choose another arithmetic (which layers are Bernoulli or binary, the grids of a step
        network) drop them unless they ask for ``fixed_point`` themselves; new widths keep them.
        """
        overrides = dict(overrides or {})
        settings = {**self.default_network, **overrides}
        if (ARITHMETIC_SETTINGS & set(overrides)) and "fixed_point" not in overrides:
            settings.pop("fixed_point", None)
        return NetworkConfig.from_dict(settings)

    def build(self, n_inputs: int, config: NetworkConfig) -> SQNN:
        """The classifier this objective trains by default, attached."""
        model = build_network(n_inputs, config)
        self.attach(model)
        return model

    def attach(self, model: StochasticModule) -> None:
        """Bind to the network the loop trains (built here or elsewhere, e.g. a set model).

        Subclasses that add modules (a domain head) add them to ``self.extra`` here, so
        the loop's optimiser updates them.
        """
        config = getattr(model, "config", None)
        self.network = config if isinstance(config, NetworkConfig) else None
        self.bernoulli_layers = model.bernoulli_layers()
        self._mean_head = None
        if self.network is not None:
            index = self.network.representation_index()
            if self.network.inference == "mean" and self.network.stochastic[index] and index == len(self.network.hidden) - 1:
                self._mean_head = model.head

    @property
    def scoring(self) -> str:
        """How the trained network scores (``NetworkConfig.inference``); thresholded before it is attached."""
        return "deterministic" if self.network is None else self.network.inference

    def served_representation(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The penalised layer of (simulation, data) as the trained network passes it on when it scores.

        Under ``mean`` inference a Bernoulli layer passes on θ, otherwise its bits (in
        training, the drawn ones). A penalty on the representation acts on this, so that
        it constrains what the classifier head reads at inference. The option
        ``reads: drawn`` (DANN, MMD) makes it act on the drawn bits whatever the scoring.
        """
        if self.scoring == "mean" and self.reads == "scored":
            return batch.sim_theta, batch.data_theta
        if batch.sim_output is None or batch.data_output is None:
            raise ValueError(f"{self.name} needs the penalised layer's output in the batch")
        return batch.sim_output, batch.data_output

    def served_logits(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of (simulation, data) as the trained network will report them.

        Under ``mean`` inference with the head right after the Bernoulli layer that is the
        exact expected logit head(θ); otherwise the logits of this training pass.
        """
        if self._mean_head is not None:
            return self._mean_head(batch.sim_theta).squeeze(-1), self._mean_head(batch.data_theta).squeeze(-1)
        return batch.sim_logit, batch.data_logit

    def start_epoch(self, epoch: int, data_probability: torch.Tensor, data_weight: torch.Tensor, sim_prior: float) -> dict[str, float]:
        """Called before each epoch with the current P(signal|x) on data; returns values to log."""
        return {}

    def gamma_at(self, epoch: int) -> float:
        """Strength of the penalty at ``epoch`` (0-based); constant unless a schedule is set."""
        return self.gamma

    def penalty_scale(self, step: int) -> float:
        """How much of the penalty step ``step`` of an epoch carries: 1, unless the penalty is taken every k steps.

        A penalty taken on one step in k and scaled by k has the same expected gradient over
        an epoch as one taken on every step, at a k-th of the cost.
        """
        return 1.0

    def penalty(self, batch: Batch, reduce: Reduce | None = None) -> dict[str, torch.Tensor]:
        """Named penalty terms; ``"penalty"`` is the one multiplied by gamma and added to the loss.

        ``reduce`` sums per-process event sums over the processes of a data-parallel run, so
        that a distributable penalty is that of the global batch (None: this process alone).
        """
        return {"penalty": batch.sim_logit.new_zeros(())}

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "gamma": self.gamma, "options": dict(self.options)}


@dataclass
class OwnFit:
    """What a method trained outside the shared loop returns: its model, one record per iteration, CPU seconds."""

    model: "TreeEnsemble"
    history: list[dict[str, Any]]
    train_seconds: float
    # the most iterations it could have run, and how many without improvement stop it
    max_iterations: int
    patience: int

    @property
    def stopped_early(self) -> bool:
        return len(self.history) < self.max_iterations


class OwnTrainer(Objective):
    """A method trained outside the shared loop (gradient-boosted trees): it brings its own fit."""

    own_trainer = True
    distributable = False
    trains_set_models = False

    def max_iterations(self) -> int:
        raise NotImplementedError

    def fit_own(self, simulation: "Sample", splits: "Splits", *, seed: int, threads: int = 1) -> OwnFit:
        """Train on the simulation training split (stop on the validation split)."""
        raise NotImplementedError
