"""Dense, EinsumDense, Embedding, merging, reshaping, regularisation and data layers (preprocessing: ``preprocessing``)."""

from __future__ import annotations

import math

import keras

from ..registry import FREE, LayerCall, LayerCost, matmul_cost, register_cost_rule
from .activations import DERIVATIVE_FROM_OUTPUT, activation_costs, activation_name


def weighted_cost(layer, macs: int, out_elements: int, bias: bool) -> LayerCost:
    """A product with a weight, plus a bias add and the layer's activation (and its derivative).

    Keeps its input (for the weight gradient); with an activation, its output too, and the
    pre-activation where the derivative needs it (GELU, SiLU; not ReLU, sigmoid or tanh, whose
    derivatives follow from the output).
    """
    activation = getattr(layer, "activation", None)
    forward, backward = activation_costs(activation, out_elements)
    bias_flops = out_elements if bias else 0
    name = activation_name(activation)
    return LayerCost(
        macs=macs,
        elementwise_flops=bias_flops + forward,
        input_grad_flops=2 * macs,
        weight_grad_flops=2 * macs + bias_flops,
        internal_grad_flops=backward,
        keeps="inputs" if name == "linear" else "inputs+outputs",
        buffers=0 if name in DERIVATIVE_FROM_OUTPUT else out_elements,
    )


@register_cost_rule(keras.layers.Dense)
def dense(layer, call: LayerCall) -> LayerCost:
    """MACs = output elements x input features; bias: 1 FLOP per output element."""
    out = math.prod(call.output_shape)
    return weighted_cost(layer, out * call.input_shape[-1], out, layer.use_bias)


def _expand_ellipsis(spec: str, rank: int, ellipsis_rank: int | None = None) -> str:
    if "..." not in spec:
        return spec
    head, tail = spec.split("...")
    if ellipsis_rank is None:
        ellipsis_rank = rank - len(head) - len(tail)
    return head + "".join(chr(0x100 + i) for i in range(ellipsis_rank)) + tail


def einsum_sizes(equation: str, *shapes: tuple[int, ...]) -> tuple[dict[str, int], str]:
    """The size of every index of an einsum, and its output indices (``...`` expanded)."""
    inputs, output = equation.replace(" ", "").split("->")
    sizes: dict[str, int] = {}
    ellipsis_rank = 0
    for spec, shape in zip(inputs.split(","), shapes):
        if "..." in spec:
            head, tail = spec.split("...")
            ellipsis_rank = max(ellipsis_rank, len(shape) - len(head) - len(tail))
        for letter, size in zip(_expand_ellipsis(spec, len(shape)), shape):
            if size is not None:
                sizes[letter] = max(sizes.get(letter, 1), int(size))
    return sizes, _expand_ellipsis(output, 0, ellipsis_rank)


def einsum_macs(equation: str, *shapes: tuple[int, ...]) -> int:
    """MACs of an einsum: the product of the sizes of all distinct indices."""
    sizes, _ = einsum_sizes(equation, *shapes)
    return math.prod(sizes.values())


@register_cost_rule(keras.layers.EinsumDense)
def einsum_dense(layer, call: LayerCall) -> LayerCost:
    """MACs = product of all index sizes of the equation; bias: 1 FLOP per output element."""
    sizes, output = einsum_sizes(layer.equation, call.input_shape, tuple(layer.kernel.shape))
    out_elements = math.prod(sizes[letter] for letter in output)
    bias = getattr(layer, "bias", None) is not None
    return weighted_cost(layer, math.prod(sizes.values()), out_elements, bias)


@register_cost_rule(keras.layers.Embedding)
def embedding(layer, call: LayerCall) -> LayerCost:
    """A gather: no FLOPs forward; the weight gradient is a scatter-add per output element."""
    return LayerCost(weight_grad_flops=math.prod(call.output_shape), saved_elements=0)


def merge_count(call: LayerCall) -> int:
    return len(call.input_shapes)


def _merge(forward: int, backward: int, keeps: str = "nothing") -> LayerCost:
    """A merge; sums keep nothing for their gradient, products and extrema their inputs."""
    return LayerCost(elementwise_flops=forward, input_grad_flops=backward, keeps=keeps)


