"""Every use of Keras internals, in one place, each with its reason.

Keras ships a minor release every few weeks; anything here may move.  Each
entry has a contract test in ``tests/test_keras_compat.py``, so a release that
changes one fails one named test instead of silently changing an estimate.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import sys
import types

import keras


def internal_class(module: str, name: str) -> type | None:
    """A class from one of Keras's private modules, or ``None`` where this Keras has no such class."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


# Internal classes, looked up by name so that an older Keras only loses the rules it cannot have.
# The class of graph models.  Public alternative: none (``keras.Model`` is also subclassed models').
Functional = internal_class("keras.src.models.functional", "Functional")
# The op behind ``keras.ops.dot_product_attention``, for its rule.  Public alternative: none.
DotProductAttention = internal_class("keras.src.ops.nn", "DotProductAttention")
# Base classes of the built-in layer families: one rule covers every rank.  Public alternative: the
# concrete classes, one by one.
BasePooling = internal_class("keras.src.layers.pooling.base_pooling", "BasePooling")
BaseGlobalPooling = internal_class("keras.src.layers.pooling.base_global_pooling", "BaseGlobalPooling")
BaseAdaptivePooling = internal_class("keras.src.layers.pooling.base_adaptive_pooling", "BaseAdaptivePooling")
BaseConv = internal_class("keras.src.layers.convolutional.base_conv", "BaseConv")
BaseConvTranspose = internal_class("keras.src.layers.convolutional.base_conv_transpose", "BaseConvTranspose")
BaseDepthwiseConv = internal_class("keras.src.layers.convolutional.base_depthwise_conv", "BaseDepthwiseConv")
BaseSeparableConv = internal_class("keras.src.layers.convolutional.base_separable_conv", "BaseSeparableConv")
# The op ``keras.activations.relu`` runs on symbolic tensors (slope, cap, threshold).  Public alternative: none.
ReLUOp = internal_class("keras.src.activations.activations", "ReLU")
# ConvLSTM's cell, which keras.layers does not export.  Public alternative: none.
ConvLSTMCell = internal_class("keras.src.layers.rnn.conv_lstm", "ConvLSTMCell")
# Layers keras.applications defines for its own models.  Public alternative: none.
LayerScale = internal_class("keras.src.applications.convnext", "LayerScale")
CustomScaleLayer = internal_class("keras.src.applications.inception_resnet_v2", "CustomScaleLayer")
# The modules of Keras's op classes (``Add``, ``Einsum``, ...), which keras.ops exports as functions
# only.  Public alternative: none.
OPS_NUMPY = importlib.import_module("keras.src.ops.numpy")
OPS_NN = importlib.import_module("keras.src.ops.nn")
OPS_MATH = importlib.import_module("keras.src.ops.math")
OPS_CORE = importlib.import_module("keras.src.ops.core")
OPS_IMAGE = importlib.import_module("keras.src.ops.image")
OPS_LINALG = importlib.import_module("keras.src.ops.linalg")
# The op behind ``keras.ops.rearrange`` (Keras 3.9 and later), which moves data: its free rule.
# Public alternative: none.
Rearrange = internal_class("keras.src.ops.einops", "Rearrange")

ORIGINAL_LAYER_CALL = keras.layers.Layer.__call__
"""Keras's ``Layer.__call__`` (public): dtype conversion, masks, ``training``, build."""

# Internal: where ``Layer.__call__`` and every ``keras.ops`` function compute the
# outputs of a call on symbolic tensors.  The walk hooks both to see each layer
# call and each op with its real shapes.  Public alternative: none.
# (Before Keras 3.9 or so, Layer inherits Operation's, which also records a graph node.)
ORIGINAL_LAYER_SYMBOLIC_CALL = keras.layers.Layer.symbolic_call
ORIGINAL_OP_SYMBOLIC_CALL = keras.Operation.symbolic_call
_LAYER_HAS_OWN_SYMBOLIC_CALL = "symbolic_call" in vars(keras.layers.Layer)


