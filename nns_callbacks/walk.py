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
import json
import math
import threading
import warnings

import keras

from . import keras_compat as compat
from .registry import LayerCall, collecting_unsupported, fitting_rule, report_unsupported

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
    ``inputs``, ``outputs``: ``(key, elements, dtype)`` of its symbolic tensors, the key the
    same wherever the tensor is passed, so that a tensor two calls keep is counted once.
    """

    path: str
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

    @property
    def layer(self):
        return self.call.layer


@dataclasses.dataclass
class _Trace:
    """The leaves a traced call recorded, to replay for a layer of the same configuration called alike."""

    layer: object
    prefix: str
    leaves: list[LeafCall]
    outputs: object


def _tensors(structure) -> list:
    return [x for x in keras.tree.flatten(structure) if hasattr(x, "shape") and hasattr(x, "dtype")]


def _shapes(tensors) -> list[tuple]:
    return [tuple(None if d is None else int(d) for d in x.shape) for x in tensors]


def _is_symbolic(x) -> bool:
    return isinstance(x, keras.KerasTensor)


def _trains(layer) -> bool:
    return bool(getattr(layer, "trainable_weights", None)) and getattr(layer, "trainable", True)


def _graph_output(layer):
    """The outputs of the model's own (single) call of ``layer``, or ``None``."""
    try:
        return layer.output
    except (AttributeError, ValueError):  # never called symbolically, or called more than once
        return None


def _described(tensors) -> tuple:
    """``((0, id), elements, dtype)`` of each tensor; elements ``None`` where a size is unknown."""
    described = []
    for x in tensors:
        shape = tuple(x.shape)
        elements = None if any(d is None for d in shape) else math.prod(shape)
        described.append(((0, id(x)), elements, str(x.dtype)))
    return tuple(described)


def _rescoped(described: tuple, scope: int) -> tuple:
    return tuple(((scope, key[1]), elements, dtype) for key, elements, dtype in described)


def _as_specs(outputs, inputs):
    """Symbolic outputs: concrete arrays become specs, and a sparse flag no input had is dropped.

    Keras marks ``x * constant`` sparse when the constant is a backend array; the
    next layer then fails on a sparse placeholder.
    """
    any_sparse_input = any(getattr(x, "sparse", False) for x in _tensors(inputs) if _is_symbolic(x))

    def spec(x):
        if _is_symbolic(x):
            if getattr(x, "sparse", False) and not any_sparse_input:
                return keras.KerasTensor(x.shape, dtype=x.dtype)
            return x
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return keras.KerasTensor(tuple(x.shape), dtype=keras.backend.standardize_dtype(x.dtype))
        return x

    return keras.tree.map_structure(spec, outputs)


