"""Recurrent layers: cells, ``RNN`` around any cell, stacked cells and ConvLSTM.

A recurrent layer costs one cell step per time step.  The backward pass goes
through every step whether the input needs a gradient or not, so everything
but the input projection's gradient is internal to the layer.

Backward of one step, per unit value (``n = batch x units``), given the
gradient ``dh`` of the step's output state:

* products: the input projection's gradient ``dz W^T`` (2 FLOPs per input MAC,
  only where the input needs a gradient), the state's gradient ``dz U^T``
  (2 per recurrent MAC) and the weight gradients ``x^T dz``, ``h^T dz`` (2 per
  MAC of both);
* elementwise: the state's gradient is the sum of the step output's and the
  next step's (1 add), each activation's derivative times its incoming
  gradient (``BACKWARD_FLOPS_PER_ELEMENT``), one product per operand of each
  elementwise product of the cell update, and the bias gradient, a sum over
  the batch (1 add per bias element; weight gradient).

The first step's state is the zero (or stateful) initial state: it needs no
gradient, so the state-gradient product runs ``steps - 1`` times unless an
``initial_state`` is passed in.

XLA's count of the same unrolled layer adds work that is not arithmetic of the
layer (tests/jax_backend/test_xla_differential.py): the per-step weight
gradients summed one step at a time, the input's per-step slices transposed
into zero-padded adds, and, on CPU, loop fusions that re-compute the chain of
elementwise state gradients from the last step in every step (quadratic in
the number of steps for LSTM and GRU).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import keras

from ..keras_compat import ConvLSTMCell, layer_classes, present
from ..registry import LayerCall, LayerCost, fitting_rule, register_cost_rule, report_unsupported
from .activations import activation_costs
from .conv import conv

_STATE_TENSORS = {"SimpleRNNCell": 1, "GRUCell": 4, "LSTMCell": 6, "ConvLSTMCell": 6}
"""Tensors of ``units`` each that a step keeps for the backward pass."""


def step_cost(
    input_macs: int,
    recurrent_macs: int,
    elementwise: int,
    saved: int,
    backward_elementwise: int | None = None,
    bias_grad: int = 0,
) -> LayerCost:
    """One step, products as in the module docstring; only the input projection's gradient depends on the input.

    ``backward_elementwise``: the step's elementwise backward other than the bias
    gradient (default: as much as forward); ``bias_grad``: the bias gradient's adds.
    """
    backward_elementwise = elementwise if backward_elementwise is None else backward_elementwise
    return LayerCost(
        macs=input_macs + recurrent_macs,
        elementwise_flops=elementwise,
        input_grad_flops=2 * input_macs,
        weight_grad_flops=2 * (input_macs + recurrent_macs) + bias_grad,
        internal_grad_flops=2 * recurrent_macs + backward_elementwise,
        saved_elements=saved,
    )


def gated_step(
    cell, batch: int, input_dim: int, gates: int, elementwise: int, backward_elementwise: int, bias_grad: int
) -> LayerCost:
    """One step of ``gates`` dense projections of [input, state] plus the elementwise work."""
    units = cell.units
    saved = _STATE_TENSORS.get(type(cell).__name__, 1) * batch * units
    return step_cost(
        batch * gates * units * input_dim,
        batch * gates * units * units,
        elementwise,
        saved,
        backward_elementwise,
        bias_grad,
    )


def simple_rnn_step(cell, batch: int, input_dim: int) -> LayerCost:
    """h = act(x W + h U (+ b)).

    Forward per unit: 1 add (+1 bias) and the activation (tanh: 1).
    Backward per unit: dh sum 1, act' (tanh: 4); bias gradient 1.  Default: 3 forward, 5 + 1 backward.
    """
    n = batch * cell.units
    bias = n if cell.use_bias else 0
    act, act_backward = activation_costs(cell.activation, n)
    return gated_step(cell, batch, input_dim, 1, n + bias + act, n + act_backward, bias)


def lstm_step(cell, batch: int, input_dim: int) -> LayerCost:
    """z = x W + h U (+ b) for 4 gates; i, f, o = sigma(z); g = act(z); c = f*c + i*g; h = o * act(c).

    Forward per unit: 4 x (1 add + 1 bias), 3 sigma (4 each), 2 act (tanh: 1 each),
    c update 3, h product 1: 26.
    Backward per unit: dh sum 1; h = o * act(c): do = dh act(c), d act(c) = dh o (2);
    dc = act'(c) (tanh: 4) + the next step's dc f (1 add); c update: df = dc c_prev,
    dc_prev = dc f, di = dc g, dg = dc i (4); 3 sigma' (3 each), act'(g) (tanh: 4):
    25; bias gradient 4.
    """
    update = _lstm_update(cell, batch * cell.units)
    return gated_step(cell, batch, input_dim, 4, update.forward, update.backward, update.bias_grad)


class GateUpdate(NamedTuple):
    """FLOPs of a cell's elementwise update: forward, backward other than the bias gradient, bias gradient."""

    forward: int
    backward: int
    bias_grad: int


