"""Replays: a block configured and called like one traced before (the blocks of a transformer) repeats that
trace's calls with its own names, sublayers and weights instead of being traced again.

A trace is keyed by what its calls depend on: the layer's class and configuration (``get_config()`` less
the name, or its plain attributes where ``get_config`` fails), dtype policy, ``trainable``, its weights'
specs, and each argument's name and spec.  A replayed leaf is its trace's leaf with the replay's path,
layer and call index: ``dataclasses.replace``-like, by field name.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import keras

from . import keras_compat as compat
from .symbolic import PLAIN, flatten, is_symbolic, tensors


@dataclasses.dataclass
class Trace:
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
    def steps(self) -> list[TraceStep] | None:
        """A step per leaf; ``None`` where a leaf's layer is not a sublayer of the traced layer."""
        ids = {id(sublayer) for sublayer in self.sublayers}
        steps = []
        for leaf in leaves(self.entries):
            layer_id = id(leaf.layer) if isinstance(leaf.layer, keras.layers.Layer) else None
            if layer_id is not None and layer_id not in ids:
                return None
            suffix = leaf.path[len(self.prefix):] if leaf.path.startswith(self.prefix) else None
            steps.append(TraceStep(leaf, leaf.template or leaf, layer_id, suffix))
        return steps


@dataclasses.dataclass(eq=False)
class TraceStep:
    """One leaf of a trace, as its replays repeat it.

    ``layer_id``: the id of its layer among the traced layer's sublayers (``None`` for an op);
    ``suffix``: its path below the traced layer (``None`` for the traced layer's own row).
    """

    leaf: object  # walk.LeafCall
    template: object
    layer_id: int | None
    suffix: str | None

    @functools.cached_property
    def repeated(self) -> dict:
        """The fields a replayed leaf takes from this step's leaf, by name: all but where and whose it is."""
        fields = {field.name: getattr(self.leaf, field.name) for field in dataclasses.fields(self.leaf)}
        for own in _REPLAY_OWN:
            fields.pop(own)
        return fields


@dataclasses.dataclass(eq=False)
class Replay:
    """A trace's leaves repeated for another layer: its sublayers stand in for the traced layer's (``mapping``:
    by their ids), its path ``own`` for the traced layer's; ``call_indices``: one per step; ``weights``: the
    layer's ``weights``."""

    trace: Trace
    own: str
    mapping: dict[int, object]
    call_indices: list[int]
    weights: list

    def __len__(self) -> int:
        return len(self.call_indices)

    @functools.cached_property
    def leaves(self) -> list:
        return [self.leaf(step, index) for step, index in zip(self.trace.steps, self.call_indices)]

    def leaf(self, step: TraceStep, call_index: int) :
        """The leaf that repeats ``step``."""
        layer = step.leaf.layer if step.layer_id is None else self.mapping[step.layer_id]
        path = self.own[:-1] if step.suffix is None else self.own + step.suffix
        return type(step.leaf)(path=path, layer=layer, call_index=call_index, template=step.template, step=step,
                               **step.repeated)


_REPLAY_OWN = ("path", "layer", "call_index", "template", "step")
"""The fields of a leaf a replay sets itself."""


def leaves(entries: list) -> list:
    """The leaves of a walk's entries, a replay's made from it."""
    leaves = []
    for entry in entries:
        if isinstance(entry, Replay):
            leaves += entry.leaves
        else:
            leaves.append(entry)
    return leaves


@dataclasses.dataclass
class GraphCall:
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
        if made is not outputs or any(compat.keras_mask(x) is not None for x in tensors(outputs)):
            return None
        added = [value for name, value in kwargs.items() if name not in self.kwargs]
        if not set(self.kwargs) <= set(kwargs) or not all(isinstance(x, PLAIN) for x in flatten(added)):
            return None
        given = flatten((self.args, self.kwargs))
        passed = flatten((args, {name: kwargs[name] for name in self.kwargs}))
        return key if len(given) == len(passed) and all(a is b for a, b in zip(given, passed)) else None


