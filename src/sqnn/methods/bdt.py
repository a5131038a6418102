"""`bdt`: gradient-boosted decision trees trained on simulation alone (source-only).

The trees are scikit-learn's histogram gradient boosting (binary log-loss), trained on
the simulation training split with its event weights (negative weights are accepted),
early-stopped on the simulation validation split; data is never used. γ does not exist
for this method and is always 0. The shared loop does not train trees
(``own_trainer``): :meth:`BDT.fit_trees` does, and the fitted trees become a
:class:`~sqnn.nn.trees.TreeEnsemble`, stored in a run directory as arrays, never pickled
(:mod:`sqnn.runs.trees`).

The "representation" of a tree model, used by the domain probe (``domain_auc``), is
its score. ``n_params`` counts the thresholds and leaf values.

Options: ``max_iter`` (trees, default 300), ``learning_rate`` (0.1),
``max_leaf_nodes`` (31), ``max_depth`` (none), ``min_samples_leaf`` (20),
``l2_regularization`` (0), ``n_iter_no_change`` (10). The training ``epochs`` setting
does not apply to trees.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sqnn.data import Sample, Splits
from sqnn.methods.base import OwnFit, OwnTrainer
from sqnn.nn.trees import TreeEnsemble
from sqnn.schema import Integer, Nullable, Real

__all__ = ["BDT"]


class BDT(OwnTrainer):
    name = "bdt"
    summary = "gradient-boosted trees on simulation alone"
    option_rules = {
        "max_iter": Integer(1, 100_000),
        "learning_rate": Real(0.0, 1.0, low_open=True),
        "max_leaf_nodes": Integer(2, 1 << 16),
        "max_depth": Nullable(Integer(1, 1000)),
        "min_samples_leaf": Integer(1, 1 << 24),
        "l2_regularization": Real(0.0, 1e6),
        "n_iter_no_change": Integer(1, 100_000),
    }
    colour = "#56B4E9"
    linestyle = ":"
    demo = ("full", "quick")

    def __init__(self, gamma: float = 0.0, **options: Any) -> None:
        super().__init__(0.0, **options)

    def max_iterations(self) -> int:
        return int(self.options.get("max_iter", 300))

    def classifier(self, seed: int) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        o = self.options
        return HistGradientBoostingClassifier(
            max_iter=int(o.get("max_iter", 300)),
            learning_rate=float(o.get("learning_rate", 0.1)),
            max_leaf_nodes=int(o.get("max_leaf_nodes", 31)),
            max_depth=None if o.get("max_depth") is None else int(o["max_depth"]),
            min_samples_leaf=int(o.get("min_samples_leaf", 20)),
            l2_regularization=float(o.get("l2_regularization", 0.0)),
            early_stopping=True,
            n_iter_no_change=int(o.get("n_iter_no_change", 10)),
            scoring="loss",
            random_state=seed,
        )

    def fit_own(self, simulation: Sample, splits: Splits, *, seed: int, threads: int = 1) -> OwnFit:
        """Train on the simulation training split, early-stopped on its validation split."""
        from threadpoolctl import threadpool_limits

        if simulation.label is None:
            raise ValueError("simulation needs labels")
        train, validation = splits.simulation["train"], splits.simulation["validation"]
        scale = float(np.mean(simulation.weight[train]))
        scale = scale if scale > 0 else 1.0
        model = self.classifier(seed)
        started = time.process_time()
        with threadpool_limits(limits=threads):
            model.fit(
                simulation.features[train].astype(np.float64),
                simulation.label[train],
                sample_weight=simulation.weight[train] / scale,
                X_val=simulation.features[validation].astype(np.float64),
                y_val=simulation.label[validation],
                sample_weight_val=simulation.weight[validation] / scale,
            )
        seconds = time.process_time() - started
        history = [
            {
                "epoch": i,
                "gamma": 0.0,
                "loss_classification": float(-model.train_score_[i + 1]),
                "loss_penalty": 0.0,
                "val_classification": float(-model.validation_score_[i + 1]),
                "val_loss": float(-model.validation_score_[i + 1]),
            }
            for i in range(int(model.n_iter_))
        ]
        return OwnFit(TreeEnsemble.from_hist_gradient_boosting(model), history, seconds, self.max_iterations(),
                      int(self.options.get("n_iter_no_change", 10)))
