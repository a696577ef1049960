"""Pooling: windowed, global and adaptive.

Backward: average pooling spreads each output's gradient over its window
(window FLOPs per output, like the forward); max pooling finds each window's
maximum again and adds the gradient there (window FLOPs per output).
"""

from __future__ import annotations

import math

from ..keras_compat import BaseAdaptivePooling, BaseGlobalPooling, BasePooling, layer_classes
from ..registry import LayerCall, LayerCost, register_builtin_rule


def is_max(layer) -> bool:
    return "max" in type(layer).__name__.lower()


def _cost(forward: int, backward: int, layer=None) -> LayerCost:
    """Max pooling keeps its input to find each window's maximum again; average pooling keeps nothing."""
    keeps = "inputs" if layer is not None and is_max(layer) else "nothing"
    return LayerCost(elementwise_flops=forward, input_grad_flops=backward, keeps=keeps)


@register_builtin_rule(BasePooling)
def pooling(layer, call: LayerCall) -> LayerCost:
    """Max: (window - 1) compares per output element; average: window adds and a divide, minus one; backward window."""
    window = math.prod(layer.pool_size)
    per_output = window - 1 if is_max(layer) else window
    return _cost(per_output * call.output_elements, window * call.output_elements, layer)


@register_builtin_rule(
    BaseGlobalPooling,
    *layer_classes(
        "GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D "
        "GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D"
    ),
)
def global_pooling(layer, call: LayerCall) -> LayerCost:
    """Max: 1 compare per input element less one per output, backward 1 per input; average: 1 add per input, backward 1 per output."""
    inputs, outputs = call.input_elements, call.output_elements
    if is_max(layer):
        return _cost(inputs - outputs, inputs, layer)
    return _cost(inputs, outputs, layer)


def adaptive_window_sum(size: int, out: int) -> int:
    """Sum of the adaptive window lengths along one axis: [floor(i*size/out), ceil((i+1)*size/out))."""
    return sum(-(-(i + 1) * size // out) - (i * size // out) for i in range(out))


@register_builtin_rule(
    BaseAdaptivePooling,
    *layer_classes(
        "AdaptiveMaxPooling1D AdaptiveMaxPooling2D AdaptiveMaxPooling3D "
        "AdaptiveAveragePooling1D AdaptiveAveragePooling2D AdaptiveAveragePooling3D"
    ),
)
def adaptive_pooling(layer, call: LayerCall) -> LayerCost:
    """Each output reduces its own window: window elements per output (max: less one); backward as much."""
    channels_last = layer.data_format == "channels_last"
    in_spatial = call.input_shape[1:-1] if channels_last else call.input_shape[2:]
    out_spatial = call.output_shape[1:-1] if channels_last else call.output_shape[2:]
    channels = call.input_shape[-1] if channels_last else call.input_shape[1]
    taps = math.prod(adaptive_window_sum(i, o) for i, o in zip(in_spatial, out_spatial))
    reduced = call.input_shape[0] * channels * taps
    forward = reduced - call.output_elements if is_max(layer) else reduced
    return _cost(forward, reduced, layer)
