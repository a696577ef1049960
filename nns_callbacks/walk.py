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
import dataclasses
import warnings

import keras

from . import (
    control_flow,
    notices,
    rules,  # noqa: F401  (registers the built-in rules before any lookup)
)
from . import keras_compat as compat
from .registry import LayerCall, broadcast, collecting_unsupported, fitting_rule, report_unsupported
from .replay import GraphCall, Replay, ReplayCache, Trace, TraceStep, leaves
from .routing import recording
from .symbolic import (
    as_specs,
    described,
    graph_output,
    is_symbolic,
    is_weight_like,
    layer_output_spec,
    op_output_spec,
    renewed,
    shapes,
    tensors,
    with_batch,
)

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
    step: TraceStep | None = None


def _trains(layer) -> bool:
    return compat.has_trainable_weights(layer) and getattr(layer, "trainable", True)


class ModelWalk(control_flow.Bodies):
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
        self._replays = ReplayCache()
        self.speedups = compat.patches.speedups()  # graph calls replayed without Keras's __call__, and more
        self._watch: GraphCall | None = None
        self.too_small = ""
        self.batch = 1  # the leading size of the model's inputs
        self._repeats: list[int] = [1]  # runs per model call of what is recorded now (inside loop bodies)

    @property
    def leaves(self) -> list[LeafCall]:
        """Every costed call, in order."""
        return leaves(self.entries)

    def run(self, model, inputs) -> None:
        """Walk ``model`` called on ``inputs`` (KerasTensors with concrete shapes)."""
        self._mark(tensors(inputs), False)
        self.batch = next((x.shape[0] for x in tensors(inputs) if len(x.shape) > 0 and x.shape[0]), 1)
        with collecting_unsupported(self.unsupported), recording(self), warnings.catch_warnings():
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
            return self._leaf(op, prefix + op.name, args, kwargs, op_output_spec)
        if compat.graph_of(op) is not None:
            return self._expand(op, prefix, args, kwargs)
        if fitting_rule(op) is not None:
            return self._leaf(op, prefix + op.name, args, kwargs, layer_output_spec)
        return self._graph_call(op, prefix, args, kwargs)

    def _graph_call(self, layer, prefix: str, args: tuple, kwargs: dict):
        """A layer without a rule in a graph: called through Keras's ``__call__``, unless a layer configured
        and called alike was, and Keras passed its call on unchanged; then its trace is replayed directly."""
        inputs = tensors((args, kwargs))
        needs_grad = self._needs_grad(inputs)
        direct = self._direct_key(layer, args, kwargs, inputs, needs_grad)
        if self.speedups and direct in self._replays.passed_on:
            outputs = self._replayed(self._replays.passed_on[direct], layer, prefix, needs_grad)
            if outputs is not None:
                return outputs
        watch, previous = GraphCall(layer, args, kwargs), self._watch
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
            self._replays.passed_on[direct] = key
        return outputs

    def _direct_key(self, layer, args, kwargs, inputs, needs_grad: bool) -> tuple | None:
        """What decides how Keras's ``__call__`` passes a graph node's call on: its trace key and its arguments'
        layout; ``None`` where more does (an enclosing call's ``training``, a mask, an unbuilt layer)."""
        if not layer.built or compat.in_layer_call() or any(compat.keras_mask(x) is not None for x in inputs):
            return None
        return self._trace_key(layer, args, kwargs, needs_grad), len(args), tuple(kwargs)

    def _trace_key(self, layer, args, kwargs, needs_grad: bool) -> tuple:
        return self._replays.trace_key(layer, args, kwargs, needs_grad, self._context_grad[-1], self._requires_grad)

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
            return self._leaf(layer, prefix + layer.name, args, kwargs, layer_output_spec)
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
        outputs = self._leaf(op, path, args, kwargs, op_output_spec)
        self.entries[-1].in_call = True
        return outputs

    def pass_through(self, op, args, kwargs):
        """An op Keras runs around a layer's call (a cast, a mask): not counted; gradients flow through."""
        outputs = compat.ORIGINAL_OP_SYMBOLIC_CALL(op, *args, **kwargs)
        self._mark(tensors(outputs), self._needs_grad(tensors((args, kwargs))))
        return outputs

    @property
    def recording(self) -> bool:
        return not self._suppress

    # Leaves, expansions and traces.

    def _needs_grad(self, tensors: list) -> bool:
        """Whether a gradient must flow into these tensors; unseen tensors inherit the enclosing call's."""
        default = self._context_grad[-1]
        return any(self._requires_grad.get(id(x), default) for x in tensors if is_symbolic(x))

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
        return any(not is_symbolic(x) and is_weight_like(x) for x in tensors)

    def _operand_grads(self, tensors: list) -> tuple:
        """Whether autodiff computes the gradient of each operand: a symbolic tensor that needs one, a trainable
        ``Variable``, or another float array (a weight's value) of a trainable owner."""
        default = self._context_grad[-1]
        owner = self._owners[-1]
        owner_trains = owner is not None and _trains(owner)
        grads = []
        for x in tensors:
            if is_symbolic(x):
                grads.append(self._requires_grad.get(id(x), default))
            elif isinstance(x, keras.Variable):
                grads.append(bool(x.trainable) and owner_trains)
            else:
                grads.append(owner_trains and is_weight_like(x))
        return tuple(grads)

    def _leaf(self, op, path, args, kwargs, compute):
        inputs = tensors((args, kwargs))
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
        outputs = as_specs(outputs, inputs)
        batch = self._broadcast_batch(path, op, inputs, outputs) if is_layer else None
        if batch is not None:
            outputs = with_batch(outputs, batch)
        out = tensors(outputs)
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
        if not any(len(x.shape) > 1 and x.shape[0] == 1 for x in tensors(outputs)):
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
        input_shapes = [broadcast(shape, batch) for shape in shapes(inputs)]
        call = LayerCall(op, args, kwargs, shapes(out), input_shapes, [str(x.dtype) for x in out], batch)
        key = id(op) if isinstance(op, keras.layers.Layer) else path
        index = self._calls[key] = self._calls.get(key, 0) + 1
        self.entries.append(LeafCall(
            path, op, call, index, needs_grad, trains, kind, children,
            inputs=described([x for x in inputs if is_symbolic(x)]), outputs=described(out),
            operand_grads=operand_grads, repeats=self._repeats[-1],
        ))
        self._keepalive.extend(inputs)

    def _raise_if_too_small(self, path: str, type_name: str, inputs: list, error: Exception) -> None:
        """Keras's refusal of an input smaller than a layer's window is the caller's input shape to fix."""
        if compat.says_output_too_small(error):
            shapes = ", ".join(str(tuple(x.shape)) for x in inputs if is_symbolic(x))
            self.too_small = (f"the input of {path} ({type_name}), of shape {shapes}, is smaller than its window: "
                              f"{error} Give a larger input_shape.")
            raise InputTooSmall(self.too_small) from None

    def _unknown_output(self, op, path, args, kwargs, error):
        """Outputs when Keras cannot compute them: listed, warned once; those of the model's own call of
        the layer (its structure, this batch size) where there is one, else shaped like the first input."""
        self._report(compat.type_name(op) + FAILED, f"Keras could not compute the output of {path} ({error!r}); "
                     "its outputs are taken from the model's graph, or assumed to keep its first input's shape")
        first = next((x for x in tensors((args, kwargs)) if is_symbolic(x)), None)
        if first is None:
            raise error
        built = graph_output(op)
        if built is None:
            return keras.KerasTensor(first.shape, dtype=first.dtype)

        def spec(x):
            shape = tuple(x.shape)
            if shape and shape[0] is None:
                shape = (first.shape[0], *shape[1:])
            return keras.KerasTensor(shape, dtype=x.dtype)

        return keras.tree.map_structure(spec, built)

    def _expand(self, layer, prefix, args, kwargs):
        needs_grad = self._needs_grad(tensors((args, kwargs)))
        self._context_grad.append(needs_grad)
        try:
            outputs = self._walk_graph(layer, prefix + layer.name + "/", args, kwargs)
        finally:
            self._context_grad.pop()
        self._mark(tensors(outputs), needs_grad or _trains(layer), keep=True)
        return outputs

    def _trace(self, layer, prefix, args, kwargs):
        """Run ``layer.call`` on symbolic tensors, recording its ops and sublayer calls.

        A layer configured and called like one traced before (the blocks of a
        transformer) replays that trace instead: same rows, its own names and weights.
        """
        inputs = tensors((args, kwargs))
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
        trace = self._replays.traces.get(key)
        replay = None if trace is None else self._replays.replay(trace, layer, prefix, self._calls)
        if replay is None:
            return None
        self.entries.append(replay)
        outputs = renewed(trace.outputs)
        self._mark(tensors(outputs), needs_grad or _trains(layer))
        return outputs

    def _traced(self, layer, prefix, args, kwargs, inputs: list, needs_grad: bool, key: tuple):
        trains = _trains(layer)
        first = len(self.entries)
        top = layer is self._top
        self._prefix.append("" if top else prefix + layer.name + "/")
        self._owners.append(layer)
        self._context_grad.append(needs_grad or trains)
        try:
            outputs = as_specs(layer.call(*args, **kwargs), inputs)
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
        out = tensors(outputs)
        if not top:  # the model's own weights are the estimate's "(own weights)" row
            self._record(layer, prefix + layer.name, args, kwargs, inputs, out, needs_grad, trains, "traced",
                         sum(len(entry) if isinstance(entry, Replay) else 1 for entry in self.entries[first:]))
            self._replays.traces[key] = Trace(layer, prefix + layer.name + "/", self.entries[first:], outputs)
        self._mark(out, needs_grad or trains, keep=True)
        return outputs

    def _report(self, name: str, reason: str) -> None:
        report_unsupported(name)
        self.reasons.setdefault(name, reason)

    def _untraceable(self, layer, prefix, args, kwargs, error):
        self._report(compat.type_name(layer) + NOT_TRACEABLE,
                     f"its call could not run on symbolic inputs at {prefix}{layer.name} ({error!r})")
        inputs = tensors((args, kwargs))
        needs_grad = self._needs_grad(inputs)
        self._suppress += 1
        try:
            outputs = layer.compute_output_spec(*args, **kwargs)
        except Exception as inner:  # noqa: BLE001
            outputs = self._unknown_output(layer, prefix + layer.name, args, kwargs, inner)
        finally:
            self._suppress -= 1
        outputs = as_specs(outputs, inputs)
        out = tensors(outputs)
        self._record(layer, prefix + layer.name, args, kwargs, inputs, out, needs_grad, _trains(layer), "untraceable")
        self._mark(out, needs_grad or _trains(layer))
        return outputs


class InputTooSmall(ValueError):
    """An input smaller than a layer's window (a convolution's kernel, a pooling window) allows."""


