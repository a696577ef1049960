"""Keras's control-flow and higher-order ops in the model walk: their bodies run on symbolic tensors, and each
call a body makes is recorded (under ``<op>/``) times the loop's trip count.

Keras computes these ops' output shapes by running their bodies under the backend (``jax.eval_shape``, a
TensorFlow graph), where no Keras op is symbolic and the walk would see nothing; so the walk runs each body
itself, and the op's outputs are made from the body's.  Trip counts: ``scan`` its length, ``map`` and
``vectorized_map`` the leading size of their inputs, ``fori_loop`` ``upper - lower`` where both are Python
integers; ``associative_scan`` follows XLA's count of JAX's implementation (every backend does): 2n - log2(n) - 2
applications of its function and 2n - 2 adds per element to interleave the results; ``cond`` and ``switch``
count their costliest branch (one runs); a ``while_loop``, whose trip count is unknown before it runs, has its
body counted once and is listed in ``ModelCost.unsupported``, as is a ``fori_loop`` with symbolic bounds.
A loop's carried state needs a gradient wherever the enclosing call does (it is the body's own output after
the first trip); its sliced inputs need one where the tensors they are sliced from do.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import keras

from . import keras_compat as compat

_NAMES = ("Scan", "Map", "AssociativeScan", "ForiLoop", "WhileLoop", "VectorizedMap", "Cond", "Switch")
CLASSES = tuple(cls for cls in (getattr(compat.OPS_CORE, name, None) for name in _NAMES) if cls is not None)

WHILE_LOOP = "ops.WhileLoop (trip count unknown: body counted once)"
UNKNOWN_TRIPS = "ops.ForiLoop (bounds not Python integers: body counted once)"


@dataclasses.dataclass
class Part:
    """A body run ``trips`` times per call of the op (``unsupported``: a name to list it under)."""

    trips: int
    body: Callable
    unsupported: str | None = None


@dataclasses.dataclass
class Plan:
    """The parts of an op (run one after another, or ``branches``: one of them runs) and how its outputs follow
    from the first part's outputs."""

    parts: list[Part]
    outputs: Callable = lambda outputs: outputs
    branches: bool = False


def is_control_flow(op) -> bool:
    return isinstance(op, CLASSES)


def run(walk, op, path: str, args: tuple, kwargs: dict):
    """Record ``op``'s body calls, times their trip counts; return the op's outputs (Keras's where its body
    could not run on symbolic tensors)."""
    outputs = walk.in_body(path, _PLANS[type(op).__name__](walk, op, *args, **kwargs))
    return outputs if outputs is not None else walk.outputs_of(op, args, kwargs)


def _leading(structure, axis: int = 0) -> int:
    return int(keras.tree.flatten(structure)[0].shape[axis])


def _without(axis: int = 0):
    """The shape of one element along ``axis`` (the axis removed)."""
    return lambda x: tuple(x.shape[:axis]) + tuple(x.shape[axis + 1:])


def _stacked(trips: int):
    """Outputs with a leading axis of ``trips`` added (what map and scan stack)."""
    def stack(outputs):
        return keras.tree.map_structure(lambda x: keras.KerasTensor((trips, *x.shape), dtype=x.dtype), outputs)

    return stack


def _scan(walk, op, f, init, xs=None, *args, **kwargs):
    trips = int(op.length) if op.length is not None else _leading(xs)
    carry = walk.fresh(init, carried=True)
    slices = None if xs is None else walk.fresh(xs, shape=_without())

    def outputs(result):
        _new_carry, ys = result
        return walk.fresh(init, carried=True), _stacked(trips)(ys)

    return Plan([Part(trips, lambda: f(carry, slices))], outputs)


def _map(walk, op, f, xs):
    trips = _leading(xs)
    return Plan([Part(trips, lambda: f(walk.fresh(xs, shape=_without())))], _stacked(trips))


def _vectorized_map(walk, op, elements):
    trips = _leading(elements)
    return Plan([Part(trips, lambda: op.function(walk.fresh(elements, shape=_without())))], _stacked(trips))


def _associative_scan(walk, op, f, elems):
    n = _leading(elems, op.axis)
    pair = walk.fresh(elems, shape=lambda x: tuple(1 if i == op.axis else d for i, d in enumerate(x.shape)))
    applications = max(2 * n - int(math.log2(n)) - 2, 0) if n > 1 else 0
    interleave = [Part(2 * n - 2, lambda x=x: x + x) for x in keras.tree.flatten(pair)] if n > 1 else []
    return Plan([Part(applications, lambda: f(pair, pair)), *interleave], lambda _: walk.fresh(elems))


def _fori_loop(walk, op, init_val):
    known = all(isinstance(b, int) and not isinstance(b, bool) for b in (op.lower, op.upper))
    trips = max(op.upper - op.lower, 0) if known else 1
    index = keras.KerasTensor((), dtype="int32")
    state = walk.fresh(init_val, carried=True)
    part = Part(trips, lambda: op.body_fun(index, state), None if known else UNKNOWN_TRIPS)
    return Plan([part], lambda _: walk.fresh(init_val, carried=True))


def _while_loop(walk, op, loop_vars):
    state = walk.fresh(loop_vars, carried=True)
    body = (lambda: op.body(*state)) if isinstance(state, (tuple, list)) else (lambda: op.body(state))
    return Plan([Part(1, body, WHILE_LOOP)], lambda _: walk.fresh(loop_vars, carried=True))


def _cond(walk, op, pred, true_fn, false_fn):
    return Plan([Part(1, true_fn), Part(1, false_fn)], branches=True)


def _switch(walk, op, index, branches, *operands):
    return Plan([Part(1, lambda branch=branch: branch(*walk.fresh(operands))) for branch in branches], branches=True)


_PLANS = {
    "Scan": _scan, "Map": _map, "VectorizedMap": _vectorized_map, "AssociativeScan": _associative_scan,
    "ForiLoop": _fori_loop, "WhileLoop": _while_loop, "Cond": _cond, "Switch": _switch,
}
