"""Keras internals about models, layers and variables: graphs, inputs, weights, sublayers, names."""

from __future__ import annotations

import functools
import importlib
import re

import keras

from .classes import Functional, VariableBase


def has_own_build(model) -> bool:
    """Whether a model overrides ``build`` (else Keras builds it by calling it on symbolic inputs)."""
    # Internal: Keras marks its default ``build`` with ``utils.default``.  Public alternative: none.
    return not getattr(model.build, "_is_default", False)


def build_shapes(model) -> dict | None:
    """The input shapes a subclassed model was built with, by argument name, or ``None``."""
    # Internal: recorded by ``Layer.build``.  Public alternative: ``get_build_config()["input_shape"]``,
    # which flattens several inputs.
    return getattr(model, "_build_shapes_dict", None)


def producer_name(tensor) -> str | None:
    """The name of the layer (an ``Input``) that made a symbolic tensor, or ``None``."""
    # Internal: each KerasTensor's history.  Public alternative: none for a tensor of ``model.inputs``.
    return getattr(getattr(getattr(tensor, "_keras_history", None), "operation", None), "name", None)


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


# Internal: the graph node ``Layer.__call__`` records for a call on symbolic tensors.  During a walk
# it records nothing: the walk must leave the model's graph as it was, and a layer returning a
# non-tensor (``None`` for an absent attention bias) would make Keras refuse the node.
_GLOBAL_STATE = importlib.import_module("keras.src.backend.common.global_state")


def in_layer_call() -> bool:
    """Whether a layer's ``__call__`` runs in this thread (its ``training`` then passes on to the layers it calls)."""
    return _GLOBAL_STATE.get_global_attribute("current_call_ctx") is not None


def keras_mask(tensor):
    """The mask Keras attached to a tensor, or ``None``."""
    # Internal: where Keras keeps a tensor's mask.  Public alternative: none.
    return getattr(tensor, "_keras_mask", None)


def variable_shape(variable) -> tuple:
    """``tuple(variable.shape)``, without the ``TensorShape`` the TensorFlow backend builds for each call."""
    # Internal: the shape every Keras variable keeps.  Public alternative: ``tuple(variable.shape)``.
    if VariableBase is not None and isinstance(variable, VariableBase):
        return _VARIABLE_SHAPE(variable)
    return tuple(variable.shape)


_VARIABLE_SHAPE = None if VariableBase is None else VariableBase.shape.fget


def unseen_weights(layer, seen: set[int], settled: set[int]) -> list:
    """The weights of ``layer`` (those ``layer.weights`` lists) whose ids are not in ``seen``, which they join.

    ``settled``: ids of the layers whose weights are all in ``seen``, not looked into again; ``layer`` joins them.
    """
    if id(layer) in settled:
        return []
    if type(layer).weights is _LAYER_WEIGHTS:
        # Internal: the variables a layer owns and the layers it holds, which ``Layer.weights`` gathers.
        # Public alternative: ``layer.weights``, which gathers a block's weights again for each enclosing layer.
        own, nested = layer._trainable_variables + layer._non_trainable_variables, layer._layers
    else:
        own, nested = layer.weights, ()
    fresh = []
    for weight in own:
        if id(weight) not in seen:
            seen.add(id(weight))
            fresh.append(weight)
    for sublayer in nested:
        fresh += unseen_weights(sublayer, seen, settled)
    settled.add(id(layer))
    return fresh


def weights(layer) -> list:
    """``layer.weights``, gathered without walking each nested block again for every layer around it."""
    return unseen_weights(layer, set(), set())


def weight_specs(weights: list) -> tuple:
    """``(shape, dtype, trainable)`` of each of ``weights``."""
    return tuple((variable_shape(w), variable_dtype(w), w.trainable) for w in weights)


