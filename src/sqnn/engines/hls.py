"""hls4ml firmware for a quantisation-aware SQNN, and its bit-level parity check.

The firmware takes the standardised inputs on the ``ap_fixed`` grid of ``input_fixed``
(the trigger's preprocessing produces them) and returns the **logit**; the decision is
the cut logit > 0 (the sigmoid is a lookup table in hls4ml and not exact, the cut is).
Everything in between is exact fixed-point arithmetic that equals the Python model:

- the first layer has its weights and biases on the ``first_layer_fixed`` grid; the
  accumulator and result types are sized from the largest reachable |z|, so nothing
  rounds or wraps;
- a step unit is hls4ml's ``binary_tanh`` with result type ``ap_uint<1>``. It fires on
  z ≥ 0 where the model fires on z > 0, so the exported bias is lowered by one lsb of
  z (z lives on a grid, so z > 0 ⇔ z − lsb ≥ 0);
- a binary layer becomes ±1 weights and the half-integer bias 0.5 − T, T the integer
  threshold that holds the scale α and the float bias (c ≥ T ⇔ c − T + 0.5 ≥ 0);
- float-weight step layers and the head use their weights on the fine grid of
  :class:`sqnn.engines.network.GridLayer`, exactly representable in ``ap_fixed``.

A **fixed-point network** (:mod:`sqnn.engines.fixed_network`, e.g. the default ReLU →
Bernoulli network trained with ``fixed_point``) becomes Dense → ReLU → … → Dense → θ
levels → Dense head: weights on their grids, biases and accumulators on the exact grid
of z, each ReLU with the result type ``ap_ufixed<W,I,AP_RND_CONV,AP_SAT>`` (round half
to even and saturate, as the model does), and the Bernoulli units as the custom layer
``ThetaLevels``: m = level · #{k : z ≥ T_k}, compared on the raw bits of z, written as
θ_q = m / 2^B into ``ap_ufixed<B+1,1>``.

Stochastic inference replaces each step by the custom layer ``BernoulliLFSR`` (hls4ml's
extension API: a PyTorch handler, an IR layer, config and call templates and a C++
header registered with the backend). It runs the LFSRs of :mod:`sqnn.engines.lfsr` and
compares u < θ_q(z) from a table, one draw per call: K samples of an event are K calls.

``check`` compiles the C simulation (g++, no Vitis: no synthesis report) and compares the
hidden bits and decisions with the Python model; it passes only at 100 %.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from sqnn.engines import lfsr
from sqnn.engines.fixed_network import RELU, FixedNetwork
from sqnn.engines.network import BinaryLayer, DeployedNetwork
from sqnn.errors import SqnnError

__all__ = ["HlsExport", "export_hls", "check_hls", "compile_export", "HLS_DIR", "DEFAULT_PART"]

HLS_DIR = "hls4ml"
DEFAULT_PART = "xcvu13p-flga2577-2-e"
PROJECT = "sqnn"
Inference = Literal["deterministic", "stochastic"]

try:
    import hls4ml
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
    from hls4ml.model.layers import Layer
    from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType
    from hls4ml.utils.torch import HLS4MLModule
except ImportError:  # pragma: no cover - exercised only without the deploy extra
    raise SqnnError("the hls4ml export needs hls4ml: pip install 'sqnn[deploy]'") from None


# ----------------------------------------------------------------- PyTorch modules
class BinaryStep(HLS4MLModule):
    """Step activation for the hls4ml converter (mapped to ``binary_tanh`` with an ``ap_uint<1>`` result)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z >= 0).to(z.dtype)


class LFSRStep(HLS4MLModule):
    """Stochastic step with an LFSR per unit (becomes the custom hls4ml layer ``BernoulliLFSR``)."""

    def __init__(self, table: lfsr.ThetaTable, seeds: np.ndarray, z_fractional: int) -> None:
        super().__init__()
        self.table = table
        self.seeds = np.asarray(seeds, dtype=np.uint32)
        self.frac_shift = int(z_fractional - table.shift)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z > 0).to(z.dtype)


