"""Training networks: the shared loop, its settings, checkpoints and data-parallel primitives."""

from sqnn.training.config import TrainConfig
from sqnn.training.loop import FitResult, fit, splits_for, weighted_bce

__all__ = ["FitResult", "TrainConfig", "fit", "splits_for", "weighted_bce"]