def variable_dtype(variable) -> str:
    """The dtype a variable stores: ``variable.dtype`` outside an autocast scope."""
    # Internal: the standardized dtype every Keras variable keeps.  Public alternative: ``variable.dtype``,
    # which looks up the autocast scope and standardizes the name again on each read.
    dtype = getattr(variable, "_dtype", None) if isinstance(variable, VariableBase or ()) else None
    return dtype if isinstance(dtype, str) else str(variable.dtype)


def has_trainable_weights(layer) -> bool:
    """``bool(layer.trainable_weights)``, from the first trainable weight found (not a list of them all)."""
    if type(layer).trainable_weights is not _LAYER_TRAINABLE_WEIGHTS:
        return bool(layer.trainable_weights)
    return bool(layer.trainable) and _any_trainable(layer)


def _any_trainable(layer) -> bool:
    """Whether any of ``layer.weights`` is trainable."""
    if type(layer).weights is not _LAYER_WEIGHTS:
        return any(weight.trainable for weight in layer.weights)
    # Internal: as in ``unseen_weights``.
    own = layer._trainable_variables + layer._non_trainable_variables
    return any(weight.trainable for weight in own) or any(_any_trainable(sublayer) for sublayer in layer._layers)


def has_weights(layer, known: dict[int, bool]) -> bool:
    """``bool(layer.weights)``, reusing and filling ``known`` (``{id(layer): bool(layer.weights)}``)."""
    found = known.get(id(layer))
    if found is None:
        if type(layer).weights is _LAYER_WEIGHTS:  # Internal: as in ``unseen_weights``.
            found = bool(layer._trainable_variables or layer._non_trainable_variables) or any(
                has_weights(sublayer, known) for sublayer in layer._layers
            )
        else:
            found = bool(layer.weights)
        known[id(layer)] = found
    return found


_LAYER_WEIGHTS = vars(keras.layers.Layer)["weights"]
_LAYER_TRAINABLE_WEIGHTS = vars(keras.layers.Layer)["trainable_weights"]


def sublayers(layer) -> list:
    """The layer and every layer nested in it, in creation order."""
    # Internal.  Public alternative: none for a Layer (``Model.layers`` is one level of a model).
    return list(layer._flatten_layers(include_self=True, recursive=True))


def sublayer_mapping(theirs: list, layer) -> dict[int, object] | None:
    """``{id(sublayer in theirs): the matching sublayer of layer}``, ``theirs`` being ``sublayers(template)``;
    ``None`` if their classes differ."""
    ours = sublayers(layer)
    if len(theirs) != len(ours) or any(type(a) is not type(b) for a, b in zip(theirs, ours)):
        return None
    return {id(a): b for a, b in zip(theirs, ours)}


def op_label(op) -> str:
    """The ``keras.ops`` name of an op: ``Einsum`` -> ``einsum``, ``DotProductAttention`` -> ``dot_product_attention``."""
    return _class_label(type(op))


@functools.cache
def _class_label(cls: type) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower()


def type_name(op) -> str:
    """The class name of a layer; ``ops.<Name>`` for a Keras op."""
    name = type(op).__name__
    return name if isinstance(op, keras.layers.Layer) else f"ops.{name}"


def is_layer_class(cls) -> bool:
    return isinstance(cls, type) and issubclass(cls, keras.layers.Layer)


def present(*classes) -> tuple[type, ...]:
    """The classes this Keras has (``None`` stands for one it lacks)."""
    return tuple(cls for cls in classes if cls is not None)


def layer_classes(names: str) -> tuple[type, ...]:
    """The ``keras.layers`` classes of these names that this Keras has (an older one lacks some)."""
    return tuple(getattr(keras.layers, name) for name in names.split() if hasattr(keras.layers, name))


_TOO_SMALL_WORDS = ("zero or negative", "would be negative")


def says_output_too_small(error: Exception) -> bool:
    """Whether Keras refused an input smaller than a layer's window (an output size below one).  Keras says so
    only in its message: "zero or negative" (3.9 and later), "would be negative" (3.8).  Public alternative: none."""
    return isinstance(error, ValueError) and any(words in str(error) for words in _TOO_SMALL_WORDS)