def configuration(layer) -> tuple:
    """A layer's class and configuration without its name; its plain attributes where ``get_config`` fails."""
    cls = type(layer)
    if cls not in _BROKEN_GET_CONFIG:
        try:
            config = {k: v for k, v in layer.get_config().items() if k != "name"}
            return cls, json.dumps(config, sort_keys=True, default=repr)
        except Exception:  # noqa: BLE001  (keras-hub layers whose get_config is broken exist)
            _BROKEN_GET_CONFIG.add(cls)
    plain = sorted(
        (k, v) for k, v in vars(layer).items() if not k.startswith("_") and k != "name" and isinstance(v, PLAIN)
    )
    return cls, repr(plain)


_BROKEN_GET_CONFIG: set[type] = set()
"""Classes whose ``get_config`` raised once: their instances are keyed by their plain attributes."""


class ReplayCache:
    """The traces of one walk by their keys, and what a replay needs: each layer's key and weights (kept once the
    layer is built: its weights no longer change), and the keys of graph calls Keras passed on as given."""

    def __init__(self):
        self.traces: dict[tuple, Trace] = {}
        self.passed_on: dict[tuple, tuple] = {}  # graph call's key -> the trace key Keras's __call__ led to
        self._layer_keys: dict[int, tuple] = {}
        self._layer_weights: dict[int, list] = {}
        self._keepalive: list = []  # layers keyed by id stay alive while the walk does

    def trace_key(self, layer, args, kwargs, needs_grad: bool, context_grad: bool, requires_grad: dict) -> tuple:
        """What a trace depends on: the layer's configuration, its weights, each argument's name and spec.

        Its sublayers are made from its configuration; replaying also checks their classes and weights.
        """
        arguments = tuple(_argument_key(x, requires_grad) for x in flatten((args, kwargs)))
        signature = len(args), tuple(kwargs)  # which argument each value is: f(x, a=m) is not f(x, b=m)
        return self.layer_key(layer), signature, arguments, needs_grad, context_grad

    def layer_key(self, layer) -> tuple:
        """The layer's part of its trace key: class, configuration, dtype policy, ``trainable`` and its weights'
        specs; kept for the walk once the layer is built (its weights no longer change)."""
        key = self._layer_keys.get(id(layer))
        if key is None:
            policy = getattr(getattr(layer, "dtype_policy", None), "name", None)
            weights = compat.weights(layer)
            key = configuration(layer), policy, layer.trainable, compat.weight_specs(weights)
            if layer.built:
                self._layer_keys[id(layer)] = key
                self._layer_weights[id(layer)] = weights
                self._keepalive.append(layer)
        return key

    def replay(self, trace: Trace, layer, prefix: str, calls: dict) -> Replay | None:
        """``trace``'s leaves repeated for ``layer`` (its own sublayers and names), counting each call in
        ``calls`` (by layer id or op path); ``None`` where its sublayers differ."""
        mapping = compat.sublayer_mapping(trace.sublayers, layer)
        if mapping is None or trace.steps is None:
            return None
        own = prefix + layer.name + "/"
        indices = []
        for layer_id, suffix in trace.plan:
            if layer_id is None:
                key = own[:-1] if suffix is None else own + suffix
            else:
                key = id(mapping[layer_id])
            index = calls[key] = calls.get(key, 0) + 1
            indices.append(index)
        weights = self._layer_weights.get(id(layer))
        return Replay(trace, own, mapping, indices, compat.weights(layer) if weights is None else weights)



def _argument_key(x, requires_grad: dict):
    """What a trace depends on of one argument: a symbolic tensor's spec and need of a gradient, a constant's
    value, an array's spec; any other object by identity (only the same one matches)."""
    if is_symbolic(x):
        return tuple(x.shape), str(x.dtype), x.sparse, requires_grad.get(id(x))
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return "array", tuple(x.shape), str(x.dtype)
    return type(x).__name__, id(x)