class ThetaLevels(HLS4MLModule):
    """θ levels of a fixed-point Bernoulli layer (becomes the custom hls4ml layer ``ThetaLevels``)."""

    def __init__(self, thresholds: np.ndarray, level: int, theta_bits: int, z_fractional: int) -> None:
        super().__init__()
        self.thresholds = np.asarray(thresholds, dtype=np.int64)
        self.level = int(level)
        self.theta_bits = int(theta_bits)
        self.z_fractional = int(z_fractional)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z_int = torch.round(z * 2.0**self.z_fractional)
        thresholds = torch.from_numpy(self.thresholds.astype(np.float64)).to(z.dtype)
        return (z_int.unsqueeze(-1) >= thresholds).sum(-1).to(z.dtype) * (self.level / 2.0**self.theta_bits)


class _FirmwareNet(nn.Module):
    """Dense → step → … → head, in float64 so that grid weights reach hls4ml exactly."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], activations: list[nn.Module]) -> None:
        super().__init__()
        self.names: list[tuple[str, str]] = []
        for i, ((weight, bias), activation) in enumerate(zip(layers[:-1], activations)):
            dense = nn.Linear(weight.shape[1], weight.shape[0]).double()
            with torch.no_grad():
                dense.weight.copy_(torch.from_numpy(weight))
                dense.bias.copy_(torch.from_numpy(bias))
            setattr(self, f"fc{i}", dense)
            setattr(self, f"step{i}", activation)
            self.names.append((f"fc{i}", f"step{i}"))
        weight, bias = layers[-1]
        self.head = nn.Linear(weight.shape[1], weight.shape[0]).double()
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(weight))
            self.head.bias.copy_(torch.from_numpy(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dense, step in self.names:
            x = getattr(self, step)(getattr(self, dense)(x))
        return self.head(x)


# ----------------------------------------------------------- the hls4ml extension
_CONFIG_TEMPLATE = """struct config{index} : nnet::bernoulli_lfsr_config {{
    static const unsigned n_in = {n_in};
    static const unsigned frac_shift = {frac_shift};
    static const int index_offset = {index_offset};
    static const int table_length = {table_length};
    static const unsigned unit_stride = {unit_stride};
}};
"""
_FUNCTION_TEMPLATE = "nnet::bernoulli_lfsr<{input_t}, {output_t}, {config}>({input}, {output}, {table}, {seeds});"
_HEADER_NAME = "nnet_bernoulli_lfsr.h"
_HEADER = r"""#ifndef NNET_BERNOULLI_LFSR_H_
#define NNET_BERNOULLI_LFSR_H_

// Stochastic step units of sqnn: one LFSR per unit (see sqnn.engines.lfsr).
// Register: 32-bit Galois LFSR shifting right, feedback x^32 + x^22 + x^2 + x + 1
// (toggle mask 0x80200003), advanced 16 steps per draw; u = low 16 bits.
// A unit fires when u < theta_q, theta_q = table[unit * unit_stride + column] with
// column = clamp(floor(z * 2^S) + index_offset, 0, table_length - 1), i.e. the raw bits
// of z shifted right by frac_shift = F_z - S.

#include "ap_fixed.h"
#include "ap_int.h"

