"""Layers that ``keras.applications`` defines for its own models."""

from __future__ import annotations

from ..keras_compat import CustomScaleLayer, LayerScale
from ..registry import LayerCall, LayerCost, register_builtin_rule


@register_builtin_rule(LayerScale)
def layer_scale(layer, call: LayerCall) -> LayerCost:
    """x * gamma: 1 FLOP per element; gamma's gradient: 2 per element."""
    elements = call.input_elements
    return LayerCost(elementwise_flops=elements, input_grad_flops=elements, weight_grad_flops=2 * elements)


@register_builtin_rule(CustomScaleLayer)
def custom_scale(layer, call: LayerCall) -> LayerCost:
    """inputs[0] + inputs[1] * scale: 2 FLOPs per output element."""
    flops = 2 * call.output_elements
    return LayerCost(elementwise_flops=flops, input_grad_flops=flops)