# Internal: the class whose arithmetic dunders (``variable * x``) call the backend directly, so that a
# weight times a symbolic tensor fails inside a traced call.  Public alternative: none.
_VariableBase = internal_class("keras.src.backend.common.variables", "Variable")
_VARIABLE_OPS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide", "floordiv": "floor_divide",
    "mod": "mod", "pow": "power", "matmul": "matmul",
}
_ORIGINAL_VARIABLE_DUNDERS = {
    f"__{prefix}{name}__": getattr(_VariableBase, f"__{prefix}{name}__")
    for name in _VARIABLE_OPS for prefix in ("", "r") if _VariableBase is not None
}


def _symbolic_dunder(dunder: str, op_name: str, reflected: bool):
    original = _ORIGINAL_VARIABLE_DUNDERS[dunder]

    def dunder_method(variable, other):
        if not isinstance(other, keras.KerasTensor):
            return original(variable, other)
        op = getattr(keras.ops, op_name)
        return op(other, variable.value) if reflected else op(variable.value, other)

    return dunder_method


# Public: a KerasTensor's ``__jax_array__`` raises a helpful error when JAX is handed one; it also
# stops ``jax_array * symbolic_tensor`` from falling back to the symbolic tensor's ``__rmul__``.
_JAX_ARRAY_HOOK = vars(keras.KerasTensor).get("__jax_array__")


def patch_symbolic_arithmetic() -> None:
    """``weight * symbolic`` and ``jax_array * symbolic`` become Keras ops on symbolic tensors, as
    ``symbolic * weight`` already is: Keras's own code paths call the backend directly there."""
    for name, op_name in _VARIABLE_OPS.items():
        for prefix in ("", "r"):
            dunder = f"__{prefix}{name}__"
            if dunder in _ORIGINAL_VARIABLE_DUNDERS:
                setattr(_VariableBase, dunder, _symbolic_dunder(dunder, op_name, prefix == "r"))
    if _JAX_ARRAY_HOOK is not None:
        delattr(keras.KerasTensor, "__jax_array__")


def restore_symbolic_arithmetic() -> None:
    for dunder, method in _ORIGINAL_VARIABLE_DUNDERS.items():
        setattr(_VariableBase, dunder, method)
    if _JAX_ARRAY_HOOK is not None:
        keras.KerasTensor.__jax_array__ = _JAX_ARRAY_HOOK


# Internal: Keras's helpers that each symbolic op or layer call runs, looked up as module attributes
# at call time.  ``Operation.__new__`` reads its class's ``__init__`` signature twice
# (``inspect.signature``, ``inspect.getfullargspec``) and ``auto_name`` turns the class name into snake
# case with three regular expressions, for every op; ``Layer.compute_output_spec`` reads the signature
# of ``compute_output_shape`` for every call of a layer that has one; ``Layer.__call__`` asks ``backend.is_tensor`` of
# each argument, which on TensorFlow takes about 6 us to say no to a KerasTensor or ``None`` (a protocol
# check).
# Public alternative: none.
_OPERATION_MODULE = importlib.import_module("keras.src.ops.operation")
_NAMING_MODULE = importlib.import_module("keras.src.utils.naming")
_BACKEND_MODULE = importlib.import_module("keras.src.backend")
_ORIGINAL_TO_SNAKE_CASE = _NAMING_MODULE.to_snake_case
ORIGINAL_IS_TENSOR = _BACKEND_MODULE.is_tensor


class _RememberedSignatures:
    """The ``inspect`` module, with the signatures of plain functions remembered (a function's does not change)."""

    def __getattr__(self, name):
        return getattr(inspect, name)

    @staticmethod
    @functools.cache
    def _signature(function):
        return inspect.signature(function)

    @staticmethod
    @functools.cache
    def _argspec(function):
        return inspect.getfullargspec(function)

    @staticmethod
    @functools.cache
    def _method_signature(function):
        return inspect.signature(types.MethodType(function, object()))

    def signature(self, function, **options):
        if not options and type(function) is types.FunctionType:
            return self._signature(function)
        if not options and type(function) is types.MethodType and type(function.__func__) is types.FunctionType:
            return self._method_signature(function.__func__)  # a bound method's: its function's, less the first
        return inspect.signature(function, **options)

    def getfullargspec(self, function):
        if type(function) is not types.FunctionType:
            return inspect.getfullargspec(function)
        return self._argspec(function)


