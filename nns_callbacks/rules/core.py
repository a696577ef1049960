"""Dense, EinsumDense, Embedding, merging, reshaping, regularisation and data layers."""

from __future__ import annotations

import math

import keras

from ..registry import FREE, LayerCall, LayerCost, elementwise_cost, matmul_cost, register_cost_rule
from .activations import activation_flops_or_zero


def weighted_cost(layer, macs: int, out_elements: int, bias: bool) -> LayerCost:
    """A product with a weight, plus a bias add and the layer's activation."""
    activation = activation_flops_or_zero(layer, out_elements)
    bias_flops = out_elements if bias else 0
    return LayerCost(
        macs=macs,
        elementwise_flops=bias_flops + activation,
        input_grad_flops=2 * macs,
        weight_grad_flops=2 * macs + bias_flops,
        internal_grad_flops=activation,
    )


@register_cost_rule(keras.layers.Dense)
def dense(layer, call: LayerCall) -> LayerCost:
    """MACs = output elements x input features; bias: 1 FLOP per output element."""
    out = math.prod(call.output_shape)
    return weighted_cost(layer, out * call.input_shape[-1], out, layer.use_bias)


def einsum_macs(equation: str, *shapes: tuple[int, ...]) -> int:
    """MACs of an einsum: the product of the sizes of all distinct indices."""
    inputs, output = equation.replace(" ", "").split("->")
    sizes: dict[str, int] = {}
    for spec, shape in zip(inputs.split(","), shapes):
        if "..." in spec:
            head, tail = spec.split("...")
            ellipsis_rank = len(shape) - len(head) - len(tail)
            spec = head + "".join(chr(0x100 + i) for i in range(ellipsis_rank)) + tail
        for letter, size in zip(spec, shape):
            sizes[letter] = size
    return math.prod(sizes.values())


@register_cost_rule(keras.layers.EinsumDense)
def einsum_dense(layer, call: LayerCall) -> LayerCost:
    """MACs = product of all index sizes of the equation; bias: 1 FLOP per output element."""
    macs = einsum_macs(layer.equation, call.input_shape, tuple(layer.kernel.shape))
    bias = getattr(layer, "bias", None) is not None
    return weighted_cost(layer, macs, math.prod(call.output_shape), bias)


@register_cost_rule(keras.layers.Embedding)
def embedding(layer, call: LayerCall) -> LayerCost:
    """A gather: no FLOPs forward; the weight gradient is a scatter-add per output element."""
    return LayerCost(weight_grad_flops=math.prod(call.output_shape), saved_elements=0)


def merge_count(call: LayerCall) -> int:
    return len(call.input_shapes)


@register_cost_rule(keras.layers.Add, keras.layers.Maximum, keras.layers.Minimum, keras.layers.Multiply)
def pairwise_merge(layer, call: LayerCall) -> LayerCost:
    """(inputs - 1) FLOPs per output element."""
    return elementwise_cost((merge_count(call) - 1) * call.output_elements)


@register_cost_rule(keras.layers.Subtract)
def subtract(layer, call: LayerCall) -> LayerCost:
    """1 FLOP per output element."""
    return elementwise_cost(call.output_elements)


@register_cost_rule(keras.layers.Average)
def average(layer, call: LayerCall) -> LayerCost:
    """(inputs - 1) adds and 1 divide per output element."""
    return elementwise_cost(merge_count(call) * call.output_elements)


@register_cost_rule(keras.layers.Dot)
def dot(layer, call: LayerCall) -> LayerCost:
    """MACs = output elements x contracted size (+ normalisation: 3 FLOPs per input element)."""
    axes = layer.axes if isinstance(layer.axes, (list, tuple)) else [layer.axes, layer.axes]
    first = call.input_shapes[0]
    contracted = first[axes[0] if axes[0] >= 0 else len(first) + axes[0]]
    macs = math.prod(call.output_shape) * contracted
    extra = 3 * call.input_elements if layer.normalize else 0
    return matmul_cost(macs, weight_macs=0, elementwise=extra)


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
    """Identity at inference (the forward convention); training masks cost 1 FLOP per element backward."""
    return LayerCost(input_grad_flops=call.input_elements, saved_elements=call.input_elements)


def _upsampling_flops(layer, call: LayerCall) -> int:
    interpolation = getattr(layer, "interpolation", "nearest")
    if interpolation == "nearest":
        return 0
    return 7 * call.output_elements if len(call.output_shape) == 4 else 3 * call.output_elements


@register_cost_rule(keras.layers.UpSampling1D, keras.layers.UpSampling2D, keras.layers.UpSampling3D)
def upsampling(layer, call: LayerCall) -> LayerCost:
    """Nearest: a copy, no FLOPs.  Bilinear: 4 products and 3 adds per output element."""
    flops = _upsampling_flops(layer, call)
    return elementwise_cost(flops) if flops else FREE


@register_cost_rule(keras.layers.Masking)
def masking(layer, call: LayerCall) -> LayerCost:
    """Per element a compare and a multiply, plus an any-reduction: 3 FLOPs per element."""
    return elementwise_cost(3 * call.input_elements)


@register_cost_rule(keras.layers.Rescaling)
def rescaling(layer, call: LayerCall) -> LayerCost:
    """x * scale + offset: 2 FLOPs per element (preprocessing: no gradient needed)."""
    return LayerCost(elementwise_flops=2 * call.input_elements, saved_elements=0)


@register_cost_rule(keras.layers.Normalization)
def normalization(layer, call: LayerCall) -> LayerCost:
    """(x - mean) / std: 2 FLOPs per element (inverting: 2 as well)."""
    return LayerCost(elementwise_flops=2 * call.input_elements, saved_elements=0)


@register_cost_rule(keras.layers.Resizing)
def resizing(layer, call: LayerCall) -> LayerCost:
    """Bilinear: 4 products + 3 adds per output element; nearest: a gather, no FLOPs."""
    interpolation = getattr(layer, "interpolation", "bilinear")
    per_element = {"nearest": 0, "bilinear": 7, "bicubic": 31, "lanczos3": 71, "lanczos5": 199}
    flops = per_element.get(interpolation, 7) * call.output_elements
    return LayerCost(elementwise_flops=flops, saved_elements=0)


@register_cost_rule(keras.layers.CenterCrop)
def center_crop(layer, call: LayerCall) -> LayerCost:
    """A crop is free; if the input is smaller it is resized (bilinear, 7 FLOPs per element)."""
    in_hw = call.input_shape[-3:-1] if layer.data_format == "channels_last" else call.input_shape[-2:]
    needs_resize = any(i < o for i, o in zip(in_hw, (layer.height, layer.width)))
    flops = 7 * call.output_elements if needs_resize else 0
    return LayerCost(elementwise_flops=flops, saved_elements=0)
