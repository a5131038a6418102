"""The settings of one training: epochs, batches, optimiser, early stopping, splits, seed.

Every field is checked by type and range when the config is made (:data:`TRAIN_FIELDS`),
whether it comes from flags, a YAML file, ``model.json`` or the estimator; a wrong one
raises :class:`~sqnn.schema.SchemaError` naming ``train.<field>``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sqnn.schema import Fields, Integer, Real, Rule, Satisfying, SchemaError, Text, Unchecked, check_fields

__all__ = ["MAX_SEED", "TRAIN_FIELDS", "TrainConfig"]

# numpy's and the domain probe's seeds are 32-bit
MAX_SEED = 2**32 - 1


def _device(name: str) -> bool:
    kind, _, index = name.partition(":")
    return name in ("cpu", "cuda", "auto") or (kind == "cuda" and index.isdigit() and len(index) <= 3)


TRAIN_FIELDS: dict[str, Rule] = {
    "epochs": Integer(1, 100_000),
    "batch_size": Integer(2, 1 << 24),
    "learning_rate": Real(0.0, 10.0, low_open=True),
    "weight_decay": Real(0.0, 10.0),
    "patience": Integer(1, 100_000),
    "validation_fraction": Real(0.0, 1.0, low_open=True, high_open=True),
    "test_fraction": Real(0.0, 1.0, high_open=True),
    "seed": Integer(0, MAX_SEED),
    "threads": Integer(1, 4096),
    "monitor_events": Integer(1, 10_000_000),
    "device": Satisfying(Text(16), _device, "cpu, cuda, cuda:N or auto"),
}


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
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name, value in check_fields(self, TRAIN_FIELDS, "train").items():
            object.__setattr__(self, name, value)
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise SchemaError(
                "train.validation_fraction",
                f"+ train.test_fraction = {self.validation_fraction + self.test_fraction:g} leaves too little for "
                "training; keep the sum below 0.9",
            )

    @classmethod
    def from_dict(cls, settings: Any, path: str = "train") -> "TrainConfig":
        """A config from a mapping (YAML, ``model.json``); unknown keys are refused by name."""
        mapping = Fields({f.name: Unchecked() for f in fields(cls)}).check(settings, path)
        return cls(**mapping)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
