"""What the firmware of a fixed-point network computes, counted layer by layer from its design.

Without Vitis there is no synthesis report: no LUT, DSP or latency figures from the tool.
What is known exactly is the arithmetic hls4ml is asked to build (io_parallel, Latency
strategy, ReuseFactor 1: every operation has its own hardware and a new event enters
every clock, II = 1):

- **dense** layers: one multiplier per nonzero weight (a ±2^k weight is a shift, listed
  apart), an adder tree of ``terms`` inputs per output (the bias included), operand and
  accumulator widths; ``bit_operations`` counts Σ input bits × weight bits over the
  nonzero weights, the weight's bits being the ones it uses (sign included, trailing
  zeros dropped) — the EBOPs measure of HGQ, the field's estimate of multiplier cost
  without synthesis (≈ LUTs + 55 · DSPs). ``dsp_hls4ml_rule`` is the rule hls4ml's own
  DSP-aware optimiser uses for the Vivado backend: weights narrower than 9 bits multiply
  in LUTs (0 DSPs), otherwise one DSP per weight per ReuseFactor;
- **ReLU**: a sign test, a rounding (half to even) and a saturation per unit;
- **θ levels**: per unit one comparison of z with each threshold of the table (the
  table is shared by all units) and a count of the comparisons that hold (a popcount);
- the adder-tree depth per output, ceil(log2(terms)), bounds how many additions an
  event passes through in a layer: a design count, not a timing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sqnn.engines.fixed_network import RELU, FixedNetwork

__all__ = ["firmware_resources", "weight_bits"]

_DSP_MIN_WEIGHT_WIDTH = 9  # hls4ml.optimization VivadoDSPEstimator: narrower weights do not use DSPs


def weight_bits(weight_int: np.ndarray) -> np.ndarray:
    """Bits each integer weight uses: magnitude bits without trailing zeros, plus the sign; 0 for a zero weight."""
    w = np.abs(np.asarray(weight_int, dtype=np.int64))
    out = np.zeros(w.shape, dtype=np.int64)
    nonzero = w > 0
    odd = w[nonzero]
    while True:
        even = (odd & 1) == 0
        if not even.any():
            break
        odd = np.where(even, odd >> 1, odd)
    out[nonzero] = np.array([int(v).bit_length() for v in odd.ravel()], dtype=np.int64).reshape(odd.shape) + 1
    return out


def _power_of_two(weight_int: np.ndarray) -> np.ndarray:
    w = np.abs(np.asarray(weight_int, dtype=np.int64))
    return (w > 0) & ((w & (w - 1)) == 0)


def _dense(name: str, weight_int: np.ndarray, bias_int: np.ndarray, input_bits: int, weight_width: int, accumulator_bits: int,
           reuse_factor: int) -> dict[str, Any]:
    nonzero = weight_int != 0
    shifts = _power_of_two(weight_int)
    terms = nonzero.sum(1) + (bias_int != 0)
    return {
        "layer": name,
        "kind": "dense",
        "inputs": int(weight_int.shape[1]),
        "outputs": int(weight_int.shape[0]),
        "weights": int(weight_int.size),
        "nonzero_weights": int(nonzero.sum()),
        "multiplications": int((nonzero & ~shifts).sum()),
        "shifts": int(shifts.sum()),
        "additions": int(np.maximum(terms - 1, 0).sum()),
        "adder_tree_depth": int(max(math.ceil(math.log2(t)) if t > 1 else 0 for t in terms)) if len(terms) else 0,
        "input_bits": int(input_bits),
        "weight_bits": int(weight_width),
        "accumulator_bits": int(accumulator_bits),
        "bit_operations": int((weight_bits(weight_int) * input_bits).sum()),
        "dsp_hls4ml_rule": int(nonzero.sum()) // reuse_factor if weight_width >= _DSP_MIN_WEIGHT_WIDTH else 0,
    }


def _width_for(bound: int) -> int:
    """Bits of a signed integer holding ±bound."""
    return max(1, int(bound).bit_length() + 1)


def firmware_resources(network: FixedNetwork, reuse_factor: int = 1) -> dict[str, Any]:
    """Per layer operations, widths and table sizes of the firmware of ``network``, and their totals."""
    layers: list[dict[str, Any]] = []
    bounds = network.bounds()
    input_bits = network.input_grid.width
    for i, (layer, bound) in enumerate(zip(network.layers, bounds)):
        z_bits = _width_for(bound)
        layers.append(_dense(f"fc{i}", layer.weight_int, layer.bias_int, input_bits, layer.weight_grid.width, z_bits, reuse_factor))
        if layer.activation == RELU:
            assert layer.output_grid is not None
            layers.append({
                "layer": f"step{i}", "kind": "relu", "units": layer.n_out, "input_bits": z_bits,
                "output_bits": layer.output_grid.width, "output_type": layer.output_grid.hls_type_rounding,
                "comparisons": 2 * layer.n_out,  # sign, saturation
                "additions": layer.n_out,  # the rounding increment
            })
            input_bits = layer.output_grid.width
        else:
            assert layer.thresholds is not None
            n_t = len(layer.thresholds)
            layers.append({
                "layer": f"step{i}", "kind": "theta_levels", "units": layer.n_out, "input_bits": z_bits,
                "thresholds": n_t, "table_entries": n_t, "table_bits": n_t * _width_for(int(np.abs(layer.thresholds).max())),
                "output_bits": layer.theta_bits + 1, "output_type": f"ap_ufixed<{layer.theta_bits + 1},1>",
                "comparisons": layer.n_out * n_t,
                "additions": layer.n_out * max(n_t - 1, 0),  # the count of the comparisons that hold
                "scoring": network.scoring,
            })
            input_bits = layer.theta_bits + 1
    head = _dense("head", network.head_weight_int[None, :], np.array([network.head_bias_int]), input_bits, network.head_grid.width,
                  _width_for(bounds[-1]), reuse_factor)
    head["output"] = "logit (the decision is logit > 0)"
    layers.append(head)
    totals = {key: int(sum(layer.get(key, 0) for layer in layers))
              for key in ("multiplications", "shifts", "additions", "comparisons", "bit_operations", "dsp_hls4ml_rule")}
    return {
        "network": network.source,
        "scoring": network.scoring,
        "io_type": "io_parallel",
        "strategy": "Latency",
        "reuse_factor": reuse_factor,
        "initiation_interval": "1 clock by design (io_parallel, ReuseFactor 1); hls4ml gives no latency or resource estimate without Vitis",
        "input_type": network.input_grid.hls_type,
        "layers": layers,
        "totals": totals,
    }
