"""The model walk: every costed call of a model, with concrete shapes, in execution order.

Functional and Sequential models are walked along their graph and nested models
are expanded.  Every other layer is called the way Keras calls it (its
``__call__``: dtype conversion, masks, the ``training`` flag) on symbolic
tensors, and the walk takes over where Keras would compute the outputs:

* a layer whose cost rule fits it is a leaf, costed as a whole;
* any other layer's ``call`` runs on symbolic tensors, so that each Keras op it
  performs (``ops.einsum``, ``x + y``, ``ops.softmax``, ...) and each sublayer it
  calls is recorded with its real shapes, under the layer's qualified name.

Ops that only touch constants or weights run eagerly and are not recorded; a
layer whose ``call`` cannot run on symbolic tensors is listed as unsupported
and its outputs come from Keras.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import json
import math
import threading
import warnings

import keras

from . import control_flow, notices
from . import keras_compat as compat
from .registry import LayerCall, broadcast, collecting_unsupported, fitting_rule, report_unsupported

NOT_TRACEABLE = " (not traceable)"
"""Suffix of an ``unsupported`` entry for a layer whose ``call`` could not be traced."""

FAILED = " (output unknown)"
"""Suffix of an ``unsupported`` entry for a call whose output Keras could not compute."""


@dataclasses.dataclass
class LeafCall:
    """A call that is costed as a whole: a layer with a rule, a Keras op, or a traced layer's own row.

    ``trains``: the call computes a weight gradient (its layer, or for an op the
    layer whose ``call`` ran it, has trainable weights the op uses).
    ``kind``: ``"rule"`` (costed by its rule), ``"traced"`` (the row of a traced
    layer itself: its own weights, no FLOPs beyond its ``children`` rows) or
    ``"untraceable"`` (a layer that could not be traced: counted as 0).
    ``in_call``: a Keras op recorded inside a traced layer's ``call``.
    ``template``: the leaf this one replays (same layer configuration, same call), which has the same cost.
    ``inputs``, ``outputs``: ``(id, elements, dtype)`` of its symbolic tensors, the id the same wherever
    the tensor is passed, so that a tensor two calls keep is counted once.
    ``repeats``: how many times the call runs per call of the model (a call inside a loop body: its trip count).
    ``operand_grads``: whether each tensor operand (in the order of ``call.input_shapes``) needs a
    gradient: a symbolic tensor that depends on a trainable weight, or a trainable weight.
    ``step``: for a replayed leaf, its place in the trace it repeats; its tensors are its replay's own,
    and its ``call`` is that of the leaf it repeats (the same arguments, the same shapes).
    """

    path: str
    layer: object
    call: LayerCall
    call_index: int
    needs_input_grad: bool
    trains: bool = False
    kind: str = "rule"
    children: int = 0
    in_call: bool = False
    template: LeafCall | None = None
    inputs: tuple = ()
    outputs: tuple = ()
    operand_grads: tuple = ()
    repeats: int = 1
    step: _Step | None = None


@dataclasses.dataclass
class _Trace:
    """The leaves a traced call recorded (``entries``: leaves and replays), to replay for a layer of the
    same configuration called alike."""

    layer: object
    prefix: str
    entries: list
    outputs: object

    @functools.cached_property
    def sublayers(self) -> list:
        return compat.sublayers(self.layer)

    @functools.cached_property
    def plan(self) -> list[tuple]:
        """``(layer_id, suffix)`` of each step: what a replay reads of it."""
        return [(step.layer_id, step.suffix) for step in self.steps]

    @functools.cached_property
    def steps(self) -> list[_Step] | None:
        """A step per leaf; ``None`` where a leaf's layer is not a sublayer of the traced layer."""
        ids = {id(sublayer) for sublayer in self.sublayers}
        steps = []
        for leaf in _leaves(self.entries):
            layer_id = id(leaf.layer) if isinstance(leaf.layer, keras.layers.Layer) else None
            if layer_id is not None and layer_id not in ids:
                return None
            suffix = leaf.path[len(self.prefix):] if leaf.path.startswith(self.prefix) else None
            steps.append(_Step(leaf, leaf.template or leaf, layer_id, suffix))
        return steps


