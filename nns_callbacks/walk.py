"""The model walk: every layer call of a model, with concrete shapes, in execution order.

Functional and Sequential models are walked along their graph, nested models
are expanded, and layers with sublayers but no cost rule (subclassed models and
layers) are traced: their ``call`` runs on symbolic tensors while every
sublayer call is recorded.  A layer with a rule is a leaf: its own sublayers
are part of its rule.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading

import keras
from keras.src import tree
from keras.src.layers.layer import Layer
from keras.src.models.functional import Functional

from .registry import LayerCall, collecting_unsupported, rule_for


@dataclasses.dataclass
class LeafCall:
    """A layer call that is costed as a whole."""

    path: str
    call: LayerCall
    call_index: int
    needs_input_grad: bool

    @property
    def layer(self):
        return self.call.layer


def _tensors(structure) -> list:
    return [x for x in tree.flatten(structure) if hasattr(x, "shape") and hasattr(x, "dtype")]


def _shapes(tensors) -> list[tuple]:
    return [tuple(None if d is None else int(d) for d in x.shape) for x in tensors]


def _has_sublayers(layer) -> bool:
    return bool(getattr(layer, "_layers", None))


class ModelWalk:
    """Collects the leaf calls of one model for one set of input specs."""

    def __init__(self):
        self.leaves: list[LeafCall] = []
        self.unsupported: collections.Counter = collections.Counter()
        self._requires_grad: dict[int, bool] = {}
        self._keepalive: list = []
        self._calls: collections.Counter = collections.Counter()
        self._prefix: list[str] = []
        self._context_grad: list[bool] = []
        self._suppress = 0

    def run(self, model, inputs) -> None:
        """Walk ``model`` called on ``inputs`` (KerasTensors with concrete shapes)."""
        with collecting_unsupported(self.unsupported), _recording(self):
            if isinstance(model, Functional) or _sequential_graph(model) is not None:
                self._walk_graph(model, "", (inputs,), {})
            else:
                self._trace(model, "", (inputs,), {})

    def visit(self, layer, prefix: str, args: tuple, kwargs: dict):
        """Cost or expand one call of ``layer``; return its symbolic outputs."""
        if rule_for(layer) is not None or not isinstance(layer, Layer):
            return self._leaf(layer, prefix, args, kwargs, self._output_spec)
        if isinstance(layer, Functional) or _sequential_graph(layer) is not None:
            return self._expand(layer, prefix, args, kwargs, self._walk_graph)
        if _has_sublayers(layer):
            return self._expand(layer, prefix, args, kwargs, self._trace)
        return self._leaf(layer, prefix, args, kwargs, self._output_spec)

    def _needs_grad(self, args, kwargs) -> bool:
        """Whether a gradient must flow into these arguments; unseen tensors inherit the enclosing call's."""
        default = self._context_grad[-1] if self._context_grad else False
        return any(self._requires_grad.get(id(x), default) for x in _tensors((args, kwargs)))

    def _mark(self, layer, outputs, needs_grad: bool, keep: bool = False) -> None:
        """Record whether ``outputs`` need a gradient; ``keep``: leave tensors already recorded."""
        requires = needs_grad or bool(getattr(layer, "trainable_weights", None))
        for x in _tensors(outputs):
            if keep and id(x) in self._requires_grad:
                continue
            self._requires_grad[id(x)] = requires
            self._keepalive.append(x)

    def _leaf(self, layer, prefix, args, kwargs, compute):
        needs_grad = self._needs_grad(args, kwargs)
        self._suppress += 1
        try:
            outputs = compute(layer, args, kwargs)
        finally:
            self._suppress -= 1
        inputs = _tensors((args, kwargs))
        call = LayerCall(layer, args, kwargs, _shapes(_tensors(outputs)), _shapes(inputs))
        self._calls[id(layer)] += 1
        name = getattr(layer, "name", type(layer).__name__)
        self.leaves.append(LeafCall(prefix + name, call, self._calls[id(layer)], needs_grad))
        self._keepalive.extend(inputs)
        self._mark(layer, outputs, needs_grad)
        return outputs

    def _expand(self, layer, prefix, args, kwargs, walk):
        needs_grad = self._needs_grad(args, kwargs)
        self._context_grad.append(needs_grad)
        try:
            outputs = walk(layer, prefix + layer.name + "/", args, kwargs)
        finally:
            self._context_grad.pop()
        self._mark(layer, outputs, needs_grad, keep=True)
        return outputs

    @staticmethod
    def _output_spec(layer, args, kwargs):
        """Outputs of one call; on symbolic inputs without adding a node to the model's graph."""
        if any(isinstance(x, keras.KerasTensor) for x in _tensors((args, kwargs))):
            return layer.compute_output_spec(*args, **kwargs)
        if isinstance(layer, Layer):
            return _ORIGINAL_CALL(layer, *args, **kwargs)
        return layer(*args, **kwargs)

    def _walk_graph(self, model, prefix, args, kwargs):
        graph = model if isinstance(model, Functional) else _sequential_graph(model)
        inputs = args[0] if args else next(iter(kwargs.values()))
        if isinstance(inputs, dict) and isinstance(graph._inputs_struct, dict):
            inputs = {name: inputs[name] for name in graph._inputs_struct}

        def operation_fn(op):
            return lambda *a, **k: self.visit(op, prefix, a, k)

        return graph._run_through_graph(inputs, operation_fn=operation_fn)

    def _trace(self, layer, prefix, args, kwargs):
        self._prefix.append(prefix)
        try:
            if any(isinstance(x, keras.KerasTensor) for x in _tensors((args, kwargs))):
                return keras.src.backend.compute_output_spec(layer.call, *args, **kwargs)
            return layer.call(*args, **kwargs)
        finally:
            self._prefix.pop()

    def intercept(self, layer, args, kwargs):
        """A sublayer call seen while tracing: visit it, or run it plainly inside a leaf."""
        if self._suppress or not self._prefix:
            return _ORIGINAL_CALL(layer, *args, **kwargs)
        prefix = self._prefix[-1]
        if rule_for(layer) is not None or not _has_sublayers(layer):
            return self._leaf(layer, prefix, args, kwargs, _plain_call)
        return self._expand(layer, prefix, args, kwargs, self._trace_call)

    def _trace_call(self, layer, prefix, args, kwargs):
        self._prefix.append(prefix)
        try:
            return _ORIGINAL_CALL(layer, *args, **kwargs)
        finally:
            self._prefix.pop()


def _plain_call(layer, args, kwargs):
    return _ORIGINAL_CALL(layer, *args, **kwargs)


def _sequential_graph(model):
    """The Functional graph behind a built Sequential model, or ``None``."""
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    return None


_ORIGINAL_CALL = Layer.__call__
_ACTIVE = threading.local()
_PATCH_LOCK = threading.Lock()
_patch_users = 0


def _recording_call(self, *args, **kwargs):
    walk = getattr(_ACTIVE, "walk", None)
    if walk is None:
        return _ORIGINAL_CALL(self, *args, **kwargs)
    return walk.intercept(self, args, kwargs)


@contextlib.contextmanager
def _recording(walk: ModelWalk):
    """Route ``Layer.__call__`` through ``walk`` in this thread while the block runs."""
    global _patch_users
    with _PATCH_LOCK:
        _patch_users += 1
        Layer.__call__ = _recording_call
    previous = getattr(_ACTIVE, "walk", None)
    _ACTIVE.walk = walk
    try:
        yield
    finally:
        _ACTIVE.walk = previous
        with _PATCH_LOCK:
            _patch_users -= 1
            if _patch_users == 0:
                Layer.__call__ = _ORIGINAL_CALL
