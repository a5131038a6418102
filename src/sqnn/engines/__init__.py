"""Deployment: the packed CPU engine (numba), ONNX export, hls4ml firmware and parity checks.

Two descriptions of a trained network feed every engine: :class:`DeployedNetwork` (step
layers on bits) and :class:`~sqnn.engines.fixed_network.FixedNetwork` (a network on
fixed-point grids, ``network.fixed_point``); :func:`~sqnn.engines.arithmetic.network_for`
picks the one for a run and a scoring, or refuses, and :func:`~sqnn.engines.arithmetic.packed_engine`
the packed engine that runs it.

The engines need the ``deploy`` extra (numba, onnx, onnxruntime, hls4ml); each module
imports its own dependency, so ``import sqnn.engines`` stays light.
"""

from sqnn.engines.network import DeployedNetwork

__all__ = ["DeployedNetwork"]