namespace nnet {

struct bernoulli_lfsr_config {
    static const unsigned n_in = 1;
    static const unsigned frac_shift = 0;
    static const int index_offset = 0;
    static const int table_length = 1;
    static const unsigned unit_stride = 0;
};

inline ap_uint<32> lfsr_draw(ap_uint<32> state) {
    for (int step = 0; step < 16; step++) {
        #pragma HLS UNROLL
        bool lsb = state[0];
        state = state >> 1;
        if (lsb) {
            state ^= ap_uint<32>(0x80200003UL);
        }
    }
    return state;
}

template <class data_T, class res_T, typename CONFIG_T, class table_T, class seed_T>
void bernoulli_lfsr(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in], const table_T *table, const seed_T *seeds) {
    // the registers keep their state from call to call: one draw per call
    static ap_uint<32> state[CONFIG_T::n_in];
    static bool seeded = false;
    if (!seeded) {
        for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
            state[i] = seeds[i];
        }
        seeded = true;
    }
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        state[i] = lfsr_draw(state[i]);
        ap_uint<16> u = state[i].range(15, 0);
        ap_int<data_T::width> raw = data[i].range(data_T::width - 1, 0);
        long long column = (long long)((raw >> CONFIG_T::frac_shift).to_int64()) + CONFIG_T::index_offset;
        if (column < 0) {
            column = 0;
        }
        if (column > CONFIG_T::table_length - 1) {
            column = CONFIG_T::table_length - 1;
        }
        ap_uint<17> theta = table[i * CONFIG_T::unit_stride + column];
        res[i] = (u < theta) ? 1 : 0;
    }
}

} // namespace nnet

#endif
"""


_THETA_CONFIG_TEMPLATE = """struct config{index} : nnet::theta_levels_config {{
    static const unsigned n_in = {n_in};
    static const unsigned n_thresholds = {n_thresholds};
    static const unsigned level = {level};
}};
"""
_THETA_FUNCTION_TEMPLATE = "nnet::theta_levels<{input_t}, {output_t}, {config}>({input}, {output}, {thresholds});"
_THETA_HEADER_NAME = "nnet_theta_levels.h"
_THETA_HEADER = r"""#ifndef NNET_THETA_LEVELS_H_
#define NNET_THETA_LEVELS_H_

// Bernoulli units of a fixed-point sqnn network scored by their expectation
// (see sqnn.nn.quant.theta_thresholds): theta = sigmoid(tau z) rounded to B bits is
// m / 2^B with m the number of thresholds T_k that z reaches, compared on the raw
// bits of z (units of its lsb). A thresholded unit is one threshold (T = 1, z > 0)
// with level 2^B. The result type is ap_ufixed<B+1,1>: its raw bits are m * level.

#include "ap_fixed.h"
#include "ap_int.h"

namespace nnet {

struct theta_levels_config {
    static const unsigned n_in = 1;
    static const unsigned n_thresholds = 1;
    static const unsigned level = 1;
};

template <class data_T, class res_T, typename CONFIG_T, class threshold_T>
void theta_levels(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in], const threshold_T *thresholds) {
    #pragma HLS PIPELINE
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        ap_int<data_T::width> raw = data[i].range(data_T::width - 1, 0);
        ap_uint<res_T::width> count = 0;
        for (unsigned k = 0; k < CONFIG_T::n_thresholds; k++) {
            #pragma HLS UNROLL
            count += (raw >= thresholds[k]) ? 1 : 0;
        }
        res[i].range(res_T::width - 1, 0) = count * CONFIG_T::level;
    }
}

} // namespace nnet

