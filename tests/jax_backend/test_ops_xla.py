"""Keras ops against XLA's count of their JAX implementation (CPU), one op per model.

Each costed op: forward within 5% of XLA's count of the jitted inference call, and forward +
gradient (a VJP with respect to the listed float inputs, cotangent passed in) within 15%.
Each free op: no floating-point arithmetic in XLA's compiled program, forward or VJP (copies,
selects and conversions only; XLA's count there is integer index arithmetic and conversions,
at most ``FREE_BOUND`` per output element).  Linear algebra runs as LAPACK calls that XLA counts
as about 0, so those ops are compared with their textbook formulas in ``tests/test_rules.py``
instead.  Also here: GELU inside a jitted training step, the resizing layers and the random
augmentation layers in training mode.
"""

from __future__ import annotations

import dataclasses
import math
import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from xla_reference import compiled_flops

import nns_callbacks
from nns_callbacks.registry import fitting_rule
from nns_callbacks.walk import ModelWalk, _tensors

ops = keras.ops
L = keras.layers
FORWARD_TOLERANCE = 0.05
TRAINING_TOLERANCE = 0.15
FREE_BOUND = 2.0
"""XLA's count of a free op, per output element, at most (index arithmetic of gathers, conversions)."""


@dataclasses.dataclass
class Case:
    fn: object
    shapes: list
    dtypes: list | None = None
    wrt: list | None = None  # float inputs whose gradient the VJP takes (default: all float inputs)
    forward_only: str | None = None  # why the gradient is not compared

    def __post_init__(self):
        self.dtypes = self.dtypes or ["float32"] * len(self.shapes)
        if self.wrt is None:
            self.wrt = [i for i, d in enumerate(self.dtypes) if "float" in d]


def arrays(case: Case, low=0.1, high=0.9):
    rng = np.random.default_rng(0)
    out = []
    for shape, dtype in zip(case.shapes, case.dtypes):
        if "int" in dtype:
            out.append(jnp.asarray(rng.integers(0, 4, shape), dtype=dtype))
        elif dtype == "bool":
            out.append(jnp.asarray(rng.integers(0, 2, shape).astype(bool)))
        else:
            out.append(jnp.asarray(rng.uniform(low, high, shape), dtype=dtype))
    return out


def model_of(case: Case):
    inputs = [keras.Input(batch_shape=s, dtype=d) for s, d in zip(case.shapes, case.dtypes)]
    return keras.Model(inputs, case.fn(*inputs))


def ours(model, case: Case, training: bool = True) -> tuple[int, int]:
    """(forward, forward + the gradients of the ``wrt`` inputs and training-only work) from the rules."""
    specs = [keras.KerasTensor(s, dtype=d) for s, d in zip(case.shapes, case.dtypes)]
    walk = ModelWalk()
    walk.run(model, specs)
    assert not walk.unsupported, walk.unsupported
    needs = {id(specs[i]): True for i in case.wrt}
    forward = total = 0
    for leaf in walk.leaves:
        cost = fitting_rule(leaf.layer)(leaf.layer, leaf.call)
        operands = [needs.get(id(x), False) for x in _tensors((leaf.call.args, leaf.call.kwargs))]
        flows = any(operands)
        backward = cost.training_only_flops if training else 0
        if flows:
            backward += cost.input_grad_flops + cost.internal_grad_flops
            backward += sum(g for g, n in zip(cost.operand_grad_flops or (), operands) if n)
        forward += cost.forward_flops
        total += cost.forward_flops + backward
        for tensor_id, _, _ in leaf.outputs:
            needs[tensor_id] = flows
    return forward, total


def _jitted(model, training: bool):
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def call(*xs):
        return model.stateless_call(trainable, non_trainable, list(xs) if len(xs) > 1 else xs[0], training=training)[0]

    return call


def xla(model, case: Case, training: bool = False, gradient: bool = True):
    """XLA's compiled (forward, forward + VJP w.r.t. ``case.wrt``) and the two compiled programs."""
    xs = arrays(case)
    call = _jitted(model, training)
    forward_program = jax.jit(call).lower(*xs).compile()
    if not gradient or not case.wrt:
        return compiled_flops(forward_program), None, forward_program, None
    outputs = jax.eval_shape(call, *xs)
    cotangents = jax.tree_util.tree_map(lambda o: jnp.full(o.shape, 0.5, o.dtype), outputs)

    def step(xs, cotangents):
        def partial(*values):
            full = list(xs)
            for i, v in zip(case.wrt, values):
                full[i] = v
            return call(*full)

        out, pullback = jax.vjp(partial, *[xs[i] for i in case.wrt])
        return out, pullback(cotangents)

    training_program = jax.jit(step).lower(xs, cotangents).compile()
    return compiled_flops(forward_program), compiled_flops(training_program), forward_program, training_program


def check(case: Case, training_mode: bool = False):
    model = model_of(case)
    forward, total = ours(model, case)
    reference_forward, reference_total, _, _ = xla(model, case, training_mode, gradient=not case.forward_only)
    assert forward == pytest.approx(reference_forward, rel=FORWARD_TOLERANCE, abs=8), (forward, reference_forward)
    if reference_total is not None:
        assert total == pytest.approx(reference_total, rel=TRAINING_TOLERANCE, abs=8), (total, reference_total)


# ---------------------------------------------------------------- elementwise, reductions, scans

