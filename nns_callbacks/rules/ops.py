"""Keras operations run on symbolic tensors (``x + y``, ``ops.matmul``, ``ops.image.resize``): shared helpers,
data movement and activations.

Each op follows XLA's count of its JAX implementation (CPU, a transcendental counted as
1 FLOP), on every backend, so that an op costs the same wherever it runs.  The gradient of
each tensor operand is ``operand_grad_flops`` (aligned with ``LayerCall.input_shapes``),
counted only where that operand needs one.  The other op families live in ``ops_elementwise``,
``ops_linalg``, ``ops_nn``, ``ops_image`` and ``ops_signal``; ``op_kinds`` says which public
``keras.ops`` function each rule covers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..keras_compat import OPS_CORE as core
from ..keras_compat import OPS_IMAGE as image
from ..keras_compat import OPS_MATH as kmath
from ..keras_compat import OPS_NN as nn
from ..keras_compat import OPS_NUMPY as knp
from ..keras_compat import Rearrange
from ..registry import FREE, LayerCall, LayerCost, register_builtin_rule, register_cost_rule
from .activations import activation_costs


def classes(module, names: str) -> tuple[type, ...]:
    """The op classes of ``module`` with these names; an older Keras just lacks some."""
    return tuple(getattr(module, name) for name in names.split() if hasattr(module, name))


def is_tensor(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def operand_positions(call: LayerCall) -> list[int | None]:
    """For each tensor of ``call.input_shapes``, its position among the call's positional arguments
    (``None`` for one passed by keyword or inside a list); Python numbers are not operands."""
    positions: list[int | None] = [i for i, x in enumerate(call.args) if is_tensor(x)]
    positions += [None] * (len(call.input_shapes) - len(positions))
    return positions[: len(call.input_shapes)]


def elements(shape) -> int:
    return math.prod(d for d in shape if d is not None)


def pointwise_cost(call: LayerCall, forward: float, grads: Sequence[float | None], keeps: str = "inputs",
                   broadcast_grads: Sequence[float | None] = ()) -> LayerCost:
    """``forward`` FLOPs per output element; the gradient of the operand in position ``i``: ``grads[i]`` per
    output element, plus a sum over the broadcast copies (1 per output element) where that operand was
    broadcast (``broadcast_grads[i]``, where given, replaces both: XLA applies what it can after the sum);
    ``None``: no gradient flows there (comparisons, integer operands)."""
    n = elements(call.output_shape)
    operand_grads = []
    for position, shape in zip(operand_positions(call), call.input_shapes):
        grad = grads[position] if position is not None and position < len(grads) else None
        if grad is None:
            operand_grads.append(0)
            continue
        if elements(shape) < n:
            after_sum = broadcast_grads[position] if position < len(broadcast_grads) else None
            operand_grads.append(round((grad + 1 if after_sum is None else after_sum) * n))
            continue
        operand_grads.append(round(grad * n))
    if not any(g is not None for g in grads):
        return LayerCost(elementwise_flops=round(forward * n), operand_grad_flops=tuple(operand_grads), saved_elements=0)
    return LayerCost(elementwise_flops=round(forward * n), operand_grad_flops=tuple(operand_grads), keeps=keeps)


def single_operand_cost(call: LayerCall, forward: int, backward: int | None, keeps: str = "inputs") -> LayerCost:
    """An op of one tensor operand (its first): ``backward`` FLOPs for its gradient (``None``: none flows)."""
    count = max(len(call.input_shapes), 1)
    if backward is None:
        return LayerCost(elementwise_flops=forward, operand_grad_flops=(0,) * count, saved_elements=0)
    return LayerCost(elementwise_flops=forward, operand_grad_flops=(backward,) + (0,) * (count - 1), keeps=keeps)


# ---------------------------------------------------------------- data movement, shape queries, constants

_MOVES = classes(
    knp,
    "Reshape Transpose ExpandDims Squeeze Concatenate Stack GetItem Split ArraySplit Hsplit Vsplit Dsplit Hstack "
    "Vstack Dstack Append Flip Fliplr Flipud Rot90 Pad Moveaxis Swapaxes Ravel Copy Conjugate Real Imag View",
) + classes(core, "Cast Slice SliceUpdate Scatter ScatterUpdate ConvertToTensor StopGradient Unstack") + (
    classes(nn, "DepthToSpace SpaceToDepth") + classes(kmath, "ViewAsComplex ViewAsReal")
    + classes(image, "CropImages PadImages") + ((Rearrange,) if Rearrange is not None else ())
)
_CONSTANTS = classes(knp, "Arange Array ZerosLike OnesLike FullLike EmptyLike Full Tri Eye Identity Zeros Ones Empty")
_BOOKKEEPING = classes(
    knp,
    "BitwiseAnd BitwiseOr BitwiseXor BitwiseNot BitwiseInvert BitwiseLeftShift BitwiseRightShift LeftShift RightShift "
    "Gcd Lcm UnravelIndex Bincount Nonzero Unique Isreal",
)
_SHAPE_QUERIES = classes(knp, "Ndim Size Shape") + classes(core, "Shape")


@register_cost_rule(*_MOVES, *_CONSTANTS, *_BOOKKEEPING, *_SHAPE_QUERIES)
def data_movement_op(op, call: LayerCall) -> LayerCost:
    """Copies, views, casts, constants, shape queries and integer bookkeeping: no FLOPs."""
    return FREE


@register_builtin_rule(*classes(knp, "Tile Repeat BroadcastTo"))
def copies_op(op, call: LayerCall) -> LayerCost:
    """Copies of the input: no FLOPs forward; the gradient sums the copies: outputs less inputs."""
    return single_operand_cost(call, 0, max(call.output_elements - elements(call.input_shape), 0), keeps="nothing")


@register_builtin_rule(*classes(knp, "Take TakeAlongAxis Diagonal Roll"))
def gather_op(op, call: LayerCall) -> LayerCost:
    """A gather (its index arithmetic is integer work): no FLOPs forward; the gradient adds the cotangent into
    the gathered positions, 1 per output element (XLA adds the two rolled pieces of a roll's gradient too)."""
    grads = (elements(call.output_shape),) + (0,) * (len(call.input_shapes) - 1)
    return LayerCost(operand_grad_flops=grads, keeps="nothing")


@register_builtin_rule(*classes(knp, "Diag Diagflat"))
def diag_op(op, call: LayerCall) -> LayerCost:
    """From a matrix: the diagonal's gather (``gather_op``).  Building a diagonal matrix: JAX masks it with an
    identity, 2 per output element (gradient 3); ``diagflat`` scatters, 5 per input element (gradient 22)."""
    if type(op).__name__ == "Diag" and len(call.input_shape) == 2:
        return gather_op(op, call)
    if type(op).__name__ == "Diag":
        n = elements(call.output_shape)
        return single_operand_cost(call, 2 * n, 3 * n, keeps="nothing")
    n = elements(call.input_shape)
    return single_operand_cost(call, 5 * n, 22 * n, keeps="nothing")


@register_builtin_rule(getattr(knp, "Meshgrid", None))
def meshgrid_op(op, call: LayerCall) -> LayerCost:
    """Copies of each input: no FLOPs forward; each input's gradient sums its copies: its grid less itself."""
    grads = tuple(max(elements(out) - elements(shape), 0) for out, shape in zip(call.output_shapes, call.input_shapes))
    return LayerCost(operand_grad_flops=grads, keeps="nothing")


@register_builtin_rule(getattr(core, "SaturateCast", None))
def saturate_cast_op(op, call: LayerCall) -> LayerCost:
    """A clip to the target type's range (a maximum and a minimum: 2 per element) and a cast; the clip's
    gradient, where the target is a float type, as ``clip``'s (14)."""
    n = elements(call.input_shape)
    floating = "float" in str(getattr(op, "dtype", ""))
    return single_operand_cost(call, 2 * n, 14 * n if floating else None)


# ---------------------------------------------------------------- activations

_ACTIVATIONS = {
    getattr(nn, cls): name
    for cls, name in {
        "Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid", "Softplus": "softplus", "Softsign": "softsign",
        "Silu": "silu", "LeakyRelu": "leaky_relu", "HardSigmoid": "hard_sigmoid", "HardSilu": "hard_silu",
        "Elu": "elu", "Selu": "selu", "Gelu": "gelu", "Softmax": "softmax", "LogSoftmax": "log_softmax",
        "LogSigmoid": "log_sigmoid", "Celu": "celu", "Glu": "glu", "SparsePlus": "sparse_plus",
        "SparseSigmoid": "sparse_sigmoid", "Squareplus": "squareplus", "HardTanh": "hard_tanh",
        "HardShrink": "hard_shrink", "SoftShrink": "soft_shrink", "TanhShrink": "tanh_shrink", "Threshold": "threshold",
        "Sparsemax": "sparsemax",
    }.items()
    if hasattr(nn, cls)
}


@register_cost_rule(*_ACTIVATIONS)
def activation_op(op, call: LayerCall) -> LayerCost:
    """The activation's forward and backward per-element counts: the same table as the layer of the same name."""
    name = _ACTIVATIONS[type(op)]
    if name == "gelu" and getattr(op, "approximate", False):
        name = "gelu_approximate"
    forward, backward = activation_costs(name, elements(call.input_shape))
    return single_operand_cost(call, forward, backward, keeps="outputs")


@register_builtin_rule(getattr(kmath, "TopK", None))
def top_k_op(op, call: LayerCall) -> LayerCost:
    """Selection: 1 compare per input element; the gradient scatters to the chosen: 1 per output element."""
    return single_operand_cost(call, elements(call.input_shape), elements(call.output_shape), keeps="nothing")
