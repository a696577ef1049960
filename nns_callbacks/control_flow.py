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
from .registry import fitting_rule
from .replay import leaves
from .symbolic import as_specs, tensors

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


class Bodies:
    """The model walk's handling of control-flow bodies (mixed into ``walk.ModelWalk``, whose state it uses:
    the tensors' need of a gradient, the recorded entries, the path prefix and the repeat count)."""

    def outputs_of(self, op, args, kwargs):
        """Keras's symbolic outputs of ``op`` (for a loop, from its body run by the backend), recording nothing."""
        self._suppress += 1
        try:
            outputs = as_specs(op.compute_output_spec(*args, **kwargs), tensors((args, kwargs)))
        finally:
            self._suppress -= 1
        self._mark(tensors(outputs), self._needs_grad(tensors((args, kwargs))))
        return outputs

    def fresh(self, structure, carried: bool = False, shape=None):
        """New symbolic tensors like those of ``structure`` (Python numbers and arrays too; of ``shape(x)`` where
        given): a loop body's inputs.  Carried state needs a gradient where the enclosing call does (after the
        first trip it is the body's own output); other inputs where what they are taken from does."""
        def new(x):
            if isinstance(x, bool) or not (isinstance(x, (int, float)) or hasattr(x, "shape")):
                return x
            dtype = ("int32" if isinstance(x, int) else keras.config.floatx()) if isinstance(x, (int, float)) \
                else keras.backend.standardize_dtype(x.dtype)
            size = () if isinstance(x, (int, float)) else (shape(x) if shape else tuple(x.shape))
            return keras.KerasTensor(size, dtype=dtype)

        made = keras.tree.map_structure(new, structure)
        needs = self._needs_grad(tensors(structure)) or (carried and self._context_grad[-1])
        self._mark(tensors(made), needs)
        return made

    def in_body(self, path: str, plan):
        """Record the calls of a control-flow op's parts (``control_flow.Plan``), each times its trips; for
        branches, those of the costliest; the op's outputs, made from the body's (``None`` where it failed)."""
        outputs, kept = None, None
        for part in plan.parts:
            first = len(self.entries)
            self._prefix.append(path + "/")
            self._repeats.append(self._repeats[-1] * max(int(part.trips), 0))
            try:
                result = part.body()
            except Exception as error:  # noqa: BLE001  (a body that cannot run symbolically: listed)
                del self.entries[first:]
                self._report(f"ops.{path.rsplit('/', 1)[-1]} (body not traceable)",
                             f"its body could not run on symbolic inputs at {path} ({error!r})")
                continue
            finally:
                self._prefix.pop()
                self._repeats.pop()
            if part.unsupported:
                self._report(part.unsupported, f"at {path}")
            if plan.branches:
                branch = self.entries[first:]
                del self.entries[first:]
                if kept is None or forward_flops(branch) > forward_flops(kept[0]):
                    kept = branch, result
            elif outputs is None:
                outputs = result
        if plan.branches and kept is not None:
            self.entries += kept[0]
            outputs = kept[1]
        if outputs is None:
            return None
        made = as_specs(plan.outputs(outputs), [])
        self._mark(tensors(made), self._context_grad[-1], keep=True)
        return made


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


def forward_flops(entries: list) -> float:
    """The forward FLOPs of recorded calls by their rules (to tell a costlier branch); unknown ones count 0."""
    total = 0.0
    for leaf in leaves(entries):
        rule = fitting_rule(leaf.layer) if leaf.kind == "rule" else None
        try:
            total += rule(leaf.layer, leaf.call).forward_flops * leaf.repeats if rule else 0.0
        except Exception:  # noqa: BLE001, S112  (a rule that fails counts nothing here)
            continue
    return total