class ModelWalk:
    """Collects the leaf calls of one model for one set of input specs."""

    def __init__(self):
        self.leaves: list[LeafCall] = []
        self.unsupported: collections.Counter = collections.Counter()
        self.reasons: dict[str, str] = {}
        self._requires_grad: dict[int, bool] = {}
        self._keepalive: list = []
        self._calls: collections.Counter = collections.Counter()
        self._prefix: list[str] = [""]
        self._owners: list = [None]
        self._context_grad: list[bool] = [False]
        self._suppress = 0
        self.bookkeeping: list[bool] = [False]
        self._top = None
        self._traces: dict[tuple, _Trace] = {}
        self._replays = 0

    def run(self, model, inputs) -> None:
        """Walk ``model`` called on ``inputs`` (KerasTensors with concrete shapes)."""
        self._mark(inputs, False)
        with collecting_unsupported(self.unsupported), _recording(self), warnings.catch_warnings():
            # Keras's own remarks about the symbolic calls (masks a layer drops) are not the user's to read
            warnings.filterwarnings("ignore", category=UserWarning, module=r"keras\.")
            if compat.graph_of(model) is not None:
                self._walk_graph(model, "", (inputs,), {})
            else:
                self._top = model
                self._call_layer(model, "", (inputs,), {})

    # Graph models: one visit per node of the graph.

    def _walk_graph(self, model, prefix, args, kwargs):
        inputs = args[0] if args else next(iter(kwargs.values()))
        return compat.run_graph(model, inputs, lambda op: lambda *a, **k: self._visit(op, prefix, a, k))

    def _visit(self, op, prefix: str, args: tuple, kwargs: dict):
        """One node of a graph: an op or a layer with a rule is a leaf (no ``__call__`` needed: fast)."""
        if not isinstance(op, keras.layers.Layer):
            return self._leaf(op, prefix + op.name, args, kwargs, _op_output_spec)
        if compat.graph_of(op) is not None:
            return self._expand(op, prefix, args, kwargs)
        if fitting_rule(op) is not None:
            return self._leaf(op, prefix + op.name, args, kwargs, _layer_output_spec)
        first = len(self.leaves)
        try:
            return self._call_layer(op, prefix, args, kwargs)
        except Exception as error:  # noqa: BLE001  (Keras refused the call itself: that layer's problem)
            del self.leaves[first:]
            return self._untraceable(op, prefix, args, kwargs, error)

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

    def op_call(self, op, args, kwargs):
        """Record one Keras op run on symbolic tensors inside a traced ``call``."""
        path = self._prefix[-1] + compat.op_label(op)
        outputs = self._leaf(op, path, args, kwargs, _op_output_spec)
        self.leaves[-1].in_call = True
        return outputs

    def pass_through(self, op, args, kwargs):
        """An op Keras runs around a layer's call (a cast, a mask): not counted; gradients flow through."""
        outputs = compat.ORIGINAL_OP_SYMBOLIC_CALL(op, *args, **kwargs)
        self._mark(outputs, self._needs_grad(args, kwargs))
        return outputs

    @property
    def recording(self) -> bool:
        return not self._suppress

    # Leaves, expansions and traces.

    def _needs_grad(self, args, kwargs) -> bool:
        """Whether a gradient must flow into these arguments; unseen tensors inherit the enclosing call's."""
        default = self._context_grad[-1]
        return any(self._requires_grad.get(id(x), default) for x in _tensors((args, kwargs)) if _is_symbolic(x))

    def _mark(self, outputs, requires: bool, keep: bool = False) -> None:
        """Record whether ``outputs`` need a gradient; ``keep``: leave tensors already recorded."""
        for x in _tensors(outputs):
            if keep and id(x) in self._requires_grad:
                continue
            self._requires_grad[id(x)] = requires
            self._keepalive.append(x)

    def _op_trains(self, op, args, kwargs) -> bool:
        """An op trains when it uses a weight (a non-symbolic float operand) of a trainable owner."""
        owner = self._owners[-1]
        if owner is None or not _trains(owner):
            return False
        return any(
            not _is_symbolic(x) and "float" in str(getattr(x, "dtype", "")) and len(getattr(x, "shape", ())) > 0
            for x in _tensors((args, kwargs))
        )

    def _leaf(self, op, path, args, kwargs, compute):
        needs_grad = self._needs_grad(args, kwargs)
        is_layer = isinstance(op, keras.layers.Layer)
        trains = _trains(op) if is_layer else self._op_trains(op, args, kwargs)
        self._suppress += 1
        try:
            outputs = compute(op, *args, **kwargs)
        except Exception as error:  # noqa: BLE001  (one call's failure is that call's problem)
            outputs = self._unknown_output(op, path, args, kwargs, error)
        finally:
            self._suppress -= 1
        outputs = _as_specs(outputs, (args, kwargs))
        self._record(op, path, args, kwargs, outputs, needs_grad, trains)
        self._mark(outputs, needs_grad or trains)
        return outputs

    def _record(self, op, path, args, kwargs, outputs, needs_grad, trains, kind="rule", children=0):
        inputs = _tensors((args, kwargs))
        out = _tensors(outputs)
        call = LayerCall(op, args, kwargs, _shapes(out), _shapes(inputs), [str(x.dtype) for x in out])
        key = id(op) if isinstance(op, keras.layers.Layer) else path
        self._calls[key] += 1
        self.leaves.append(LeafCall(
            path, call, self._calls[key], needs_grad, trains, kind, children,
            inputs=_described([x for x in inputs if _is_symbolic(x)]), outputs=_described(out),
        ))
        self._keepalive.extend(inputs)

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
        needs_grad = self._needs_grad(args, kwargs)
        self._context_grad.append(needs_grad)
        try:
            outputs = self._walk_graph(layer, prefix + layer.name + "/", args, kwargs)
        finally:
            self._context_grad.pop()
        self._mark(outputs, needs_grad or _trains(layer), keep=True)
        return outputs

    def _trace(self, layer, prefix, args, kwargs):
        """Run ``layer.call`` on symbolic tensors, recording its ops and sublayer calls.

        A layer configured and called like one traced before (the blocks of a
        transformer) replays that trace instead: same rows, its own names and weights.
        """
        needs_grad = self._needs_grad(args, kwargs)
        trains = _trains(layer)
        key = self._trace_key(layer, args, kwargs, needs_grad)
        if key in self._traces:
            outputs = self._replay(self._traces[key], layer, prefix)
            if outputs is not None:
                self._mark(outputs, needs_grad or trains)
                return outputs
        first = len(self.leaves)
        top = layer is self._top
        self._prefix.append("" if top else prefix + layer.name + "/")
        self._owners.append(layer)
        self._context_grad.append(needs_grad or trains)
        try:
            outputs = _as_specs(layer.call(*args, **kwargs), (args, kwargs))
        except Exception as error:  # noqa: BLE001  (an untraceable layer must not stop the estimate)
            del self.leaves[first:]
            outputs = self._untraceable(layer, prefix, args, kwargs, error)
            return outputs
        finally:
            self._prefix.pop()
            self._owners.pop()
            self._context_grad.pop()
        if not top:  # the model's own weights are the estimate's "(own weights)" row
            self._record(layer, prefix + layer.name, args, kwargs, outputs, needs_grad, trains, "traced", len(self.leaves) - first)
            self._traces[key] = _Trace(layer, prefix + layer.name + "/", self.leaves[first:], outputs)
        self._mark(outputs, needs_grad or trains, keep=True)
        return outputs

    def _trace_key(self, layer, args, kwargs, needs_grad: bool) -> tuple:
        """What a trace depends on: the layer's configuration, its weights, each argument's spec.

        Its sublayers are made from its configuration; replaying also checks their classes and weights.
        """
        weights = tuple((tuple(w.shape), str(w.dtype), w.trainable) for w in layer.weights)
        arguments = tuple(self._argument_key(x) for x in keras.tree.flatten((args, kwargs)))
        return _configuration(layer), layer.trainable, weights, arguments, needs_grad, self._context_grad[-1]

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
        mapping = compat.sublayer_mapping(trace.layer, layer)
        if mapping is None:
            return None
        own = prefix + layer.name + "/"
        self._replays += 1
        scope = self._replays  # the replayed tensors are new tensors: their keys must not meet the template's
        for leaf in trace.leaves:
            target = mapping.get(id(leaf.layer)) if isinstance(leaf.layer, keras.layers.Layer) else leaf.layer
            if target is None:
                return None
        for leaf in trace.leaves:
            is_layer = isinstance(leaf.layer, keras.layers.Layer)
            target = mapping[id(leaf.layer)] if is_layer else leaf.layer
            path = own + leaf.path[len(trace.prefix):] if leaf.path.startswith(trace.prefix) else own[:-1]
            key = id(target) if is_layer else path
            self._calls[key] += 1
            template = leaf.template or leaf
            call = LayerCall(target, leaf.call.args, leaf.call.kwargs, leaf.call.output_shapes,
                             leaf.call.input_shapes, leaf.call.output_dtypes)
            self.leaves.append(LeafCall(path, call, self._calls[key], leaf.needs_input_grad, leaf.trains, leaf.kind,
                                        leaf.children, leaf.in_call, template,
                                        _rescoped(leaf.inputs, scope), _rescoped(leaf.outputs, scope)))
        return keras.tree.map_structure(
            lambda x: keras.KerasTensor(x.shape, dtype=x.dtype) if _is_symbolic(x) else x, trace.outputs
        )

    def _report(self, name: str, reason: str) -> None:
        report_unsupported(name)
        self.reasons.setdefault(name, reason)

    def _untraceable(self, layer, prefix, args, kwargs, error):
        self._report(compat.type_name(layer) + NOT_TRACEABLE,
                     f"its call could not run on symbolic inputs at {prefix}{layer.name} ({error!r})")
        needs_grad = self._needs_grad(args, kwargs)
        self._suppress += 1
        try:
            outputs = layer.compute_output_spec(*args, **kwargs)
        except Exception as inner:  # noqa: BLE001
            outputs = self._unknown_output(layer, prefix + layer.name, args, kwargs, inner)
        finally:
            self._suppress -= 1
        outputs = _as_specs(outputs, (args, kwargs))
        self._record(layer, prefix + layer.name, args, kwargs, outputs, needs_grad, _trains(layer), "untraceable")
        self._mark(outputs, needs_grad or _trains(layer))
        return outputs