@dataclasses.dataclass(eq=False)
class _Step:
    """One leaf of a trace, as its replays repeat it.

    ``layer_id``: the id of its layer among the traced layer's sublayers (``None`` for an op);
    ``suffix``: its path below the traced layer (``None`` for the traced layer's own row).
    """

    leaf: LeafCall
    template: LeafCall
    layer_id: int | None
    suffix: str | None

    @functools.cached_property
    def repeated(self) -> tuple:
        """The fields of a replayed leaf between its ``call_index`` and its ``step``."""
        leaf = self.leaf
        return (leaf.needs_input_grad, leaf.trains, leaf.kind, leaf.children, leaf.in_call, self.template,
                leaf.inputs, leaf.outputs, leaf.operand_grads, leaf.repeats)


@dataclasses.dataclass(eq=False)
class Replay:
    """A trace's leaves repeated for another layer: its sublayers stand in for the traced layer's (``mapping``:
    by their ids), its path ``own`` for the traced layer's; ``call_indices``: one per step; ``weights``: the
    layer's ``weights``."""

    trace: _Trace
    own: str
    mapping: dict[int, object]
    call_indices: list[int]
    weights: list

    def __len__(self) -> int:
        return len(self.call_indices)

    @functools.cached_property
    def leaves(self) -> list[LeafCall]:
        return [self.leaf(step, index) for step, index in zip(self.trace.steps, self.call_indices)]

    def leaf(self, step: _Step, call_index: int) -> LeafCall:
        """The leaf that repeats ``step``."""
        layer = step.leaf.layer if step.layer_id is None else self.mapping[step.layer_id]
        path = self.own[:-1] if step.suffix is None else self.own + step.suffix
        return LeafCall(path, layer, step.leaf.call, call_index, *step.repeated, step)


def _leaves(entries: list) -> list[LeafCall]:
    """The leaves of a walk's entries, a replay's made from it."""
    leaves = []
    for entry in entries:
        if isinstance(entry, Replay):
            leaves += entry.leaves
        else:
            leaves.append(entry)
    return leaves


@dataclasses.dataclass
class _GraphCall:
    """A graph node's call of a layer through Keras's ``__call__``, and what the walk's hook received of it."""

    layer: object
    args: tuple
    kwargs: dict
    received: tuple | None = None  # (args, kwargs, trace key, outputs) of the layer's symbolic call

    def passed_on(self, outputs) -> tuple | None:
        """The trace key of the call where Keras passed the arguments on as given (adding plain constants
        such as ``training``) and returned the hook's outputs untouched (no mask); else ``None``."""
        if self.received is None:
            return None
        args, kwargs, key, made = self.received
        if made is not outputs or any(compat.keras_mask(x) is not None for x in _tensors(outputs)):
            return None
        added = [value for name, value in kwargs.items() if name not in self.kwargs]
        if not set(self.kwargs) <= set(kwargs) or not all(isinstance(x, _PLAIN) for x in _flatten(added)):
            return None
        given = _flatten((self.args, self.kwargs))
        passed = _flatten((args, {name: kwargs[name] for name in self.kwargs}))
        return key if len(given) == len(passed) and all(a is b for a, b in zip(given, passed)) else None


_PLAIN = (bool, int, float, str, type(None))


def _flatten(structure) -> list:
    """``keras.tree.flatten(structure)``, quicker for the tuples, lists and dicts that calls take."""
    kind = type(structure)
    if kind is tuple or kind is list:
        return [leaf for item in structure for leaf in _flatten(item)]
    if kind is dict:
        try:
            keys = sorted(structure)
        except TypeError:  # keys of several types: Keras's own order
            return keras.tree.flatten(structure)
        return [leaf for key in keys for leaf in _flatten(structure[key])]
    if isinstance(structure, _LEAVES):
        return [structure]
    return keras.tree.flatten(structure)


_LEAVES = (keras.KerasTensor, keras.Variable, *_PLAIN)


def _tensors(structure) -> list:
    return [x for x in _flatten(structure) if hasattr(x, "shape") and hasattr(x, "dtype")]


def _shapes(tensors) -> list[tuple]:
    return [tuple(None if d is None else int(d) for d in x.shape) for x in tensors]


def _is_symbolic(x) -> bool:
    return isinstance(x, keras.KerasTensor)


def _is_weight_like(x) -> bool:
    """A float array of rank 1 or more: a weight's value or a constant an op may differentiate."""
    return "float" in str(getattr(x, "dtype", "")) and len(getattr(x, "shape", ())) > 0


def _trains(layer) -> bool:
    return compat.has_trainable_weights(layer) and getattr(layer, "trainable", True)


def _graph_output(layer):
    """The outputs of the model's own (single) call of ``layer``, or ``None``."""
    try:
        return layer.output
    except (AttributeError, ValueError):  # never called symbolically, or called more than once
        return None


