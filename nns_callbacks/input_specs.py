"""Symbolic inputs with concrete shapes for a model and a batch size: from the model's own inputs, or from an
``input_shape`` (one sample's), checked against the model's; a model not yet built is built from it.

Shared by ``estimate``, the compiled-memory figure and the command line.
"""

from __future__ import annotations

import keras
import numpy as np

from . import keras_compat as compat


def check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def input_specs(model, batch_size: int, input_shape=None):
    """Symbolic inputs with concrete shapes, building the model from ``input_shape`` if needed."""
    if input_shape is not None:
        shapes = _normalise_input_shape(input_shape)
        if not model.built:
            _build(model, shapes)
        _check_given_shapes(model, shapes)
        return _specs_like(model, shapes, batch_size)
    if not model.built:
        raise ValueError(
            f"model {model.name!r} is not built, so its input shape is unknown: call "
            "estimate(model, input_shape=(...)) with the shape of one sample, or build the "
            "model first (model.build(...) or call it on data)"
        )
    shapes = _known_input_shapes(model)
    return _specs_like(model, shapes, batch_size)


def _normalise_input_shape(input_shape):
    if isinstance(input_shape, dict):
        return {name: _as_shape(shape) for name, shape in input_shape.items()}
    if isinstance(input_shape, (list, tuple)) and input_shape and all(
        isinstance(s, (list, tuple)) for s in input_shape
    ):
        return [_as_shape(s) for s in input_shape]
    return _as_shape(input_shape)


def _as_shape(shape) -> tuple[int, ...]:
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise ValueError(
            f"input_shape must hold positive integers for one sample (no batch axis), got {shape!r}"
        )
    return tuple(int(d) for d in shape)


def _with_batch(shapes, batch):
    if isinstance(shapes, dict):
        return {name: (batch, *s) for name, s in shapes.items()}
    if isinstance(shapes, list):
        return [(batch, *s) for s in shapes]
    return (batch, *shapes)


def _build(model, shapes) -> None:
    """Build ``model`` for per-sample ``shapes``: its own ``build``, else one symbolic call."""
    if compat.has_own_build(model):
        model.build(_with_batch(shapes, None))
        return
    specs = _specs_like(model, shapes, None)
    try:
        model(specs)
    except Exception as error:
        raise ValueError(
            f"could not build model {model.name!r} by calling it on inputs of shape {shapes}: {error}"
        ) from error


def _known_input_shapes(model):
    """Per-sample input shapes of a built model; a ``None`` dimension is an error."""
    inputs = _input_tensors(model)
    if inputs is None:
        build_shapes = compat.build_shapes(model)
        if not build_shapes:
            raise ValueError(
                f"cannot tell the input shape of model {model.name!r}: pass "
                "estimate(model, input_shape=(...)) with the shape of one sample"
            )
        named = {f"input {i}": tuple(s) for i, s in enumerate(build_shapes.values())}
    else:
        items = inputs.items() if isinstance(inputs, dict) else ((_input_name(x, i), x) for i, x in enumerate(inputs))
        named = {name: tuple(x.shape) for name, x in items}
    for name, shape in named.items():
        _check_known(model, name, shape)
    shapes = {name: shape[1:] for name, shape in named.items()}
    if isinstance(inputs, dict):
        return shapes
    shapes = list(shapes.values())
    return shapes[0] if len(shapes) == 1 else shapes


def _check_given_shapes(model, shapes) -> None:
    """``input_shape`` must match the rank and the known sizes of the model's inputs."""
    inputs = _input_tensors(model)
    if inputs is None:
        return
    if isinstance(inputs, dict) != isinstance(shapes, dict):
        return  # matched by position or by name inside Keras; nothing to compare here
    if isinstance(inputs, dict):
        _check_same_names(model, set(inputs), set(shapes))
        pairs = [(name, inputs[name], shapes[name]) for name in shapes if name in inputs]
    else:
        given = shapes if isinstance(shapes, list) else [shapes]
        if len(given) != len(inputs):
            raise ValueError(f"model {model.name!r} takes {len(inputs)} input(s); input_shape gives {len(given)}")
        pairs = [(_input_name(x, i), x, shape) for i, (x, shape) in enumerate(zip(inputs, given))]
    for name, tensor, shape in pairs:
        expected = tuple(tensor.shape)[1:]
        if len(shape) != len(expected) or any(e is not None and e != g for e, g in zip(expected, shape)):
            raise ValueError(
                f"input_shape {shape} does not fit input {name!r} of model {model.name!r}, "
                f"whose shape is {expected} per sample (None: any size)"
            )


def _check_same_names(model, expected: set, given: set) -> None:
    """An ``input_shape`` dict names each of the model's inputs, and nothing else."""
    missing, extra = sorted(expected - given), sorted(given - expected)
    if missing or extra:
        said = "; ".join(part for part in (
            f"no shape for input(s) {', '.join(map(repr, missing))}" if missing else "",
            f"{', '.join(map(repr, extra))} not input(s) of the model" if extra else "",
        ) if part)
        raise ValueError(
            f"input_shape does not match the inputs of model {model.name!r} ({said}): give a shape for each of "
            f"{', '.join(map(repr, sorted(expected)))}"
        )


def _check_known(model, name: str, shape: tuple) -> None:
    for axis, size in enumerate(shape[1:], start=1):
        if size is None:
            raise ValueError(
                f"input {name!r} of model {model.name!r} has unknown size along dimension "
                f"{axis} (shape {shape}): pass estimate(model, input_shape=...) with concrete "
                "sizes, e.g. the sequence length you train with"
            )


def _input_name(tensor, index: int) -> str:
    """The name of the Input layer that made ``tensor``, else the tensor's name."""
    return compat.producer_name(tensor) or getattr(tensor, "name", None) or f"input {index}"


def _input_tensors(model):
    """The symbolic inputs of a model: a dict by name for dict inputs, a list, or ``None``."""
    struct = compat.inputs_struct(model)
    if isinstance(struct, dict):
        return struct
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return list(inputs) if inputs else None


def _specs_like(model, shapes, batch_size):
    """KerasTensors of ``shapes`` (plus the batch axis) in the dtypes of the model's inputs."""
    inputs = _input_tensors(model)

    def spec(shape, key):
        try:
            dtype = inputs[key].dtype
        except (TypeError, KeyError, IndexError):
            dtype = "float32"
        return keras.KerasTensor((batch_size, *shape), dtype=dtype)

    if isinstance(shapes, dict):
        return {name: spec(shape, name) for name, shape in shapes.items()}
    if isinstance(shapes, list):
        return [spec(s, i) for i, s in enumerate(shapes)]
    return spec(shapes, 0)


def tokens_per_sample(specs) -> int | None:
    """The sequence length of a token input (integers of shape (batch, length)), padding included; ``None`` where
    no input is a token sequence (images, features)."""
    for spec in keras.tree.flatten(specs):
        dtype = keras.backend.standardize_dtype(spec.dtype)
        if len(spec.shape) == 2 and ("int" in dtype) and spec.shape[1]:
            return int(spec.shape[1])
    return None
