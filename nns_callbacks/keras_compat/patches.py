"""Every patch of Keras the model walk makes, in one place, each with its reason.

While a walk records (``routing.recording``): ``Layer.__call__``, ``Layer.symbolic_call`` and
``Operation.symbolic_call`` are routed to the walk, the graph node a symbolic layer call records is not
made, and a weight combined with a symbolic tensor becomes a Keras op.  Pure speedups, which change no figure
and are on unless ``NNS_SPEEDUPS=0`` (``speedups()``): Keras's per-op helpers answer from memory
(``patch_symbolic_helpers``), a layer with a rule that ``Layer.__call__`` would call as given is costed
without it (``calls_as_given``), and the estimate pauses the cyclic garbage collector (``collector_paused``).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import inspect
import os
import threading
import types

import keras

from .classes import VariableBase
from .layers import keras_mask

_LOCK = threading.Lock()
_users = 0  # walks in progress, in any thread: the patches stay until the last one ends


@contextlib.contextmanager
def installed(call_hook, layer_hook, op_hook, walking, speedups: bool = True):
    """Every patch the model walk needs, for the block: the three symbolic-call hooks (``patch_layer_calls``),
    the symbolic arithmetic of variables, and where ``speedups``, Keras's helpers answering from memory."""
    global _users
    with _LOCK:
        _users += 1
        patch_layer_calls(call_hook, layer_hook, op_hook, walking)
        patch_symbolic_arithmetic()
        if speedups:
            patch_symbolic_helpers()
    try:
        yield
    finally:
        with _LOCK:
            _users -= 1
            if _users == 0:
                restore_layer_calls()
                restore_symbolic_arithmetic()
                restore_symbolic_helpers()


def speedups() -> bool:
    """Whether the pure speedups are on (``NNS_SPEEDUPS=0`` turns them off: the same figures, slower)."""
    return os.environ.get("NNS_SPEEDUPS", "1") != "0"


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector paused (a speedup): the walk makes thousands of short-lived objects,
    which the collector would otherwise scan several times over while they live."""
    if not speedups() or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


ORIGINAL_LAYER_CALL = keras.layers.Layer.__call__
"""Keras's ``Layer.__call__`` (public): dtype conversion, masks, ``training``, build."""

# Internal: where ``Layer.__call__`` and every ``keras.ops`` function compute the
# outputs of a call on symbolic tensors.  The walk hooks both to see each layer
# call and each op with its real shapes.  Public alternative: none.
# (Before Keras 3.9 or so, Layer inherits Operation's, which also records a graph node.)
ORIGINAL_LAYER_SYMBOLIC_CALL = keras.layers.Layer.symbolic_call
ORIGINAL_OP_SYMBOLIC_CALL = keras.Operation.symbolic_call
_LAYER_HAS_OWN_SYMBOLIC_CALL = "symbolic_call" in vars(keras.layers.Layer)


_VARIABLE_OPS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide", "floordiv": "floor_divide",
    "mod": "mod", "pow": "power", "matmul": "matmul",
}
_ORIGINAL_VARIABLE_DUNDERS = {
    f"__{prefix}{name}__": getattr(VariableBase, f"__{prefix}{name}__")
    for name in _VARIABLE_OPS for prefix in ("", "r") if VariableBase is not None
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
                setattr(VariableBase, dunder, _symbolic_dunder(dunder, op_name, prefix == "r"))
    if _JAX_ARRAY_HOOK is not None:
        delattr(keras.KerasTensor, "__jax_array__")


def restore_symbolic_arithmetic() -> None:
    for dunder, method in _ORIGINAL_VARIABLE_DUNDERS.items():
        setattr(VariableBase, dunder, method)
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


_LAYER_MODULE = importlib.import_module("keras.src.layers.layer")
_ORIGINAL_NODE = getattr(_LAYER_MODULE, "Node", None)


_walking = None  # the predicate patch_layer_calls was given: is this thread walking a model?


def _node_during_walk(*args, **kwargs):
    """Keras's Node, except in a thread that is walking a model (``Layer.__call__`` ignores the result)."""
    if _walking is not None and _walking():
        return None
    return _ORIGINAL_NODE(*args, **kwargs)


# Internal: Keras's per-thread state, which holds the context of the layer call under way.  Public alternative: none.
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


