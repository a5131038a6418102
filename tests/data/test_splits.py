"""Splits of each domain: fixed by the seed, disjoint, independent of the other domain."""

from __future__ import annotations

import numpy as np
import pytest

from sqnn.data import DATA, SIMULATION, domain_labels, make_splits, split_indices
from sqnn.data.splits import SPLIT_KEYS, held_out_rows


def test_domain_codes_put_simulation_first() -> None:
    labels = domain_labels(3, 2)
    assert labels.tolist() == [SIMULATION] * 3 + [DATA] * 2
    assert labels.dtype == np.int64 and SIMULATION != DATA


@pytest.mark.parametrize("n", [10, 101, 5000])
def test_split_is_a_seeded_partition(n: int) -> None:
    split = split_indices(n, seed=3, domain="simulation", validation=0.2, test=0.2)
    joined = np.concatenate(list(split.values()))
    assert np.array_equal(np.sort(joined), np.arange(n))
    assert len(split["test"]) == round(0.2 * n) and len(split["validation"]) == max(1, round(0.2 * n))
    again = split_indices(n, seed=3, domain="simulation", validation=0.2, test=0.2)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    other = split_indices(n, seed=4, domain="simulation", validation=0.2, test=0.2)
    assert not np.array_equal(split["test"], other["test"])


@pytest.mark.parametrize(
    ("seed", "domain", "test", "validation"),
    [
        (0, "simulation", [2, 13, 16, 17], [1, 8, 11, 19]),
        (0, "data", [1, 4, 14, 19], [3, 6, 7, 15]),
        (7, "simulation", [5, 8, 15, 16], [2, 7, 13, 18]),
        (7, "data", [7, 11, 12, 14], [0, 8, 9, 19]),
    ],
)
def test_the_splits_of_runs_already_written_never_move(seed, domain, test, validation) -> None:
    """A run finds its test split again from its seed: the streams' numbers are part of every run's record."""
    split = split_indices(20, seed=seed, domain=domain, validation=0.2, test=0.2)
    assert split["test"].tolist() == test and split["validation"].tolist() == validation
    assert held_out_rows(20, seed, domain, 0.2, 0.2).tolist() == test
    # the domain codes are another thing: the split keys do not follow them
    assert SPLIT_KEYS == {"simulation": 0, "data": 1}
    with pytest.raises(ValueError, match="a split is drawn for one of"):
        split_indices(20, seed=seed, domain=SIMULATION, validation=0.2, test=0.2)


def test_each_domain_has_its_own_stream() -> None:
    splits = make_splits(1000, 1000, seed=0, validation=0.2, test=0.2)
    assert not np.array_equal(splits.simulation["test"], splits.data["test"])
    # the simulation's split does not depend on how many data events there are
    bigger = make_splits(1000, 3000, seed=0, validation=0.2, test=0.2)
    assert all(np.array_equal(splits.simulation[k], bigger.simulation[k]) for k in splits.simulation)
