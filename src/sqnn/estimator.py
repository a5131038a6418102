"""scikit-learn estimator around the shared training loop.

Rows with ``domain == 0`` are labelled simulation, rows with ``domain == 1`` are
unlabelled data (their ``y`` is never read). Without ``domain`` every row is
simulation and the penalty is off, so the estimator drops into pipelines, cross
validation and scikit-learn's own checks like any classifier.

>>> from sqnn.cases.toy import make_toy
>>> import numpy as np
>>> sim, data = make_toy("sim", 600, 1), make_toy("data", 600, 2)
>>> names = ["x0", "x1", "x2", "x3", "x4", "x5"]
>>> X = np.vstack([np.column_stack([s[c] for c in names]) for s in (sim, data)])
>>> y = np.r_[sim["is_signal"], np.full(600, -1)]          # data labels are never read
>>> domain = np.r_[np.zeros(600), np.ones(600)]
>>> clf = SQNNClassifier(gamma=1.0, epochs=2).fit(X, y, domain=domain)
>>> clf.predict_proba(X[:3]).shape, clf.penalised_
((3, 2), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.special import expit, log_expit
from sklearn.base import BaseEstimator, ClassifierMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.metrics import accuracy_score
from sklearn.utils._param_validation import InvalidParameterError, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from sqnn.data import Sample, Standardizer
from sqnn.devices import DEVICES
from sqnn.methods import METHODS, Objective, make_objective
from sqnn.methods.sqnn import (
    CONDITIONS,
    DEFAULT_CONDITION,
    DEFAULT_ESTIMATOR,
    DEFAULT_GAMMA,
    DEFAULT_REGION,
    ESTIMATORS,
    REGIONS,
)
from sqnn.nn import NetworkConfig
from sqnn.nn.model import SCORING_MODES
from sqnn.runs import forward_in_batches
from sqnn.nn.model import NETWORK_FIELDS
from sqnn.schema import Flag, Real, Rule, SchemaError
from sqnn.training import TrainConfig
from sqnn.training.config import TRAIN_FIELDS
from sqnn.workflows.settings import MAX_GAMMA, Settings, check_method_options
from sqnn.workflows.train import fit_model

__all__ = ["SQNNClassifier", "NETWORK_METHODS"]

# methods that train a network in the shared loop; the others (trees) bring their own trainer
NETWORK_METHODS = tuple(name for name, method in METHODS.items() if not method.own_trainer)
# options of the sqnn method that the estimator takes as its own parameters
_SQNN_OPTIONS = {"region": DEFAULT_REGION, "estimator": DEFAULT_ESTIMATOR, "condition": DEFAULT_CONDITION}
# events scored per forward pass, so that scoring a large sample does not hold every activation at once
_CHUNK = 65536


class _Schema:
    """A constraint of the settings schema (:mod:`sqnn.schema`) in scikit-learn's form."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def is_satisfied_by(self, value: object) -> bool:
        try:
            self.rule.check(value, "")
        except SchemaError:
            return False
        return True

    def __str__(self) -> str:
        return self.rule.describe()


class _Options:
    """A dict of method options keyed by name."""

    def is_satisfied_by(self, value: object) -> bool:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)

    def __str__(self) -> str:
        return "a dict of method options keyed by name"


