"""The scikit-learn estimator contract."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from sqnn import SQNNClassifier
from sqnn.cases.toy import make_toy

FEATURES = ["x0", "x1", "x2", "x3", "x4", "x5"]


def arrays(n: int = 800):
    sim, data = make_toy("sim", n, 1), make_toy("data", n, 2)
    X = np.vstack([np.column_stack([s[c] for c in FEATURES]) for s in (sim, data)])
    y = np.r_[sim["is_signal"], data["is_signal"]]
    domain = np.r_[np.zeros(n), np.ones(n)]
    return X, y, domain


def test_fit_returns_self_with_fitted_attributes_and_outputs() -> None:
    X, y, domain = arrays()
    clf = SQNNClassifier(gamma=1.0, epochs=2, hidden=(16, 8))
    assert clf.fit(X, y, domain=domain) is clf
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert clf.transform(X).shape == (len(X), 8)
    assert set(np.unique(clf.predict(X))) <= {0, 1}
    assert clf.history_ and clf.n_features_in_ == 6


def test_params_round_trip_and_unknown_arguments_raise() -> None:
    clf = SQNNClassifier(gamma=0.5)
    assert clone(clf).get_params()["gamma"] == 0.5
    clf.set_params(gamma=2.0)
    assert clf.gamma == 2.0
    with pytest.raises(TypeError):
        SQNNClassifier(gama=1.0)  # type: ignore[call-arg]


def test_data_labels_do_not_change_the_fit() -> None:
    X, y, domain = arrays()
    y_other = y.copy()
    y_other[domain == 1] = 1 - y_other[domain == 1]
    a = SQNNClassifier(epochs=1, hidden=(8, 4)).fit(X, y, domain=domain)
    b = SQNNClassifier(epochs=1, hidden=(8, 4)).fit(X, y_other, domain=domain)
    assert np.array_equal(a.decision_function(X), b.decision_function(X))