#endif
"""


class ThetaLevelsLayer(Layer):
    """hls4ml IR of :class:`ThetaLevels`: output ``ap_ufixed<B+1,1>``, thresholds as an integer weight array."""

    def initialize(self) -> None:
        shape = list(self.get_input_variable().shape)
        bits = int(self.get_attr("theta_bits"))
        self.add_output_variable(shape, precision=FixedPrecisionType(width=bits + 1, integer=1, signed=False))
        self.add_weights_variable(
            name="thresholds", var_name="theta_thresholds{index}",
            precision=IntegerPrecisionType(width=int(self.get_attr("threshold_width")), signed=True),
            data=self.get_attr("thresholds_data"),
        )


class _ThetaConfigTemplate(LayerConfigTemplate):
    def __init__(self) -> None:
        super().__init__(ThetaLevelsLayer)
        self.template = _THETA_CONFIG_TEMPLATE

    def format(self, node: Any) -> str:
        params = self._default_config_params(node)
        params["n_in"] = node.get_input_variable().size()
        return self.template.format(**params)


class _ThetaFunctionTemplate(FunctionCallTemplate):
    def __init__(self) -> None:
        super().__init__(ThetaLevelsLayer, include_header=[f"nnet_utils/{_THETA_HEADER_NAME}"])
        self.template = _THETA_FUNCTION_TEMPLATE

    def format(self, node: Any) -> str:
        params = self._default_function_params(node)
        params["thresholds"] = node.get_weights("thresholds").name
        return self.template.format(**params)


def _parse_theta(operation, layer_name, input_names, input_shapes, node, class_object, data_reader, config):  # type: ignore[no-untyped-def]
    thresholds = class_object.thresholds
    largest = int(np.abs(thresholds).max()) if thresholds.size else 0
    layer = {
        "class_name": "ThetaLevelsLayer",
        "name": layer_name,
        "inputs": input_names,
        "n_thresholds": int(thresholds.size),
        "level": class_object.level,
        "theta_bits": class_object.theta_bits,
        "threshold_width": max(2, largest.bit_length() + 1),
        "thresholds_data": thresholds.astype(np.float64),
    }
    return layer, list(input_shapes[0])


class BernoulliLFSR(Layer):
    """hls4ml IR of the stochastic step: output ``ap_uint<1>``, θ table and seeds as weights (matched by class name)."""

    def initialize(self) -> None:
        shape = list(self.get_input_variable().shape)
        self.add_output_variable(shape, precision=IntegerPrecisionType(width=1, signed=False))
        self.add_weights_variable(
            name="table", var_name="lfsr_table{index}", precision=IntegerPrecisionType(width=18, signed=False),
            data=self.get_attr("table_data"),
        )
        self.add_weights_variable(
            name="seeds", var_name="lfsr_seeds{index}", precision=IntegerPrecisionType(width=32, signed=False),
            data=self.get_attr("seeds_data"),
        )


class _LFSRConfigTemplate(LayerConfigTemplate):
    def __init__(self) -> None:
        super().__init__(BernoulliLFSR)
        self.template = _CONFIG_TEMPLATE

    def format(self, node: Any) -> str:
        params = self._default_config_params(node)
        params["n_in"] = node.get_input_variable().size()
        return self.template.format(**params)


class _LFSRFunctionTemplate(FunctionCallTemplate):
    def __init__(self) -> None:
        super().__init__(BernoulliLFSR, include_header=[f"nnet_utils/{_HEADER_NAME}"])
        self.template = _FUNCTION_TEMPLATE

    def format(self, node: Any) -> str:
        params = self._default_function_params(node)
        params["table"] = node.get_weights("table").name
        params["seeds"] = node.get_weights("seeds").name
        return self.template.format(**params)


def _parse_step(operation, layer_name, input_names, input_shapes, node, class_object, data_reader, config):  # type: ignore[no-untyped-def]
    layer = {"class_name": "Activation", "activation": "binary_tanh", "name": layer_name, "inputs": input_names}
    return layer, list(input_shapes[0])


def _parse_lfsr(operation, layer_name, input_names, input_shapes, node, class_object, data_reader, config):  # type: ignore[no-untyped-def]
    table = class_object.table
    layer = {
        "class_name": "BernoulliLFSR",
        "name": layer_name,
        "inputs": input_names,
        "n_in": int(input_shapes[0][-1]),
        "frac_shift": class_object.frac_shift,
        "index_offset": int(table.offset),
        "table_length": int(table.length),
        "unit_stride": int(table.length) if table.per_unit else 0,
        "table_data": table.values.ravel().astype(np.float64),
        "seeds_data": class_object.seeds.astype(np.float64),
    }
    return layer, list(input_shapes[0])


_registered = False


def _register(source_dir: Path) -> None:
    """Register the step handlers, the LFSR and θ-level layers, their templates and C++ headers (once per process)."""
    global _registered
    source_dir.mkdir(parents=True, exist_ok=True)
    backend = hls4ml.backends.get_backend("Vivado")
    for name, text in ((_HEADER_NAME, _HEADER), (_THETA_HEADER_NAME, _THETA_HEADER)):
        header = source_dir / name
        header.write_text(text)
        # the header path is per export directory; re-registering replaces the previous one
        backend.register_source(header.resolve())
    if _registered:
        return
    supported = hls4ml.converters.get_supported_pytorch_layers()
    for module, handler in (("BinaryStep", _parse_step), ("LFSRStep", _parse_lfsr), ("ThetaLevels", _parse_theta)):
        if module not in supported:
            hls4ml.converters.register_pytorch_layer_handler(module, handler)
    hls4ml.model.layers.register_layer("BernoulliLFSR", BernoulliLFSR)
    hls4ml.model.layers.register_layer("ThetaLevelsLayer", ThetaLevelsLayer)
    for template in (_LFSRConfigTemplate, _LFSRFunctionTemplate, _ThetaConfigTemplate, _ThetaFunctionTemplate):
        backend.register_template(template)
    _registered = True


# ------------------------------------------------------------------ precisions
def _int_bits(bound: float) -> int:
    """Integer bits (sign included) of an ap_fixed that holds ±bound."""
    return 1 if bound <= 0 else max(1, math.floor(math.log2(bound)) + 2)


def _fixed(integer: int, fractional: int) -> str:
    return f"ap_fixed<{integer + fractional},{integer}>"


@dataclass
class HlsExport:
    """A written hls4ml project and what the parity check needs."""

    directory: Path
    network: DeployedNetwork | FixedNetwork
    inference: str
    seed: int
    step_layers: list[str]  # traced activation layers, one per hidden layer
    model: Any  # hls4ml ModelGraph

    def inputs(self, features: np.ndarray) -> np.ndarray:
        """What the firmware reads: standardised inputs on the input grid (float64 holding grid values)."""
        network = self.network
        grid = network.input_grid if isinstance(network, FixedNetwork) else network.first.input_grid
        assert grid is not None
        return grid.quantize_numpy(network.standardize(features)).astype(np.float64)


def _fixed_firmware_layers(network: FixedNetwork) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[nn.Module], dict[str, dict[str, str]]]:
    """Weights (grid values), activation modules and per-layer precisions of a fixed-point network's firmware."""
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    activations: list[nn.Module] = []
    precision: dict[str, dict[str, str]] = {"x": {"result": network.input_grid.hls_type}}
    bounds = network.bounds()
    for i, (layer, bound) in enumerate(zip(network.layers, bounds)):
        fz = layer.z_fractional
        weight = layer.weight_int.astype(np.float64) * layer.weight_grid.lsb
        bias = layer.bias_int.astype(np.float64) * 2.0**-fz
        z_type = _fixed(_int_bits(bound * 2.0**-fz), fz)
        precision[f"fc{i}"] = {"weight": layer.weight_grid.hls_type, "bias": _fixed(_int_bits(float(np.abs(bias).max())), fz),
                               "accum": z_type, "result": z_type}
        layers.append((weight, bias))
        if layer.activation == RELU:
            assert layer.output_grid is not None
            activations.append(nn.ReLU())
            precision[f"step{i}"] = {"result": layer.output_grid.hls_type_rounding}
        else:
            assert layer.thresholds is not None
            activations.append(ThetaLevels(layer.thresholds, layer.level, layer.theta_bits, fz))
    weight = network.head_weight_int[None, :].astype(np.float64) * network.head_grid.lsb
    bias = np.array([network.head_bias_int * network.logit_lsb])
    logit_type = _fixed(_int_bits(bounds[-1] * network.logit_lsb), network.logit_fractional)
    precision["head"] = {"weight": network.head_grid.hls_type, "bias": _fixed(_int_bits(float(abs(bias[0]))), network.logit_fractional),
                         "accum": logit_type, "result": logit_type}
    layers.append((weight, bias))
    return layers, activations, precision