class SQNNClassifier(ClassNamePrefixFeaturesOutMixin, ClassifierMixin, TransformerMixin, BaseEstimator):
    """SQNN (or another network method) trained on labelled simulation and unlabelled data.

    ``fit(X, y, *, domain=None, sample_weight=None, control=None)``:

    - ``domain``: 0 for simulation, 1 for data (or booleans), one per row. Simulation
      rows need ``y`` with two classes; the ``y`` of data rows is never read. Without
      ``domain``, or with no data rows, every row is simulation and the penalty is off
      (``penalised_`` says which happened).
    - ``sample_weight``: event weights, negative ones allowed; each class in simulation
      needs a positive total.
    - ``control``: a boolean per row marking the control region (``region="control"``).
    - ``signal_control``: a boolean per row marking a signal-enriched region selected
      independently of the jet given its class (tag-and-probe); with it the penalty also
      acts inside the enriched regions (``method_options={"regions": ...}``, :mod:`sqnn.methods.enriched`).

    With metadata routing enabled (``sklearn.set_config(enable_metadata_routing=True)``)
    request them for ``fit`` in a pipeline or a search:
    ``SQNNClassifier().set_fit_request(domain=True, sample_weight=True)``.

    ``transform`` returns θ of the penalised layer, the learned representation. Scoring
    evaluates the trained float32 weights in float64, so a row scores the same alone or
    anywhere in a batch. ``score`` is the accuracy on the simulated rows when given
    ``domain`` and refuses labels that were not seen in fit.
    ``gamma`` has no effect for methods without a penalty (``source-only``, ``mlp``);
    ``mlp`` is full precision whatever ``stochastic`` and ``binary_weights`` say.
    ``region``, ``estimator`` and ``condition`` belong to the ``sqnn`` method; other
    methods take their options from ``method_options``.

    ``device`` is where the network trains (``cpu``, the deterministic reference, ``cuda`` or
    ``auto``); scoring runs on the CPU.

    Fitted attributes: ``model_`` (the network), ``standardizer_``, ``history_`` (one
    record per epoch), ``best_epoch_``, ``classes_``, ``penalised_``,
    ``n_features_in_`` and ``feature_names_in_`` (for named columns).
    """

    # the same schema as the command line and YAML (sqnn.schema): one set of types and bounds
    _parameter_constraints: dict[str, list[Any]] = {
        "method": [StrOptions(set(NETWORK_METHODS))],
        "gamma": [_Schema(Real(0.0, MAX_GAMMA))],
        "region": [StrOptions(set(REGIONS))],
        "estimator": [StrOptions(set(ESTIMATORS))],
        "condition": [StrOptions(set(CONDITIONS))],
        "method_options": [None, _Options()],
        "hidden": [_Schema(NETWORK_FIELDS["hidden"])],
        "stochastic": [_Schema(NETWORK_FIELDS["stochastic"])],
        "binary_weights": [_Schema(NETWORK_FIELDS["binary_weights"])],
        "temperature": [_Schema(NETWORK_FIELDS["temperature"])],
        "samples": [_Schema(NETWORK_FIELDS["samples"])],
        "inference": [StrOptions(set(SCORING_MODES))],
        "fixed_point": [_Schema(Flag())],
        "epochs": [_Schema(TRAIN_FIELDS["epochs"])],
        "batch_size": [_Schema(TRAIN_FIELDS["batch_size"])],
        "learning_rate": [_Schema(TRAIN_FIELDS["learning_rate"])],
        "patience": [_Schema(TRAIN_FIELDS["patience"])],
        "validation_fraction": [_Schema(Real(0.0, 0.9, low_open=True, high_open=True))],
        "seed": [_Schema(TRAIN_FIELDS["seed"])],
        "device": [StrOptions(set(DEVICES))],
    }

    def __init__(
        self,
        method: str = "sqnn",
        gamma: float = DEFAULT_GAMMA,
        region: str = DEFAULT_REGION,
        estimator: str = DEFAULT_ESTIMATOR,
        condition: str = DEFAULT_CONDITION,
        method_options: dict[str, Any] | None = None,
        hidden: tuple[int, ...] = (64, 16),
        stochastic: tuple[bool, ...] = (False, True),
        binary_weights: tuple[bool, ...] = (False, False),
        temperature: float = 6.0,
        samples: int = 4,
        inference: str = "mean",
        fixed_point: bool = True,
        epochs: int = 30,
        batch_size: int = 256,
        learning_rate: float = 3e-3,
        patience: int = 6,
        validation_fraction: float = 0.2,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.method = method
        self.gamma = gamma
        self.region = region
        self.estimator = estimator
        self.condition = condition
        self.method_options = method_options
        self.hidden = hidden
        self.stochastic = stochastic
        self.binary_weights = binary_weights
        self.temperature = temperature
        self.samples = samples
        self.inference = inference
        self.fixed_point = fixed_point
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.device = device

    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn.utils.Tags
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _validate_params(self) -> None:
        """Type and range of every hyper-parameter, one line naming the first wrong one."""
        params = self.get_params(deep=False)
        for name, allowed in self._parameter_constraints.items():
            value = params[name]
            if not any(value is None if rule is None else rule.is_satisfied_by(value) for rule in allowed):
                described = " or ".join("None" if rule is None else str(rule) for rule in allowed)
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be {described}. Got {value!r} instead."
                )

    def _method_options(self) -> dict[str, Any]:
        options = dict(self.method_options or {})
        if self.method == "sqnn":
            clash = sorted(set(options) & set(_SQNN_OPTIONS))
            if clash:
                raise InvalidParameterError(
                    f"method_options sets {', '.join(clash)}: give it as the SQNNClassifier parameter instead"
                )
            options.update({name: getattr(self, name) for name in _SQNN_OPTIONS})
        else:
            for name, default in _SQNN_OPTIONS.items():
                if getattr(self, name) != default:
                    raise InvalidParameterError(
                        f"{name}={getattr(self, name)!r} applies to method 'sqnn' only; "
                        f"method {self.method!r} takes its options from method_options"
                    )
        return options

    def _network(self) -> dict[str, Any]:
        return {
            "hidden": [int(h) for h in self.hidden],
            "stochastic": [bool(s) for s in self.stochastic],
            "binary_weights": [bool(b) for b in self.binary_weights],
            "temperature": float(self.temperature),
            "samples": int(self.samples),
            "inference": self.inference,
            # on fixed-point grids chosen from the data: the network the deployment engines run bit for bit
            "fixed_point": {} if self.fixed_point else None,
        }

    def _objective_and_network(self) -> tuple[Objective, NetworkConfig]:
        options = self._method_options()
        try:
            options = check_method_options(self.method, options)
            objective = make_objective(self.method, float(self.gamma), **options)
        except ValueError as error:
            raise InvalidParameterError(f"method_options of method {self.method!r}: {error}") from error
        try:
            network = objective.network_config(self._network())
        except ValueError as error:
            raise InvalidParameterError(f"the network of {type(self).__name__}: {error}") from error
        try:
            objective.check_representation(network.hidden[network.representation_index()])
        except ValueError as error:
            raise InvalidParameterError(f"the network of {type(self).__name__}: {error}") from error
        return objective, network

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        domain: Any = None,
        sample_weight: Any = None,
        control: Any = None,
        signal_control: Any = None,
    ) -> "SQNNClassifier":
        """Train on the simulation rows (with the penalty against the data rows, if any); returns self."""
        self._validate_params()
        objective, network = self._objective_and_network()
        name = type(self).__name__
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None.")
        X = self._features(X, reset=True)
        n = X.shape[0]
        y = _column(y, "y", finite=False, warn=True)
        check_consistent_length(X, y)
        is_data = self._domain(domain, n)
        weight = _weights(sample_weight, X)
        in_control = self._control(control, n)
        in_signal_control = self._control(signal_control, n, "signal_control")
        penalised = bool(is_data.any()) and objective.uses_data

        simulated = ~is_data
        if not simulated.any():
            raise ValueError(f"fit needs simulated rows (domain == 0); all {n} rows are data")
        # only the simulated rows' y is read: NaN or -1 on data rows are fine
        y_sim = _column(y[simulated], "y")
        check_classification_targets(y_sim)
        target = type_of_target(y_sim, input_name="y")
        if target != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is {target}.")
        classes = np.unique(y_sim)
        if len(classes) < 2:
            raise ValueError(f"{name} needs both classes in simulation; y holds only the class {_plain(classes[0])!r}")
        label = (y_sim == classes[1]).astype(np.int8)
        w_sim = weight[simulated]
        if not np.any(w_sim != 0):
            raise ValueError("sample_weight: the weights of the simulated rows are all zero")
        for value, members in ((_plain(classes[0]), label == 0), (_plain(classes[1]), label == 1)):
            total = float(w_sim[members].sum())
            if total <= 0:
                raise ValueError(
                    f"sample_weight: the simulated class {value!r} has a total weight of {total:g}; "
                    "each class needs a positive total"
                )
        if penalised and float(weight[is_data].sum()) <= 0:
            raise ValueError(f"sample_weight: the data rows' weights sum to {float(weight[is_data].sum()):g}; they need a positive total")
        if penalised and "control" in objective.needs(objective.options) and in_control is None:
            raise ValueError(f"{self.method} with these options (region='control') needs fit(..., control=...): "
                             "a boolean per row marking the control region")
        _check_scale(X, simulated)

        names = [str(c) for c in getattr(self, "feature_names_in_", [f"x{i}" for i in range(X.shape[1])])]

        def sample(rows: np.ndarray, role: str, labels: np.ndarray | None) -> Sample:
            return Sample(
                features=X[rows],
                feature_names=names,
                weight=weight[rows],
                domain=role,  # type: ignore[arg-type]
                source=f"<array:{role}>",
                label=labels,
                control=None if in_control is None else in_control[rows],
                signal_control=None if in_signal_control is None else in_signal_control[rows],
            )

        simulation = sample(simulated, "simulation", label)
        # the loop always takes a data sample; with the penalty off it only enters the monitoring
        data = sample(is_data if penalised else simulated, "data", None)
        settings = Settings(
            method=self.method if penalised else "source-only",
            gamma=float(self.gamma),
            method_options=self._method_options() if penalised else {},
            network=self._network(),
            train=TrainConfig(
                epochs=int(self.epochs),
                batch_size=int(self.batch_size),
                learning_rate=float(self.learning_rate),
                patience=int(self.patience),
                validation_fraction=float(self.validation_fraction),
                test_fraction=0.0,
                seed=int(self.seed),
                device=self.device,
            ),
        )
        result = fit_model(simulation, data, settings).fit
        assert result is not None  # NETWORK_METHODS train networks
        if result.best_epoch < 0:
            raise ValueError(
                "training diverged: the validation loss was not finite in any epoch; "
                "lower learning_rate or check the weights"
            )
        model = result.model
        # the training generator is not part of the fitted model
        model.set_training_generator(None)
        self.model_ = model
        self.standardizer_ = result.standardizer
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.classes_ = classes
        self.penalised_ = penalised
        self._n_features_out = network.hidden[network.representation_index()]
        return self

    def _features(self, X: Any, reset: bool) -> np.ndarray:
        """X as a finite float array of the fitted width; its errors are one line, without the array in them."""
        try:
            X = validate_data(
                self, X, reset=reset, dtype=(np.float64, np.float32), ensure_all_finite=False, ensure_min_samples=2 if reset else 1
            )
        except ValueError as error:
            raise ValueError(_one_line(str(error))) from error
        for kind, bad in (("NaN", np.isnan), ("infinity", np.isinf)):
            found = bad(X)
            if found.any():
                row, column = (int(i[0]) for i in np.nonzero(found))
                raise ValueError(
                    f"Input X contains {kind}: {int(found.sum())} values, the first in row {row}, column {column}; "
                    "impute or drop them"
                )
        return X

    @staticmethod
    def _domain(domain: Any, n: int) -> np.ndarray:
        """Which rows are data: ``domain`` of 0 (simulation) and 1 (data), or booleans."""
        if domain is None:
            return np.zeros(n, dtype=bool)
        domain = _column(domain, "domain")
        if len(domain) != n:
            raise ValueError(f"domain has {len(domain)} entries for {n} rows of X")
        if domain.dtype.kind not in "biuf" or not np.isin(domain, (0, 1)).all():
            odd = np.unique(domain[~np.isin(domain, (0, 1))])[:3].tolist() if domain.dtype.kind in "biuf" else f"values of dtype {domain.dtype}"
            raise ValueError(f"domain must be 0 (simulation) or 1 (data) on every row, got {odd}")
        return domain.astype(bool)

    @staticmethod
    def _control(control: Any, n: int, name: str = "control") -> np.ndarray | None:
        if control is None:
            return None
        control = _column(control, name)
        if len(control) != n:
            raise ValueError(f"{name} has {len(control)} entries for {n} rows of X")
        if control.dtype.kind not in "biuf" or not np.isin(control, (0, 1)).all():
            raise ValueError(f"{name} must be a boolean (or 0/1) per row: True inside the region")
        return control.astype(bool)

    def _network_outputs(self, X: Any, output: str) -> np.ndarray:
        """The logit (``output="logit"``) or θ of the penalised layer for each row of X."""
        check_is_fitted(self)
        X = self._features(X, reset=False)
        with np.errstate(over="ignore"):
            features = self.standardizer_.transform(X)
        if not np.isfinite(features).all():
            row = int(np.flatnonzero(~np.isfinite(features).all(1))[0])
            raise ValueError(f"X row {row} holds values too large for the network once standardised")
        # the float32 weights evaluated in float64: a row scores the same wherever it sits in X
        values = forward_in_batches(self.model_, None, features, representation=output == "theta", batch_size=_CHUNK,
                                    dtype=torch.float64).astype(np.float64)
        if not np.isfinite(values).all():
            raise ValueError("the network's output is not finite on X: its values lie far outside the training range")
        return values

    def decision_function(self, X: Any) -> np.ndarray:
        """The logit: positive for ``classes_[1]``."""
        return self._network_outputs(X, "logit")

    def predict_proba(self, X: Any) -> np.ndarray:
        logit = self.decision_function(X)
        return np.column_stack([expit(-logit), expit(logit)])

    def predict_log_proba(self, X: Any) -> np.ndarray:
        logit = self.decision_function(X)
        return np.column_stack([log_expit(-logit), log_expit(logit)])

    def predict(self, X: Any) -> np.ndarray:
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(np.intp)]

    def score(self, X: Any, y: Any, sample_weight: Any = None, domain: Any = None) -> float:
        """Accuracy on the simulated rows (``domain == 0``; every row without ``domain``).

        A scored row whose ``y`` is not one of ``classes_`` (an unlabelled -1, say) is
        refused rather than counted as wrong.
        """
        predicted = self.predict(X)
        y = _column(y, "y", finite=False)
        check_consistent_length(predicted, y)
        weight = _weights(sample_weight, y)
        rows = ~self._domain(domain, len(y))
        if not rows.any():
            raise ValueError("score needs simulated rows (domain == 0); all rows are data")
        unknown = ~np.isin(y[rows], self.classes_)
        if unknown.any():
            raise ValueError(
                f"y holds {int(unknown.sum())} scored rows with labels outside classes_ {self.classes_.tolist()} "
                f"(first: {_plain(y[rows][unknown][0])!r}); pass domain= to score simulation only"
            )
        return float(accuracy_score(y[rows], predicted[rows], sample_weight=weight[rows]))

    def transform(self, X: Any) -> np.ndarray:
        """θ of the penalised (stochastic) layer: the learned representation."""
        return self._network_outputs(X, "theta")