def _configuration(layer) -> tuple:
    """A layer's class and configuration without its name; its plain attributes where ``get_config`` fails."""
    try:
        config = {k: v for k, v in layer.get_config().items() if k != "name"}
    except Exception:  # noqa: BLE001  (keras-hub layers whose get_config is broken exist)
        plain = (bool, int, float, str, type(None))
        config = {k: v for k, v in vars(layer).items() if not k.startswith("_") and k != "name" and isinstance(v, plain)}
    return type(layer), json.dumps(config, sort_keys=True, default=repr)


def _layer_output_spec(layer, *args, **kwargs):
    """A layer's symbolic outputs; traced by the backend where Keras's shape rule leaves a size unknown.

    ``EinsumDense`` reports ``None`` wherever its ``output_shape`` says ``None``,
    whatever the input; the einsum of the input and the kernel has the true sizes.
    """
    outputs = layer.compute_output_spec(*args, **kwargs)
    if all(None not in s for s in _shapes(_tensors(outputs))) or any(None in s for s in _shapes(_tensors(args))):
        return outputs
    if isinstance(layer, keras.layers.EinsumDense) and len(args) == 1:
        return keras.ops.einsum(layer.equation, args[0], layer.kernel)
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
    """``Layer.__call__``: its own work around ``call`` (input casts, masks) is Keras's bookkeeping."""
    walk = _active_walk()
    if walk is None:
        return compat.ORIGINAL_LAYER_CALL(layer, *args, **kwargs)
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
