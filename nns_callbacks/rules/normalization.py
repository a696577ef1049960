"""Normalisation layers.

Forward FLOPs are those of inference (what ``predict`` runs); computing batch
statistics in training is counted in the backward figures.  Constants follow
XLA's count of the Keras implementations (JAX backend, CPU), fitted per element
(n) and per normalised row or group; ``internal`` is the backward work that the
weight and the input gradients share (recomputing the normalised values, batch
statistics).  XLA also counts a few FLOPs per channel (batch normalisation: 4-6
forward, 20-28 backward; group normalisation's affine: 8-12 forward, about 40
backward) that do not grow with the batch: they are left out, so that costs stay
proportional to the batch size, and matter only for layers with few positions
per channel.
"""

from __future__ import annotations

import keras

from ..registry import LayerCall, LayerCost, register_cost_rule


def _has(layer, name: str) -> bool:
    return getattr(layer, name, None) is not None


def _axes(call: LayerCall, axis) -> list[int]:
    rank = len(call.input_shape)
    return [a % rank for a in ([axis] if isinstance(axis, int) else list(axis))]


def _rows(call: LayerCall, axis) -> int:
    """The number of groups normalised together: elements / product of the ``axis`` sizes."""
    size = 1
    for a in _axes(call, axis):
        size *= call.input_shape[a]
    return call.input_elements // max(size, 1)


def _cost(forward=0.0, input_grad=0.0, weight_grad=0.0, internal=0.0) -> LayerCost:
    """A normalisation keeps its input (and per-row statistics, too small to count) for the backward pass."""
    return LayerCost(
        elementwise_flops=round(forward),
        input_grad_flops=round(input_grad),
        weight_grad_flops=round(weight_grad),
        internal_grad_flops=round(internal),
        keeps="inputs",
    )


@register_cost_rule(keras.layers.BatchNormalization)
def batch_normalization(layer, call: LayerCall) -> LayerCost:
    """Inference x * a + b: 2n; training backward 16n: input 9n, 7n shared with the scale's gradient (offset only: 11n, 5n)."""
    n = call.input_elements
    forward = 2 * n
    if not layer.trainable:  # a frozen layer runs in inference mode: its gradient is x * a's, 1 per element
        return _cost(forward, input_grad=n)
    if _has(layer, "gamma"):
        return _cost(forward, 9 * n, 0, 7 * n)
    if _has(layer, "beta"):
        return _cost(forward, 11 * n, 0, 5 * n)
    return _cost(forward, 16 * n)


@register_cost_rule(keras.layers.LayerNormalization)
def layer_normalization(layer, call: LayerCall) -> LayerCost:
    """Forward 6n (+2n scale, +n offset) + 4-5 per row; backward input 12n + 19 per row (13n with scale), scale 2n + 3n shared, offset n."""
    n, rows = call.input_elements, _rows(call, layer.axis)
    scale, center = _has(layer, "gamma"), _has(layer, "beta")
    if getattr(layer, "rms_scaling", False):
        return _cost(6 * n + 2 * rows, 12 * n, 3 * n if scale else 0)
    if scale:
        return _cost((8 + center) * n + 4 * rows, 13 * n, (2 + center) * n, 3 * n)
    return _cost((6 + center) * n + 5 * rows, 12 * n + 19 * rows, center * n)


@register_cost_rule(keras.layers.GroupNormalization)
def group_normalization(layer, call: LayerCall) -> LayerCost:
    """Forward 6n + 4-5 per group; backward input 9n + 14 per group (offset only 11n, plain 12n, + 19), scale 3n shared + 2 per group."""
    n = call.input_elements
    groups = call.input_shape[0] * layer.groups
    if _has(layer, "gamma"):
        return _cost(6 * n + 4 * groups, 9 * n + 14 * groups, 2 * groups, 3 * n)
    if _has(layer, "beta"):
        return _cost(6 * n + 5 * groups, 11 * n + 19 * groups, 0, n)
    return _cost(6 * n + 5 * groups, 12 * n + 19 * groups)


@register_cost_rule(keras.layers.UnitNormalization)
def unit_normalization(layer, call: LayerCall) -> LayerCost:
    """Square, sum, rsqrt, multiply: 3n + 1 per row forward; 5n + 11 per row backward."""
    n, rows = call.input_elements, _rows(call, layer.axis)
    return _cost(3 * n + rows, 5 * n + 11 * rows)


if hasattr(keras.layers, "RMSNormalization"):

    @register_cost_rule(keras.layers.RMSNormalization)
    def rms_normalization(layer, call: LayerCall) -> LayerCost:
        """Square, mean, rsqrt, multiply, scale: 4n + 2 per row forward; backward input 7n + 5 per row, scale 3n."""
        n, rows = call.input_elements, _rows(call, layer.axis)
        scale = 3 * n if layer.trainable_weights else 0
        return _cost(4 * n + 2 * rows, 7 * n + 5 * rows, scale)
