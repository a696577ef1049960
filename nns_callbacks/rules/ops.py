"""Keras operations used directly on symbolic tensors in a functional model (``x + y``, ``ops.matmul``).

Elementwise operations cost their XLA per-element count (a transcendental is 1
FLOP); moving data costs nothing; products are MACs.
"""

from __future__ import annotations

import math

from keras.src.ops import core, nn
from keras.src.ops import math as kmath
from keras.src.ops import numpy as knp

from ..registry import FREE, LayerCall, LayerCost, elementwise_cost, matmul_cost, register_cost_rule
from .activations import FLOPS_PER_ELEMENT
from .core import einsum_macs

_BINARY = (
    knp.Add, knp.Subtract, knp.Multiply, knp.Divide, knp.TrueDivide, knp.Maximum, knp.Minimum,
    knp.Power, knp.Mod, knp.FloorDivide, knp.Hypot, knp.Arctan2, knp.Logaddexp,
)
_UNARY = (
    knp.Absolute, knp.Negative, knp.Square, knp.Sqrt, knp.Exp, knp.Log, knp.Log1p, knp.Expm1,
    knp.Tanh, knp.Sin, knp.Cos, knp.Reciprocal, knp.Sign, knp.Round, knp.Floor, knp.Ceil, knp.Clip,
    knp.Where, knp.Cumsum, kmath.Rsqrt, kmath.Erf,
)
_REDUCTIONS = (knp.Sum, knp.Mean, knp.Max, knp.Min, knp.Amax, knp.Amin, knp.Prod, knp.Var, knp.Std)
_MOVES = (
    knp.Reshape, knp.Transpose, knp.ExpandDims, knp.Squeeze, knp.Concatenate, knp.Stack, knp.GetItem,
    knp.Tile, knp.Repeat, knp.Split, knp.Flip, knp.Roll, knp.Pad, knp.Take, knp.TakeAlongAxis,
    knp.Moveaxis, knp.Swapaxes, knp.Ravel, knp.BroadcastTo, knp.ZerosLike, knp.OnesLike, knp.Copy,
    core.Cast, core.Slice, core.ConvertToTensor, core.StopGradient, core.Unstack,
)
_ACTIVATIONS = {
    nn.Relu: "relu", nn.Relu6: "relu6", nn.Sigmoid: "sigmoid", nn.Softplus: "softplus",
    nn.Softsign: "softsign", nn.Silu: "silu", nn.LeakyRelu: "leaky_relu", nn.HardSigmoid: "hard_sigmoid",
    nn.HardSilu: "hard_silu", nn.Elu: "elu", nn.Selu: "selu", nn.Gelu: "gelu", nn.Softmax: "softmax",
    nn.LogSoftmax: "log_softmax", nn.LogSigmoid: "log_sigmoid", nn.Celu: "celu", nn.Glu: "glu",
}


@register_cost_rule(*_BINARY)
def binary_op(op, call: LayerCall) -> LayerCost:
    """1 FLOP per output element (broadcasting included)."""
    return elementwise_cost(call.output_elements)


@register_cost_rule(*_UNARY)
def unary_op(op, call: LayerCall) -> LayerCost:
    """1 FLOP per output element."""
    return elementwise_cost(call.output_elements)


@register_cost_rule(*_REDUCTIONS)
def reduction_op(op, call: LayerCall) -> LayerCost:
    """1 FLOP per input element (variance and deviation: 3)."""
    per_element = 3 if isinstance(op, (knp.Var, knp.Std)) else 1
    return elementwise_cost(per_element * call.input_elements)


@register_cost_rule(*_MOVES)
def data_movement_op(op, call: LayerCall) -> LayerCost:
    """Copies, views and casts: no FLOPs."""
    return FREE


@register_cost_rule(*_ACTIVATIONS)
def activation_op(op, call: LayerCall) -> LayerCost:
    """The activation's per-element count, as for the layer of the same name."""
    name = _ACTIVATIONS[type(op)]
    if name == "gelu" and getattr(op, "approximate", False):
        name = "gelu_approximate"
    return elementwise_cost(round(FLOPS_PER_ELEMENT[name] * call.input_elements))


@register_cost_rule(knp.Matmul)
def matmul_op(op, call: LayerCall) -> LayerCost:
    """MACs = output elements x the contracted size (both operands are activations)."""
    contracted = call.input_shapes[0][-1]
    return matmul_cost(math.prod(call.output_shape) * contracted, weight_macs=0)


@register_cost_rule(knp.Einsum)
def einsum_op(op, call: LayerCall) -> LayerCost:
    """MACs = the product of the sizes of all distinct indices."""
    return matmul_cost(einsum_macs(op.subscripts, *call.input_shapes), weight_macs=0)
