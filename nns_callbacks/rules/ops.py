"""Keras operations used directly on symbolic tensors in a functional model (``x + y``, ``ops.matmul``).

Elementwise operations cost their XLA per-element count (a transcendental is 1
FLOP); moving data costs nothing; products are MACs.
"""

from __future__ import annotations

import dataclasses
import math

from ..keras_compat import OPS_CORE as core
from ..keras_compat import OPS_MATH as kmath
from ..keras_compat import OPS_NN as nn
from ..keras_compat import OPS_NUMPY as knp
from ..registry import (
    FREE,
    LayerCall,
    LayerCost,
    elementwise_cost,
    register_builtin_rule,
    register_cost_rule,
)
from .activations import activation_costs
from .core import einsum_macs


def _classes(module, names: str) -> tuple[type, ...]:
    """The op classes of ``module`` with these names; an older Keras just lacks some."""
    return tuple(getattr(module, name) for name in names.split() if hasattr(module, name))


_BINARY = _classes(
    knp, "Add Subtract Multiply Divide TrueDivide Maximum Minimum Power Mod FloorDivide Hypot Arctan2 Logaddexp"
)
_UNARY = _classes(
    knp,
    "Absolute Negative Square Sqrt Exp Log Log1p Expm1 Tanh Sin Cos Reciprocal Sign Round Floor Ceil Clip Where "
    "Cumsum Tril Triu",
) + _classes(kmath, "Rsqrt Erf")
_REDUCTIONS = _classes(knp, "Sum Mean Max Min Amax Amin Prod Var Std")
_SUMS = _classes(knp, "Add Subtract Sum Mean")
"""Ops whose gradient needs none of their operands."""
_NO_GRADIENT = _classes(
    knp, "Equal NotEqual Greater GreaterEqual Less LessEqual LogicalAnd LogicalOr LogicalNot LogicalXor Isnan Isinf "
    "Isfinite",
) + _classes(nn, "OneHot")
_NO_GRADIENT_REDUCTIONS = _classes(knp, "All Any Argmax Argmin")
_MOVES = _classes(
    knp,
    "Reshape Transpose ExpandDims Squeeze Concatenate Stack GetItem Tile Repeat Split Flip Roll Pad Take "
    "TakeAlongAxis Moveaxis Swapaxes Ravel BroadcastTo ZerosLike OnesLike FullLike Copy Arange",
) + _classes(core, "Cast Slice ConvertToTensor StopGradient Unstack")
_ACTIVATIONS = {
    getattr(nn, cls): name
    for cls, name in {
        "Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid", "Softplus": "softplus", "Softsign": "softsign",
        "Silu": "silu", "LeakyRelu": "leaky_relu", "HardSigmoid": "hard_sigmoid", "HardSilu": "hard_silu",
        "Elu": "elu", "Selu": "selu", "Gelu": "gelu", "Softmax": "softmax", "LogSoftmax": "log_softmax",
        "LogSigmoid": "log_sigmoid", "Celu": "celu", "Glu": "glu",
    }.items()
    if hasattr(nn, cls)
}


@register_cost_rule(*_BINARY)
def binary_op(op, call: LayerCall) -> LayerCost:
    """1 FLOP per output element (broadcasting included); sums keep nothing, the others their inputs."""
    keeps = "nothing" if isinstance(op, _SUMS) else "inputs"
    return dataclasses.replace(elementwise_cost(call.output_elements), keeps=keeps)


@register_cost_rule(*_UNARY)
def unary_op(op, call: LayerCall) -> LayerCost:
    """1 FLOP per output element."""
    return elementwise_cost(call.output_elements)


@register_cost_rule(*_REDUCTIONS)
def reduction_op(op, call: LayerCall) -> LayerCost:
    """1 FLOP per input element (variance and deviation: 3)."""
    per_element = 3 if isinstance(op, (knp.Var, knp.Std)) else 1
    keeps = "nothing" if isinstance(op, _SUMS) else "inputs"
    return dataclasses.replace(elementwise_cost(per_element * call.input_elements), keeps=keeps)


@register_cost_rule(*_NO_GRADIENT)
def no_gradient_op(op, call: LayerCall) -> LayerCost:
    """Compares and logic: 1 FLOP per output element; no gradient, nothing kept."""
    return LayerCost(elementwise_flops=call.output_elements, saved_elements=0)


@register_cost_rule(*_NO_GRADIENT_REDUCTIONS)
def no_gradient_reduction_op(op, call: LayerCall) -> LayerCost:
    """all, any, argmax, argmin: 1 FLOP per input element; no gradient, nothing kept."""
    return LayerCost(elementwise_flops=call.input_elements, saved_elements=0)


@register_builtin_rule(getattr(kmath, "TopK", None))
def top_k_op(op, call: LayerCall) -> LayerCost:
    """Selection: 1 compare per input element; the gradient scatters to the chosen: 1 per output element."""
    return LayerCost(elementwise_flops=call.input_elements, input_grad_flops=call.output_elements, keeps="nothing")


@register_cost_rule(*_MOVES)
def data_movement_op(op, call: LayerCall) -> LayerCost:
    """Copies, views and casts: no FLOPs."""
    return FREE


@register_cost_rule(*_ACTIVATIONS)
def activation_op(op, call: LayerCall) -> LayerCost:
    """The activation's forward and backward per-element counts: the same table as the layer of the same name."""
    name = _ACTIVATIONS[type(op)]
    if name == "gelu" and getattr(op, "approximate", False):
        name = "gelu_approximate"
    forward, backward = activation_costs(name, call.input_elements)
    return LayerCost(elementwise_flops=forward, input_grad_flops=backward)


def product_cost(macs: int, operands: int) -> LayerCost:
    """A product of ``operands`` tensors: the gradient of each operand is a product as large: 2 FLOPs per MAC."""
    return LayerCost(macs=macs, operand_grad_flops=(2 * macs,) * operands, keeps="inputs")


@register_builtin_rule(getattr(knp, "Matmul", None))
def matmul_op(op, call: LayerCall) -> LayerCost:
    """MACs = output elements x the contracted size; each operand's gradient 2 FLOPs per MAC."""
    contracted = call.input_shapes[0][-1]
    return product_cost(math.prod(call.output_shape) * contracted, len(call.input_shapes))


@register_builtin_rule(getattr(knp, "Einsum", None))
def einsum_op(op, call: LayerCall) -> LayerCost:
    """MACs = the product of the sizes of all distinct indices; each operand's gradient 2 FLOPs per MAC."""
    return product_cost(einsum_macs(op.subscripts, *call.input_shapes), len(call.input_shapes))
