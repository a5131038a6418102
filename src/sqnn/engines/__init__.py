"""Deployment: the packed CPU engine (numba), ONNX export, hls4ml firmware and parity checks.

The engines need the ``deploy`` extra (numba, onnx, onnxruntime, hls4ml); each module
imports its own dependency, so ``import sqnn.engines`` stays light.
"""

from sqnn.engines.network import DeployedNetwork

__all__ = ["DeployedNetwork"]
