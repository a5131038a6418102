"""Independent tasks on a Dask cluster: the same results, in the same order, as in one process."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from sqnn.cases.toy import generate
from sqnn.cluster import map_tasks, open_client
from sqnn.data import ColumnSpec

TOY_FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")


@pytest.fixture(scope="module")
def cluster():
    """A two-worker LocalCluster shared by the tests of this module."""
    with open_client("local", workers=2) as client:
        yield client


def _train_task(task: dict) -> bytes:
    """One toy training; runs on a Dask worker in the test below."""
    from sqnn.workflows.train import train_run
    from sqnn.training import TrainConfig
    from sqnn.workflows.settings import Settings

    spec = ColumnSpec(features=TOY_FEATURES, label="is_signal", weight="weight")
    out = Path(task["out"])
    settings = Settings(columns=spec, method=task["method"], gamma=task["gamma"], train=TrainConfig(epochs=1, seed=task["seed"]))
    train_run(task["sim"], task["data"], settings, out)
    return (out / "model.safetensors").read_bytes()


def test_sweep_on_the_cluster_equals_the_serial_sweep(tmp_path: Path, cluster) -> None:
    import cloudpickle

    sim = generate("sim", 800, 1, tmp_path / "sim.parquet")
    data = generate("data", 800, 2, tmp_path / "data.parquet")
    # the workers cannot import this test module: ship the task function by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        settings = [("sqnn", 1.0, 0), ("sqnn", 0.3, 1), ("source-only", 0.0, 2)]

        def tasks(where: str) -> list[dict]:
            return [
                {"sim": str(sim), "data": str(data), "method": m, "gamma": g, "seed": s, "out": str(tmp_path / where / f"{m}-{s}")}
                for m, g, s in settings
            ]

        serial = map_tasks(_train_task, tasks("serial"))
        order: list[int] = []
        parallel = map_tasks(_train_task, tasks("cluster"), cluster, on_result=lambda i, _: order.append(i))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert order == [0, 1, 2]
    assert len(set(serial)) == 3  # three different models...
    assert parallel == serial  # ...each bit-identical to its serial twin
    for m, _, s in settings:
        assert (tmp_path / "cluster" / f"{m}-{s}" / "metrics.json").exists()


def test_errors_in_cluster_tasks_reach_the_caller(cluster) -> None:
    assert map_tasks(math.sqrt, [4.0, 9.0], cluster) == [2.0, 3.0]
    with pytest.raises(ValueError, match="math domain error"):
        map_tasks(math.sqrt, [4.0, -1.0, 16.0], cluster)