def _firmware_layers(network: DeployedNetwork, inference: Inference, seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[nn.Module], dict[str, dict[str, str]]]:
    """Weights, activation modules and per-layer precisions of the firmware network."""
    first = network.first
    assert first.input_grid is not None and first.weight_grid is not None
    stochastic = inference == "stochastic"
    tables = lfsr.theta_tables(network) if stochastic else []
    seeds = lfsr.unit_seeds(seed, sum(network.widths))
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    activations: list[nn.Module] = []
    precision: dict[str, dict[str, str]] = {"x": {"result": first.input_grid.hls_type}}
    unit = 0
    # first layer: z on the grid 2^-(F_x + F_w)
    fz = first.z_fractional
    bias = first.bias.astype(np.float64) - (0.0 if stochastic else 2.0**-fz)
    weight = first.weight.astype(np.float64)
    x_max = 2.0 ** (first.input_grid.integer - 1)
    bound = float((np.abs(weight).sum(1) * x_max + np.abs(bias)).max())
    z_type = _fixed(_int_bits(bound), fz)
    precision["fc0"] = {"weight": first.weight_grid.hls_type, "bias": _fixed(_int_bits(float(np.abs(bias).max())), fz),
                        "accum": z_type, "result": z_type}
    layers.append((weight, bias))
    z_fracs = [fz]
    for layer in network.hidden:
        if isinstance(layer, BinaryLayer):
            weight = layer.signs().astype(np.float64)
            bias = np.zeros(layer.n_out) if stochastic else 0.5 - layer.threshold.astype(np.float64)
            frac = 0 if stochastic else 1
            bound = layer.n_in + float(np.abs(bias).max())
            z_type = _fixed(_int_bits(bound), frac)
            weight_type, bias_type = "ap_fixed<2,2>", _fixed(_int_bits(float(np.abs(bias).max())), frac)
        else:
            frac = layer.fractional
            weight = layer.weight_int.astype(np.float64) * layer.lsb
            bias = layer.bias_int.astype(np.float64) * layer.lsb - (0.0 if stochastic else layer.lsb)
            bound = float((np.abs(weight).sum(1) + np.abs(bias)).max())
            z_type = _fixed(_int_bits(bound), frac)
            weight_type, bias_type = _fixed(layer.integer, frac), _fixed(_int_bits(float(np.abs(bias).max())), frac)
        layers.append((weight, bias))
        z_fracs.append(frac)
        precision[f"fc{len(layers) - 1}"] = {"weight": weight_type, "bias": bias_type, "accum": z_type, "result": z_type}
    head = network.head
    weight = head.weight_int.astype(np.float64) * head.lsb
    bias = head.bias_int.astype(np.float64) * head.lsb
    bound = float((np.abs(weight).sum(1) + np.abs(bias)).max())
    logit_type = _fixed(_int_bits(bound), head.fractional)
    precision["head"] = {"weight": _fixed(head.integer, head.fractional), "bias": _fixed(head.integer, head.fractional),
                         "accum": logit_type, "result": logit_type}
    layers.append((weight, bias))
    for i, width in enumerate(network.widths):
        if stochastic:
            activations.append(LFSRStep(tables[i], seeds[unit : unit + width], z_fracs[i]))
        else:
            activations.append(BinaryStep())
            precision[f"step{i}"] = {"result": "ap_uint<1>"}
        unit += width
    return layers, activations, precision


