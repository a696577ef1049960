"""Measure XLA's count of Keras ops (JAX backend, CPU): the source of the per-element constants in
``nns_callbacks/rules/ops_*.py``.

    KERAS_BACKEND=jax JAX_PLATFORMS=cpu python benchmarks/measure_op_costs.py [section ...]

For each op: FLOPs + transcendentals of ``jax.jit(f).lower(...).compile().cost_analysis()`` for the
forward call, and of the VJP with respect to each floating-point operand (cotangent passed in as an
argument) less the forward, divided by the normaliser the rule uses (output elements, input elements,
MACs).  Reductions are measured at two shapes (64 x 64 and 16 x 256, reduced over the last axis) and
fitted as a FLOPs per input element + b per output element.  ``cases`` prints our count over XLA's for
every product, nn, image and signal case of the test suite.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
from keras import ops


def flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float(analysis.get("flops", 0.0)) + max(float(analysis.get("transcendentals", 0.0)), 0.0)


def array(shape, dtype="float32"):
    rng = np.random.default_rng(0)
    if "int" in dtype:
        return jnp.asarray(rng.integers(0, 5, shape), dtype=dtype)
    return jnp.asarray(rng.uniform(0.1, 0.9, shape), dtype=dtype)


def xla(f, shapes, dtypes=None, wrt=None):
    """(forward FLOPs, backward FLOPs of the VJP w.r.t. operands ``wrt`` (default: every float one))."""
    dtypes = dtypes or ["float32"] * len(shapes)
    xs = [array(s, d) for s, d in zip(shapes, dtypes)]
    forward = flops(jax.jit(f).lower(*xs).compile())
    wrt = [i for i, d in enumerate(dtypes) if "float" in d] if wrt is None else wrt
    if not wrt:
        return forward, 0.0
    outputs = jax.eval_shape(f, *xs)
    cotangents = jax.tree_util.tree_map(lambda o: jnp.full(o.shape, 0.5, o.dtype), outputs)

    def step(xs, cotangents):
        def partial(*values):
            full = list(xs)
            for i, v in zip(wrt, values):
                full[i] = v
            return f(*full)

        out, pullback = jax.vjp(partial, *[xs[i] for i in wrt])
        return out, pullback(cotangents)

    try:
        training = flops(jax.jit(step).lower(xs, cotangents).compile())
    except Exception:  # noqa: BLE001  (no gradient defined)
        return forward, float("nan")
    return forward, training - forward


def _names(text: str) -> list[str]:
    return text.split()


UNARY = _names(
    "absolute negative square sqrt exp exp2 log log2 log10 log1p expm1 sin cos tan arcsin arccos arctan sinh "
    "cosh tanh arcsinh arccosh arctanh reciprocal sign round floor ceil trunc fabs cbrt deg2rad rad2deg sinc i0 "
    "erf erfc erfinv rsqrt nan_to_num angle signbit isnan isinf isfinite isneginf isposinf logical_not"
)
BINARY = _names(
    "add subtract multiply divide true_divide divide_no_nan maximum minimum fmax fmin fmod power mod floor_divide "
    "hypot arctan2 logaddexp logaddexp2 heaviside equal not_equal greater greater_equal less less_equal isclose "
    "logical_and logical_or logical_xor"
)
REDUCTIONS = _names(
    "sum mean max min amax amin prod var std average median ptp count_nonzero all any argmax argmin nanargmax "
    "nanargmin nanmax nanmin nanmean nanmedian nanprod nanstd nansum nanvar logsumexp cumsum cumprod nancumsum "
    "nancumprod sort argsort trapezoid"
)


def unary():
    n = 64 * 64
    for name in UNARY:
        f = getattr(ops, name, None)
        if f is None:
            continue
        shift = 1.0 if name == "arccosh" else 0.0  # arccosh needs x > 1: XLA counts the add, 1 per element
        forward, backward = xla(lambda x, f=f, shift=shift: f(x + shift) if shift else f(x), [(64, 64)])
        forward -= n * shift
        print(f"unary  {name:14s} forward {forward / n:6.2f}  backward {backward / n:6.2f}  per element")


def binary():
    n = 64 * 64
    for name in BINARY:
        f = getattr(ops, name, None)
        if f is None:
            continue
        forward, _ = xla(lambda x, y, f=f: f(x, y), [(64, 64)] * 2, wrt=[])
        grads = [xla(lambda x, y, f=f: f(x, y), [(64, 64)] * 2, wrt=[i])[1] / n for i in (0, 1)]
        print(f"binary {name:14s} forward {forward / n:6.2f}  backward x {grads[0]:6.2f}  y {grads[1]:6.2f}")


def reductions():
    for name in REDUCTIONS:
        f = getattr(ops, name, None)
        if f is None:
            continue
        (f1, b1), (f2, b2) = (xla(lambda x, f=f: f(x, axis=-1), [s]) for s in [(64, 64), (16, 256)])
        # a * 4096 + b * rows: rows 64 and 16
        a_f, a_b = (f1 - 4 * f2) / (4096 - 4 * 4096), (b1 - 4 * b2) / (4096 - 4 * 4096)
        print(f"reduce {name:14s} forward {a_f:6.2f} + {(f1 - 4096 * a_f) / 64:6.2f}/row  "
              f"backward {a_b:6.2f} + {(b1 - 4096 * a_b) / 64:6.2f}/row")


def cases():
    """Every costed case of ``tests/jax_backend/test_ops_xla.py``: XLA's forward and forward + VJP against ours."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(root), str(root / "tests" / "jax_backend")]
    import test_ops_xla as t

    tables = {"product": t.PRODUCTS, "nn": t.NN, "image": t.IMAGE_OPS, "signal": t.SIGNAL_OPS}
    for family, table in tables.items():
        for name, case in table.items():
            if isinstance(case, tuple):
                case = t.Case(*case)
            try:
                model = t.model_of(case)
                forward, total = t.ours(model, case)
                reference_forward, reference_total, _, _ = t.xla(model, case, gradient=not case.forward_only)
            except Exception as error:  # noqa: BLE001  (an op this Keras lacks or cannot run)
                print(f"{family:8s} {name:40s} skipped: {type(error).__name__}")
                continue
            training = f"{total / reference_total:6.3f}" if reference_total else "     -"
            print(f"{family:8s} {name:40s} forward {forward / max(reference_forward, 1):6.3f}  training {training}")


SECTIONS = {"unary": unary, "binary": binary, "reductions": reductions, "cases": cases}

if __name__ == "__main__":
    for section in sys.argv[1:] or SECTIONS:
        SECTIONS[section]()
