"""Elementwise ops, comparisons, reductions, scans and sorting (``keras.ops`` / ``keras.ops.numpy``).

Per-element constants are XLA's count of the JAX implementation (CPU, a transcendental
counted as 1 FLOP), measured by ``benchmarks/measure_op_costs.py``: forward per output
element, and the gradient of each operand per output element (plus 1 per output element
to sum the copies of an operand that was broadcast).  Reductions: per input element plus
per output element (row).
"""

from __future__ import annotations

import math

from ..keras_compat import OPS_MATH as kmath
from ..keras_compat import OPS_NUMPY as knp
from ..registry import LayerCall, LayerCost, register_builtin_rule, register_cost_rule
from .ops import classes, elements, pointwise_cost, single_operand_cost

NO_GRADIENT = None

UNARY = {
    "Absolute": (1, 5), "Negative": (1, 1), "Square": (1, 2), "Sqrt": (1, 2), "Exp": (1, 1), "Exp2": (2, 2),
    "Log": (1, 1), "Log2": (2, 2), "Log10": (2, 2), "Log1p": (1, 2), "Expm1": (1, 2), "Sin": (1, 2), "Cos": (1, 3),
    "Tan": (1, 4), "Arcsin": (7, 4), "Arccos": (5, 5), "Arctan": (1, 3), "Sinh": (13, 2), "Cosh": (5, 10),
    "Tanh": (1, 4), "Arcsinh": (14, 4), "Arccosh": (10, 5), "Arctanh": (8, 5), "Reciprocal": (1, 4),
    "Sign": (1, 0), "Round": (1, 0), "Floor": (1, 0), "Ceil": (1, 0), "Trunc": (4, 0), "Fabs": (1, 5),
    "Cbrt": (1, 4), "Deg2rad": (1, 1), "Rad2deg": (1, 1), "Sinc": (8, 20), "I0": (86, 174), "Erf": (1, 5),
    "Erfc": (61, 4), "Erfinv": (39, 4), "Rsqrt": (1, 3), "NanToNum": (6, 8), "Angle": (1, 3), "Clip": (1, 14),
    "Tril": (2, 2), "Triu": (2, 2), "Diff": (1, 2),
    "Isnan": (1, NO_GRADIENT), "Isinf": (2, NO_GRADIENT), "Isfinite": (1, NO_GRADIENT),
    "Isneginf": (1, NO_GRADIENT), "Isposinf": (1, NO_GRADIENT), "Signbit": (3, NO_GRADIENT),
    "LogicalNot": (1, NO_GRADIENT),
}
"""Forward and backward FLOPs per output element of ops of one operand (XLA, JAX backend, CPU).

Rounding ops pass a zero gradient (0); exp's derivative is its output (1 multiply); a
clip is a maximum and a minimum, each with a compare-and-select gradient (14)."""

BINARY = {
    "Add": (1, 0, 0), "Subtract": (1, 0, 1), "Multiply": (1, 1, 1), "Divide": (1, 1, 5), "TrueDivide": (1, 1, 5),
    "DivideNoNan": (4, 4, 9), "Maximum": (1, 6, 6), "Minimum": (1, 6, 6), "Fmax": (4, 4, 4), "Fmin": (4, 4, 4),
    "Fmod": (1, 0, 7), "Mod": (8, 8, 16), "FloorDivide": (13, 0, 0), "Hypot": (16, 47, 47), "Arctan2": (1, 5, 6),
    "Logaddexp": (10, 7, 7), "Logaddexp2": (12, 8, 8), "Heaviside": (6, 6, 6), "Ldexp": (32, 53, NO_GRADIENT),
    "Nextafter": (8, NO_GRADIENT, NO_GRADIENT),
    "Equal": (1, NO_GRADIENT, NO_GRADIENT), "NotEqual": (1, NO_GRADIENT, NO_GRADIENT),
    "Greater": (1, NO_GRADIENT, NO_GRADIENT), "GreaterEqual": (1, NO_GRADIENT, NO_GRADIENT),
    "Less": (1, NO_GRADIENT, NO_GRADIENT), "LessEqual": (1, NO_GRADIENT, NO_GRADIENT),
    "Isclose": (10, NO_GRADIENT, NO_GRADIENT), "LogicalAnd": (1, NO_GRADIENT, NO_GRADIENT),
    "LogicalOr": (1, NO_GRADIENT, NO_GRADIENT), "LogicalXor": (1, NO_GRADIENT, NO_GRADIENT),
    "Where": (1, NO_GRADIENT, 2, 2),
}
"""Forward FLOPs per output element, then the gradient of each operand per output element.

A product's operand gradient is a multiply (1); a quotient's divisor needs -x / y^2 (5);
a maximum's is a compare and selects that split ties (6)."""

