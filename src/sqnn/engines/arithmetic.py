"""Which arithmetic the engines run for a trained network, and which packed engine runs it.

A fixed-point network (``network.fixed_point``) is a :class:`~sqnn.engines.fixed_network.FixedNetwork`,
scored by its mean or thresholded, and runs in :class:`~sqnn.engines.packed_fixed.FixedPackedEngine`.
Any other network is a :class:`~sqnn.engines.network.DeployedNetwork` of step units,
thresholded or drawn from LFSRs, and runs in :class:`~sqnn.engines.packed.PackedEngine`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from sqnn.engines.fixed_network import FORMAT as FIXED_FORMAT
from sqnn.engines.fixed_network import FixedNetwork
from sqnn.engines.network import NETWORK_JSON, DeployedNetwork, require_network
from sqnn.errors import SqnnError, option, phrase
from sqnn.runs import Run

if TYPE_CHECKING:
    from sqnn.engines.packed import PackedEngine
    from sqnn.engines.packed_fixed import FixedPackedEngine

__all__ = ["load_network", "load_packed", "network_for", "packed_engine"]


def network_for(run: Run, inference: str | None = None) -> "DeployedNetwork | FixedNetwork":
    """The arithmetic the engines run for ``run`` scored ``inference`` (default: the run's own), or a one-line refusal.

    A fixed-point network (``network.fixed_point``) is a :class:`~sqnn.engines.fixed_network.FixedNetwork`,
    scored by its mean or thresholded. Any other network is a :class:`DeployedNetwork` of
    step units, thresholded or drawn from LFSRs: the engines cannot compute the mean of its
    float Bernoulli units, and never export a thresholded network in its place unless asked.
    """
    model = require_network(run)
    mode = run.default_inference if inference is None else inference
    if model.config.fixed_point is not None:
        if mode == "stochastic":
            modes = phrase("inference='mean' or 'deterministic'", "--inference mean or deterministic")
            raise SqnnError(f"{run.path}: stochastic (LFSR) inference of a fixed-point network is not implemented; use {modes}")
        return FixedNetwork.from_run(run, mode)
    if mode == "mean":
        raise SqnnError(
            f"{run.path}: the model scores with the mean of its Bernoulli units (network.inference: mean), which the packed "
            "engine and the firmware compute only for a fixed-point network: train with network: {fixed_point: {}}, "
            f"or pass {option('inference', 'deterministic', repr('deterministic'))} for the thresholded network"
        )
    return DeployedNetwork.from_run(run)


def load_network(directory: str | Path) -> "DeployedNetwork | FixedNetwork":
    """A packed export read back, whichever kind it is."""
    try:
        meta = json.loads((Path(directory) / NETWORK_JSON).read_text())
    except (OSError, ValueError):
        meta = None  # DeployedNetwork.load names the problem
    if isinstance(meta, dict) and meta.get("format") == FIXED_FORMAT:
        return FixedNetwork.load(directory)
    return DeployedNetwork.load(directory)


def packed_engine(run: Run, inference: str | None = None) -> "PackedEngine | FixedPackedEngine":
    """The packed engine for ``run`` scored ``inference`` (default: the run's own), see :func:`network_for`.

    A step network's engine thresholds or draws as each call asks, so its default is the
    thresholded network whatever the run's own scoring.
    """
    model = require_network(run)
    if inference is None and model.config.fixed_point is None:
        return _engine_for(DeployedNetwork.from_run(run))
    return _engine_for(network_for(run, inference))


def load_packed(directory: str | Path) -> "PackedEngine | FixedPackedEngine":
    """The packed engine of an export read back, whichever kind it is."""
    return _engine_for(load_network(directory))


def _engine_for(network: DeployedNetwork | FixedNetwork) -> "PackedEngine | FixedPackedEngine":
    if isinstance(network, DeployedNetwork):
        from sqnn.engines.packed import PackedEngine

        return PackedEngine(network)
    from sqnn.engines.packed_fixed import FixedPackedEngine

    return FixedPackedEngine(network)