@register_cost_rule(keras.layers.Add)
def add(layer, call: LayerCall) -> LayerCost:
    """(inputs - 1) adds per output element; the gradient passes through (0)."""
    return _merge((merge_count(call) - 1) * call.output_elements, 0)


@register_cost_rule(keras.layers.Maximum, keras.layers.Minimum)
def extremum(layer, call: LayerCall) -> LayerCost:
    """(inputs - 1) compares per output element; backward a compare and two selects per pair: 3 x (inputs - 1)."""
    pairs = (merge_count(call) - 1) * call.output_elements
    return _merge(pairs, 3 * pairs, keeps="inputs")


@register_cost_rule(keras.layers.Multiply)
def multiply(layer, call: LayerCall) -> LayerCost:
    """(inputs - 1) products per output element; backward inputs x (inputs - 1) (each input's co-factor)."""
    k = merge_count(call)
    return _merge((k - 1) * call.output_elements, k * (k - 1) * call.output_elements, keeps="inputs")


@register_cost_rule(keras.layers.Subtract)
def subtract(layer, call: LayerCall) -> LayerCost:
    """1 FLOP per output element; backward a negation: 1."""
    return _merge(call.output_elements, call.output_elements)


@register_cost_rule(keras.layers.Average)
def average(layer, call: LayerCall) -> LayerCost:
    """(inputs - 1) adds and 1 divide per output element; backward 1 divide per output element."""
    return _merge(merge_count(call) * call.output_elements, call.output_elements)


@register_cost_rule(keras.layers.Dot)
def dot(layer, call: LayerCall) -> LayerCost:
    """MACs = output elements x contracted size (+ L2 normalisation: 3 FLOPs per input element, 7 backward)."""
    axes = layer.axes if isinstance(layer.axes, (list, tuple)) else [layer.axes, layer.axes]
    first = call.input_shapes[0]
    contracted = first[axes[0] if axes[0] >= 0 else len(first) + axes[0]]
    macs = math.prod(call.output_shape) * contracted
    cost = matmul_cost(macs, weight_macs=0)
    if not layer.normalize:
        return cost
    n = call.input_elements
    return cost + LayerCost(elementwise_flops=3 * n, internal_grad_flops=7 * n)


@register_cost_rule(
    keras.layers.Concatenate,
    keras.layers.Reshape,
    keras.layers.Flatten,
    keras.layers.Permute,
    keras.layers.RepeatVector,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Identity,
    keras.layers.InputLayer,
    keras.layers.ActivityRegularization,
)
def data_movement(layer, call: LayerCall) -> LayerCost:
    """Copies, views and padding: no FLOPs."""
    return FREE


@register_cost_rule(
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
)
def noise(layer, call: LayerCall) -> LayerCost:
    """Identity at inference (the forward convention); training masks cost 1 FLOP per element backward.

    A rate of 0 returns its input in training too: free, nothing kept.
    """
    if getattr(layer, "rate", None) == 0:
        return FREE
    return LayerCost(input_grad_flops=call.input_elements, saved_elements=call.input_elements)


@register_cost_rule(keras.layers.Masking)
def masking(layer, call: LayerCall) -> LayerCost:
    """A compare and a multiply per element, an any-reduction per step: 3 per element less 1 per step; backward 1."""
    n = call.input_elements
    steps = n // max(call.input_shape[-1], 1)
    return LayerCost(elementwise_flops=3 * n - steps, input_grad_flops=n)


@register_cost_rule(keras.layers.Rescaling)
def rescaling(layer, call: LayerCall) -> LayerCost:
    """x * scale + offset: 2 FLOPs per element; backward (where needed) a multiply: 1."""
    n = call.input_elements
    return LayerCost(elementwise_flops=2 * n, input_grad_flops=n, saved_elements=0)


@register_cost_rule(keras.layers.Normalization)
def normalization(layer, call: LayerCall) -> LayerCost:
    """(x - mean) / std: 2 FLOPs per element (inverting: 2 as well); backward a divide: 1."""
    n = call.input_elements
    return LayerCost(elementwise_flops=2 * n, input_grad_flops=n, saved_elements=0)