def _described(tensors) -> tuple:
    """``(id, elements, dtype)`` of each tensor; elements ``None`` where a size is unknown."""
    described = []
    for x in tensors:
        shape = tuple(x.shape)
        elements = None if any(d is None for d in shape) else math.prod(shape)
        described.append((id(x), elements, str(x.dtype)))
    return tuple(described)


def _as_specs(outputs, inputs: list):
    """Symbolic outputs: concrete arrays become specs, and a sparse flag no input had is dropped.

    Keras marks ``x * constant`` sparse when the constant is a backend array; the
    next layer then fails on a sparse placeholder.  ``inputs``: the call's tensors.
    """
    any_sparse_input = any(getattr(x, "sparse", False) for x in inputs if _is_symbolic(x))

    def spec(x):
        if _is_symbolic(x):
            if getattr(x, "sparse", False) and not any_sparse_input:
                return keras.KerasTensor(x.shape, dtype=x.dtype)
            return x
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return keras.KerasTensor(tuple(x.shape), dtype=keras.backend.standardize_dtype(x.dtype))
        return x

    return spec(outputs) if _is_symbolic(outputs) else keras.tree.map_structure(spec, outputs)


class ModelWalk:
    """Collects the leaf calls of one model for one set of input specs."""

    def __init__(self):
        self.entries: list = []  # leaves, and replays standing for several
        self.unsupported: collections.Counter = collections.Counter()
        self.reasons: dict[str, str] = {}
        self._requires_grad: dict[int, bool] = {}
        self._keepalive: list = []
        self._calls: dict = {}  # calls so far, by layer id or op path
        self._prefix: list[str] = [""]
        self._owners: list = [None]
        self._context_grad: list[bool] = [False]
        self._suppress = 0
        self.bookkeeping: list[bool] = [False]
        self._top = None
        self._traces: dict[tuple, _Trace] = {}
        self._watch: _GraphCall | None = None
        self._passed_on: dict[tuple, tuple] = {}
        self._layer_keys: dict[int, tuple] = {}
        self._layer_weights: dict[int, list] = {}  # layer.weights of the layers keyed so far
        self.too_small = ""
        self.batch = 1  # the leading size of the model's inputs
        self._repeats: list[int] = [1]  # runs per model call of what is recorded now (inside loop bodies)

    @property
    def leaves(self) -> list[LeafCall]:
        """Every costed call, in order."""
        return _leaves(self.entries)

    def run(self, model, inputs) -> None:
        """Walk ``model`` called on ``inputs`` (KerasTensors with concrete shapes)."""
        self._mark(_tensors(inputs), False)
        self.batch = next((x.shape[0] for x in _tensors(inputs) if len(x.shape) > 0 and x.shape[0]), 1)
        with collecting_unsupported(self.unsupported), _recording(self), warnings.catch_warnings():
            # Keras's own remarks about the symbolic calls (masks a layer drops) are not the user's to read
            warnings.filterwarnings("ignore", category=UserWarning, module=r"keras\.")
            try:
                if compat.graph_of(model) is not None:
                    self._walk_graph(model, "", (inputs,), {})
                else:
                    self._top = model
                    self._call_layer(model, "", (inputs,), {})
            except InputTooSmall:
                raise InputTooSmall(self.too_small) from None  # without what Keras's __call__ added to it

    # Graph models: one visit per node of the graph.

    def _walk_graph(self, model, prefix, args, kwargs):
        inputs = args[0] if args else next(iter(kwargs.values()))
        return compat.run_graph(model, inputs, lambda op: lambda *a, **k: self._visit(op, prefix, a, k))

    def _visit(self, op, prefix: str, args: tuple, kwargs: dict):
        """One node of a graph: an op or a layer with a rule is a leaf (no ``__call__`` needed: fast)."""
        if control_flow.is_control_flow(op):
            return control_flow.run(self, op, prefix + op.name, args, kwargs)
        if not isinstance(op, keras.layers.Layer):
            return self._leaf(op, prefix + op.name, args, kwargs, _op_output_spec)
        if compat.graph_of(op) is not None:
            return self._expand(op, prefix, args, kwargs)
        if fitting_rule(op) is not None:
            return self._leaf(op, prefix + op.name, args, kwargs, _layer_output_spec)
        return self._graph_call(op, prefix, args, kwargs)

    def _graph_call(self, layer, prefix: str, args: tuple, kwargs: dict):
        """A layer without a rule in a graph: called through Keras's ``__call__``, unless a layer configured
        and called alike was, and Keras passed its call on unchanged; then its trace is replayed directly."""
        inputs = _tensors((args, kwargs))
        needs_grad = self._needs_grad(inputs)
        direct = self._direct_key(layer, args, kwargs, inputs, needs_grad)
        if direct in self._passed_on:
            outputs = self._replayed(self._passed_on[direct], layer, prefix, needs_grad)
            if outputs is not None:
                return outputs
        watch, previous = _GraphCall(layer, args, kwargs), self._watch
        self._watch = watch
        first = len(self.entries)
        try:
            outputs = self._call_layer(layer, prefix, args, kwargs)
        except InputTooSmall:
            raise
        except Exception as error:  # noqa: BLE001  (Keras refused the call itself: that layer's problem)
            del self.entries[first:]
            return self._untraceable(layer, prefix, args, kwargs, error)
        finally:
            self._watch = previous
        key = watch.passed_on(outputs)
        if direct is not None and key is not None:
            self._passed_on[direct] = key
        return outputs

    def _direct_key(self, layer, args, kwargs, inputs, needs_grad: bool) -> tuple | None:
        """What decides how Keras's ``__call__`` passes a graph node's call on: its trace key and its arguments'
        layout; ``None`` where more does (an enclosing call's ``training``, a mask, an unbuilt layer)."""
        if not layer.built or compat.in_layer_call() or any(compat.keras_mask(x) is not None for x in inputs):
            return None
        return self._trace_key(layer, args, kwargs, needs_grad), len(args), tuple(kwargs)

    def _call_layer(self, layer, prefix, args, kwargs):
        """Call ``layer`` through Keras's ``__call__``; ``layer_call`` takes over inside it."""
        self._prefix.append(prefix)
        try:
            return layer(*args, **kwargs)
        finally:
            self._prefix.pop()

    # Hooks: Keras computing a symbolic layer call or op output.

    def layer_call(self, layer, args, kwargs):
        """Cost, expand or trace one symbolic call of ``layer``; return its outputs."""
        prefix = self._prefix[-1]
        if compat.graph_of(layer) is not None:
            return self._expand(layer, prefix, args, kwargs)
        if fitting_rule(layer) is not None:
            return self._leaf(layer, prefix + layer.name, args, kwargs, _layer_output_spec)
        return self._trace(layer, prefix, args, kwargs)

    @staticmethod
    def is_leaf(layer) -> bool:
        """Whether a call of ``layer`` is costed as a whole, by its rule."""
        return compat.graph_of(layer) is None and fitting_rule(layer) is not None

    def op_call(self, op, args, kwargs):
        """Record one Keras op run on symbolic tensors inside a traced ``call``."""
        path = self._prefix[-1] + compat.op_label(op)
        if control_flow.is_control_flow(op):
            return control_flow.run(self, op, path, args, kwargs)
        outputs = self._leaf(op, path, args, kwargs, _op_output_spec)
        self.entries[-1].in_call = True
        return outputs

    def outputs_of(self, op, args, kwargs):
        """Keras's symbolic outputs of ``op`` (for a loop, from its body run by the backend), recording nothing."""
        self._suppress += 1
        try:
            outputs = _as_specs(op.compute_output_spec(*args, **kwargs), _tensors((args, kwargs)))
        finally:
            self._suppress -= 1
        self._mark(_tensors(outputs), self._needs_grad(_tensors((args, kwargs))))
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
        needs = self._needs_grad(_tensors(structure)) or (carried and self._context_grad[-1])
        self._mark(_tensors(made), needs)
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
                if kept is None or _forward_flops(branch) > _forward_flops(kept[0]):
                    kept = branch, result
            elif outputs is None:
                outputs = result
        if plan.branches and kept is not None:
            self.entries += kept[0]
            outputs = kept[1]
        if outputs is None:
            return None
        made = _as_specs(plan.outputs(outputs), [])
        self._mark(_tensors(made), self._context_grad[-1], keep=True)
        return made

    def pass_through(self, op, args, kwargs):
        """An op Keras runs around a layer's call (a cast, a mask): not counted; gradients flow through."""
        outputs = compat.ORIGINAL_OP_SYMBOLIC_CALL(op, *args, **kwargs)
        self._mark(_tensors(outputs), self._needs_grad(_tensors((args, kwargs))))
        return outputs

    @property
    def recording(self) -> bool:
        return not self._suppress

    # Leaves, expansions and traces.

    def _needs_grad(self, tensors: list) -> bool:
        """Whether a gradient must flow into these tensors; unseen tensors inherit the enclosing call's."""
        default = self._context_grad[-1]
        return any(self._requires_grad.get(id(x), default) for x in tensors if _is_symbolic(x))

    def _mark(self, tensors: list, requires: bool, keep: bool = False) -> None:
        """Record whether ``tensors`` need a gradient; ``keep``: leave tensors already recorded."""
        for x in tensors:
            if keep and id(x) in self._requires_grad:
                continue
            self._requires_grad[id(x)] = requires
            self._keepalive.append(x)

    def _op_trains(self, tensors: list) -> bool:
        """An op trains when it uses a weight (a non-symbolic float operand) of a trainable owner."""
        owner = self._owners[-1]
        if owner is None or not _trains(owner):
            return False
        return any(not _is_symbolic(x) and _is_weight_like(x) for x in tensors)

    def _operand_grads(self, tensors: list) -> tuple:
        """Whether autodiff computes the gradient of each operand: a symbolic tensor that needs one, a trainable
        ``Variable``, or another float array (a weight's value) of a trainable owner."""
        default = self._context_grad[-1]
        owner = self._owners[-1]
        owner_trains = owner is not None and _trains(owner)
        grads = []
        for x in tensors:
            if _is_symbolic(x):
                grads.append(self._requires_grad.get(id(x), default))
            elif isinstance(x, keras.Variable):
                grads.append(bool(x.trainable) and owner_trains)
            else:
                grads.append(owner_trains and _is_weight_like(x))
        return tuple(grads)

    def _leaf(self, op, path, args, kwargs, compute):
        inputs = _tensors((args, kwargs))
        needs_grad = self._needs_grad(inputs)
        is_layer = isinstance(op, keras.layers.Layer)
        trains = _trains(op) if is_layer else self._op_trains(inputs)
        self._suppress += 1
        try:
            outputs = compute(op, *args, **kwargs)
        except Exception as error:  # noqa: BLE001  (one call's failure is that call's problem)
            self._raise_if_too_small(path, compat.type_name(op), inputs, error)
            outputs = self._unknown_output(op, path, args, kwargs, error)
        finally:
            self._suppress -= 1
        outputs = _as_specs(outputs, inputs)
        batch = self._broadcast_batch(path, op, inputs, outputs) if is_layer else None
        if batch is not None:
            outputs = _with_batch(outputs, batch)
        out = _tensors(outputs)
        operand_grads = () if is_layer else self._operand_grads(inputs)
        self._record(op, path, args, kwargs, inputs, out, needs_grad, trains, operand_grads=operand_grads, batch=batch)
        self._mark(out, needs_grad or trains)
        return outputs

    def _broadcast_batch(self, path: str, layer, inputs: list, outputs) -> int | None:
        """The batch a layer really computes for where Keras's shape for it says 1 but an input has the model's
        batch (a query made from a weight against keys made from the data: it broadcasts); warned once."""
        batch = self.batch
        if batch <= 1 or not any(len(x.shape) > 1 and x.shape[0] == batch for x in inputs if hasattr(x, "shape")):
            return None
        if not any(len(x.shape) > 1 and x.shape[0] == 1 for x in _tensors(outputs)):
            return None
        notices.warn(
            f"Keras's output shape for {path} ({compat.type_name(layer)}) has batch 1 where an input has batch "
            f"{batch}: the batch-1 operand broadcasts, so the call and what follows it are counted for {batch}",
            cause=("broadcast batch", compat.type_name(layer)),
        )
        return batch

    def _record(self, op, path, args, kwargs, inputs, out, needs_grad, trains, kind="rule", children=0,
                operand_grads=(), batch=None):
        """Append the leaf of one call; ``inputs``, ``out``: its argument and output tensors; ``batch``: the
        batch its batch-1 operands broadcast to."""
        shapes = [broadcast(shape, batch) for shape in _shapes(inputs)]
        call = LayerCall(op, args, kwargs, _shapes(out), shapes, [str(x.dtype) for x in out], batch)
        key = id(op) if isinstance(op, keras.layers.Layer) else path
        index = self._calls[key] = self._calls.get(key, 0) + 1
        self.entries.append(LeafCall(
            path, op, call, index, needs_grad, trains, kind, children,
            inputs=_described([x for x in inputs if _is_symbolic(x)]), outputs=_described(out),
            operand_grads=operand_grads, repeats=self._repeats[-1],
        ))
        self._keepalive.extend(inputs)

    def _raise_if_too_small(self, path: str, type_name: str, inputs: list, error: Exception) -> None:
        """Keras's refusal of an input smaller than a layer's window is the caller's input shape to fix."""
        if isinstance(error, ValueError) and "zero or negative" in str(error):
            shapes = ", ".join(str(tuple(x.shape)) for x in inputs if _is_symbolic(x))
            self.too_small = (f"the input of {path} ({type_name}), of shape {shapes}, is smaller than its window: "
                              f"{error} Give a larger input_shape.")
            raise InputTooSmall(self.too_small) from None

    def _unknown_output(self, op, path, args, kwargs, error):
        """Outputs when Keras cannot compute them: listed, warned once; those of the model's own call of
        the layer (its structure, this batch size) where there is one, else shaped like the first input."""
        self._report(compat.type_name(op) + FAILED, f"Keras could not compute the output of {path} ({error!r}); "
                     "its outputs are taken from the model's graph, or assumed to keep its first input's shape")
        first = next((x for x in _tensors((args, kwargs)) if _is_symbolic(x)), None)
        if first is None:
            raise error
        built = _graph_output(op)
        if built is None:
            return keras.KerasTensor(first.shape, dtype=first.dtype)

        def spec(x):
            shape = tuple(x.shape)
            if shape and shape[0] is None:
                shape = (first.shape[0], *shape[1:])
            return keras.KerasTensor(shape, dtype=x.dtype)

        return keras.tree.map_structure(spec, built)

    def _expand(self, layer, prefix, args, kwargs):
        needs_grad = self._needs_grad(_tensors((args, kwargs)))
        self._context_grad.append(needs_grad)
        try:
            outputs = self._walk_graph(layer, prefix + layer.name + "/", args, kwargs)
        finally:
            self._context_grad.pop()
        self._mark(_tensors(outputs), needs_grad or _trains(layer), keep=True)
        return outputs

    def _trace(self, layer, prefix, args, kwargs):
        """Run ``layer.call`` on symbolic tensors, recording its ops and sublayer calls.

        A layer configured and called like one traced before (the blocks of a
        transformer) replays that trace instead: same rows, its own names and weights.
        """
        inputs = _tensors((args, kwargs))
        needs_grad = self._needs_grad(inputs)
        key = self._trace_key(layer, args, kwargs, needs_grad)
        outputs = self._replayed(key, layer, prefix, needs_grad)
        if outputs is None:
            outputs = self._traced(layer, prefix, args, kwargs, inputs, needs_grad, key)
        if self._watch is not None and self._watch.layer is layer and self._watch.received is None:
            self._watch.received = (args, kwargs, key, outputs)
        return outputs

    def _replayed(self, key: tuple, layer, prefix: str, needs_grad: bool):
        """The outputs of replaying the trace of ``key`` for ``layer``; ``None`` where there is none to replay."""
        trace = self._traces.get(key)
        outputs = None if trace is None else self._replay(trace, layer, prefix)
        if outputs is not None:
            self._mark(_tensors(outputs), needs_grad or _trains(layer))
        return outputs

    def _traced(self, layer, prefix, args, kwargs, inputs: list, needs_grad: bool, key: tuple):
        trains = _trains(layer)
        first = len(self.entries)
        top = layer is self._top
        self._prefix.append("" if top else prefix + layer.name + "/")
        self._owners.append(layer)
        self._context_grad.append(needs_grad or trains)
        try:
            outputs = _as_specs(layer.call(*args, **kwargs), inputs)
        except InputTooSmall:
            raise
        except Exception as error:  # noqa: BLE001  (an untraceable layer must not stop the estimate)
            del self.entries[first:]
            outputs = self._untraceable(layer, prefix, args, kwargs, error)
            return outputs
        finally:
            self._prefix.pop()
            self._owners.pop()
            self._context_grad.pop()
        out = _tensors(outputs)
        if not top:  # the model's own weights are the estimate's "(own weights)" row
            self._record(layer, prefix + layer.name, args, kwargs, inputs, out, needs_grad, trains, "traced",
                         sum(len(entry) if isinstance(entry, Replay) else 1 for entry in self.entries[first:]))
            self._traces[key] = _Trace(layer, prefix + layer.name + "/", self.entries[first:], outputs)
        self._mark(out, needs_grad or trains, keep=True)
        return outputs

    def _trace_key(self, layer, args, kwargs, needs_grad: bool) -> tuple:
        """What a trace depends on: the layer's configuration, its weights, each argument's name and spec.

        Its sublayers are made from its configuration; replaying also checks their classes and weights.
        """
        arguments = tuple(self._argument_key(x) for x in _flatten((args, kwargs)))
        signature = len(args), tuple(kwargs)  # which argument each value is: f(x, a=m) is not f(x, b=m)
        return self._layer_key(layer), signature, arguments, needs_grad, self._context_grad[-1]

    def _layer_key(self, layer) -> tuple:
        """The layer's part of its trace key: class, configuration, dtype policy, ``trainable`` and its weights'
        specs; kept for the walk once the layer is built (its weights no longer change)."""
        key = self._layer_keys.get(id(layer))
        if key is None:
            policy = getattr(getattr(layer, "dtype_policy", None), "name", None)
            weights = compat.weights(layer)
            key = _configuration(layer), policy, layer.trainable, compat.weight_specs(weights)
            if layer.built:
                self._layer_keys[id(layer)] = key
                self._layer_weights[id(layer)] = weights
                self._keepalive.append(layer)
        return key

    def _argument_key(self, x):
        if _is_symbolic(x):
            return tuple(x.shape), str(x.dtype), x.sparse, self._requires_grad.get(id(x))
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return "array", tuple(x.shape), str(x.dtype)
        return type(x).__name__, id(x)  # an object the call may depend on: only the same one matches

    def _replay(self, trace: _Trace, layer, prefix: str):
        """Append ``trace``'s leaves for ``layer`` (its own sublayers and names); ``None`` where they differ."""
        mapping = compat.sublayer_mapping(trace.sublayers, layer)
        if mapping is None or trace.steps is None:
            return None
        own = prefix + layer.name + "/"
        calls, indices = self._calls, []
        for layer_id, suffix in trace.plan:
            if layer_id is None:
                key = own[:-1] if suffix is None else own + suffix
            else:
                key = id(mapping[layer_id])
            index = calls[key] = calls.get(key, 0) + 1
            indices.append(index)
        weights = self._layer_weights.get(id(layer))
        self.entries.append(Replay(trace, own, mapping, indices, compat.weights(layer) if weights is None else weights))
        return _renewed(trace.outputs)

    def _report(self, name: str, reason: str) -> None:
        report_unsupported(name)
        self.reasons.setdefault(name, reason)

    def _untraceable(self, layer, prefix, args, kwargs, error):
        self._report(compat.type_name(layer) + NOT_TRACEABLE,
                     f"its call could not run on symbolic inputs at {prefix}{layer.name} ({error!r})")
        inputs = _tensors((args, kwargs))
        needs_grad = self._needs_grad(inputs)
        self._suppress += 1
        try:
            outputs = layer.compute_output_spec(*args, **kwargs)
        except Exception as inner:  # noqa: BLE001
            outputs = self._unknown_output(layer, prefix + layer.name, args, kwargs, inner)
        finally:
            self._suppress -= 1
        outputs = _as_specs(outputs, inputs)
        out = _tensors(outputs)
        self._record(layer, prefix + layer.name, args, kwargs, inputs, out, needs_grad, _trains(layer), "untraceable")
        self._mark(out, needs_grad or _trains(layer))
        return outputs