def _is_tensor(x) -> bool:
    """``backend.is_tensor(x)``, which is never true of a KerasTensor or a Python constant, answered at once
    for those."""
    return not isinstance(x, _NEVER_TENSORS) and ORIGINAL_IS_TENSOR(x)


_CONSTANTS = (bool, int, float, str, type(None))
_NEVER_TENSORS = (keras.KerasTensor, *_CONSTANTS)


def patch_symbolic_helpers() -> None:
    """Make Keras's helpers around symbolic calls quicker, with the same answers: op signatures and
    snake-case names are remembered, and a KerasTensor is known not to be a backend tensor."""
    _OPERATION_MODULE.inspect = _LAYER_MODULE.inspect = _REMEMBERED_SIGNATURES
    _NAMING_MODULE.to_snake_case = _snake_case
    _BACKEND_MODULE.is_tensor = _is_tensor


def restore_symbolic_helpers() -> None:
    _OPERATION_MODULE.inspect = _LAYER_MODULE.inspect = inspect
    _NAMING_MODULE.to_snake_case = _ORIGINAL_TO_SNAKE_CASE
    _BACKEND_MODULE.is_tensor = ORIGINAL_IS_TENSOR


_REMEMBERED_SIGNATURES = _RememberedSignatures()
_snake_case = functools.lru_cache(maxsize=4096)(_ORIGINAL_TO_SNAKE_CASE)


def patch_layer_calls(call_hook, layer_hook, op_hook, walking=lambda: True) -> None:
    """Route ``Layer.__call__`` to ``call_hook``, symbolic layer calls to ``layer_hook``, symbolic ops to ``op_hook``.

    Meanwhile, layer calls record no graph nodes in a thread where ``walking()`` is true.
    """
    global _walking
    _walking = walking
    if _ORIGINAL_NODE is not None:
        _LAYER_MODULE.Node = _node_during_walk
    keras.layers.Layer.__call__ = call_hook
    keras.layers.Layer.symbolic_call = layer_hook
    keras.Operation.symbolic_call = op_hook


def restore_layer_calls() -> None:
    if _ORIGINAL_NODE is not None:
        _LAYER_MODULE.Node = _ORIGINAL_NODE
    keras.layers.Layer.__call__ = ORIGINAL_LAYER_CALL
    if _LAYER_HAS_OWN_SYMBOLIC_CALL:
        keras.layers.Layer.symbolic_call = ORIGINAL_LAYER_SYMBOLIC_CALL
    else:
        del keras.layers.Layer.symbolic_call
    keras.Operation.symbolic_call = ORIGINAL_OP_SYMBOLIC_CALL


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
_LAYER_MODULE = importlib.import_module("keras.src.layers.layer")
_ORIGINAL_NODE = getattr(_LAYER_MODULE, "Node", None)


_walking = None  # the predicate patch_layer_calls was given: is this thread walking a model?


def _node_during_walk(*args, **kwargs):
    """Keras's Node, except in a thread that is walking a model (``Layer.__call__`` ignores the result)."""
    if _walking is not None and _walking():
        return None
    return _ORIGINAL_NODE(*args, **kwargs)


# Internal: Keras's per-thread state, which holds the context of the layer call under way.  Public alternative: none.
_GLOBAL_STATE = importlib.import_module("keras.src.backend.common.global_state")


def in_layer_call() -> bool:
    """Whether a layer's ``__call__`` runs in this thread (its ``training`` then passes on to the layers it calls)."""
    return _GLOBAL_STATE.get_global_attribute("current_call_ctx") is not None


