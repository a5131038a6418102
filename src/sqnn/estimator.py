"""scikit-learn style estimator around the shared training loop.

>>> from sqnn.cases.toy import make_toy
>>> import numpy as np
>>> sim, data = make_toy("sim", 600, 1), make_toy("data", 600, 2)
>>> names = ["x0", "x1", "x2", "x3", "x4", "x5"]
>>> X = np.vstack([np.column_stack([s[c] for c in names]) for s in (sim, data)])
>>> y = np.r_[sim["is_signal"], np.zeros(600)]          # data labels are never used
>>> domain = np.r_[np.zeros(600), np.ones(600)]
>>> clf = SQNNClassifier(gamma=1.0, epochs=2).fit(X, y, domain=domain)
>>> clf.predict_proba(X[:3]).shape
(3, 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from sqnn.data import Sample
from sqnn.methods.sqnn import DEFAULT_CONDITION, DEFAULT_ESTIMATOR, DEFAULT_GAMMA, DEFAULT_REGION
from sqnn.runs import forward_in_batches
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import fit_model

__all__ = ["SQNNClassifier"]


class SQNNClassifier(ClassifierMixin, BaseEstimator):
    """SQNN (or any registered method) trained on labelled simulation and unlabelled data.

    ``fit(X, y, *, domain, sample_weight=None, control=None)``: rows with ``domain == 0``
    are simulation and need ``y`` in {0, 1}; rows with ``domain != 0`` are data and their
    ``y`` is ignored. ``transform`` returns θ of the penalised layer.
    """

    def __init__(
        self,
        method: str = "sqnn",
        gamma: float = DEFAULT_GAMMA,
        region: str = DEFAULT_REGION,
        estimator: str = DEFAULT_ESTIMATOR,
        condition: str = DEFAULT_CONDITION,
        hidden: tuple[int, ...] = (64, 16),
        stochastic: tuple[bool, ...] = (False, True),
        binary_weights: tuple[bool, ...] = (False, False),
        temperature: float = 6.0,
        samples: int = 4,
        inference: str = "mean",
        epochs: int = 30,
        batch_size: int = 256,
        learning_rate: float = 3e-3,
        patience: int = 6,
        validation_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        self.method = method
        self.gamma = gamma
        self.region = region
        self.estimator = estimator
        self.condition = condition
        self.hidden = hidden
        self.stochastic = stochastic
        self.binary_weights = binary_weights
        self.temperature = temperature
        self.samples = samples
        self.inference = inference
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.seed = seed

    def _settings(self) -> Settings:
        options: dict[str, Any] = {}
        if self.method == "sqnn":
            options = {"region": self.region, "estimator": self.estimator, "condition": self.condition}
        network = {
            "hidden": list(self.hidden),
            "stochastic": list(self.stochastic),
            "binary_weights": list(self.binary_weights),
            "temperature": self.temperature,
            "samples": self.samples,
            "inference": self.inference,
        }
        train = TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            validation_fraction=self.validation_fraction,
            test_fraction=0.0,
            seed=self.seed,
        )
        return Settings(method=self.method, gamma=self.gamma, method_options=options, network=network, train=train)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        domain: np.ndarray,
        sample_weight: np.ndarray | None = None,
        control: np.ndarray | None = None,
    ) -> "SQNNClassifier":
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or not np.isfinite(X).all():
            raise ValueError("X must be a finite 2-D array")
        is_data = np.asarray(domain) != 0
        y = np.asarray(y)
        weight = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        names = [f"x{i}" for i in range(X.shape[1])]

        def sample(mask: np.ndarray, role: str) -> Sample:
            label = None
            if role == "simulation":
                label = y[mask].astype(np.int8)
                if not np.isin(label, (0, 1)).all():
                    raise ValueError("simulation labels must be 0 or 1")
            return Sample(
                features=X[mask],
                feature_names=names,
                weight=weight[mask],
                domain=role,  # type: ignore[arg-type]
                source=f"<array:{role}>",
                label=label,
                control=None if control is None else np.asarray(control)[mask].astype(bool),
            )

        simulation, data = sample(~is_data, "simulation"), sample(is_data, "data")
        if len(simulation) < 4 or len(data) < 2:
            raise ValueError("fit needs simulated and data events (domain 0 and non-zero)")
        trained = fit_model(simulation, data, self._settings())
        result = trained.fit
        if result is None:
            raise ValueError(f"method {self.method!r} is not a network; the estimator trains networks")
        self.model_ = result.model
        self.standardizer_ = result.standardizer
        self.history_ = result.history
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.array([0, 1])
        return self

    def _checked(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have {self.n_features_in_} columns")
        return X

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return forward_in_batches(self.model_, self.standardizer_, self._checked(X)).astype(np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(np.int64)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """θ of the penalised (stochastic) layer: the learned representation."""
        theta = forward_in_batches(self.model_, self.standardizer_, self._checked(X), representation=True)
        return theta.astype(np.float64)
