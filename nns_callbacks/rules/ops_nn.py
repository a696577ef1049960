"""``keras.ops.nn``: convolutions, pooling, normalisations, losses, encodings, fold and unfold.

Convolutions count MACs as the layers do (taps on zero padding included, as published
figures do; XLA skips them); each operand's gradient is a product as large (2 FLOPs per
MAC).  Pooling follows the pooling layers.  The other constants are XLA's count of the JAX
implementation per element (``benchmarks/measure_op_costs.py``), with the gradient of each
operand apart.
"""

from __future__ import annotations

import math

import keras

from ..keras_compat import OPS_NN as nn
from ..registry import LayerCall, LayerCost, register_builtin_rule
from .ops import elements, pointwise_cost, single_operand_cost


def _channels_last(op) -> bool:
    fmt = getattr(op, "data_format", None) or keras.config.image_data_format()
    return fmt == "channels_last"


def _spatial(op, shape) -> tuple:
    return tuple(shape[1:-1]) if _channels_last(op) else tuple(shape[2:])


def _channels(op, shape) -> int:
    return shape[-1] if _channels_last(op) else shape[1]


def _product_cost(macs: int, operands: int, grads: tuple | None = None) -> LayerCost:
    grads = grads if grads is not None else (2 * macs,) * operands
    return LayerCost(macs=macs, operand_grad_flops=grads[:operands], keeps="inputs")


@register_builtin_rule(getattr(nn, "Conv", None))
def conv_op(op, call: LayerCall) -> LayerCost:
    """MACs = output elements x kernel taps x input channels per group; input and kernel gradients 2 per MAC."""
    kernel = call.input_shapes[1]
    macs = elements(call.output_shape) * math.prod(kernel[:-2]) * kernel[-2]
    return _product_cost(macs, len(call.input_shapes))


@register_builtin_rule(getattr(nn, "DepthwiseConv", None))
def depthwise_conv_op(op, call: LayerCall) -> LayerCost:
    """MACs = output elements x kernel taps; input and kernel gradients 2 per MAC."""
    kernel = call.input_shapes[1]
    macs = elements(call.output_shape) * math.prod(kernel[:-2])
    return _product_cost(macs, len(call.input_shapes))


@register_builtin_rule(getattr(nn, "SeparableConv", None))
def separable_conv_op(op, call: LayerCall) -> LayerCost:
    """Depthwise (positions x channels x multiplier x taps) then pointwise (output elements x channels x
    multiplier); the input's gradient goes back through both, each kernel's through its own."""
    depthwise, pointwise = call.input_shapes[1:3]
    positions = elements(call.output_shape) // max(_channels(op, call.output_shape), 1)
    depthwise_macs = positions * math.prod(depthwise)
    pointwise_macs = elements(call.output_shape) * pointwise[-2]
    macs = depthwise_macs + pointwise_macs
    return _product_cost(macs, len(call.input_shapes), (2 * macs, 2 * depthwise_macs, 2 * pointwise_macs))


@register_builtin_rule(getattr(nn, "ConvTranspose", None))
def conv_transpose_op(op, call: LayerCall) -> LayerCost:
    """MACs = input elements x output channels x kernel taps (each input scatters a kernel); gradients 2 per MAC."""
    kernel = call.input_shapes[1]
    macs = elements(call.input_shapes[0]) * math.prod(kernel[:-2]) * kernel[-2]
    return _product_cost(macs, len(call.input_shapes))


@register_builtin_rule(getattr(nn, "AveragePool", None), getattr(nn, "MaxPool", None))
def pool_op(op, call: LayerCall) -> LayerCost:
    """As the pooling layers: max (window - 1) compares per output, average window; backward window per output."""
    spatial = len(call.input_shape) - 2
    pool = op.pool_size
    window = pool ** spatial if isinstance(pool, int) else math.prod(pool)
    is_max = type(op).__name__ == "MaxPool"
    out = elements(call.output_shape)
    keeps = "inputs" if is_max else "nothing"
    return single_operand_cost(call, (window - 1 if is_max else window) * out, window * out, keeps=keeps)


