"""Routing Keras's symbolic calls to the model walk of this thread, while ``recording(walk)`` is active.

Keras computes a layer's or an op's outputs on symbolic tensors in ``Layer.__call__``,
``Layer.symbolic_call`` and ``Operation.symbolic_call``; ``keras_compat`` installs the three functions
here in their place (one context, one lock, counted so that walks in several threads share the patch),
and each hands the call to this thread's walk, or back to Keras where none is walking.
"""

from __future__ import annotations

import contextlib
import threading

from . import keras_compat as compat

_ACTIVE = threading.local()


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
    if walk.speedups and walk.is_leaf(layer) and compat.calls_as_given(layer, args, kwargs):
        return _layer_symbolic_call(layer, *args, **kwargs)
    return _within(walk, True, compat.ORIGINAL_LAYER_CALL, layer, *args, **kwargs)


def _layer_symbolic_call(layer, *args, **kwargs):
    walk = _active_walk()
    if walk is None:
        return compat.ORIGINAL_LAYER_SYMBOLIC_CALL(layer, *args, **kwargs)
    return _within(walk, False, walk.layer_call, layer, args, kwargs)


def _within(walk, bookkeeping: bool, call, /, *args, **kwargs):
    """``call(*args, **kwargs)`` with the ops it runs marked as Keras's bookkeeping or not."""
    walk.bookkeeping.append(bookkeeping)
    try:
        return call(*args, **kwargs)
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
def recording(walk):
    """Route symbolic layer calls and Keras ops through ``walk`` in this thread while the block runs."""
    hooks = (_layer_dunder_call, _layer_symbolic_call, _op_symbolic_call, _walking)
    with compat.patches.installed(*hooks, speedups=walk.speedups):
        previous = getattr(_ACTIVE, "walk", None)
        _ACTIVE.walk = walk
        try:
            yield
        finally:
            _ACTIVE.walk = previous
