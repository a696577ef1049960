"""Activation layers and ``activation=`` arguments.

FLOPs per element follow XLA's HLO cost analysis on CPU, with a transcendental
(exp, log, tanh, erf step) counted as one FLOP, so that the count can be checked
against a compiler.  Exact GELU (erf) is a 65-FLOP polynomial there.  Backward
constants are XLA's count of JAX's gradient of the same function (the derivative
times the incoming gradient), measured per input element.

Which GELU a function computes is its own default: ``keras.activations.gelu`` is
exact, ``keras.ops.gelu`` (``keras.ops.nn.gelu``) approximate; ``functools.partial``
with ``approximate=`` says otherwise.
"""

from __future__ import annotations

import functools
import inspect

import keras

from ..keras_compat import ReLUOp
from ..registry import LayerCall, LayerCost, register_builtin_rule, register_cost_rule, report_unsupported

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
    "softmax": 5.0,
    "log_softmax": 6.0,
    "sparsemax": 46.0,
    "threshold": 2.0,
}
"""FLOPs per input element of each activation in ``keras.activations``.

Softmax: max, subtract, exp, sum, divide (XLA: 5 per element less 1 per row)."""

BACKWARD_FLOPS_PER_ELEMENT = {
    "linear": 0.0,
    "relu": 2.0,
    "relu6": 4.0,
    "leaky_relu": 5.0,
    "elu": 8.0,
    "selu": 10.0,
    "celu": 17.0,
    "softplus": 7.0,
    "softsign": 14.0,
    "soft_shrink": 6.0,
    "sparse_plus": 10.0,
    "silu": 6.0,
    "swish": 6.0,
    "squareplus": 6.0,
    "gelu": 16.0,
    "gelu_approximate": 16.0,
    "glu": 2.5,
    "tanh": 4.0,
    "tanh_shrink": 6.0,
    "hard_tanh": 4.0,
    "hard_shrink": 3.0,
    "sigmoid": 3.0,
    "exponential": 1.0,
    "hard_sigmoid": 6.0,
    "log_sigmoid": 15.0,
    "sparse_sigmoid": 16.0,
    "hard_silu": 11.0,
    "hard_swish": 11.0,
    "mish": 18.0,
    "softmax": 6.0,
    "log_softmax": 3.0,
    "sparsemax": 36.0,
    "threshold": 2.0,
}
"""FLOPs per input element of the gradient of each activation (XLA's count of JAX's VJP).

Exact GELU: 16, XLA's count inside a jitted training step, where the derivative reuses the forward
pass's erf (a VJP compiled on its own evaluates the 65-FLOP erf again, 79 in all)."""


DERIVATIVE_FROM_OUTPUT = frozenset(
    {"linear", "relu", "relu6", "elu", "sigmoid", "tanh", "softmax", "exponential", "hard_sigmoid", "hard_tanh"}
)
"""Activations whose derivative follows from their output, so no pre-activation need be kept."""


def activation_name(activation) -> str | None:
    """The ``keras.activations`` name of a callable, or ``None`` when unknown."""
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        return activation
    function, keywords = activation, {}
    if isinstance(activation, functools.partial):
        function, keywords = activation.func, dict(activation.keywords)
    name = getattr(function, "__name__", None)
    if name == "gelu" and _approximate(function, keywords):
        return "gelu_approximate"
    return name if name in FLOPS_PER_ELEMENT else None


def _approximate(function, keywords: dict) -> bool:
    """Whether a ``gelu`` function runs the tanh approximation: the ``approximate`` it is given or its default."""
    if "approximate" in keywords:
        return bool(keywords["approximate"])
    try:
        parameter = inspect.signature(function).parameters.get("approximate")
    except (TypeError, ValueError):
        return False
    return bool(parameter is not None and parameter.default is True)


def activation_flops(activation, elements: int) -> int | None:
    """FLOPs of ``activation`` over ``elements`` values, ``None`` when unknown."""
    name = activation_name(activation)
    per_element = FLOPS_PER_ELEMENT.get(name)
    return None if per_element is None else round(per_element * elements)