def _lstm_update(cell, n: int) -> GateUpdate:
    """The LSTM gate update on ``n`` values (see ``lstm_step``)."""
    bias = 4 * n if cell.use_bias else 0
    sigma, sigma_backward = activation_costs(cell.recurrent_activation, 3 * n)
    act, act_backward = activation_costs(cell.activation, 2 * n)
    forward = 4 * n + bias + sigma + act + 3 * n + n
    backward = n + 2 * n + n + 4 * n + sigma_backward + act_backward
    return GateUpdate(forward, backward, bias)


def gru_step(cell, batch: int, input_dim: int) -> LayerCost:
    """z, r = sigma(x W + h U (+ b)); hh = act(x W_h + r * (h U_h)) (reset_after) or act(x W_h + (r * h) U_h);
    h = z * h + (1 - z) * hh.

    Forward per unit: 3 input bias adds (+3 recurrent ones with reset_after), 2 adds
    (z, r), 2 sigma (4 each), r product 1, hh add 1, act (tanh: 1), h update 4
    (z * h, 1 - z, (1 - z) * hh, add): 23 (reset_after) or 20.
    Backward per unit: dh sum 1; h update: dh h_prev, dh z, dh hh, dh (1 - z), dz
    subtract (5); act'(hh) (tanh: 4); r product: dr, d(h U_h) (2), or with
    reset_before dr, d(r h) r and its add to dh_prev (3); 2 sigma' (3 each); the
    add of dh z to the products' dh_prev (1): 19 (reset_after) or 20; bias gradient 6 or 3.
    """
    n = batch * cell.units
    bias = (2 if cell.reset_after else 1) * 3 * n if cell.use_bias else 0
    sigma, sigma_backward = activation_costs(cell.recurrent_activation, 2 * n)
    act, act_backward = activation_costs(cell.activation, n)
    forward = 2 * n + bias + sigma + n + n + act + 4 * n
    reset = 2 * n if cell.reset_after else 3 * n
    backward = n + 5 * n + act_backward + reset + sigma_backward + n
    return gated_step(cell, batch, input_dim, 3, forward, backward, bias)


def conv_lstm_step(cell, batch: int, step_shape: tuple[int, ...]) -> LayerCost:
    """Input and recurrent convolutions into 4 gates, then the LSTM update per output element (as ``lstm_step``)."""
    channels_last = cell.data_format == "channels_last"
    in_channels = step_shape[-1] if channels_last else step_shape[0]
    positions = batch * math.prod(_conv_output_spatial(cell, step_shape, channels_last))
    taps = math.prod(cell.kernel_size)
    input_macs = positions * 4 * cell.filters * in_channels * taps
    recurrent_macs = positions * 4 * cell.filters * cell.filters * taps
    n = positions * cell.filters
    update = _lstm_update(cell, n)
    saved = _STATE_TENSORS["ConvLSTMCell"] * n
    return step_cost(input_macs, recurrent_macs, update.forward, saved, update.backward, update.bias_grad)


