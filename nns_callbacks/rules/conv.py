"""Convolutions (with strides, dilation, groups and padding), transposed, depthwise, separable.

MACs count every kernel tap, those on zero padding included, as published
figures do (XLA's count skips the padding taps).
"""

from __future__ import annotations

import math

import keras

from ..keras_compat import BaseConv, BaseConvTranspose, BaseDepthwiseConv, BaseSeparableConv
from ..registry import LayerCall, LayerCost, register_builtin_rule
from .core import weighted_cost


def channels(layer, shape: tuple[int, ...]) -> int:
    """The channel count of ``shape`` under the layer's data format."""
    return shape[-1] if layer.data_format == "channels_last" else shape[1]


def spatial(layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The spatial dimensions of ``shape`` under the layer's data format."""
    return tuple(shape[1:-1] if layer.data_format == "channels_last" else shape[2:])


@register_builtin_rule(BaseConv, keras.layers.Conv1D)
def conv(layer, call: LayerCall) -> LayerCost:
    """MACs = output elements x (input channels / groups) x kernel taps."""
    out = math.prod(call.output_shape)
    taps = math.prod(layer.kernel_size)
    macs = out * (channels(layer, call.input_shape) // layer.groups) * taps
    return weighted_cost(layer, macs, out, layer.use_bias)


@register_builtin_rule(BaseConvTranspose)
def conv_transpose(layer, call: LayerCall) -> LayerCost:
    """MACs = input elements x output channels x kernel taps (each input scatters a kernel)."""
    macs = math.prod(call.input_shape) * layer.filters * math.prod(layer.kernel_size)
    return weighted_cost(layer, macs, math.prod(call.output_shape), layer.use_bias)


@register_builtin_rule(BaseDepthwiseConv)
def depthwise_conv(layer, call: LayerCall) -> LayerCost:
    """MACs = output elements x kernel taps (one input channel per output channel)."""
    out = math.prod(call.output_shape)
    return weighted_cost(layer, out * math.prod(layer.kernel_size), out, layer.use_bias)


@register_builtin_rule(BaseSeparableConv)
def separable_conv(layer, call: LayerCall) -> LayerCost:
    """Depthwise: out positions x in channels x multiplier x taps; pointwise: out elements x in x multiplier."""
    out = math.prod(call.output_shape)
    positions = out // channels(layer, call.output_shape)
    depthwise_channels = channels(layer, call.input_shape) * layer.depth_multiplier
    depthwise_macs = positions * depthwise_channels * math.prod(layer.kernel_size)
    pointwise_macs = out * depthwise_channels
    return weighted_cost(layer, depthwise_macs + pointwise_macs, out, layer.use_bias)
