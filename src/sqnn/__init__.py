"""sqnn: stochastically quantized neural networks that match simulation and data."""

from __future__ import annotations

from typing import Any

from sqnn.errors import DataError, ModelFileError, SqnnError

__all__ = ["DataError", "ModelFileError", "SQNNClassifier", "SqnnError", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # the estimator pulls in torch and scikit-learn: load it only when asked for
    if name == "SQNNClassifier":
        from sqnn.estimator import SQNNClassifier

        return SQNNClassifier
    raise AttributeError(f"module 'sqnn' has no attribute {name!r}")
