"""Symbolic tensors as the model walk handles them: flattening call arguments, shapes, specs of outputs.

Free of the walk's state; every function here takes Keras's symbolic tensors (``KerasTensor``) and the plain
values and arrays that calls mix with them.
"""

from __future__ import annotations

import math

import keras

from . import keras_compat as compat

PLAIN = (bool, int, float, str, type(None))


def flatten(structure) -> list:
    """``keras.tree.flatten(structure)``, quicker for the tuples, lists and dicts that calls take."""
    kind = type(structure)
    if kind is tuple or kind is list:
        return [leaf for item in structure for leaf in flatten(item)]
    if kind is dict:
        try:
            keys = sorted(structure)
        except TypeError:  # keys of several types: Keras's own order
            return keras.tree.flatten(structure)
        return [leaf for key in keys for leaf in flatten(structure[key])]
    if isinstance(structure, _LEAVES):
        return [structure]
    return keras.tree.flatten(structure)


_LEAVES = (keras.KerasTensor, keras.Variable, *PLAIN)


def tensors(structure) -> list:
    return [x for x in flatten(structure) if hasattr(x, "shape") and hasattr(x, "dtype")]


def shapes(tensors) -> list[tuple]:
    return [tuple(None if d is None else int(d) for d in x.shape) for x in tensors]


def is_symbolic(x) -> bool:
    return isinstance(x, keras.KerasTensor)


def is_weight_like(x) -> bool:
    """A float array of rank 1 or more: a weight's value or a constant an op may differentiate."""
    return "float" in str(getattr(x, "dtype", "")) and len(getattr(x, "shape", ())) > 0


def graph_output(layer):
    """The outputs of the model's own (single) call of ``layer``, or ``None``."""
    try:
        return layer.output
    except (AttributeError, ValueError):  # never called symbolically, or called more than once
        return None


def described(tensors) -> tuple:
    """``(id, elements, dtype)`` of each tensor; elements ``None`` where a size is unknown."""
    described = []
    for x in tensors:
        shape = tuple(x.shape)
        elements = None if any(d is None for d in shape) else math.prod(shape)
        described.append((id(x), elements, str(x.dtype)))
    return tuple(described)


def as_specs(outputs, inputs: list):
    """Symbolic outputs: concrete arrays become specs, and a sparse flag no input had is dropped.

    Keras marks ``x * constant`` sparse when the constant is a backend array; the
    next layer then fails on a sparse placeholder.  ``inputs``: the call's tensors.
    """
    any_sparse_input = any(getattr(x, "sparse", False) for x in inputs if is_symbolic(x))

    def spec(x):
        if is_symbolic(x):
            if getattr(x, "sparse", False) and not any_sparse_input:
                return keras.KerasTensor(x.shape, dtype=x.dtype)
            return x
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return keras.KerasTensor(tuple(x.shape), dtype=keras.backend.standardize_dtype(x.dtype))
        return x

    return spec(outputs) if is_symbolic(outputs) else keras.tree.map_structure(spec, outputs)


def with_batch(outputs, batch: int):
    """The outputs with a leading 1 (rank 2 and more) read as ``batch``."""
    def widened(x):
        if is_symbolic(x) and len(x.shape) > 1 and x.shape[0] == 1:
            return keras.KerasTensor((batch, *x.shape[1:]), dtype=x.dtype)
        return x

    return widened(outputs) if is_symbolic(outputs) else keras.tree.map_structure(widened, outputs)


def renewed(outputs):
    """New symbolic tensors like ``outputs``, in the same structure."""
    if is_symbolic(outputs):
        return keras.KerasTensor(outputs.shape, dtype=outputs.dtype)
    return keras.tree.map_structure(lambda x: keras.KerasTensor(x.shape, dtype=x.dtype) if is_symbolic(x) else x, outputs)


def layer_output_spec(layer, *args, **kwargs):
    """A layer's symbolic outputs; traced by the backend where Keras's shape rule leaves a size unknown.

    ``EinsumDense`` reports ``None`` wherever its ``output_shape`` says ``None``,
    whatever the input; the einsum of the input and the kernel has the true sizes.
    """
    outputs = layer.compute_output_spec(*args, **kwargs)
    if all(None not in s for s in shapes(tensors(outputs))) or any(None in s for s in shapes(tensors(args))):
        return outputs
    if isinstance(layer, keras.layers.EinsumDense) and len(args) == 1:
        return compat.OPS_NUMPY.Einsum(layer.equation).compute_output_spec(args[0], layer.kernel)
    return keras.Operation.compute_output_spec(layer, *args, **kwargs)


def op_output_spec(op, *args, **kwargs):
    """An op's symbolic outputs, without adding a node to any graph."""
    return op.compute_output_spec(*args, **kwargs)
