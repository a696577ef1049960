"""Pooling: windowed, global and adaptive."""

from __future__ import annotations

import math

from keras.src.layers.pooling.base_adaptive_pooling import BaseAdaptivePooling
from keras.src.layers.pooling.base_global_pooling import BaseGlobalPooling
from keras.src.layers.pooling.base_pooling import BasePooling

from ..registry import LayerCall, LayerCost, elementwise_cost, register_cost_rule


def is_max(layer) -> bool:
    return "max" in type(layer).__name__.lower()


@register_cost_rule(BasePooling)
def pooling(layer, call: LayerCall) -> LayerCost:
    """Max: (window - 1) compares per output element; average: window adds and a divide, minus one."""
    window = math.prod(layer.pool_size)
    per_output = window - 1 if is_max(layer) else window
    return elementwise_cost(per_output * call.output_elements)


@register_cost_rule(BaseGlobalPooling)
def global_pooling(layer, call: LayerCall) -> LayerCost:
    """Max: 1 compare per input element less one per output; average: 1 add per input element."""
    inputs = call.input_elements
    flops = inputs - call.output_elements if is_max(layer) else inputs
    return elementwise_cost(flops)


@register_cost_rule(BaseAdaptivePooling)
def adaptive_pooling(layer, call: LayerCall) -> LayerCost:
    """About 1 FLOP per input element (each input falls in about one output window)."""
    return elementwise_cost(call.input_elements)