def keras_mask(tensor):
    """The mask Keras attached to a tensor, or ``None``."""
    # Internal: where Keras keeps a tensor's mask.  Public alternative: none.
    return getattr(tensor, "_keras_mask", None)


def calls_as_given(layer, args: tuple, kwargs: dict) -> bool:
    """Whether ``Layer.__call__`` would pass these symbolic arguments to the layer's call unchanged (adding
    only ``training`` and a ``mask`` of ``None``) and return its outputs unchanged.

    So it is when the layer is built, its positional arguments are symbolic tensors and its other
    arguments symbolic tensors or Python constants, none has a mask or needs a cast to the layer's input
    dtype, no autocast scope or distribution is active, and the layer computes no mask of its own.
    """
    # Internal: what ``Layer.__call__`` reads to convert inputs, autocast and set masks.  Public
    # alternative: none; the layer's own ``__call__``, which does all of it for every call.
    if not layer.built or _BACKEND_MODULE.get_autocast_scope() is not None or keras.distribution.distribution():
        return False
    if layer.supports_masking and type(layer).compute_mask is not _LAYER_COMPUTE_MASK:
        return False
    if any(not isinstance(x, keras.KerasTensor) for x in args):
        return False
    if layer.compute_dtype != layer.variable_dtype:
        return False  # Keras's call reads the weights in the compute dtype (an autocast scope)
    dtype = layer.input_dtype
    converts = getattr(layer, "_convert_input_args", True) and layer.autocast
    for x in _flat_arguments(args, kwargs):
        if isinstance(x, keras.KerasTensor):
            if keras_mask(x) is not None or (converts and x.dtype != dtype and "float" in x.dtype):
                return False
        elif not isinstance(x, _CONSTANTS):
            return False
    return True


def _flat_arguments(args: tuple, kwargs: dict) -> list:
    if not kwargs and all(isinstance(x, keras.KerasTensor) for x in args):
        return list(args)
    return keras.tree.flatten((args, kwargs))


_LAYER_COMPUTE_MASK = keras.layers.Layer.compute_mask


def variable_shape(variable) -> tuple:
    """``tuple(variable.shape)``, without the ``TensorShape`` the TensorFlow backend builds for each call."""
    # Internal: the shape every Keras variable keeps.  Public alternative: ``tuple(variable.shape)``.
    if _VariableBase is not None and isinstance(variable, _VariableBase):
        return _VARIABLE_SHAPE(variable)
    return tuple(variable.shape)


_VARIABLE_SHAPE = None if _VariableBase is None else _VariableBase.shape.fget


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
    dtype = getattr(variable, "_dtype", None) if isinstance(variable, _VariableBase or ()) else None
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


_HOOKS_GET_LAST_STEP = tuple(int(part) for part in keras.version().split(".")[:2]) >= (3, 11)


def steps_done(batch: int, steps_per_execution: int) -> int:
    """Steps of the pass done when a batch-end hook gets index ``batch``.

    Keras 3.11 and later pass the last step of the execution that just ran,
    earlier releases its first (so a hook after steps 3 and 4 said 2).
    """
    return batch + 1 if _HOOKS_GET_LAST_STEP else batch + steps_per_execution


def running_loop_local(name: str, wanted):
    """The local ``name`` of the running ``fit`` / ``evaluate`` / ``predict`` (its data iterator, callback list).

    Internal: Keras passes neither to callbacks, so the calling frames are searched.
    Public alternative: none (``params["steps"]`` is the number of batches, not their size).
    ``None`` where it is not found (a custom training loop, a renamed local).
    """
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get(name)
        if candidate is not None and wanted(candidate):
            return candidate
        frame = frame.f_back
    return None


def running_frame_of(function):
    """The innermost running frame of ``function`` in this thread (e.g. the trainer's ``fit``), or ``None``.

    Decorators are looked through (Keras wraps ``fit`` in a traceback filter shared by its other methods)."""
    try:
        function = inspect.unwrap(getattr(function, "__func__", function))
    except (TypeError, ValueError):
        return None
    code = getattr(function, "__code__", None)
    frame = sys._getframe(1)
    while frame is not None and code is not None:
        if frame.f_code is code:
            return frame
        frame = frame.f_back
    return None


