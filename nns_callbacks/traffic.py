"""Bytes moved by one call: the least device-memory traffic of its forward and backward passes.

The fusion assumption: every call is a kernel of its own, and nothing is fused across calls, so each call
reads its inputs and weights once and writes its outputs once (forward), and reads its output gradients,
the tensors it kept and, where it computes an input gradient, its weights once, and writes the gradients
it computes once (backward).  Each tensor is counted in its dtype: activations a layer reads in its compute
dtype, weights and their gradients in the variable's dtype.  What a call computes follows its backward
FLOPs: a frozen layer writes no weight gradient, a call whose inputs need none writes no input gradient,
and a call that takes no part in the backward pass moves nothing there.

A layer costed as a whole that runs as several kernels (attention) also writes and reads back the
intermediate tensors its rule names (``LayerCost.intermediate_elements``), and their gradients.

Exceptions: a view (a reshape, a flatten, an identity) moves nothing; a gather (an embedding lookup, a
``take``) reads and writes only the rows it gathers, at most its table; a traced layer's own row moves
nothing (its ops do), nor does an uncounted call.  A free op inside a traced layer's ``call`` (a
transpose, a slice) has no row: it is taken as folded into its neighbours' layouts.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import keras

from .call_costs import KEPT_SIDES, CallCost, Kept, itemsize, saved_bytes
from .keras_compat import weights as layer_weights
from .symbolic import is_symbolic, is_weight_like, tensors

VIEWS = frozenset({
    "Reshape", "Flatten", "Identity", "InputLayer", "ActivityRegularization",
    "ops.Reshape", "ops.ExpandDims", "ops.Squeeze", "ops.StopGradient", "ops.View",
})
"""Types whose call reinterprets its input without copying it: no bytes moved."""

GATHERS = frozenset({"Embedding", "ops.Take", "ops.TakeAlongAxis"})
"""Types whose first table (the layer's weight, or the op's first operand) is read only where gathered."""

INPUT, WEIGHT, CONSTANT = "input", "weight", "constant"


class Operand(NamedTuple):
    """A tensor a call reads: its bytes per run, its role (an input activation, a weight, a constant), and
    for a weight whether it is trainable."""

    nbytes: int
    role: str
    trainable: bool = False


class Traffic(NamedTuple):
    """Bytes a call moves in the forward and the backward pass of one training step."""

    forward: int
    backward: int


def element_bytes(dtype) -> int:
    """Bytes of one element of ``dtype``; 0 for one of no fixed size (strings), which no device kernel reads."""
    try:
        return itemsize(dtype)
    except TypeError:
        return 0


def _tensor_bytes(described: tuple, dtype=None) -> int:
    """Bytes of ``(id, elements, dtype)`` tensors, each in its own dtype (or ``dtype`` for the float ones)."""
    total = 0
    for _, elements, tensor_dtype in described:
        if elements is not None:
            cast = dtype if dtype and "float" in str(tensor_dtype) else tensor_dtype
            total += elements * element_bytes(cast)
    return total


def layer_operands(leaf, layer, sizes) -> tuple[Operand, ...]:
    """A layer's inputs (in its compute dtype where they are floats) and all its weights (``sizes``: a
    ``WeightSizes``)."""
    dtype = getattr(layer, "compute_dtype", None)
    inputs = [Operand(_tensor_bytes((x,), dtype), INPUT) for x in leaf.inputs]
    weights = []
    for weight in layer_weights(layer):
        _, trainable, nbytes = sizes.of(weight)
        weights.append(Operand(nbytes, WEIGHT, bool(trainable)))
    return tuple(inputs + weights)


def op_operands(leaf) -> tuple[Operand, ...]:
    """An op's tensor operands in the order of its call's ``input_shapes``: symbolic ones are inputs, float
    arrays of rank 1 and more (weights' values, variables) weights, anything else a constant."""
    operands = []
    for x, shape in zip(tensors((leaf.call.args, leaf.call.kwargs)), leaf.call.input_shapes):
        nbytes = math.prod(d or 0 for d in shape) * element_bytes(x.dtype)
        if is_symbolic(x):
            operands.append(Operand(nbytes, INPUT))
        elif is_weight_like(x):
            operands.append(Operand(nbytes, WEIGHT, bool(getattr(x, "trainable", True))))
        else:
            operands.append(Operand(nbytes, CONSTANT))
    return tuple(operands)


def gathered(operands: tuple[Operand, ...], plan: CallCost, output_bytes: int) -> tuple[Operand, ...]:
    """A gather's table (its first weight, else its first operand) read only where gathered: at most the
    bytes of its output."""
    if plan.type not in GATHERS or not operands:
        return operands
    roles = [operand.role for operand in operands]
    at = roles.index(WEIGHT) if WEIGHT in roles else 0
    table = operands[at]
    return (*operands[:at], table._replace(nbytes=min(table.nbytes, output_bytes)), *operands[at + 1:])


def moves_nothing(leaf, plan: CallCost) -> bool:
    """An uncounted call, a traced layer's own row or a view."""
    return not plan.counted or leaf.kind != "rule" or plan.type in VIEWS


def gradients(leaf, operands: tuple[Operand, ...]) -> list[bool]:
    """Whether the backward pass writes each operand's gradient: a layer's float inputs where they need one
    and its trainable weights where it trains; an op's operands where autodiff computes theirs."""
    if not isinstance(leaf.layer, keras.layers.Layer):
        needs = leaf.operand_grads or (False,) * len(operands)
        return [bool(needed) and operand.role != CONSTANT for operand, needed in zip(operands, needs)]
    float_inputs = [dtype for _, _, dtype in leaf.inputs]
    flags, position = [], 0
    for operand in operands:
        if operand.role == INPUT:
            flags.append(leaf.needs_input_grad and "float" in str(float_inputs[position]))
            position += 1
        else:
            flags.append(leaf.trains and operand.trainable)
    return flags


def call_traffic(leaf, plan: CallCost, operands: tuple[Operand, ...], dtype) -> Traffic:
    """Forward: operands read + outputs written + intermediates written and read; backward (where the call takes
    part): output gradients and kept tensors read, weights read where an input gradient is computed,
    gradients written, intermediates' gradients written and read; x repeats."""
    if moves_nothing(leaf, plan):
        return Traffic(0, 0)
    repeats = leaf.repeats
    outputs = _tensor_bytes(leaf.outputs) * repeats
    operands = gathered(operands, plan, outputs // repeats)
    passed = 2 * plan.cost.intermediate_elements * element_bytes(dtype or _output_dtype(leaf))  # already x repeats
    forward = sum(operand.nbytes for operand in operands) * repeats + outputs + passed
    if not (leaf.trains or leaf.needs_input_grad):
        return Traffic(forward, 0)
    grads = gradients(leaf, operands)
    written = sum(operand.nbytes for operand, grad in zip(operands, grads) if grad)
    input_grad = any(grad for operand, grad in zip(operands, grads) if operand.role == INPUT)
    weights = sum(operand.nbytes for operand in operands if operand.role == WEIGHT) if input_grad else 0
    kept = saved_bytes(leaf, plan.cost, dtype, kept_tensors(leaf, plan.cost))
    return Traffic(forward, outputs + kept + passed + (weights + written) * repeats)


def _output_dtype(leaf) -> str:
    return leaf.call.output_dtypes[0] if leaf.call.output_dtypes else keras.config.floatx()


def kept_tensors(leaf, cost) -> list[Kept]:
    """Every tensor the call keeps for its backward pass, whether or not another call keeps it too (each call
    reads what it kept)."""
    if cost.saved_elements is not None:
        return []
    return [
        Kept(tensor_id, elements, tensor_dtype, side == "inputs")
        for side in KEPT_SIDES[cost.keeps]
        for tensor_id, elements, tensor_dtype in getattr(leaf, side)
        if elements is not None
    ]
