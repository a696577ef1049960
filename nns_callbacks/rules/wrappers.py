"""Wrappers: TimeDistributed around any layer, Bidirectional in every merge mode, others."""

from __future__ import annotations

import math

import keras

from ..keras_compat import layer_classes
from ..registry import LayerCall, LayerCost, fitting_rule, register_cost_rule, report_unsupported, rule_for
from .recurrent import rnn


def inner_call(layer, input_shape: tuple[int, ...]) -> LayerCall:
    """A call of ``layer`` on one tensor of ``input_shape``, its output shape from Keras."""
    output_shape = layer.compute_output_shape(input_shape)
    spec = keras.KerasTensor(input_shape)
    outputs = output_shape if isinstance(output_shape, list) else [output_shape]
    return LayerCall(layer, (spec,), {}, [tuple(s) for s in outputs], [tuple(input_shape)])


def inner_cost(layer, input_shape: tuple[int, ...]) -> LayerCost:
    """The cost of ``layer`` on ``input_shape``; a layer without a rule is reported."""
    rule = rule_for(layer)
    if rule is None:
        report_unsupported(type(layer).__name__)
        return LayerCost()
    return rule(layer, inner_call(layer, input_shape))


@register_cost_rule(keras.layers.TimeDistributed)
def time_distributed(layer, call: LayerCall) -> LayerCost:
    """The inner layer on all batch x time slices at once."""
    batch, steps, *rest = call.input_shape
    return inner_cost(layer.layer, (batch * steps, *rest))


_MERGE_FLOPS = {"concat": (0, 0), "sum": (1, 0), "mul": (1, 2), "ave": (2, 1), None: (0, 0)}
"""(forward, backward) FLOPs per output element of merging the two directions."""


def _direction_cost(inner, call: LayerCall) -> LayerCost:
    """One direction: the rule registered for its layer (a user's for a custom RNN), else the RNN rule."""
    rule = fitting_rule(inner) or rnn
    return rule(inner, LayerCall(inner, call.args, call.kwargs, call.output_shapes, call.input_shapes))


@register_cost_rule(keras.layers.Bidirectional)
def bidirectional(layer, call: LayerCall) -> LayerCost:
    """Forward and backward RNN, then the merge: concat 0, sum/mul 1, ave 2 FLOPs per element (backward 0, 2, 1)."""
    forward, backward = (_direction_cost(inner, call) for inner in (layer.forward_layer, layer.backward_layer))
    per_element = _MERGE_FLOPS.get(layer.merge_mode, (0, 0))
    out = math.prod(call.output_shape)
    merge = LayerCost(
        elementwise_flops=per_element[0] * out, internal_grad_flops=per_element[1] * out, saved_elements=0
    )
    return forward + backward + merge


@register_cost_rule(keras.layers.Wrapper, *layer_classes("SpectralNormalization"))
def wrapper(layer, call: LayerCall) -> LayerCost:
    """Other wrappers (SpectralNormalization): the wrapped layer's cost."""
    return inner_cost(layer.layer, call.input_shape)
