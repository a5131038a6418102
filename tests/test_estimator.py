"""The scikit-learn estimator contract: parameters, inputs, metadata, pickling and seeds."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError, UnsetMetadataPassedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sqnn import SQNNClassifier
from sqnn.cases.toy import make_toy

FEATURES = ["x0", "x1", "x2", "x3", "x4", "x5"]
# one or two epochs of a small network: enough to tell the fits apart, fast on a shared CPU
SMALL = {"epochs": 2, "hidden": (8, 4), "batch_size": 64}


def arrays(n: int = 200):
    """Simulation rows then data rows of the toy case; y of data rows is its truth (never read)."""
    sim, data = make_toy("sim", n, 1), make_toy("data", n, 2)
    X = np.vstack([np.column_stack([s[c] for c in FEATURES]) for s in (sim, data)])
    y = np.r_[sim["is_signal"], data["is_signal"]].astype(np.int64)
    domain = np.r_[np.zeros(n), np.ones(n)]
    return X, y, domain


def test_fit_returns_self_with_fitted_attributes_and_outputs() -> None:
    X, y, domain = arrays()
    clf = SQNNClassifier(gamma=1.0, epochs=2, hidden=(16, 8))
    assert clf.fit(X, y, domain=domain) is clf
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert np.allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.transform(X).shape == (len(X), 8)
    assert np.array_equal(clf.predict(X), (clf.decision_function(X) > 0).astype(int))
    assert clf.history_ and clf.n_features_in_ == 6 and clf.penalised_
    assert 0 <= clf.best_epoch_ < 2
    assert list(clf.get_feature_names_out()) == [f"sqnnclassifier{i}" for i in range(8)]


def test_params_round_trip_and_unknown_arguments_raise() -> None:
    clf = SQNNClassifier(gamma=0.5)
    assert clone(clf).get_params()["gamma"] == 0.5
    clf.set_params(gamma=2.0)
    assert clf.gamma == 2.0
    with pytest.raises(TypeError):
        SQNNClassifier(gama=1.0)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="Invalid parameter 'gama'"):
        clf.set_params(gama=1.0)


@pytest.mark.parametrize("data_y", ["flipped", "minus-one", "nan"])
def test_data_labels_do_not_change_the_fit(data_y: str) -> None:
    X, y, domain = arrays()
    y_other = y.astype(np.float64)
    is_data = domain == 1
    y_other[is_data] = {"flipped": 1 - y[is_data], "minus-one": -1.0, "nan": np.nan}[data_y]
    a = SQNNClassifier(epochs=1, hidden=(8, 4)).fit(X, y, domain=domain)
    b = SQNNClassifier(epochs=1, hidden=(8, 4)).fit(X, y_other, domain=domain)
    assert np.array_equal(a.decision_function(X), b.decision_function(X))
    assert list(b.classes_) == [0.0, 1.0]


# --- hyper-parameters: refused at fit, one line naming the parameter -------------------------

BAD_PARAMETERS = [
    ({"hidden": "64"}, "hidden"),
    ({"hidden": (8, 0)}, "hidden"),
    ({"hidden": ()}, "hidden"),
    ({"hidden": (8.0, 4)}, "hidden"),
    ({"hidden": (True, 4)}, "hidden"),
    ({"stochastic": ["false", "true"]}, "stochastic"),
    ({"stochastic": (0, 1)}, "stochastic"),
    ({"stochastic": (True,)}, "stochastic"),
    ({"binary_weights": "no"}, "binary_weights"),
    ({"epochs": 1.5}, "epochs"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": True}, "epochs"),
    ({"epochs": "3"}, "epochs"),
    ({"learning_rate": "fast"}, "learning_rate"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": math.inf}, "learning_rate"),
    ({"learning_rate": math.nan}, "learning_rate"),
    ({"samples": 0}, "samples"),
    ({"samples": 2.0}, "samples"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**32}, "seed"),
    ({"seed": 10**30}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"seed": None}, "seed"),
    ({"gamma": math.nan}, "gamma"),
    ({"gamma": -1.0}, "gamma"),
    ({"gamma": math.inf}, "gamma"),
    ({"gamma": "1"}, "gamma"),
    ({"temperature": 0.0}, "temperature"),
    ({"batch_size": 1}, "batch_size"),
    ({"patience": 0}, "patience"),
    ({"validation_fraction": 0.0}, "validation_fraction"),
    ({"validation_fraction": 0.95}, "validation_fraction"),
    ({"inference": "stochastic"}, "inference"),
    ({"method": "sqn"}, "method"),
    ({"method": "bdt"}, "method"),
    ({"region": "everywhere"}, "region"),
    ({"estimator": "exact"}, "estimator"),
    ({"condition": "label"}, "condition"),
    ({"method_options": "warmup=2"}, "method_options"),
    ({"method_options": {"bogus": 1}}, "method_options"),
    ({"method_options": {"warmup": -1}}, "method_options"),
    ({"method": "dann", "method_options": {"region": "all"}}, "method_options"),
    ({"method_options": {"region": "all"}}, "region"),
    ({"method": "dann", "region": "all"}, "region"),
    ({"method": "mmd", "condition": "truth"}, "condition"),
    ({"hidden": (64, 32)}, "estimator"),
]


@pytest.mark.parametrize(("params", "named"), BAD_PARAMETERS, ids=[repr(p) for p, _ in BAD_PARAMETERS])
def test_bad_hyper_parameters_are_refused_at_fit_naming_the_parameter(params: dict, named: str) -> None:
    X, y, domain = arrays(50)
    clf = SQNNClassifier(**{**SMALL, **params})  # __init__ and set_params only store
    assert clf.get_params()[next(iter(params))] is next(iter(params.values()))
    with pytest.raises(ValueError) as refused:
        clf.fit(X, y, domain=domain)
    message = str(refused.value)
    assert named in message and "\n" not in message
    assert not hasattr(clf, "model_")


def test_numpy_scalars_and_lists_are_accepted() -> None:
    X, y, domain = arrays(100)
    clf = SQNNClassifier(
        epochs=np.int64(1),
        gamma=np.float32(0.5),
        hidden=[np.int32(8), 4],
        stochastic=[np.False_, True],
        binary_weights=[False, False],
        learning_rate=1,
        validation_fraction=np.float64(0.25),
        seed=np.uint32(2**32 - 1),
        method_options={"warmup": 2},
    )
    assert clf.fit(X, y, domain=domain).transform(X).shape == (len(X), 4)


# --- inputs ------------------------------------------------------------------------------


def _with(change: str):  # noqa: ANN202
    X, y, domain = arrays(60)
    kwargs: dict = {"domain": domain}
    n = len(X)
    if change == "nan X":
        X[3, 2] = np.nan
    elif change == "inf X":
        X[3, 2] = np.inf
    elif change == "empty X":
        X, y, kwargs = X[:0], y[:0], {}
    elif change == "1-D X":
        X = X[:, 0]
    elif change == "complex X":
        X = X + 1j
    elif change == "short y":
        y = y[:-1]
    elif change == "2-column y":
        y = np.column_stack([y, y])
    elif change == "no y":
        y = None
    elif change == "nan y in simulation":
        y = y.astype(float)
        y[0] = np.nan
    elif change == "short domain":
        kwargs["domain"] = domain[:-1]
    elif change == "domain 2":
        kwargs["domain"] = np.where(domain == 1, 2, 0)
    elif change == "domain strings":
        kwargs["domain"] = np.where(domain == 1, "data", "sim")
    elif change == "domain nan":
        kwargs["domain"] = np.where(domain == 1, np.nan, 0)
    elif change == "short sample_weight":
        kwargs["sample_weight"] = np.ones(n - 1)
    elif change == "nan sample_weight":
        kwargs["sample_weight"] = np.r_[np.nan, np.ones(n - 1)]
    elif change == "one class in simulation":
        y = np.where(domain == 1, 1, 0)
    elif change == "continuous y":
        y = np.linspace(0, 1, n)
    elif change == "three classes":
        y = np.arange(n) % 3
    elif change == "all rows data":
        kwargs["domain"] = np.ones(n)
    elif change == "signal weight negative":
        kwargs["sample_weight"] = np.where(y == 1, -1.0, 1.0)
    elif change == "simulation weights zero":
        kwargs["sample_weight"] = np.where(domain == 1, 1.0, 0.0)
    elif change == "data weights negative":
        kwargs["sample_weight"] = np.where(domain == 1, -1.0, 1.0)
    elif change == "short control":
        kwargs["control"] = np.ones(n - 1, dtype=bool)
    elif change == "control values":
        kwargs["control"] = np.arange(n)
    elif change == "control region without control":
        return SQNNClassifier(**SMALL, region="control"), X, y, kwargs
    elif change == "huge X":
        X = X.astype(np.float64)
        X[:, 1] = 1e200
        X[0, 1] = -1e200
    return SQNNClassifier(**SMALL), X, y, kwargs


BAD_INPUTS = {
    "nan X": "Input X contains NaN",
    "inf X": "Input X contains infinity",
    "empty X": "0 sample",
    "1-D X": "Expected 2D",
    "complex X": "Complex data not supported",
    "short y": "inconsistent numbers of samples",
    "2-column y": "y should be a 1d array",
    "no y": "requires y to be passed",
    "nan y in simulation": "Input y contains NaN",
    "short domain": "domain has 119 entries for 120 rows",
    "domain 2": "domain must be 0 .simulation. or 1 .data.",
    "domain strings": "domain must be 0 .simulation. or 1 .data.",
    "domain nan": "Input domain contains NaN",
    "short sample_weight": "sample_weight.shape",
    "nan sample_weight": "Input sample_weight contains NaN",
    "one class in simulation": "needs both classes in simulation",
    "continuous y": "Unknown label type: continuous",
    "three classes": "Only binary classification is supported",
    "all rows data": "needs simulated rows",
    "signal weight negative": "simulated class 1 has a total weight of -30;",
    "simulation weights zero": "weights of the simulated rows are all zero",
    "data weights negative": "data rows' weights sum to -",
    "short control": "control has 119 entries",
    "control values": "control must be a boolean",
    "control region without control": r"region='control'\) needs fit",
    "huge X": "too large",
}


@pytest.mark.parametrize("change", list(BAD_INPUTS))
def test_bad_inputs_are_refused_with_the_errors_sklearn_users_expect(change: str) -> None:
    clf, X, y, kwargs = _with(change)
    with pytest.raises(ValueError, match=BAD_INPUTS[change]) as refused:
        clf.fit(X, y, **kwargs)
    assert "\n" not in str(refused.value)
    assert not hasattr(clf, "model_")


def test_prediction_inputs_are_checked() -> None:
    X, y, domain = arrays(100)
    clf = SQNNClassifier(**SMALL)
    for method in ("predict", "predict_proba", "decision_function", "transform"):
        with pytest.raises(NotFittedError):
            getattr(clf, method)(X)
    clf.fit(X, y, domain=domain)
    with pytest.raises(ValueError, match="X has 5 features, but SQNNClassifier is expecting 6"):
        clf.predict(X[:, :5])
    with pytest.raises(ValueError, match="Expected 2D"):
        clf.predict_proba(X[0])
    bad = X[:3].astype(np.float64)
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.transform(bad)
    bad[1, 0] = 1e300
    with pytest.raises(ValueError, match="row 1 holds values too large"):
        clf.decision_function(bad)
    with pytest.raises(ValueError, match="0 sample"):
        clf.predict(X[:0])


def test_feature_names_are_kept_and_checked() -> None:
    X, y, domain = arrays(100)
    frame = pd.DataFrame(X, columns=FEATURES)
    clf = SQNNClassifier(**SMALL).fit(frame, y, domain=domain)
    assert list(clf.feature_names_in_) == FEATURES
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        clf.predict(frame.to_numpy())
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(frame[FEATURES[::-1]])
    out = clf.set_output(transform="pandas").transform(frame)
    assert list(out.columns) == [f"sqnnclassifier{i}" for i in range(4)]
    clf.fit(X[:, :3], y, domain=domain)  # refitting starts over
    assert clf.n_features_in_ == 3 and not hasattr(clf, "feature_names_in_")


def test_any_two_labels_and_predict_returns_them() -> None:
    X, y, domain = arrays(100)
    names = np.where(y == 1, "signal", "background")
    clf = SQNNClassifier(**SMALL).fit(X, names, domain=domain)
    assert list(clf.classes_) == ["background", "signal"]
    expected = np.where(clf.decision_function(X) > 0, "signal", "background")
    assert np.array_equal(clf.predict(X), expected)


# --- the penalty and the domain ---------------------------------------------------------------


def test_without_data_rows_the_penalty_is_off() -> None:
    X, y, domain = arrays(100)
    sim = domain == 0
    assert SQNNClassifier(**SMALL).fit(X, y, domain=domain).penalised_
    assert not SQNNClassifier(**SMALL).fit(X[sim], y[sim]).penalised_
    assert not SQNNClassifier(**SMALL).fit(X[sim], y[sim], domain=domain[sim]).penalised_
    assert not SQNNClassifier(method="source-only", **SMALL).fit(X, y, domain=domain).penalised_
    with_data = SQNNClassifier(**SMALL, gamma=5.0).fit(X, y, domain=domain)
    without = SQNNClassifier(**SMALL, gamma=5.0).fit(X[sim], y[sim])
    assert not np.allclose(with_data.decision_function(X), without.decision_function(X))


def test_score_counts_simulated_rows_and_refuses_unseen_labels() -> None:
    X, y, domain = arrays(100)
    y_unlabelled = np.where(domain == 1, -1, y)
    clf = SQNNClassifier(**SMALL).fit(X, y_unlabelled, domain=domain)
    sim = domain == 0
    expected = np.mean(clf.predict(X[sim]) == y[sim])
    assert clf.score(X, y_unlabelled, domain=domain) == pytest.approx(expected)
    with pytest.raises(ValueError, match="labels outside classes_"):
        clf.score(X, y_unlabelled)


def test_divergence_is_refused_not_returned_as_the_initial_network(monkeypatch) -> None:
    # every setting is bounded, so a diverging step is simulated: the optimiser leaves NaN weights
    class Diverging(torch.optim.Adam):
        def step(self, closure=None):  # noqa: ANN001, ANN202 - torch's signature
            loss = super().step(closure)
            with torch.no_grad():
                for group in self.param_groups:
                    for parameter in group["params"]:
                        parameter.fill_(float("nan"))
            return loss

    monkeypatch.setattr(torch.optim, "Adam", Diverging)
    X, y, domain = arrays(100)
    with pytest.raises(ValueError, match="training diverged"):
        SQNNClassifier(**SMALL).fit(X, y, domain=domain)
    with pytest.raises(ValueError, match="learning_rate"):
        SQNNClassifier(**SMALL, learning_rate=1e30).fit(X, y, domain=domain)


# --- pipelines, searches and metadata routing ---------------------------------------------------


def test_grid_search_and_pipeline_without_metadata_routing() -> None:
    X, y, domain = arrays(100)
    folds = StratifiedKFold(2, shuffle=True, random_state=0)  # rows come sorted by domain
    search = GridSearchCV(SQNNClassifier(**SMALL), {"gamma": [0.0, 2.0]}, cv=folds).fit(X, y, domain=domain)
    assert search.best_estimator_.penalised_ and np.isfinite(search.cv_results_["mean_test_score"]).all()
    pipe = make_pipeline(StandardScaler(), SQNNClassifier(**SMALL)).fit(X, y, sqnnclassifier__domain=domain)
    assert pipe[-1].penalised_ and pipe.predict_proba(X).shape == (len(X), 2)
    assert make_pipeline(SQNNClassifier(**SMALL)).fit(X, y).predict(X).shape == (len(X),)


def test_metadata_routing_carries_domain_and_weights_to_fit_and_score() -> None:
    X, y, domain = arrays(100)
    y = np.where(domain == 1, -1, y)
    weight = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    direct = SQNNClassifier(**SMALL).fit(X, y, domain=domain, sample_weight=weight)
    with sklearn.config_context(enable_metadata_routing=True):
        routed = SQNNClassifier(**SMALL).set_fit_request(domain=True, sample_weight=True)
        routed.set_score_request(domain=True, sample_weight=True)
        pipe = Pipeline([("clf", routed)]).fit(X, y, domain=domain, sample_weight=weight)
        assert np.array_equal(pipe.decision_function(X), direct.decision_function(X))
        scaled = Pipeline([("scale", StandardScaler().set_fit_request(sample_weight=False)), ("clf", clone(routed))])
        search = GridSearchCV(scaled, {"clf__gamma": [0.0, 1.0]}, cv=StratifiedKFold(2, shuffle=True, random_state=0))
        search.fit(X, y, domain=domain, sample_weight=weight)
        assert search.best_estimator_[-1].penalised_
        assert np.isfinite(search.cv_results_["mean_test_score"]).all()
        with pytest.raises(UnsetMetadataPassedError, match="domain"):
            make_pipeline(SQNNClassifier(**SMALL)).fit(X, y, domain=domain)


# --- pickling and seeds --------------------------------------------------------------------------


def test_pickle_round_trip_scores_the_same_and_holds_no_activations() -> None:
    X, y, domain = arrays(100)
    clf = SQNNClassifier(**SMALL).fit(X, y, domain=domain)
    before = pickle.dumps(clf)
    proba, theta = clf.predict_proba(X), clf.transform(X)
    assert pickle.dumps(clf) == before  # scoring leaves nothing behind on the network
    copy = pickle.loads(before)
    assert np.array_equal(copy.predict_proba(X), proba) and np.array_equal(copy.transform(X), theta)
    assert np.array_equal(pickle.loads(pickle.dumps(copy)).predict_proba(X), proba)
    refit = clone(copy).fit(X, y, domain=domain)  # the parameters survive too
    assert np.array_equal(refit.predict_proba(X), proba)


def test_the_same_seed_gives_identical_predictions() -> None:
    X, y, domain = arrays(100)
    a = SQNNClassifier(**SMALL, seed=3).fit(X, y, domain=domain).predict_proba(X)
    torch.rand(5)  # the global generator's state does not enter the fit
    b = SQNNClassifier(**SMALL, seed=3).fit(X, y, domain=domain).predict_proba(X)
    c = SQNNClassifier(**SMALL, seed=4).fit(X, y, domain=domain).predict_proba(X)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("name", ["y", "domain", "sample_weight", "control"])
def test_complex_metadata_is_refused_on_one_line(name: str) -> None:
    X, y, domain = arrays(30)
    kwargs = {"y": y, "domain": domain}
    kwargs[name] = (kwargs[name] if name in kwargs else np.ones(len(X))) + 1j
    with pytest.raises(ValueError, match=f"Complex data not supported: {name}") as refused:
        SQNNClassifier(**SMALL).fit(X, **kwargs)
    assert "\n" not in str(refused.value)