S = (32, 64)  # XLA's CPU reductions count rows of other lengths as if padded to a power of two
UNARY = ("absolute negative square sqrt exp exp2 log log2 log10 log1p expm1 sin cos tan arcsin arccos arctan sinh "
         "cosh tanh arcsinh arctanh reciprocal sign round floor ceil trunc fabs cbrt deg2rad rad2deg sinc i0 erf "
         "erfc erfinv rsqrt nan_to_num signbit isnan isinf isfinite isneginf isposinf").split()
BINARY = ("add subtract multiply divide true_divide divide_no_nan maximum minimum fmax fmin fmod power mod "
          "floor_divide hypot arctan2 logaddexp logaddexp2 heaviside equal not_equal greater greater_equal less "
          "less_equal isclose").split()
REDUCTIONS = ("sum mean max min amax amin prod var std average ptp count_nonzero argmax argmin nanargmax nanargmin "
              "nanmax nanmin nanmean nanprod nansum nanvar nanstd logsumexp cumsum cumprod nancumsum trapezoid "
              "median nanmedian sort argsort").split()  # quantile: Keras 3.15 on JAX fails with an axis
ACTIVATIONS = ("relu relu6 sigmoid softplus softsign silu leaky_relu hard_sigmoid hard_silu elu selu gelu softmax "
               "log_softmax log_sigmoid celu glu sparse_plus sparse_sigmoid squareplus hard_tanh hard_shrink "
               "soft_shrink tanh_shrink sparsemax").split()


def _present(names):
    return [n for n in names if hasattr(ops, n)]


@pytest.mark.parametrize("name", _present(UNARY))
def test_unary(name):
    check(Case(lambda x: getattr(ops, name)(x), [S]))


@pytest.mark.parametrize("name", _present(BINARY))
def test_binary(name):
    check(Case(lambda x, y: getattr(ops, name)(x, y), [S, S]))


@pytest.mark.parametrize(
    "fn",
    [lambda x, y: x + y, lambda x, y: x * y, lambda x, y: x - y, lambda x, y: x / y, lambda x, y: ops.maximum(x, y)],
    ids=["add", "multiply", "subtract", "divide", "maximum"],
)
def test_binary_broadcast(fn):
    check(Case(fn, [S, S[-1:]]))


@pytest.mark.parametrize(
    "fn", [lambda x: x**2, lambda x: x**3, lambda x: x**0.5, lambda x: 2.0**x, lambda x: x / 3.0, lambda x: 3.0 / x,
           lambda x: 3.0 - x, lambda x: ops.clip(x, 0.2, 0.7), lambda x: ops.arccosh(x + 1.0)],
    ids=["square", "cube", "root", "exp2", "divide_by", "divide_into", "rsubtract", "clip", "arccosh"])
def test_with_a_number(fn):
    check(Case(fn, [S]))


@pytest.mark.parametrize("name", _present(REDUCTIONS))
def test_reduction(name):
    fn = getattr(ops, name)
    extra = {"quantile": (0.3,), "percentile": (30.0,)}.get(name, ())
    check(Case(lambda x: fn(x, *extra, axis=-1), [S]))


@pytest.mark.parametrize("name", _present(ACTIVATIONS))
def test_activation(name):
    check(Case(lambda x: getattr(ops, name)(x), [S]))


@pytest.mark.parametrize(
    ("fn", "shapes", "dtypes", "wrt"),
    [
        (lambda c, x, y: ops.where(c > 0.5, x, y), [S, S, S], None, [1, 2]),
        (lambda x, y: ops.logical_and(x > 0.5, y > 0.5), [S, S], None, []),
        (lambda x: ops.logical_not(x > 0.5), [S], None, []),
        (lambda x: ops.all(x > 0.5, axis=-1), [S], None, []),
        (lambda x: ops.tril(x), [S], None, None),
        (lambda x: ops.diff(x), [S], None, None),
        (lambda x: ops.one_hot(x, 16), [S], ["int32"], []),
        (lambda x: ops.multi_hot(x, 16), [S], ["int32"], []),
        (lambda x, b: ops.digitize(x, b), [S, (3,)], None, []),
        (lambda x, y: ops.isin(x, y), [S, (16,)], ["int32", "int32"], []),
        (lambda x, s: ops.segment_sum(x, s[:, 0], num_segments=8), [S, S], ["float32", "int32"], None),
        (lambda x, w: ops.average(x, axis=-1, weights=w), [S, S], None, None),
        (lambda a, b: ops.linspace(a, b, 16), [(64,), (64,)], None, None),
        (lambda x: ops.saturate_cast(x * 300.0, "uint8"), [S], None, []),
        (lambda x: ops.tile(x, (2, 3)), [S], None, None),
        (lambda x: ops.repeat(x, 3, axis=0), [S], None, None),
        (lambda x: ops.broadcast_to(x, (8, *S)), [S], None, None),
        (lambda x, y: ops.select([x > 0.5], [y]), [S, S], None, [1]),
    ],
    ids=["where", "logical_and", "logical_not", "all", "tril", "diff", "one_hot", "multi_hot", "digitize", "isin",
         "segment_sum", "weighted_average", "linspace", "saturate_cast", "tile", "repeat", "broadcast_to", "select"],
)
def test_other_elementwise(fn, shapes, dtypes, wrt):
    check(Case(fn, shapes, dtypes, wrt))
