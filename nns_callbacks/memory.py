"""Device memory: the largest batch that fits, and XLA's figure for a compiled training step.

What the accelerator holds and the peak a run used are probed in ``devices`` (``device_memory``,
``peak_bytes_in_use``, re-exported here).

The estimate's memory is linear in the batch size: weights, gradients and
optimizer state do not depend on it, activations grow with it.  So two
estimates (batches 1 and 2) give the fixed part and the part per sample, and
the largest batch that fits follows; it is checked against a third estimate.
"""

from __future__ import annotations

import math
import numbers
import re

from .devices import device_memory, peak_bytes_in_use  # noqa: F401 - read here by callback.py

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


MAX_MEMORY_BYTES = 2**50
"""1 PiB: more than any one device holds; a larger size is a typo or an overflow."""


def parse_bytes(text: str) -> int:
    """``"80GiB"`` -> 85899345920; ``"16 GB"`` -> 16e9; a plain number is bytes; 1 B to 1 PiB, else ``ValueError``."""
    match = re.fullmatch(r"\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"memory size {text!r}: expected a number of bytes with a unit such as 80GiB or 16GB")
    return checked_bytes(float(match.group(1)) * _UNITS[unit], f"memory size {_shortened(text)!r}")


def _shortened(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def checked_bytes(value: float, shown: str) -> int:
    """``value`` as a whole number of bytes, or a ``ValueError`` that starts with ``shown`` and says why not."""
    if not isinstance(value, int) and math.isnan(value):  # an int may be too large for a float
        raise ValueError(f"{shown} is not a number: give a size such as 80GiB")
    if value <= 0:
        raise ValueError(f"{shown} must be positive, e.g. 80GiB")
    if value < 1:
        raise ValueError(f"{shown} is less than 1 byte: give at least 1 byte (fractions such as 1.5GiB are fine)")
    if value > MAX_MEMORY_BYTES:
        raise ValueError(f"{shown} is more than any device holds (at most 1 PiB = {MAX_MEMORY_BYTES} bytes)")
    return int(value)


def max_batch_size(model, memory_bytes=None, optimizer=None, input_shape=None) -> int:
    """The largest batch whose estimated training memory fits ``memory_bytes`` (default: the device's).

    ``memory_bytes`` is a number of bytes or a string such as ``"80GiB"``; ``0`` is returned
    when even one sample does not fit.
    """
    import keras

    from .estimation import estimate

    if memory_bytes is None:
        memory_bytes = device_memory(keras.backend.backend())
        if memory_bytes is None:
            raise ValueError("no accelerator memory is known here: pass max_batch_size(model, memory_bytes=...)")
    memory = _memory_argument(memory_bytes)

    def training_bytes(batch: int) -> int:
        return estimate(model, batch_size=batch, optimizer=optimizer, input_shape=input_shape).training_bytes

    one, two = training_bytes(1), training_bytes(2)
    per_sample, fixed = two - one, 2 * one - two
    if one > memory:
        return 0
    if per_sample <= 0:
        raise ValueError("the estimated memory does not grow with the batch size: any batch fits")
    batch = max(1, math.floor((memory - fixed) / per_sample))
    while batch > 1 and training_bytes(batch) > memory:  # guards a model whose memory is not quite linear
        batch -= 1
    return batch


def _memory_argument(memory_bytes) -> int:
    """``max_batch_size``'s ``memory_bytes`` in bytes, or a ``ValueError`` that names it."""
    if isinstance(memory_bytes, str):
        try:
            return parse_bytes(memory_bytes)
        except ValueError as error:
            raise ValueError(f"memory_bytes: {error}") from None
    if isinstance(memory_bytes, bool) or not isinstance(memory_bytes, numbers.Real):
        raise TypeError(f"memory_bytes must be a number of bytes or a size like '80GiB', got {memory_bytes!r}")
    return checked_bytes(memory_bytes, f"memory_bytes={_shortened(repr(memory_bytes))}")


def compiled_training_bytes(model, batch_size: int = 1, optimizer=None, input_shape=None) -> int | None:
    """XLA's memory for one jitted training step on the device it will run on; ``None`` off the JAX backend.

    The step is lowered from shapes alone (nothing is allocated): the model's
    forward pass in training mode, a mean-square loss of its outputs, the
    gradients, and the optimizer's update (default: the compiled one; none: the
    step ends at the gradients), the state donated as ``fit`` does.  The figure is
    XLA's memory analysis: arguments + outputs not aliased to them + temporaries.
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax
    import jax.numpy as jnp

    from .estimation import input_specs
    from .optimizers import resolve_optimizer

    optimizer = resolve_optimizer(model, optimizer)
    fresh = None if optimizer is None else optimizer.__class__.from_config(optimizer.get_config())

    def abstract(x):
        return jax.ShapeDtypeStruct(tuple(x.shape), keras.backend.standardize_dtype(x.dtype))

    def slots():  # the fresh optimizer's variables, built under eval_shape: shapes only
        fresh.build(model.trainable_variables)
        return [v.value for v in fresh.variables]

    state = (
        [abstract(v) for v in model.trainable_variables],
        [abstract(v) for v in model.non_trainable_variables],
        jax.eval_shape(slots) if fresh is not None else [],
    )
    inputs = keras.tree.map_structure(abstract, input_specs(model, batch_size, input_shape))

    def loss(trainable, non_trainable, x):
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        value = sum(jnp.mean(jnp.square(y.astype("float32"))) for y in keras.tree.flatten(outputs))
        return value, non_trainable

    def step(state, x):
        trainable, non_trainable, optimizer_variables = state
        (value, non_trainable), grads = jax.value_and_grad(loss, has_aux=True)(trainable, non_trainable, x)
        if fresh is not None:
            trainable, optimizer_variables = fresh.stateless_apply(optimizer_variables, grads, trainable)
        else:
            trainable = grads
        return value, (trainable, non_trainable, optimizer_variables)

    analysis = jax.jit(step, donate_argnums=0).lower(state, inputs).compile().memory_analysis()
    outputs = analysis.output_size_in_bytes - analysis.alias_size_in_bytes
    return int(analysis.argument_size_in_bytes + outputs + analysis.temp_size_in_bytes)