@contextlib.contextmanager
def _quiet(verbose: bool):  # type: ignore[no-untyped-def]
    """hls4ml prints its progress; keep it for errors unless asked for."""
    if verbose:
        yield io.StringIO()
        return
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer


def export_hls(
    network: DeployedNetwork | FixedNetwork,
    out: str | Path,
    *,
    inference: str | None = None,
    seed: int = 0,
    part: str = DEFAULT_PART,
    trace: bool = False,
    verbose: bool = False,
) -> HlsExport:
    """Write the hls4ml project (Vivado backend, io_parallel) to ``out/hls4ml``.

    A step network is exported ``deterministic`` (default) or ``stochastic``; a
    fixed-point network in its own scoring (``inference`` must be that or ``None``).
    """
    if isinstance(network, FixedNetwork):
        if inference not in (None, network.scoring):
            raise SqnnError(f"this fixed-point network is built to score {network.scoring!r}, not {inference!r}")
        inference = network.scoring
        layers, activations, precision = _fixed_firmware_layers(network)
    else:
        inference = inference or "deterministic"
        if not network.first.is_integer:
            raise SqnnError(
                f"{network.source or 'this model'}: the hls4ml firmware needs a quantisation-aware model: train with "
                "network: {fixed_point: {}} (any network) or {input_fixed: [W, I], first_layer_fixed: [W, I]} (step networks)"
            )
        if inference not in ("deterministic", "stochastic"):
            raise SqnnError(f"inference must be 'deterministic' or 'stochastic', got {inference!r}")
        layers, activations, precision = _firmware_layers(network, inference, seed)  # type: ignore[arg-type]
    out = Path(out)
    directory = out / HLS_DIR
    _register(out / "hls4ml_src")
    module = _FirmwareNet(layers, activations).eval()
    step_layers = [step for _, step in module.names]
    with _quiet(verbose) as log:
        try:
            config = hls4ml.utils.config_from_pytorch_model(
                module, (network.n_inputs,), granularity="name", backend="Vivado", default_precision="ap_fixed<16,6>"
            )
            for name, types in precision.items():
                config["LayerName"].setdefault(name, {}).setdefault("Precision", {}).update(types)
            for name in config["LayerName"]:
                config["LayerName"][name]["Trace"] = bool(trace and (name in step_layers or name == "head"))
            model = hls4ml.converters.convert_from_pytorch_model(
                module, hls_config=config, output_dir=str(directory), project_name=PROJECT,
                backend="Vivado", io_type="io_parallel", part=part,
            )
            model.write()
        except Exception as exc:  # hls4ml raises bare Exceptions
            raise SqnnError(f"hls4ml conversion failed: {exc} ({' '.join(log.getvalue().split()[-30:])})") from None
    return HlsExport(directory=directory, network=network, inference=inference, seed=int(seed), step_layers=step_layers, model=model)