class InputTooSmall(ValueError):
    """An input smaller than a layer's window (a convolution's kernel, a pooling window) allows."""


def _forward_flops(entries: list) -> float:
    """The forward FLOPs of recorded calls by their rules (to tell a costlier branch); unknown ones count 0."""
    total = 0.0
    for leaf in _leaves(entries):
        rule = fitting_rule(leaf.layer) if leaf.kind == "rule" else None
        try:
            total += rule(leaf.layer, leaf.call).forward_flops * leaf.repeats if rule else 0.0
        except Exception:  # noqa: BLE001, S112  (a rule that fails counts nothing here)
            continue
    return total


def _with_batch(outputs, batch: int):
    """The outputs with a leading 1 (rank 2 and more) read as ``batch``."""
    def widened(x):
        if _is_symbolic(x) and len(x.shape) > 1 and x.shape[0] == 1:
            return keras.KerasTensor((batch, *x.shape[1:]), dtype=x.dtype)
        return x

    return widened(outputs) if _is_symbolic(outputs) else keras.tree.map_structure(widened, outputs)


def _renewed(outputs):
    """New symbolic tensors like ``outputs``, in the same structure."""
    if _is_symbolic(outputs):
        return keras.KerasTensor(outputs.shape, dtype=outputs.dtype)
    return keras.tree.map_structure(lambda x: keras.KerasTensor(x.shape, dtype=x.dtype) if _is_symbolic(x) else x, outputs)