def _conv_output_spatial(cell, step_shape, channels_last: bool) -> tuple[int, ...]:
    spatial = step_shape[:-1] if channels_last else step_shape[1:]
    if cell.padding == "same":
        return tuple(math.ceil(s / st) for s, st in zip(spatial, cell.strides))
    effective = [(k - 1) * d + 1 for k, d in zip(cell.kernel_size, cell.dilation_rate)]
    return tuple((s - e) // st + 1 for s, e, st in zip(spatial, effective, cell.strides))


def stacked_step(cell, batch: int, step_shape: tuple[int, ...]) -> LayerCost:
    """The sum of the stacked cells' steps, each fed by the previous one's output.

    Only the first cell's input projection gradient depends on the layer's input
    needing one; the others feed the cell below, which always back-propagates.
    """
    total = LayerCost(saved_elements=0)
    for index, inner in enumerate(cell.cells):
        step = cell_step(inner, batch, step_shape)
        if index:
            step = LayerCost(
                step.macs,
                step.elementwise_flops,
                0,
                step.weight_grad_flops,
                step.internal_grad_flops + step.input_grad_flops,
                step.saved_elements,
            )
        total = total + step
        step_shape = (inner.units,) if hasattr(inner, "units") else step_shape
    return total


def cell_step(cell, batch: int, step_shape: tuple[int, ...]) -> LayerCost:
    """One time step of ``cell`` for ``batch`` samples whose step input has ``step_shape``."""
    if isinstance(cell, keras.layers.StackedRNNCells):
        return stacked_step(cell, batch, step_shape)
    if isinstance(cell, present(ConvLSTMCell)):
        return conv_lstm_step(cell, batch, step_shape)
    for cell_type, step in _CELL_STEPS:
        if isinstance(cell, cell_type):
            return step(cell, batch, step_shape[-1])
    rule = fitting_rule(cell)  # a rule registered for a custom cell costs one step of it
    if rule is not None:
        units = getattr(cell, "units", None) or getattr(cell, "state_size", step_shape[-1])
        spec = keras.KerasTensor((batch, *step_shape))
        return rule(cell, LayerCall(cell, (spec,), {}, [(batch, int(units))], [(batch, *step_shape)]))
    report_unsupported(type(cell).__name__)
    return LayerCost()


_CELL_STEPS = [
    (keras.layers.LSTMCell, lstm_step),
    (keras.layers.GRUCell, gru_step),
    (keras.layers.SimpleRNNCell, simple_rnn_step),
]


def initial_state_grad(cell, batch: int, step_shape: tuple[int, ...]) -> int:
    """The first step's state-gradient product, 2 FLOPs per recurrent MAC, that a zero initial state does not need."""
    if isinstance(cell, keras.layers.StackedRNNCells):
        total = 0
        for inner in cell.cells:
            total += initial_state_grad(inner, batch, step_shape)
            step_shape = (inner.units,) if hasattr(inner, "units") else step_shape
        return total
    if isinstance(cell, present(ConvLSTMCell)):
        channels_last = cell.data_format == "channels_last"
        positions = batch * math.prod(_conv_output_spatial(cell, step_shape, channels_last))
        return 2 * positions * 4 * cell.filters * cell.filters * math.prod(cell.kernel_size)
    gates = {keras.layers.LSTMCell: 4, keras.layers.GRUCell: 3, keras.layers.SimpleRNNCell: 1}
    for cell_type, count in gates.items():
        if isinstance(cell, cell_type):
            return 2 * batch * count * cell.units * cell.units
    return 0


@register_cost_rule(
    keras.layers.RNN, *layer_classes("SimpleRNN LSTM GRU ConvLSTM1D ConvLSTM2D ConvLSTM3D")
)
def rnn(layer, call: LayerCall) -> LayerCost:
    """Time steps x the cost of one cell step, less the first step's state-gradient product.

    Direction and returned sequences change nothing.  The initial state is
    zeros (or a stateful layer's variable) and needs no gradient unless it is
    passed in as ``initial_state``.
    """
    batch, steps = call.input_shape[0], call.input_shape[1]
    cost = cell_step(layer.cell, batch, call.input_shape[2:]).scaled(steps)
    if steps and call.argument("initial_state") is None:
        saved = initial_state_grad(layer.cell, batch, call.input_shape[2:])
        cost = LayerCost(
            cost.macs,
            cost.elementwise_flops,
            cost.input_grad_flops,
            cost.weight_grad_flops,
            cost.internal_grad_flops - saved,
            cost.saved_elements,
        )
    return cost


@register_cost_rule(keras.layers.SimpleRNNCell, keras.layers.LSTMCell, keras.layers.GRUCell, *present(ConvLSTMCell))
def cell(layer, call: LayerCall) -> LayerCost:
    """A cell called on its own: one time step."""
    return cell_step(layer, call.input_shape[0], call.input_shape[1:])


@register_cost_rule(keras.layers.StackedRNNCells)
def stacked_cells(layer, call: LayerCall) -> LayerCost:
    return stacked_step(layer, call.input_shape[0], call.input_shape[1:])


__all__ = ["cell_step", "conv"]
