"""Normalisation layers.

Forward FLOPs are those of inference (what ``predict`` runs); computing batch
statistics in training is counted in the backward figures.  Per-element
constants follow XLA's count of the Keras implementations.
"""

from __future__ import annotations

import keras

from ..registry import LayerCall, LayerCost, register_cost_rule


def normalization_cost(layer, call: LayerCall, forward: float, backward: float) -> LayerCost:
    """``forward`` / ``backward`` FLOPs per element; scale and offset gradients: 2 per element."""
    elements = call.input_elements
    has_weights = bool(layer.trainable_weights)
    return LayerCost(
        elementwise_flops=round(forward * elements),
        input_grad_flops=round(backward * elements),
        weight_grad_flops=2 * elements if has_weights else 0,
    )


@register_cost_rule(keras.layers.BatchNormalization)
def batch_normalization(layer, call: LayerCall) -> LayerCost:
    """Inference: x * a + b, 2 FLOPs per element; training statistics and gradient: 8 per element."""
    return normalization_cost(layer, call, forward=2, backward=8)


@register_cost_rule(keras.layers.LayerNormalization)
def layer_normalization(layer, call: LayerCall) -> LayerCost:
    """Mean, variance, normalise, scale, shift: 9.5 FLOPs per element forward, 10 backward."""
    forward = 5 if getattr(layer, "rms_scaling", False) else 9.5
    return normalization_cost(layer, call, forward=forward, backward=10)


@register_cost_rule(keras.layers.GroupNormalization)
def group_normalization(layer, call: LayerCall) -> LayerCost:
    """Group statistics and affine: 6 FLOPs per element forward, 10 backward."""
    return normalization_cost(layer, call, forward=6, backward=10)


@register_cost_rule(keras.layers.UnitNormalization)
def unit_normalization(layer, call: LayerCall) -> LayerCost:
    """Square, sum, rsqrt, multiply: 3 FLOPs per element forward, 5 backward."""
    return normalization_cost(layer, call, forward=3, backward=5)


if hasattr(keras.layers, "RMSNormalization"):

    @register_cost_rule(keras.layers.RMSNormalization)
    def rms_normalization(layer, call: LayerCall) -> LayerCost:
        """Square, mean, rsqrt, multiply, scale: 4 FLOPs per element forward, 6 backward."""
        return normalization_cost(layer, call, forward=4, backward=6)