def _configuration(layer) -> tuple:
    """A layer's class and configuration without its name; its plain attributes where ``get_config`` fails."""
    cls = type(layer)
    if cls not in _BROKEN_GET_CONFIG:
        try:
            config = {k: v for k, v in layer.get_config().items() if k != "name"}
            return cls, json.dumps(config, sort_keys=True, default=repr)
        except Exception:  # noqa: BLE001  (keras-hub layers whose get_config is broken exist)
            _BROKEN_GET_CONFIG.add(cls)
    plain = sorted(
        (k, v) for k, v in vars(layer).items() if not k.startswith("_") and k != "name" and isinstance(v, _PLAIN)
    )
    return cls, repr(plain)


_BROKEN_GET_CONFIG: set[type] = set()
"""Classes whose ``get_config`` raised once: their instances are keyed by their plain attributes."""


def _layer_output_spec(layer, *args, **kwargs):
    """A layer's symbolic outputs; traced by the backend where Keras's shape rule leaves a size unknown.

    ``EinsumDense`` reports ``None`` wherever its ``output_shape`` says ``None``,
    whatever the input; the einsum of the input and the kernel has the true sizes.
    """
    outputs = layer.compute_output_spec(*args, **kwargs)
    if all(None not in s for s in _shapes(_tensors(outputs))) or any(None in s for s in _shapes(_tensors(args))):
        return outputs
    if isinstance(layer, keras.layers.EinsumDense) and len(args) == 1:
        return compat.OPS_NUMPY.Einsum(layer.equation).compute_output_spec(args[0], layer.kernel)
    return keras.Operation.compute_output_spec(layer, *args, **kwargs)


