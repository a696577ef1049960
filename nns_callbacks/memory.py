"""Device memory: what the accelerator holds, the peak a run used, and the largest batch that fits.

The estimate's memory is linear in the batch size: weights, gradients and
optimizer state do not depend on it, activations grow with it.  So two
estimates (batches 1 and 2) give the fixed part and the part per sample, and
the largest batch that fits follows; it is checked against a third estimate.
"""

from __future__ import annotations

import math
import re

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """``"80GiB"`` -> 85899345920; ``"16 GB"`` -> 16e9; a plain number is bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"memory size {text!r}: expected a number of bytes with a unit such as 80GiB or 16GB")
    return int(float(match.group(1)) * _UNITS[unit])


def device_memory(backend: str) -> int | None:
    """Bytes of memory on the first accelerator, or ``None`` (a CPU, or a backend that does not say)."""
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "cpu":
                return None
            return int((device.memory_stats() or {}).get("bytes_limit") or 0) or None
        if backend == "torch":
            import torch

            return int(torch.cuda.get_device_properties(0).total_memory) if torch.cuda.is_available() else None
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            if not gpus:
                return None
            details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
            return int(details.get("memory_limit") or 0) or None
    except Exception:  # noqa: BLE001  (a device that cannot tell: unknown)
        return None
    return None


def peak_bytes_in_use(backend: str) -> int | None:
    """The peak bytes the first accelerator has held so far, or ``None`` where the backend cannot tell."""
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            stats = device.memory_stats() if device.platform != "cpu" else None
            return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None
        if backend == "torch":
            import torch

            return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_logical_devices("GPU"):
                return None
            return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    except Exception:  # noqa: BLE001  (a device that cannot tell: unknown)
        return None
    return None


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
    memory = parse_bytes(memory_bytes) if isinstance(memory_bytes, str) else memory_bytes
    if isinstance(memory, bool) or not isinstance(memory, (int, float)) or not memory > 0:
        raise ValueError(f"memory_bytes must be a positive number of bytes or a size like '80GiB', got {memory_bytes!r}")

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