def compile_export(export: HlsExport, verbose: bool = False) -> None:
    """Compile the C simulation of an export (g++; about 15 s)."""
    with _quiet(verbose) as log:
        try:
            export.model.compile()
        except Exception as exc:
            raise SqnnError(f"hls4ml C simulation failed to compile: {exc} ({' '.join(log.getvalue().split()[-40:])})") from None


@dataclass
class HlsCheck:
    events: int
    samples: int
    hidden_agreement: list[float]  # fraction of identical bits per step layer
    decision_agreement: float
    logit_max_abs_diff: float  # against the exact Python logits
    passed: bool
    firmware_logit: np.ndarray  # (events × samples,)
    firmware_hidden: list[np.ndarray]  # bool (events × samples, units) per step layer
    firmware_codes: list[np.ndarray] | None = None  # int64 (events, units) per layer of a fixed-point network

    def summary(self) -> str:
        bits = ", ".join(f"{100 * a:.3f} %" for a in self.hidden_agreement)
        return (
            f"hls4ml C simulation vs Python on {self.events} events"
            + (f" × {self.samples} samples" if self.samples > 1 else "")
            + f": decisions {100 * self.decision_agreement:.3f} % identical, hidden bits {bits}, "
            + f"max |Δlogit| {self.logit_max_abs_diff:.3g} — {'PASS' if self.passed else 'FAIL'}"
        )