BROADCAST_GRADS = {"Subtract": (None, 1), "Divide": (None, 3), "TrueDivide": (None, 3)}
"""The gradient of a broadcast operand, per output element, where XLA sums first and then negates (a
difference) or divides (a quotient: the product with the numerator, the sum, then the rest per operand)."""

_SUMS = ("Add", "Subtract", "Negative")

_unary = {getattr(knp, n, None) or getattr(kmath, n, None): n for n in UNARY}
_binary = {getattr(knp, n, None): n for n in BINARY}
_unary.pop(None, None)
_binary.pop(None, None)


@register_cost_rule(*_unary)
def unary_op(op, call: LayerCall) -> LayerCost:
    """UNARY[op]: forward and backward FLOPs per output element."""
    name = _unary[type(op)]
    forward, backward = UNARY[name]
    return pointwise_cost(call, forward, (backward,), keeps="nothing" if name in _SUMS else "outputs")


@register_cost_rule(*_binary)
def binary_op(op, call: LayerCall) -> LayerCost:
    """BINARY[op]: forward FLOPs per output element, then each operand's gradient per output element."""
    name = _binary[type(op)]
    forward, *grads = BINARY[name]
    return pointwise_cost(call, forward, grads, keeps="nothing" if name in _SUMS else "inputs",
                          broadcast_grads=BROADCAST_GRADS.get(name, ()))


def _integer_power_multiplies(exponent: int) -> int:
    """Multiplies of ``x ** k`` by repeated squaring (``lax.integer_pow``)."""
    k = abs(exponent)
    return max(k.bit_length() - 1 + k.bit_count() - 1, 0) + (1 if exponent < 0 else 0)


@register_builtin_rule(getattr(knp, "Power", None))
def power_op(op, call: LayerCall) -> LayerCost:
    """Two tensors: pow 1, gradients 4 (base) and 5 (exponent) per element; a Python integer exponent k:
    repeated squaring (x**2: 1, x**3: 2), gradient one more; another number: 1 and 3; a number's power: 1, 2."""
    base, exponent = (call.args + (None, None))[:2]
    if not hasattr(exponent, "shape") and isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
        if float(exponent).is_integer():
            multiplies = _integer_power_multiplies(int(exponent))
            return pointwise_cost(call, multiplies, (multiplies + 1,))
        return pointwise_cost(call, 1, (3,))
    if not hasattr(base, "shape"):
        return pointwise_cost(call, 1, (None, 2))
    return pointwise_cost(call, 1, (4, 5))


# ---------------------------------------------------------------- reductions

