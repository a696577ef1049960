"""Recurrent layers: cells, ``RNN`` around any cell, stacked cells and ConvLSTM.

A recurrent layer costs one cell step per time step.  The backward pass goes
through every step whether the input needs a gradient or not, so everything
but the input projection's gradient is internal to the layer.
"""

from __future__ import annotations

import math

import keras
from keras.src.layers.rnn.conv_lstm import ConvLSTMCell

from ..keras_compat import layer_classes
from ..registry import LayerCall, LayerCost, register_cost_rule, report_unsupported
from .activations import activation_flops
from .conv import conv

_STATE_TENSORS = {"SimpleRNNCell": 1, "GRUCell": 4, "LSTMCell": 6, "ConvLSTMCell": 6}
"""Tensors of ``units`` each that a step keeps for the backward pass."""


def _act(activation, elements: int) -> int:
    flops = activation_flops(activation, elements)
    if flops is None:
        report_unsupported(f"activation {getattr(activation, '__name__', activation)!r}")
        return 0
    return flops


def step_cost(input_macs: int, recurrent_macs: int, elementwise: int, saved: int) -> LayerCost:
    """One step: only the input projection's gradient depends on the input needing one."""
    return LayerCost(
        macs=input_macs + recurrent_macs,
        elementwise_flops=elementwise,
        input_grad_flops=2 * input_macs,
        weight_grad_flops=2 * (input_macs + recurrent_macs),
        internal_grad_flops=2 * recurrent_macs + elementwise,
        saved_elements=saved,
    )


def gated_step(cell, batch: int, input_dim: int, gates: int, elementwise: int) -> LayerCost:
    """One step of ``gates`` dense projections of [input, state] plus ``elementwise`` FLOPs."""
    units = cell.units
    saved = _STATE_TENSORS.get(type(cell).__name__, 1) * batch * units
    return step_cost(batch * gates * units * input_dim, batch * gates * units * units, elementwise, saved)


def simple_rnn_step(cell, batch: int, input_dim: int) -> LayerCost:
    """x W + h U (+ b), then the activation: 2 or 1 adds per unit."""
    n = batch * cell.units
    adds = n * (2 if cell.use_bias else 1)
    return gated_step(cell, batch, input_dim, 1, adds + _act(cell.activation, n))


def lstm_step(cell, batch: int, input_dim: int) -> LayerCost:
    """4 gates of x W + h U (+ b); c = f*c + i*g (3/unit); h = o * act(c) (1/unit)."""
    n = batch * cell.units
    adds = 4 * n * (2 if cell.use_bias else 1)
    gates = _act(cell.recurrent_activation, 3 * n) + _act(cell.activation, 2 * n)
    return gated_step(cell, batch, input_dim, 4, adds + gates + 4 * n)


def gru_step(cell, batch: int, input_dim: int) -> LayerCost:
    """3 gates; z, r = sigma(.), hh = act(x_h + r * h_h), h = z*h + (1-z)*hh (4/unit)."""
    n = batch * cell.units
    biases = (2 if cell.reset_after else 1) * 3 * n if cell.use_bias else 0
    adds = 3 * n + biases
    gates = _act(cell.recurrent_activation, 2 * n) + _act(cell.activation, n)
    return gated_step(cell, batch, input_dim, 3, adds + gates + n + 4 * n)


def conv_lstm_step(cell, batch: int, step_shape: tuple[int, ...]) -> LayerCost:
    """Input and recurrent convolutions into 4 gates, then the LSTM update per output element."""
    channels_last = cell.data_format == "channels_last"
    in_channels = step_shape[-1] if channels_last else step_shape[0]
    out_spatial = _conv_output_spatial(cell, step_shape, channels_last)
    positions = batch * math.prod(out_spatial)
    taps = math.prod(cell.kernel_size)
    input_macs = positions * 4 * cell.filters * in_channels * taps
    recurrent_macs = positions * 4 * cell.filters * cell.filters * taps
    n = positions * cell.filters
    adds = 4 * n * (2 if cell.use_bias else 1)
    gates = _act(cell.recurrent_activation, 3 * n) + _act(cell.activation, 2 * n)
    return step_cost(input_macs, recurrent_macs, adds + gates + 4 * n, _STATE_TENSORS["ConvLSTMCell"] * n)


def _conv_output_spatial(cell, step_shape, channels_last: bool) -> tuple[int, ...]:
    spatial = step_shape[:-1] if channels_last else step_shape[1:]
    if cell.padding == "same":
        return tuple(math.ceil(s / st) for s, st in zip(spatial, cell.strides))
    effective = [(k - 1) * d + 1 for k, d in zip(cell.kernel_size, cell.dilation_rate)]
    return tuple((s - e) // st + 1 for s, e, st in zip(spatial, effective, cell.strides))


def stacked_step(cell, batch: int, step_shape: tuple[int, ...]) -> LayerCost:
    """The sum of the stacked cells' steps, each fed by the previous one's output."""
    total = LayerCost(saved_elements=0)
    for inner in cell.cells:
        total = total + cell_step(inner, batch, step_shape)
        step_shape = (inner.units,) if hasattr(inner, "units") else step_shape
    return total


def cell_step(cell, batch: int, step_shape: tuple[int, ...]) -> LayerCost:
    """One time step of ``cell`` for ``batch`` samples whose step input has ``step_shape``."""
    if isinstance(cell, keras.layers.StackedRNNCells):
        return stacked_step(cell, batch, step_shape)
    if isinstance(cell, ConvLSTMCell):
        return conv_lstm_step(cell, batch, step_shape)
    for cell_type, step in _CELL_STEPS:
        if isinstance(cell, cell_type):
            return step(cell, batch, step_shape[-1])
    report_unsupported(type(cell).__name__)
    return LayerCost()


_CELL_STEPS = [
    (keras.layers.LSTMCell, lstm_step),
    (keras.layers.GRUCell, gru_step),
    (keras.layers.SimpleRNNCell, simple_rnn_step),
]


@register_cost_rule(
    keras.layers.RNN, *layer_classes("SimpleRNN LSTM GRU ConvLSTM1D ConvLSTM2D ConvLSTM3D")
)
def rnn(layer, call: LayerCall) -> LayerCost:
    """Time steps x the cost of one cell step (direction and returned sequences change nothing)."""
    batch, steps = call.input_shape[0], call.input_shape[1]
    return cell_step(layer.cell, batch, call.input_shape[2:]).scaled(steps)


@register_cost_rule(keras.layers.SimpleRNNCell, keras.layers.LSTMCell, keras.layers.GRUCell, ConvLSTMCell)
def cell(layer, call: LayerCall) -> LayerCost:
    """A cell called on its own: one time step."""
    return cell_step(layer, call.input_shape[0], call.input_shape[1:])


@register_cost_rule(keras.layers.StackedRNNCells)
def stacked_cells(layer, call: LayerCall) -> LayerCost:
    return stacked_step(layer, call.input_shape[0], call.input_shape[1:])


__all__ = ["cell_step", "conv"]