def watch_batches(adapter, on_batch, on_restart) -> bool:
    """Call ``on_batch(batch)`` for each batch a generator's or a ``PyDataset``'s adapter produces, and
    ``on_restart()`` when it starts a new iterator; whether ``adapter`` is of a kind that can be watched.

    Internal: ``GeneratorDataAdapter.generator`` (the function that starts an iterator over the user's
    generator, looked up at each epoch on every backend) and ``PyDatasetAdapter._standardize_batch``
    (called on each batch where it is consumed).  Public alternative: none; Keras hands callbacks no batch.
    """
    if getattr(adapter, "_nns_watched", None) == on_batch:
        return True
    start = getattr(adapter, "generator", None)
    if callable(start) and hasattr(adapter, "_first_batches"):

        def generator():
            _quietly(on_restart)
            for batch in start():
                _quietly(on_batch, batch)
                yield batch

        adapter.generator = generator
    elif callable(getattr(adapter, "_standardize_batch", None)) and hasattr(adapter, "py_dataset"):
        standardize, iterate = adapter._standardize_batch, adapter._get_iterator

        def standardized(batch):
            batch = standardize(batch)
            _quietly(on_batch, batch)
            return batch

        def iterator():
            _quietly(on_restart)
            return iterate()

        adapter._standardize_batch, adapter._get_iterator = standardized, iterator
    else:
        return False
    adapter._nns_watched = on_batch
    return True


def _quietly(function, *args) -> None:
    try:
        function(*args)
    except Exception:  # noqa: BLE001, S110  (counting a batch must never stop the data)
        pass


def running_data_adapter():
    """The data adapter of the running ``fit`` / ``evaluate`` / ``predict``, or ``None``."""
    iterator = running_loop_local("epoch_iterator", lambda x: hasattr(x, "data_adapter"))
    return getattr(iterator, "data_adapter", None)


def first_batch_size(adapter) -> int | None:
    """The size of a generator's or a ``PyDataset``'s first batch, or ``None``.

    A generator adapter keeps the batches it peeked at to infer specs (internal);
    a ``PyDataset`` is indexed (its public ``__getitem__``: one batch loaded once).
    """
    batches = getattr(adapter, "_first_batches", None)
    if batches:
        first = batches[0]
    elif isinstance(getattr(adapter, "py_dataset", None), keras.utils.PyDataset):
        first = adapter.py_dataset[0]
    else:
        return None
    arrays = [x for x in keras.tree.flatten(first) if hasattr(x, "shape") and len(x.shape) > 0]
    return int(arrays[0].shape[0]) if arrays else None


def dataset_batch_size(adapter) -> int | None:
    """The ``batch(n)`` of a tf.data pipeline whose batch dimension is not static (no ``drop_remainder``).

    Internal (TensorFlow's): each dataset op keeps its ``_input_dataset`` and a
    batch op its ``_batch_size``; read, never iterated.  Public alternative: none
    but reading a batch, which would run the pipeline.
    """
    dataset = getattr(adapter, "_dataset", None)
    for _ in range(64):
        if dataset is None:
            return None
        size = getattr(dataset, "_batch_size", None)
        if size is not None:
            return int(size)
        dataset = getattr(dataset, "_input_dataset", None)
    return None


def samples_seen(model) -> float | None:
    """Samples counted by Keras's loss tracker since the metrics were last reset; ``None`` if it counts none.

    Internal: the ``Mean`` metric behind the ``loss`` log, which every built-in
    train and test step updates with the batch size as its weight.  Read it only
    where the training state is synchronised (epoch and evaluation boundaries).
    """
    count = getattr(getattr(model, "_loss_tracker", None), "count", None)
    if count is None:
        return None
    value = float(keras.ops.convert_to_numpy(count))
    return value if value > 0 else None
