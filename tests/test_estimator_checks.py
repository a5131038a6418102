"""scikit-learn's own estimator checks, on small networks so that the whole suite takes seconds.

Every check is expected to pass except the ones in ``EXPECTED_FAILED``, each with its
reason; ``xfail_strict`` turns an unexpected pass into a failure, so the list cannot
go stale.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from sqnn import SQNNClassifier

# a few Adam steps per epoch on the checks' 20-300 events, enough for their accuracy bar
SMALL = {"epochs": 3, "hidden": (8, 4), "batch_size": 16, "learning_rate": 0.03}

EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": (
        "a weight of 2 is not the same as the event twice: the loop splits events into training and "
        "validation and draws mini-batches row by row, so a repeated row lands in other splits and "
        "batches than its weighted twin; the weighted loss agrees only in expectation"
    ),
}


def expected_failed(estimator: SQNNClassifier) -> dict[str, str]:
    return EXPECTED_FAILED


@parametrize_with_checks(
    [SQNNClassifier(**SMALL), SQNNClassifier(method="mlp", **SMALL)],
    expected_failed_checks=expected_failed,
    xfail_strict=True,
)
def test_sklearn_estimator_checks(estimator, check) -> None:  # noqa: ANN001
    check(estimator)