def activation_backward_flops(activation, elements: int) -> int | None:
    """FLOPs of the gradient of ``activation`` over ``elements`` values, ``None`` when unknown."""
    per_element = BACKWARD_FLOPS_PER_ELEMENT.get(activation_name(activation))
    return None if per_element is None else round(per_element * elements)


def _report(activation) -> None:
    report_unsupported(f"activation {getattr(activation, '__name__', activation)!r}")


def activation_flops_or_zero(layer, elements: int) -> int:
    """FLOPs of ``layer.activation``; an unknown one is reported and costs 0."""
    flops = activation_flops(getattr(layer, "activation", None), elements)
    if flops is None:
        _report(layer.activation)
        return 0
    return flops


def activation_costs(activation, elements: int, report: bool = True) -> tuple[int, int]:
    """(forward, backward) FLOPs of ``activation`` over ``elements``; unknown: (0, 0), reported."""
    forward = activation_flops(activation, elements)
    if forward is None:
        if report:
            _report(activation)
        return 0, 0
    return forward, activation_backward_flops(activation, elements)


def activation_by_name(name: str, elements: int) -> LayerCost:
    """Elementwise cost of the named activation: forward and backward per-element constants."""
    forward, backward = activation_costs(name, elements)
    return LayerCost(elementwise_flops=forward, input_grad_flops=backward)


@register_cost_rule(keras.layers.Activation)
def activation_layer(layer, call: LayerCall) -> LayerCost:
    """Per element: FLOPS_PER_ELEMENT[activation]; backward BACKWARD_FLOPS_PER_ELEMENT[activation]."""
    forward, backward = activation_costs(layer.activation, call.input_elements)
    return LayerCost(elementwise_flops=forward, input_grad_flops=backward)


@register_builtin_rule(keras.layers.ReLU, ReLUOp)
def relu_layer(layer, call: LayerCall) -> LayerCost:
    """Per element: max 1 (threshold 2; cap other than 6 +1; slope +2 alone, else +4/+5); backward 2 (+2 cap, +3 slope)."""
    threshold = bool(layer.threshold)
    cap = layer.max_value is not None
    forward = 2 if threshold else 1
    if cap and (threshold or float(layer.max_value) != 6.0):
        forward += 1
    if layer.negative_slope:
        forward += 2 if not (cap or threshold) else (5 if threshold else 4)
    backward = 2 + (2 if cap else 0) + (3 if layer.negative_slope else 0)
    n = call.input_elements
    return LayerCost(elementwise_flops=forward * n, input_grad_flops=backward * n)


@register_cost_rule(keras.layers.LeakyReLU)
def leaky_relu_layer(layer, call: LayerCall) -> LayerCost:
    """3 FLOPs per element (compare, multiply, select); backward 5."""
    return activation_by_name("leaky_relu", call.input_elements)


@register_cost_rule(keras.layers.ELU)
def elu_layer(layer, call: LayerCall) -> LayerCost:
    """4 FLOPs per element (alpha other than 1: 5); backward 8 (9)."""
    extra = call.input_elements if float(layer.alpha) != 1.0 else 0
    cost = activation_by_name("elu", call.input_elements)
    return LayerCost(elementwise_flops=cost.elementwise_flops + extra, input_grad_flops=cost.input_grad_flops + extra)


@register_cost_rule(keras.layers.PReLU)
def prelu_layer(layer, call: LayerCall) -> LayerCost:
    """relu(x) - alpha * relu(-x): 5 FLOPs per element; backward: input 8, alpha 4 per element."""
    n = call.input_elements
    return LayerCost(elementwise_flops=5 * n, input_grad_flops=8 * n, weight_grad_flops=4 * n)


@register_cost_rule(keras.layers.Softmax)
def softmax_layer(layer, call: LayerCall) -> LayerCost:
    """5 FLOPs per element: max, subtract, exp, sum, divide (+ masking: 1); backward 6."""
    mask = call.argument("mask")
    extra = call.input_elements if mask is not None else 0
    cost = activation_by_name("softmax", call.input_elements)
    return LayerCost(elementwise_flops=cost.elementwise_flops + extra, input_grad_flops=cost.input_grad_flops + extra)
