"""Device memory: sizes such as "80GiB", and the largest batch whose estimated training memory fits.

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

from .devices import device_memory, peak_bytes_in_use

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


def max_batch_size(model, memory_bytes=None, optimizer=None, input_shape=None, distribution="auto") -> int:
    """The largest global batch whose estimated training memory per device fits ``memory_bytes`` (default: one
    device's).

    ``memory_bytes`` is a number of bytes or a string such as ``"80GiB"``; ``distribution`` as for
    ``estimate`` (a number of devices plans data parallelism): the batch is a multiple of the devices the batch is
    split over, each device holding its share.  ``0`` is returned when even one sample per device does not fit.
    """
    import keras

    from .estimation import estimate
    from .mesh import placement

    if memory_bytes is None:
        memory_bytes = device_memory(keras.backend.backend())
        if memory_bytes is None:
            raise ValueError("no accelerator memory is known here: pass max_batch_size(model, memory_bytes=...)")
    memory = _memory_argument(memory_bytes)
    placed = placement(distribution, model)
    share = placed.mesh.data_parallel if placed else 1

    def training_bytes(batch: int) -> int:
        cost = estimate(model, batch_size=batch, optimizer=optimizer, input_shape=input_shape,
                        distribution=distribution if placed else None)
        return cost.per_device_training_bytes

    one, two = training_bytes(share), training_bytes(2 * share)
    per_share, fixed = two - one, 2 * one - two
    if one > memory:
        return 0
    if per_share <= 0:
        raise ValueError("the estimated memory does not grow with the batch size: any batch fits")
    batch = share * max(1, math.floor((memory - fixed) / per_share))
    while batch > share and training_bytes(batch) > memory:  # guards a model whose memory is not quite linear
        batch -= share
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


def peak_memory_values(backend: str, cost) -> dict:
    """The device's peak bytes in use so far, and its ratio to ``cost``'s estimate, where the backend can tell."""
    peak = peak_bytes_in_use(backend)
    if peak is None:
        return {}
    values = {"peak_memory_bytes": float(peak)}
    if cost is not None and cost.training_bytes:
        values["peak_memory_over_estimate"] = peak / cost.training_bytes
    return values


def too_big(model, cost, backend: str, input_shape=None) -> str | None:
    """Where ``cost``'s training memory exceeds the device's: what to say, naming a batch that fits."""
    from .cost import format_bytes

    capacity = device_memory(backend) if cost is not None else None
    needed = cost and (cost.per_device_compiled_training_bytes or cost.per_device_training_bytes)
    if capacity is None or needed <= capacity:
        return None
    try:
        fits = max_batch_size(model, capacity, input_shape=input_shape)
    except Exception:  # noqa: BLE001  (advice only)
        fits = None
    advice = f"batch {fits} fits" if fits else "not even one sample fits"
    which = "compiled" if cost.per_device_compiled_training_bytes else "estimated"
    which += " per-device" if cost.devices > 1 else ""
    return (f"the {which} training memory, {format_bytes(needed)} for batch {cost.batch_size}, exceeds the device's "
            f"{format_bytes(capacity)}: {advice} by the analytic estimate (ModelCost's memory)")