def _op_output_spec(op, *args, **kwargs):
    """An op's symbolic outputs, without adding a node to any graph."""
    return op.compute_output_spec(*args, **kwargs)


_ACTIVE = threading.local()
_PATCH_LOCK = threading.Lock()
_patch_users = 0


def _active_walk():
    walk = getattr(_ACTIVE, "walk", None)
    return walk if walk is not None and walk.recording else None


def _walking() -> bool:
    return getattr(_ACTIVE, "walk", None) is not None


def _layer_dunder_call(layer, *args, **kwargs):
    """``Layer.__call__``: its own work around ``call`` (input casts, masks) is Keras's bookkeeping; a layer
    with a rule that Keras would call as given is costed at once."""
    walk = _active_walk()
    if walk is None:
        return compat.ORIGINAL_LAYER_CALL(layer, *args, **kwargs)
    if walk.is_leaf(layer) and compat.calls_as_given(layer, args, kwargs):
        return _layer_symbolic_call(layer, *args, **kwargs)
    walk.bookkeeping.append(True)
    try:
        return compat.ORIGINAL_LAYER_CALL(layer, *args, **kwargs)
    finally:
        walk.bookkeeping.pop()


def _layer_symbolic_call(layer, *args, **kwargs):
    walk = _active_walk()
    if walk is None:
        return compat.ORIGINAL_LAYER_SYMBOLIC_CALL(layer, *args, **kwargs)
    walk.bookkeeping.append(False)
    try:
        return walk.layer_call(layer, args, kwargs)
    finally:
        walk.bookkeeping.pop()


def _op_symbolic_call(op, *args, **kwargs):
    walk = _active_walk()
    if walk is None:
        return compat.ORIGINAL_OP_SYMBOLIC_CALL(op, *args, **kwargs)
    if walk.bookkeeping[-1]:
        return walk.pass_through(op, args, kwargs)
    return walk.op_call(op, args, kwargs)


@contextlib.contextmanager
def _recording(walk: ModelWalk):
    """Route symbolic layer calls and Keras ops through ``walk`` in this thread while the block runs."""
    global _patch_users
    with _PATCH_LOCK:
        _patch_users += 1
        compat.patch_layer_calls(_layer_dunder_call, _layer_symbolic_call, _op_symbolic_call, _walking)
        compat.patch_symbolic_arithmetic()
        compat.patch_symbolic_helpers()
    previous = getattr(_ACTIVE, "walk", None)
    _ACTIVE.walk = walk
    try:
        yield
    finally:
        _ACTIVE.walk = previous
        with _PATCH_LOCK:
            _patch_users -= 1
            if _patch_users == 0:
                compat.restore_layer_calls()
                compat.restore_symbolic_arithmetic()
                compat.restore_symbolic_helpers()