REDUCTIONS = {
    "Sum": ((1, 0), (0, 0)), "Mean": ((1, 0), (0, 1)), "Average": ((1, 0), (0, 1)),
    "Max": ((1, 0), (5, 0)), "Min": ((1, 0), (5, 0)), "Amax": ((1, 0), (5, 0)), "Amin": ((1, 0), (5, 0)),
    "Prod": ((1, 0), (12, 0)), "Var": ((4, 0), (6, 5)), "Std": ((4, 1), (6, 8)), "Ptp": ((2, 0), (11, 1)),
    "Nanmax": ((5, 0), (7, 1)), "Nanmin": ((5, 0), (7, 1)), "Nanmean": ((8, 0), (2, 1)), "Nansum": ((3, 0), (2, 0)),
    "Nanprod": ((3, 0), (30, 0)), "Nanvar": ((17, 2), (7, 8)), "Nanstd": ((17, 3), (7, 10)),
    "Logsumexp": ((4, 3), (1, 7)), "Trapezoid": ((1, 2), (2, 2)),
    "All": ((1, 0), NO_GRADIENT), "Any": ((1, 0), NO_GRADIENT), "CountNonzero": ((3, 0), NO_GRADIENT),
    "Argmax": ((15, -9), NO_GRADIENT), "Argmin": ((15, -9), NO_GRADIENT),
    "Nanargmax": ((13, -9), NO_GRADIENT), "Nanargmin": ((13, -9), NO_GRADIENT),
    "AllClose": ((11, 0), NO_GRADIENT),
}
"""(forward, backward) FLOPs of reductions as (per input element, per output element).

Argmax's comparator (value, NaN and index compares and selects) is 15 ops per element in XLA."""

_reductions = {getattr(knp, n, None) or getattr(kmath, n, None): n for n in REDUCTIONS}
_reductions.pop(None, None)


def _reduction(call: LayerCall, forward: tuple, backward: tuple | None, extra_per_input: int = 0) -> LayerCost:
    n_in, n_out = elements(call.input_shapes[0]), elements(call.output_shape)
    flops = max(forward[0] * n_in + forward[1] * n_out, 0) + extra_per_input
    if backward is None:
        return single_operand_cost(call, flops, None)
    grad = max(backward[0] * n_in + backward[1] * n_out, 0)
    keeps = "nothing" if forward == (1, 0) and backward == (0, 0) else "inputs"
    return single_operand_cost(call, flops, grad, keeps=keeps)


@register_cost_rule(*_reductions)
def reduction_op(op, call: LayerCall) -> LayerCost:
    """REDUCTIONS[op]: a per input element + b per output element, forward and backward."""
    forward, backward = REDUCTIONS[_reductions[type(op)]]
    if len(call.input_shapes) > 1 and backward is not None:  # weights of an average: a product and its sum
        cost = _reduction(call, forward, backward, extra_per_input=2 * elements(call.input_shapes[0]))
        n = elements(call.input_shapes[0])
        grads = (n,) + (2 * n,) * (len(call.input_shapes) - 1)
        return LayerCost(elementwise_flops=cost.elementwise_flops, operand_grad_flops=grads, keeps="inputs")
    return _reduction(call, forward, backward)


def sort_flops(n: int) -> int:
    """XLA's count of a sort of ``n`` elements: n x ceil(log2 n) comparisons (over the whole array)."""
    return n * max(math.ceil(math.log2(n)), 1) if n > 1 else 0


@register_builtin_rule(*classes(knp, "Sort Argsort Argpartition"))
def sort_op(op, call: LayerCall) -> LayerCost:
    """n x ceil(log2 n) compares, n all input elements (XLA); sort's gradient gathers: 1 per element."""
    n = elements(call.input_shape)
    backward = n if type(op).__name__ == "Sort" else None
    return single_operand_cost(call, sort_flops(n), backward, keeps="nothing")


QUANTILES = {"Median": ((3, 1), (3, 3)), "Quantile": ((3, 1), (3, 3)), "Percentile": ((3, 1), (3, 3)),
             "Nanmedian": ((7, 17), (3, 14)), "Nanquantile": ((7, 17), (3, 14)), "Nanpercentile": ((7, 17), (3, 14))}
"""Sorted-order statistics: a sort of the input, then (per input element, per output element)."""


@register_builtin_rule(*classes(knp, " ".join(QUANTILES)))
def quantile_op(op, call: LayerCall) -> LayerCost:
    """A sort (n ceil(log2 n)) plus QUANTILES[op] per input and output element; backward QUANTILES[op]."""
    n_in, n_out = elements(call.input_shapes[0]), elements(call.output_shape)
    forward, backward = QUANTILES[type(op).__name__]
    flops = sort_flops(n_in) + forward[0] * n_in + forward[1] * n_out
    return single_operand_cost(call, flops, backward[0] * n_in + backward[1] * n_out)


