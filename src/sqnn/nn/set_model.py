"""A permutation-invariant set model of variable-length objects (deep sets).

Each event is a set of objects (jets, leptons, photons, MET) of ``F`` fields each. A per-object
network φ maps every object to a vector; a symmetric pooling (sum, mean, max or attention,
concatenated) turns the set into one vector; an event-level network ρ ends in the logit. An
optional layer of Bernoulli units right after pooling is the representation the information
penalty acts on, exactly as the stochastic layer of :class:`~sqnn.nn.SQNN`.

Input layout
    The model reads the flat rows that :func:`sqnn.data.load_sample` makes from a jagged objects
    column: ``n_global`` event-level features first, then ``max_objects`` blocks of the ``F`` record
    fields followed by a presence flag (1 for an object, 0 for padding). Padded objects are
    masked everywhere, so they have no influence; the output does not depend on the order of the
    objects (nor on which slots are padding).
Normalisation
    The shared training loop standardises every flat column with its own mean and width. A
    per-slot scaling would give each object slot its own input transformation and break the
    permutation invariance, so the set model undoes it as its first step (the buffers
    ``input_mean``/``input_scale``, set from the run's standardiser) and normalises objects itself,
    identically in every slot: fields in ``log_fields`` become log(1 + x); the ``angle_field``
    becomes cos and sin of its difference to the leading object's (the one with the largest first
    log field, usually pT), so the model sees the event rotated to a common azimuth; the
    ``category_field`` is one-hot encoded into ``n_categories`` classes; the other fields stay as
    they are. The continuous inputs are then standardised with one mean and width per field
    (``object_mean``/``object_scale``) measured on the real objects of the training events. Global
    features stay standardised by the loop.
Transfer
    The object encoder is φ, the pooling (its attention weights) and the object normalisation:
    :meth:`SetModel.encoder_state` / :meth:`SetModel.load_encoder` move it to a model for another
    channel, whose head (Bernoulli units, ρ and the output layer) starts fresh;
    :meth:`SetModel.freeze_encoder` keeps it fixed while the head trains.

>>> config = SetConfig(fields=("pt", "eta", "phi", "e", "type", "btag"), max_objects=4)
>>> model = SetModel(config.n_inputs, config)
>>> model(torch.zeros(3, config.n_inputs)).shape
torch.Size([3])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from sqnn.nn.layers import BernoulliActivation, Outputs, Scoring, StochasticModule
from sqnn.nn.model import MAX_LAYERS, MAX_WIDTH
from sqnn.schema import Choice, Integer, Name, Nullable, Real, Rule, SchemaError, Sequence, check_fields

__all__ = ["POOLINGS", "SET_FIELDS", "SetConfig", "SetModel", "build_set_model"]

POOLINGS = ("sum", "mean", "max", "attention")
_TUPLES = ("fields", "object_hidden", "pooling", "event_hidden", "log_fields")

SET_FIELDS: dict[str, Rule] = {
    "fields": Sequence(Name(), 1, 256, unique=True),
    "max_objects": Integer(1, 1024),
    "n_global": Integer(0, MAX_WIDTH),
    "object_hidden": Sequence(Integer(1, MAX_WIDTH), 1, MAX_LAYERS),
    "pooling": Sequence(Choice(*POOLINGS), 1, len(POOLINGS), unique=True),
    "bottleneck": Integer(0, MAX_WIDTH),
    "event_hidden": Sequence(Integer(1, MAX_WIDTH), 0, MAX_LAYERS),
    "temperature": Real(1e-3, 1e3),
    "samples": Integer(1, 1024),
    "log_fields": Sequence(Name(), 0, 256, unique=True),
    "angle_field": Nullable(Name()),
    "category_field": Nullable(Name()),
    "n_categories": Integer(2, 256),
}


@dataclass(frozen=True)
class SetConfig:
    """Architecture of a set model and the layout of its flat input.

    ``object_hidden``: widths of φ (ReLU); ``pooling``: any of :data:`POOLINGS`, concatenated;
    ``bottleneck``: Bernoulli units after pooling (0 = none; then the pooled vector is the
    representation); ``event_hidden``: widths of ρ (ReLU); ``outputs``: logits of the head
    (1 for signal against background; more for pretraining on several processes at once,
    :mod:`sqnn.training.multichannel`).
    """

    fields: tuple[str, ...] = ("pt", "eta", "phi", "e", "type", "btag")
    max_objects: int = 12
    n_global: int = 0
    object_hidden: tuple[int, ...] = (64, 64)
    pooling: tuple[str, ...] = ("sum", "mean")
    bottleneck: int = 16
    event_hidden: tuple[int, ...] = (64,)
    temperature: float = 6.0
    samples: int = 1
    log_fields: tuple[str, ...] = ("pt", "e")
    angle_field: str | None = "phi"
    category_field: str | None = "type"
    n_categories: int = 5
    outputs: int = 1

    def __post_init__(self) -> None:
        # types and ranges first, nothing coerced: "64" is no width
        for name, value in check_fields(self, SET_FIELDS, "network").items():
            object.__setattr__(self, name, value)
        for name in (*self.log_fields, self.angle_field, self.category_field):
            if name is not None and name not in self.fields:
                raise ValueError(f"field {name!r} is not one of the object fields {', '.join(self.fields)}")
        if self.angle_field is not None and self.angle_field == self.category_field:
            raise ValueError("the angle field and the category field must differ")
        if not 1 <= self.outputs <= 256:
            raise ValueError(f"outputs must lie in 1..256, got {self.outputs}")

    @classmethod
    def for_objects(cls, fields: tuple[str, ...] | list[str], max_objects: int, n_global: int = 0,
                    **settings: Any) -> SetConfig:
        """A config for objects with these ``fields``; the default field roles apply where the field exists.

        >>> SetConfig.for_objects(["pt", "deta", "dphi"], 8).log_fields
        ('pt',)
        """
        defaults = cls()
        roles: dict[str, Any] = {
            "log_fields": tuple(f for f in defaults.log_fields if f in fields),
            "angle_field": defaults.angle_field if defaults.angle_field in fields else None,
            "category_field": defaults.category_field if defaults.category_field in fields else None,
        }
        return cls.from_dict({**roles, **settings, "fields": list(fields), "max_objects": int(max_objects),
                              "n_global": int(n_global)})

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def n_inputs(self) -> int:
        """Width of the flat input: global features, then (fields + presence) per object."""
        return self.n_global + self.max_objects * (self.n_fields + 1)

    def continuous_fields(self) -> list[str]:
        return [f for f in self.fields if f not in (self.angle_field, self.category_field)]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in _TUPLES:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SetConfig:
        if not isinstance(d, dict) or not all(isinstance(k, str) for k in d):
            raise SchemaError("network", f"must be a mapping of settings, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown set-model settings: {', '.join(sorted(unknown))}")
        return cls(**d)


class SetModel(StochasticModule):
    """φ per object, masked symmetric pooling, optional Bernoulli units, ρ; ``forward`` returns the logit (N,).

    With ``config.outputs`` = K > 1 ``forward`` returns K logits per event, (N, K).

    ``forward(x, outputs=True)`` returns the :class:`~sqnn.nn.layers.Outputs` of the pass: the
    logit, θ of the Bernoulli units (or the pooled vector when there are none) and what that
    layer passed on.
    """

    def __init__(self, n_inputs: int, config: SetConfig) -> None:
        super().__init__()
        if int(n_inputs) != config.n_inputs:
            raise ValueError(
                f"a set model of {config.max_objects} objects × {config.n_fields} fields "
                f"(+ presence) and {config.n_global} global features reads {config.n_inputs} inputs, not {n_inputs}"
            )
        self.config = config
        self.n_inputs = int(n_inputs)
        fields_ = list(config.fields)
        self._log = [fields_.index(f) for f in config.log_fields]
        self._continuous = [fields_.index(f) for f in config.continuous_fields()]
        self._angle = None if config.angle_field is None else fields_.index(config.angle_field)
        self._category = None if config.category_field is None else fields_.index(config.category_field)
        # the leading object (reference azimuth): largest first log field, else the first slot
        self._leading = self._log[0] if self._log else None
        n_scaled = len(self._continuous) + (2 if self._angle is not None else 0)
        width = n_scaled + (config.n_categories if self._category is not None else 0)

        self.register_buffer("input_mean", torch.zeros(self.n_inputs))
        self.register_buffer("input_scale", torch.ones(self.n_inputs))
        self.register_buffer("object_mean", torch.zeros(n_scaled))
        self.register_buffer("object_scale", torch.ones(n_scaled))

        layers = []
        for size in config.object_hidden:
            layers.append(nn.Linear(width, size))
            width = size
        self.object_layers = nn.ModuleList(layers)
        self.object_width = width
        self.attention = nn.Linear(width, 1) if "attention" in config.pooling else None
        pooled = width * len(config.pooling) + config.n_global
        self.pooled_width = pooled
        if config.bottleneck > 0:
            self.bottleneck = nn.Linear(pooled, config.bottleneck)
            self.bottleneck_activation: BernoulliActivation | None = BernoulliActivation(config.temperature, config.samples)
            width = config.bottleneck
        else:
            self.bottleneck = None
            self.bottleneck_activation = None
            width = pooled
        event_layers = []
        for size in config.event_hidden:
            event_layers.append(nn.Linear(width, size))
            width = size
        self.event_layers = nn.ModuleList(event_layers)
        self.head = nn.Linear(width, config.outputs)

    # ------------------------------------------------------------ preprocessing

    def set_input_standardization(self, mean: np.ndarray, scale: np.ndarray) -> None:
        """The loop's standardisation of the flat input, which :meth:`forward` undoes for objects."""
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float64), dtype=torch.float32)
        scale_t = torch.as_tensor(np.asarray(scale, dtype=np.float64), dtype=torch.float32)
        if mean_t.shape != (self.n_inputs,) or scale_t.shape != (self.n_inputs,) or not (scale_t > 0).all():
            raise ValueError(f"input standardisation needs {self.n_inputs} means and positive scales")
        self.input_mean.copy_(mean_t)
        self.input_scale.copy_(scale_t)

    def fit_object_scaling(self, raw: np.ndarray) -> None:
        """Per-field mean and width of the continuous object inputs over the real objects of ``raw`` rows."""
        with torch.no_grad():
            objects, present = self._split(torch.as_tensor(np.asarray(raw, dtype=np.float32)), raw=True)
            values = self._scaled_inputs(objects, present)[present]
            if len(values) == 0:
                return
            mean = values.double().mean(0)
            scale = values.double().std(0, unbiased=False)
            self.object_mean.copy_(mean.float())
            self.object_scale.copy_(torch.where(scale > 1e-6, scale, torch.ones_like(scale)).float())

    def _split(self, x: torch.Tensor, raw: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw objects (N, K, F) with padding zeroed, and the presence mask (N, K)."""
        config = self.config
        if not raw:
            x = x * self.input_scale + self.input_mean
        block = x[:, config.n_global :].reshape(len(x), config.max_objects, config.n_fields + 1)
        present = block[..., -1] > 0.5
        objects = torch.where(present[..., None], block[..., :-1], torch.zeros_like(block[..., :-1]))
        return objects, present

    def _scaled_inputs(self, objects: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """The continuous per-object inputs before their standardisation: (N, K, n_scaled)."""
        values = objects.clone()
        if self._log:
            values[..., self._log] = torch.log1p(values[..., self._log].clamp(min=0.0))
        columns = [values[..., self._continuous]]
        if self._angle is not None:
            angle = objects[..., self._angle]
            if self._leading is not None:
                key = values[..., self._leading].masked_fill(~present, -torch.inf)
                leading = key.argmax(dim=1, keepdim=True)
            else:
                leading = torch.zeros(len(objects), 1, dtype=torch.long, device=objects.device)
            delta = angle - angle.gather(1, leading)
            columns.append(torch.stack([torch.cos(delta), torch.sin(delta)], dim=-1))
        return torch.cat(columns, dim=-1)

    def object_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised per-object inputs (N, K, D), zero for padding, and the mask (N, K)."""
        objects, present = self._split(x)
        scaled = (self._scaled_inputs(objects, present) - self.object_mean) / self.object_scale
        parts = [scaled]
        if self._category is not None:
            code = objects[..., self._category].round().clamp(0, self.config.n_categories - 1).long()
            parts.append(nn.functional.one_hot(code, self.config.n_categories).to(scaled.dtype))
        inputs = torch.cat(parts, dim=-1)
        return torch.where(present[..., None], inputs, torch.zeros_like(inputs)), present

    # ------------------------------------------------------------ the network

    def _pool(self, h: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        mask = present[..., None].to(h.dtype)
        count = mask.sum(1).clamp(min=1.0)
        pooled = []
        for kind in self.config.pooling:
            if kind == "sum":
                pooled.append((h * mask).sum(1))
            elif kind == "mean":
                pooled.append((h * mask).sum(1) / count)
            elif kind == "max":
                filled = h.masked_fill(~present[..., None], -torch.inf).amax(1)
                pooled.append(torch.where(torch.isfinite(filled), filled, torch.zeros_like(filled)))
            else:
                assert self.attention is not None
                score = self.attention(h).squeeze(-1).masked_fill(~present, -1e9)
                weight = torch.softmax(score, dim=1) * mask.squeeze(-1)
                weight = weight / weight.sum(1, keepdim=True).clamp(min=1e-12)
                pooled.append((weight[..., None] * h).sum(1))
        return torch.cat(pooled, dim=-1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled event vector (N, pooled width), global features appended."""
        h, present = self.object_inputs(x)
        for layer in self.object_layers:
            h = torch.relu(layer(h))
        h = torch.where(present[..., None], h, torch.zeros_like(h))
        pooled = self._pool(h, present)
        if self.config.n_global:
            pooled = torch.cat([pooled, x[:, : self.config.n_global]], dim=-1)
        return pooled

    def forward(self, x: torch.Tensor, *, outputs: bool = False, scoring: Scoring | None = None) -> torch.Tensor | Outputs:
        z = self.encode(x)
        if self.bottleneck is not None:
            assert self.bottleneck_activation is not None
            z, theta = self.bottleneck_activation(self.bottleneck(z), scoring=scoring, with_theta=True)
        else:
            theta = z
        output = z
        for layer in self.event_layers:
            z = torch.relu(layer(z))
        logit = self.head(z)
        logit = logit.squeeze(-1) if self.config.outputs == 1 else logit
        return Outputs(logit, theta, output) if outputs else logit

    @property
    def representation_is_stochastic(self) -> bool:
        return self.bottleneck is not None

    @property
    def representation_width(self) -> int:
        return self.config.bottleneck if self.bottleneck is not None else self.pooled_width

    # ------------------------------------------------------------ transfer

    ENCODER_PREFIXES = ("object_layers.", "attention.", "object_mean", "object_scale")

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """Tensors of the object encoder: φ, the attention pooling and the object normalisation."""
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k.startswith(self.ENCODER_PREFIXES)}

    def load_encoder(self, state: dict[str, torch.Tensor]) -> None:
        """Copy an encoder from another set model of the same object layout and φ."""
        own = {k: v for k, v in self.state_dict().items() if k.startswith(self.ENCODER_PREFIXES)}
        if set(own) != set(state):
            raise ValueError(
                f"the encoders differ: this model has {sorted(own)}, the other {sorted(state)}"
            )
        for key, tensor in state.items():
            if tuple(tensor.shape) != tuple(own[key].shape):
                raise ValueError(f"encoder tensor {key!r} has shape {tuple(tensor.shape)}, this model needs {tuple(own[key].shape)}")
        self.load_state_dict({**self.state_dict(), **state})

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name.startswith(self.ENCODER_PREFIXES)]

    def freeze_encoder(self) -> None:
        """Keep φ and the pooling fixed: only the head trains."""
        for parameter in self.encoder_parameters():
            parameter.requires_grad_(False)


def build_set_model(n_inputs: int, config: SetConfig | dict[str, Any]) -> SetModel:
    """Build a :class:`SetModel` from a config (dataclass or dict)."""
    if isinstance(config, dict):
        config = SetConfig.from_dict(config)
    return SetModel(n_inputs, config)
