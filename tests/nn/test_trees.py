"""Tree ensembles as arrays: the same decision function as scikit-learn's trees."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from sqnn.nn.trees import TreeEnsemble


def test_tree_arrays_reproduce_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(size=600) > 0.5).astype(int)
    weight = rng.uniform(-0.2, 2.0, size=600)
    model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15, random_state=0).fit(x, y, sample_weight=weight)
    ensemble = TreeEnsemble.from_hist_gradient_boosting(model)
    test = rng.normal(size=(5000, 4)) * 1.5
    test[:10, 2] = np.nan
    np.testing.assert_allclose(ensemble.decision_function(test), model.decision_function(test), rtol=1e-12, atol=1e-12)
    assert ensemble.n_trees == model.n_iter_
