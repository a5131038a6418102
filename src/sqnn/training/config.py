"""The settings of one training: epochs, batches, optimiser, early stopping, splits, seed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["TrainConfig"]


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
        if self.epochs < 1 or self.batch_size < 2 or self.patience < 1:
            raise ValueError("epochs and patience must be ≥ 1, batch_size ≥ 2")
        if not (0 < self.validation_fraction < 1 and 0 <= self.test_fraction < 1):
            raise ValueError("validation/test fractions must lie in (0, 1)")
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError("validation + test fractions leave too little for training")
        kind, _, index = str(self.device).partition(":")
        if not (self.device in ("cpu", "cuda", "auto") or (kind == "cuda" and index.isdigit())):
            raise ValueError(f"device must be cpu, cuda, cuda:N or auto, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