def _column(values: Any, name: str, finite: bool = True, warn: bool = False) -> np.ndarray:
    """One value per row, as scikit-learn checks it, with its errors on one line."""
    try:
        return column_or_1d(check_array(values, ensure_2d=False, dtype=None, ensure_all_finite=finite, input_name=name), warn=warn)
    except ValueError as error:
        raise ValueError(_one_line(str(error), name)) from error


def _weights(sample_weight: Any, rows: Any) -> np.ndarray:
    try:
        return _check_sample_weight(sample_weight, rows, dtype=np.float64)
    except ValueError as error:
        raise ValueError(_one_line(str(error), "sample_weight")) from error


def _one_line(message: str, name: str = "X") -> str:
    """scikit-learn's message about an input, on one line and without the array it may print."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if lines and lines[0].startswith("Expected 2D array"):
        return (
            f"{lines[0].rstrip(':')}: one row per event, one column per feature. "
            "Reshape your data with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single event"
        )
    if lines and lines[0].startswith("Complex data not supported"):
        return f"Complex data not supported: {name} holds complex numbers"
    return " ".join(lines)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def _check_scale(X: np.ndarray, simulated: np.ndarray) -> None:
    """Refuse features that overflow once standardised with the simulation's mean and spread."""
    # overflow is what this looks for: no warning on the way
    with np.errstate(over="ignore", invalid="ignore"):
        scaler = Standardizer.fit(X[simulated])
        finite = np.isfinite(scaler.mean) & np.isfinite(scaler.scale)
        if not finite.all():
            raise ValueError(f"X column {int(np.flatnonzero(~finite)[0])} holds values too large to standardise; rescale it")
        bad = ~np.isfinite(scaler.transform(X)).all(1)
    if bad.any():
        raise ValueError(f"X row {int(np.flatnonzero(bad)[0])} holds values too large for the network once standardised")