def check_hls(export: HlsExport, features: np.ndarray, *, samples: int = 1, python_hidden: list[np.ndarray] | None = None,
              python_logit: np.ndarray | None = None, verbose: bool = False) -> HlsCheck:
    """Compile the C simulation and compare bits and decisions with the Python model.

    Deterministic: against ``python_hidden``/``python_logit`` (the torch model's, from the
    caller) and the exact reference. Stochastic: against :func:`sqnn.engines.lfsr.emulate`
    with the export's seed, ``samples`` draws per event.
    """
    network = export.network
    x = export.inputs(features)
    if isinstance(network, FixedNetwork):
        return _check_fixed(export, network, features, x, python_hidden, python_logit, verbose)
    if export.inference == "stochastic":
        x = np.repeat(x, samples, axis=0)
    else:
        samples = 1
    with _quiet(verbose) as log:
        try:
            logits, traces = export.model.trace(np.ascontiguousarray(x))
        except Exception as exc:
            raise SqnnError(f"hls4ml C simulation failed to compile or run: {exc} ({' '.join(log.getvalue().split()[-40:])})") from None
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    firmware_bits = [np.asarray(traces[name]).reshape(len(x), -1) > 0.5 for name in export.step_layers]
    if export.inference == "stochastic":
        emulation = lfsr.emulate(network, features, export.seed, samples)
        expected_bits = [b.reshape(len(x), -1) for b in emulation.hidden]
        expected_logit = emulation.logit.reshape(-1)
        decisions_expected = expected_logit > 0
    else:
        reference = network.reference(features)
        expected_bits = python_hidden if python_hidden is not None else reference.hidden
        expected_logit = reference.logit
        decisions_expected = (python_logit if python_logit is not None else reference.logit) > 0
    hidden = [float((a == b).mean()) for a, b in zip(firmware_bits, expected_bits)]
    decisions = float(((logits > 0) == decisions_expected).mean())
    diff = float(np.abs(logits - expected_logit).max()) if len(logits) else 0.0
    passed = decisions == 1.0 and all(h == 1.0 for h in hidden)
    return HlsCheck(events=len(features), samples=samples if export.inference == "stochastic" else 1, hidden_agreement=hidden,
                    decision_agreement=decisions, logit_max_abs_diff=diff, passed=passed, firmware_logit=logits, firmware_hidden=firmware_bits)


def _check_fixed(export: HlsExport, network: FixedNetwork, features: np.ndarray, x: np.ndarray, python_codes: list[np.ndarray] | None,
                 python_logit: np.ndarray | None, verbose: bool) -> HlsCheck:
    """A fixed-point firmware's codes of every layer and its decisions against the Python model; its logits against the reference."""
    with _quiet(verbose) as log:
        try:
            logits, traces = export.model.trace(np.ascontiguousarray(x))
        except Exception as exc:
            raise SqnnError(f"hls4ml C simulation failed to compile or run: {exc} ({' '.join(log.getvalue().split()[-40:])})") from None
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    codes = [
        np.rint(np.asarray(traces[name], dtype=np.float64).reshape(len(x), -1) * 2.0**layer.output_fractional).astype(np.int64)
        for name, layer in zip(export.step_layers, network.layers)
    ]
    reference = network.reference(features)
    expected_codes = python_codes if python_codes is not None else reference.codes
    expected_decision = (python_logit if python_logit is not None else reference.logit) > 0
    hidden = [float((a == b).mean()) for a, b in zip(codes, expected_codes)]
    decisions = float(((logits > 0) == expected_decision).mean())
    diff = float(np.abs(logits - reference.logit).max()) if len(logits) else 0.0
    passed = decisions == 1.0 and all(h == 1.0 for h in hidden)
    return HlsCheck(events=len(x), samples=1, hidden_agreement=hidden, decision_agreement=decisions, logit_max_abs_diff=diff,
                    passed=passed, firmware_logit=logits, firmware_hidden=[c > 0 for c in codes], firmware_codes=codes)

