"""Tiny toy samples for the method tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from sqnn.cases.toy import make_toy
from sqnn.data import Sample
from sqnn.methods import Batch
from sqnn.nn import SQNN
from sqnn.training import TrainConfig

FEATURES = ["x0", "x1", "x2", "x3", "x4", "x5"]


def toy_sample(domain: str, n: int, seed: int, signal_fraction: float | None = None) -> Sample:
    columns = make_toy(domain, n, seed, signal_fraction=signal_fraction)
    return Sample(
        features=np.column_stack([columns[f] for f in FEATURES]).astype(np.float32),
        feature_names=list(FEATURES),
        weight=columns["weight"].astype(np.float64),
        domain="simulation" if domain == "sim" else "data",
        source=f"toy-{domain}-{n}-{seed}.parquet",
        label=columns["is_signal"].astype(np.int8),
        control=columns["control"],
        observer=columns["mass"].astype(np.float64),
    )


@pytest.fixture(scope="package")
def toy() -> tuple[Sample, Sample]:
    """Simulation (signal fraction 0.5) and data (0.3, shifted features)."""
    return toy_sample("sim", 800, 1), toy_sample("data", 800, 2, signal_fraction=0.3)


@pytest.fixture
def quick() -> TrainConfig:
    return TrainConfig(epochs=1, batch_size=128, seed=0, monitor_events=200)


def _forward_batch(model: SQNN, n: int = 64, seed: int = 0) -> Batch:
    """One training batch of random events through ``model``, as the loop builds it."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * n, model.n_inputs, generator=generator)
    model.train()
    logit, theta, output = model(x, outputs=True)
    return Batch(
        sim_logit=logit[:n],
        sim_theta=theta[:n],
        sim_label=(torch.rand(n, generator=generator) < 0.5).float(),
        sim_weight=torch.ones(n),
        data_logit=logit[n:],
        data_theta=theta[n:],
        data_weight=torch.ones(n),
        sim_output=output[:n],
        data_output=output[n:],
        epoch=0,
    )


@pytest.fixture
def forward_batch() -> Callable[..., Batch]:
    return _forward_batch


@pytest.fixture
def toy_factory() -> Callable[..., Sample]:
    return toy_sample