SCANS = {"Cumsum": (17, 17), "Nancumsum": (19, 19), "Cumprod": (17, 20), "Nancumprod": (19, 40)}
"""Cumulative ops: XLA's associative scan, about (forward, backward) per element less 32 per row."""


@register_builtin_rule(*classes(knp, " ".join(SCANS)))
def cumulative_op(op, call: LayerCall) -> LayerCost:
    """SCANS[op] FLOPs per element, less 32 per scanned row (short rows do fewer scan levels)."""
    forward, backward = SCANS[type(op).__name__]
    n = elements(call.input_shape)
    axis = getattr(op, "axis", None)
    length = n if axis is None else call.input_shape[axis]
    rows = n // max(length, 1)
    return single_operand_cost(call, max(forward * n - 32 * rows, 0), max(backward * n - 32 * rows, 0))


@register_builtin_rule(*classes(knp, "Digitize SearchSorted IsIn Histogram"))
def search_op(op, call: LayerCall) -> LayerCost:
    """No gradient.  digitize, searchsorted: ``jnp.searchsorted``'s scan, about 70 per query (XLA);
    isin: a compare and an or per pair of (element, test value); histogram: 2 per element per bin."""
    name = type(op).__name__
    n = elements(call.input_shapes[0])
    if name == "Digitize":
        return single_operand_cost(call, 70 * n, None)
    if name == "SearchSorted":
        queries = elements(call.input_shapes[1]) if len(call.input_shapes) > 1 else 1
        return single_operand_cost(call, 70 * queries, None)
    if name == "IsIn":
        tests = elements(call.input_shapes[1]) if len(call.input_shapes) > 1 else 1
        return single_operand_cost(call, 2 * n * tests, None)
    bins = getattr(op, "bins", 10)
    return single_operand_cost(call, 2 * n * int(bins if isinstance(bins, int) else 10), None)


@register_builtin_rule(getattr(knp, "Select", None))
def select_op(op, call: LayerCall) -> LayerCost:
    """9 FLOPs per choice per output element (XLA's count of ``jnp.select``); each choice's gradient a select: 2."""
    n = elements(call.output_shape)
    conditions = call.args[0] if call.args and isinstance(call.args[0], (list, tuple)) else ()
    k = len(conditions)
    grads = (0,) * k + (2 * n,) * (len(call.input_shapes) - k)
    return LayerCost(elementwise_flops=9 * max(k, 1) * n, operand_grad_flops=grads, keeps="inputs")


@register_builtin_rule(*classes(knp, "Linspace Logspace Geomspace"))
def spaced_values_op(op, call: LayerCall) -> LayerCost:
    """Samples between tensor end points: about 3 FLOPs per output (start + i * step), gradients 2 per output
    each; a log scale adds a power (4, gradients 4)."""
    n = elements(call.output_shape)
    forward, grad = (2.85, 2) if type(op).__name__ == "Linspace" else (4, 4)
    return LayerCost(elementwise_flops=round(forward * n), operand_grad_flops=tuple(grad * n for _ in call.input_shapes))


_SEGMENTS = classes(kmath, "SegmentSum SegmentMax SegmentMin SegmentProd")


@register_builtin_rule(*_SEGMENTS)
def segment_op(op, call: LayerCall) -> LayerCost:
    """A scatter-reduce: 1 per data element; gradient: a gather (1 per element; max/min/prod: 11)."""
    n = elements(call.input_shapes[0])
    backward = n if type(op).__name__ == "SegmentSum" else 11 * n
    grads = (backward,) + (0,) * (len(call.input_shapes) - 1)
    return LayerCost(elementwise_flops=n, operand_grad_flops=grads, keeps="inputs")


@register_builtin_rule(getattr(kmath, "InTopK", None))
def in_top_k_op(op, call: LayerCall) -> LayerCost:
    """Compare each prediction with the target's: about 3 per prediction element; no gradient."""
    n = elements(call.input_shapes[-1])
    return LayerCost(elementwise_flops=3 * n, operand_grad_flops=(0,) * len(call.input_shapes), saved_elements=0)
