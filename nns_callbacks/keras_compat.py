"""Every use of Keras internals, in one place, each with its reason.

Keras ships a minor release every few weeks; anything here may move.  Each
entry has a contract test in ``tests/test_keras_compat.py``, so a release that
changes one fails one named test instead of silently changing an estimate.
"""

from __future__ import annotations

import re

import keras

# Internal: the class of graph models.  Public alternative: none (``keras.Model``
# is also the base of subclassed models, which have no graph).
from keras.src.models.functional import Functional

# Internal: the op class behind ``keras.ops.dot_product_attention``, for its cost rule.
from keras.src.ops.nn import DotProductAttention  # noqa: F401

ORIGINAL_LAYER_CALL = keras.layers.Layer.__call__
"""Keras's ``Layer.__call__`` (public): dtype conversion, masks, ``training``, build."""

# Internal: where ``Layer.__call__`` and every ``keras.ops`` function compute the
# outputs of a call on symbolic tensors.  The walk hooks both to see each layer
# call and each op with its real shapes.  Public alternative: none.
ORIGINAL_LAYER_SYMBOLIC_CALL = keras.layers.Layer.symbolic_call
ORIGINAL_OP_SYMBOLIC_CALL = keras.Operation.symbolic_call


def patch_layer_calls(call_hook, layer_hook, op_hook) -> None:
    """Route ``Layer.__call__`` to ``call_hook``, symbolic layer calls to ``layer_hook``, symbolic ops to ``op_hook``."""
    keras.layers.Layer.__call__ = call_hook
    keras.layers.Layer.symbolic_call = layer_hook
    keras.Operation.symbolic_call = op_hook


def restore_layer_calls() -> None:
    keras.layers.Layer.__call__ = ORIGINAL_LAYER_CALL
    keras.layers.Layer.symbolic_call = ORIGINAL_LAYER_SYMBOLIC_CALL
    keras.Operation.symbolic_call = ORIGINAL_OP_SYMBOLIC_CALL


def graph_of(model):
    """The Functional graph of a graph model (a built Sequential's inner one), else ``None``."""
    if isinstance(model, Functional):
        return model
    if isinstance(model, keras.Sequential):
        # Internal: the Functional model a built Sequential runs.  Public alternative: none.
        return getattr(model, "_functional", None)
    return None


def run_graph(model, inputs, operation_fn):
    """Run a graph model's nodes on ``inputs``, computing each node with ``operation_fn(op)(*args, **kwargs)``."""
    graph = graph_of(model)
    struct = inputs_struct(graph)
    if isinstance(inputs, dict) and isinstance(struct, dict):
        inputs = {name: inputs[name] for name in struct}
    # Internal: Functional's own graph executor.  Public alternative: none that
    # lets the caller compute each node.
    return graph._run_through_graph(inputs, operation_fn=operation_fn)


def inputs_struct(model):
    """A Functional model's inputs in the structure it was built with (a dict for dict inputs)."""
    # Internal: ``model.input`` flattens nothing but raises on some subclassed models.
    return getattr(model, "_inputs_struct", None)


class NodeSnapshot:
    """Undoes the graph nodes that symbolic calls add to layers during a walk.

    ``Layer.__call__`` on symbolic tensors records a node in the layer's inbound
    and its producers' outbound nodes; left there, the walk would change the
    model's graph (``layer.output`` would become ambiguous).
    """

    def __init__(self):
        self._lengths: dict[int, tuple[object, int, int]] = {}

    def keep(self, layer) -> None:
        if id(layer) not in self._lengths:
            # Internal: the node lists of an operation.
            inbound = getattr(layer, "_inbound_nodes", None)
            outbound = getattr(layer, "_outbound_nodes", None)
            if isinstance(inbound, list) and isinstance(outbound, list):
                self._lengths[id(layer)] = (layer, len(inbound), len(outbound))

    def restore(self) -> None:
        for layer, inbound, outbound in self._lengths.values():
            del layer._inbound_nodes[inbound:]
            del layer._outbound_nodes[outbound:]
        self._lengths.clear()


def sublayers(layer) -> list:
    """The layer and every layer nested in it, in creation order."""
    # Internal.  Public alternative: none for a Layer (``Model.layers`` is one level of a model).
    return list(layer._flatten_layers(include_self=True, recursive=True))


def sublayer_mapping(template, layer) -> dict[int, object] | None:
    """``{id(sublayer of template): the matching sublayer of layer}`` (both included); ``None`` if their classes differ."""
    theirs, ours = sublayers(template), sublayers(layer)
    if len(theirs) != len(ours) or any(type(a) is not type(b) for a, b in zip(theirs, ours)):
        return None
    return {id(a): b for a, b in zip(theirs, ours)}


def op_label(op) -> str:
    """The ``keras.ops`` name of an op: ``Einsum`` -> ``einsum``, ``DotProductAttention`` -> ``dot_product_attention``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(op).__name__).lower()


def type_name(op) -> str:
    """The class name of a layer; ``ops.<Name>`` for a Keras op."""
    name = type(op).__name__
    return name if isinstance(op, keras.layers.Layer) else f"ops.{name}"


def is_layer_class(cls) -> bool:
    return isinstance(cls, type) and issubclass(cls, keras.layers.Layer)


def layer_classes(names: str) -> tuple[type, ...]:
    """The ``keras.layers`` classes of these names that this Keras has (an older one lacks some)."""
    return tuple(getattr(keras.layers, name) for name in names.split() if hasattr(keras.layers, name))
