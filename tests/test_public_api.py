"""The public API is a promise: what ``import sqnn`` offers and the estimator's parameters, pinned."""

from __future__ import annotations

import inspect

import sqnn
from sqnn.methods import METHODS

PUBLIC = ["DataError", "ModelFileError", "SQNNClassifier", "SqnnError", "__version__"]

ESTIMATOR_PARAMETERS = [
    "method", "gamma", "region", "estimator", "condition", "method_options", "hidden", "stochastic", "binary_weights",
    "temperature", "samples", "inference", "fixed_point", "epochs", "batch_size", "learning_rate", "patience",
    "validation_fraction", "seed", "device",
]

FIT_METADATA = ["domain", "sample_weight", "control", "signal_control"]

COMMANDS = ["bench", "compare", "demo", "evaluate", "export", "finetune", "generate", "predict", "stream", "suite", "train"]


def test_the_package_exports_exactly_its_public_names() -> None:
    assert sorted(sqnn.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(sqnn, name) is not None


def test_the_estimator_parameters_and_fit_metadata_are_pinned() -> None:
    signature = inspect.signature(sqnn.SQNNClassifier.__init__)
    assert [p for p in signature.parameters if p != "self"] == ESTIMATOR_PARAMETERS
    defaults = sqnn.SQNNClassifier().get_params()
    assert defaults["method"] == "sqnn" and defaults["gamma"] == 1.0 and defaults["region"] == "class-conditional"
    fit = inspect.signature(sqnn.SQNNClassifier.fit)
    assert [p for p in fit.parameters if p not in ("self", "X", "y")] == FIT_METADATA


def test_the_methods_and_commands_are_pinned() -> None:
    assert list(METHODS) == ["source-only", "reweight", "sqnn", "dann", "disco", "mmd", "mlp", "bdt"]
    from sqnn.cli import cli

    assert sorted(cli.commands) == COMMANDS