def two_pool_flops(size: int, out: int, average: bool) -> int:
    """FLOPs per column of one axis of JAX's adaptive pooling: stride-1 window reductions of the two window sizes
    (ceil(size / out) and one more) over the whole axis, (window - 1) per position, + a divide for an average."""
    small = -(-size // out)
    flops = 0
    for window in (small, small + 1):
        positions = max(size - window + 1, 0)
        flops += positions * (window - 1 + (1 if average else 0))
    return flops


@register_builtin_rule(getattr(nn, "AdaptiveAveragePool", None), getattr(nn, "AdaptiveMaxPool", None))
def adaptive_pool_op(op, call: LayerCall) -> LayerCost:
    """JAX pools one axis at a time with two stride-1 window sizes and gathers the outputs (``two_pool_flops``
    per column); gradient: average about 1.35 x the forward (transposed windows), max as the layers (window)."""
    is_max = "Max" in type(op).__name__
    shape = list(call.input_shape)
    spatial_axes = list(range(1, len(shape) - 1)) if _channels_last(op) else list(range(2, len(shape)))
    size = op.output_size
    out_spatial = (size,) * len(spatial_axes) if isinstance(size, int) else tuple(size)  # (Keras 3.15's spec is off)
    forward = 0
    for axis, out in zip(spatial_axes, out_spatial):
        columns = elements(shape) // shape[axis]
        forward += columns * two_pool_flops(shape[axis], out, not is_max)
        shape[axis] = out
    backward = elements(call.input_shape) if is_max else round(1.35 * forward)
    return single_operand_cost(call, forward, backward, keeps="inputs" if is_max else "nothing")


def _rows(call: LayerCall, axis) -> int:
    shape = call.input_shapes[0]
    axes = [axis] if isinstance(axis, int) else list(axis)
    size = math.prod(shape[a % len(shape)] for a in axes) if shape else 1
    return elements(shape) // max(size, 1)


def _per_operand(call: LayerCall, forward: float, grads: dict) -> LayerCost:
    """``grads``: call argument name -> its gradient's FLOPs; operands are matched by identity."""
    tensors = [x for x in _flat_arguments(call) if hasattr(x, "shape") and hasattr(x, "dtype")]
    names = {id(call.argument(name)): name for name in grads if call.argument(name) is not None}
    operand_grads = tuple(round(grads.get(names.get(id(x)), 0)) for x in tensors)[: len(call.input_shapes)]
    return LayerCost(elementwise_flops=round(forward), operand_grad_flops=operand_grads, keeps="inputs")


def _flat_arguments(call: LayerCall) -> list:
    return list(call.args) + [call.kwargs[k] for k in sorted(call.kwargs)]


@register_builtin_rule(getattr(nn, "BatchNorm", None))
def batch_norm_op(op, call: LayerCall) -> LayerCost:
    """(x - mean) * scale / sqrt(variance) + offset: 2 per element; gradients x 1, mean 1, variance 3, offset 1, scale 2."""
    n = elements(call.input_shapes[0])
    return _per_operand(call, 2 * n, {"x": n, "mean": n, "variance": 3 * n, "offset": n, "scale": 2 * n})


@register_builtin_rule(getattr(nn, "LayerNorm", None))
def layer_norm_op(op, call: LayerCall) -> LayerCost:
    """As LayerNormalization: 6n + 5 per row (+2n scale, +n offset); gradients x 12n + 19 per row (16n with a scale),
    gamma 5n, beta n; RMS scaling 6n, x 12n, gamma 3n."""
    n, rows = elements(call.input_shapes[0]), _rows(call, op.axis)
    gamma, beta = call.argument("gamma") is not None, call.argument("beta") is not None
    if getattr(op, "rms_scaling", False):
        return _per_operand(call, 6 * n + 2 * rows, {"x": 12 * n, "gamma": 3 * n})
    forward = 6 * n + (2 * n if gamma else 0) + (n if beta else 0) + (4 if gamma else 5) * rows
    x_grad = 16 * n if gamma else 12 * n + 19 * rows
    return _per_operand(call, forward, {"x": x_grad, "gamma": 5 * n, "beta": n})


@register_builtin_rule(getattr(nn, "RMSNorm", None))
def rms_norm_op(op, call: LayerCall) -> LayerCost:
    """Square, mean, rsqrt, multiply: 3n + 2 per row (+n with a scale); gradients x 5n (7n with a scale), scale 3n."""
    n, rows = elements(call.input_shapes[0]), _rows(call, op.axis)
    scale = call.argument("scale") is not None
    return _per_operand(call, 3 * n + 2 * rows + (n if scale else 0), {"x": 7 * n if scale else 5 * n, "scale": 3 * n})


@register_builtin_rule(getattr(nn, "Moments", None))
def moments_op(op, call: LayerCall) -> LayerCost:
    """Mean (1 per element) and variance (subtract, square, sum: 3); gradient 7 per element."""
    n = elements(call.input_shape)
    return single_operand_cost(call, 4 * n, 7 * n)


@register_builtin_rule(getattr(nn, "Normalize", None))
def normalize_op(op, call: LayerCall) -> LayerCost:
    """L2: square, sum, rsqrt, multiply: 3n + 1 per row, gradient 5n + 11 per row; L1: 3n, gradient 10n."""
    n, rows = elements(call.input_shape), _rows(call, op.axis)
    if getattr(op, "order", 2) == 1:
        return single_operand_cost(call, 3 * n, 10 * n)
    return single_operand_cost(call, 3 * n + rows, 5 * n + 11 * rows)


LOSSES = {
    ("BinaryCrossentropy", False): (9, 6, 23), ("BinaryCrossentropy", True): (24, 15, 33),
    ("CategoricalCrossentropy", False): (6, 1, 22), ("CategoricalCrossentropy", True): (7, 2, 5),
    ("SparseCategoricalCrossentropy", False): (7, None, 23), ("SparseCategoricalCrossentropy", True): (8, None, 7),
}
"""(forward, target gradient, output gradient) FLOPs per element of ``output``; a clipped probability's log and
its gradient cost more than a softmax's (log-sum-exp) from logits."""


@register_builtin_rule(*(getattr(nn, name, None) for name in sorted({k for k, _ in LOSSES})))
def crossentropy_op(op, call: LayerCall) -> LayerCost:
    """LOSSES[op, from_logits] per element of the predictions; a sparse target gets no gradient."""
    forward, target, output = LOSSES[(type(op).__name__, bool(op.from_logits))]
    n = elements(call.input_shapes[-1])
    grads = (0 if target is None else target * n, output * n)
    return LayerCost(elementwise_flops=forward * n, operand_grad_flops=grads[-len(call.input_shapes):], keeps="inputs")


@register_builtin_rule(getattr(nn, "OneHot", None))
def one_hot_op(op, call: LayerCall) -> LayerCost:
    """A compare of the index with each class and a conversion: 2 per output element; no gradient."""
    return single_operand_cost(call, 2 * elements(call.output_shape), None)


@register_builtin_rule(getattr(nn, "MultiHot", None))
def multi_hot_op(op, call: LayerCall) -> LayerCost:
    """A one-hot per index (2) and a maximum over the indices (1): 3 per index per class; no gradient."""
    classes = getattr(op, "num_classes", None) or call.output_shape[-1]
    return single_operand_cost(call, 3 * elements(call.input_shape) * classes, None)


@register_builtin_rule(getattr(nn, "PSNR", None))
def psnr_op(op, call: LayerCall) -> LayerCost:
    """A squared difference and its mean: 3 per element; gradients 1 and 2 per element."""
    n = elements(call.input_shapes[0])
    return LayerCost(elementwise_flops=3 * n, operand_grad_flops=(n, 2 * n)[: len(call.input_shapes)], keeps="inputs")


@register_builtin_rule(getattr(nn, "Polar", None))
def polar_op(op, call: LayerCall) -> LayerCost:
    """abs * (cos + i sin)(angle): 5 per element; gradients 8 (abs) and 11 (angle)."""
    return pointwise_cost(call, 5, (8, 11))


@register_builtin_rule(getattr(nn, "Unfold", None))
def unfold_op(op, call: LayerCall) -> LayerCost:
    """JAX runs it as a grouped convolution with an identity kernel: output elements x taps MACs, and builds the
    kernel (2 per entry of a taps x taps identity); gradient the transposed convolution, as much."""
    taps = call.output_shape[1] // max(call.input_shape[1], 1)
    macs = elements(call.output_shape) * taps
    flops = 2 * macs + 2 * taps * taps
    return single_operand_cost(call, flops, 2 * macs)


@register_builtin_rule(getattr(nn, "Fold", None))
def fold_op(op, call: LayerCall) -> LayerCost:
    """JAX runs it as a transposed convolution with an identity kernel: input elements x channels x taps MACs,
    and builds the (C k^2)^2 identity (2 per entry); gradient as much as the products."""
    channels_taps = call.input_shape[1]
    macs = elements(call.input_shape) * channels_taps
    flops = 2 * macs + 2 * channels_taps * channels_taps
    return single_operand_cost(call, flops, 2 * macs)


@register_builtin_rule(getattr(nn, "CTCLoss", None))
def ctc_loss_op(op, call: LayerCall) -> LayerCost:
    """Log-softmax of the logits (6 per element), then the forward recursion over time and the 2L + 1 label states
    (about 20 FLOPs each: log-add-exps); backward the matching backward recursion and the softmax gradient: as much.
    Not XLA's count, which counts the recursion's loop body once."""
    batch, steps, classes = call.input_shapes[1][:3]
    labels = call.input_shapes[0][-1]
    flops = 6 * batch * steps * classes + 20 * batch * steps * (2 * labels + 1)
    grads = (0, flops) + (0,) * (len(call.input_shapes) - 2)
    return LayerCost(elementwise_flops=flops, operand_grad_flops=grads[: len(call.input_shapes)], keeps="inputs")


@register_builtin_rule(getattr(nn, "CTCDecode", None))
def ctc_decode_op(op, call: LayerCall) -> LayerCost:
    """Greedy: an argmax per step (15 per class, as XLA counts argmax); beam search: a top-k over beam x classes
    candidates per step (2 each) and a log-softmax (6 per element).  No gradient."""
    batch, steps, classes = call.input_shapes[0][:3]
    if getattr(op, "strategy", "greedy") == "greedy":
        flops = 15 * batch * steps * classes
    else:
        beam = getattr(op, "beam_width", 100)
        flops = 6 * batch * steps * classes + 2 * batch * steps * beam * classes
    return LayerCost(elementwise_flops=flops, operand_grad_flops=(0,) * len(call.input_shapes), saved_elements=0)
