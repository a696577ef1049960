"""Activation layers and ``activation=`` arguments.

FLOPs per element follow XLA's HLO cost analysis on CPU, with a transcendental
(exp, log, tanh, erf step) counted as one FLOP, so that the count can be checked
against a compiler.  Exact GELU (erf) is a 65-FLOP polynomial there.
"""

from __future__ import annotations

import math

import keras

from ..registry import LayerCall, LayerCost, elementwise_cost, register_cost_rule

FLOPS_PER_ELEMENT = {
    "linear": 0.0,
    "relu": 1.0,
    "relu6": 1.0,
    "leaky_relu": 3.0,
    "elu": 4.0,
    "selu": 6.0,
    "celu": 4.0,
    "softplus": 8.0,
    "softsign": 3.0,
    "soft_shrink": 6.0,
    "sparse_plus": 7.0,
    "silu": 5.0,
    "swish": 5.0,
    "squareplus": 5.0,
    "gelu": 65.0,
    "gelu_approximate": 9.0,
    "glu": 2.5,
    "tanh": 1.0,
    "tanh_shrink": 2.0,
    "hard_tanh": 4.0,
    "hard_shrink": 3.0,
    "sigmoid": 4.0,
    "exponential": 1.0,
    "hard_sigmoid": 3.0,
    "log_sigmoid": 10.0,
    "sparse_sigmoid": 3.0,
    "hard_silu": 4.0,
    "hard_swish": 4.0,
    "mish": 10.0,
    "softmax": 5.5,
    "log_softmax": 6.5,
    "sparsemax": 48.0,
}
"""FLOPs per input element of each activation in ``keras.activations``."""


def activation_name(activation) -> str | None:
    """The ``keras.activations`` name of a callable, or ``None`` when unknown."""
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        return activation
    name = getattr(activation, "__name__", None)
    return name if name in FLOPS_PER_ELEMENT else None


def activation_flops(activation, elements: int) -> int | None:
    """FLOPs of ``activation`` over ``elements`` values, ``None`` when unknown."""
    name = activation_name(activation)
    per_element = FLOPS_PER_ELEMENT.get(name)
    return None if per_element is None else round(per_element * elements)


def activation_flops_or_zero(layer, elements: int) -> int:
    """FLOPs of ``layer.activation``; an unknown one is reported and costs 0."""
    flops = activation_flops(getattr(layer, "activation", None), elements)
    if flops is None:
        from ..walk import report_unsupported

        report_unsupported(f"activation {getattr(layer.activation, '__name__', layer.activation)!r}")
        return 0
    return flops


@register_cost_rule(keras.layers.Activation)
def activation_layer(layer, call: LayerCall) -> LayerCost:
    """Per element: FLOPS_PER_ELEMENT[activation]."""
    return elementwise_cost(activation_flops_or_zero(layer, call.input_elements))


@register_cost_rule(keras.layers.ReLU)
def relu_layer(layer, call: LayerCall) -> LayerCost:
    """1 FLOP per element (a max; slope and cap fold into the same select)."""
    extra = 2 if layer.negative_slope else 0
    return elementwise_cost((1 + extra) * call.input_elements)


@register_cost_rule(keras.layers.LeakyReLU)
def leaky_relu_layer(layer, call: LayerCall) -> LayerCost:
    return elementwise_cost(round(FLOPS_PER_ELEMENT["leaky_relu"] * call.input_elements))


@register_cost_rule(keras.layers.ELU)
def elu_layer(layer, call: LayerCall) -> LayerCost:
    return elementwise_cost(round(FLOPS_PER_ELEMENT["elu"] * call.input_elements))


@register_cost_rule(keras.layers.PReLU)
def prelu_layer(layer, call: LayerCall) -> LayerCost:
    """5 FLOPs per element: max(x, 0) + alpha * min(x, 0); alpha is a weight."""
    cost = elementwise_cost(5 * call.input_elements)
    return LayerCost(
        elementwise_flops=cost.elementwise_flops,
        input_grad_flops=cost.input_grad_flops,
        weight_grad_flops=2 * call.input_elements,
    )


@register_cost_rule(keras.layers.Softmax)
def softmax_layer(layer, call: LayerCall) -> LayerCost:
    """5.5 FLOPs per element: max, subtract, exp, sum, divide (+ masking: 1)."""
    mask = call.argument("mask")
    extra = call.input_elements if mask is not None else 0
    return elementwise_cost(round(FLOPS_PER_ELEMENT["softmax"] * call.input_elements) + extra)


def output_elements(call: LayerCall) -> int:
    return math.prod(call.output_shape)
