"""Peak FLOP/s for MFU reporting: the datasheet table (``chips``), an argument, or a timed matmul.

A FLOP is one floating-point operation (a multiply-add counts as 2).
Every peak in the table is a DENSE figure per device: vendors headline
2:4-sparse Tensor Core numbers that are twice as high, and those are halved
here. A missing (chip, precision) entry means unknown, never zero.

No framework is imported at module import time: tensorflow, jax, torch and
keras are imported lazily inside the functions that need them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time

from .chips import PRECISIONS, chip_peak, find_chip, match_chip, precision_for, table_peak  # noqa: F401
from .devices import accelerator_names as detect_accelerators
from .devices import tf32_enabled

_CPU_MATMUL_SIZE = 512
_ACCELERATOR_MATMUL_SIZE = 4096
_MAX_REPS = 100_000
_AUTO = "auto"
_MEASURE = "measure"


@dataclasses.dataclass(frozen=True)
class Peak:
    """Peak FLOP/s summed over `devices` devices, with where it came from."""

    flops_per_sec: float
    source: str
    device: str
    precision: str
    devices: int


def matmul_size(accelerated: bool) -> int:
    """Side of the square matrices timed by `measure_peak`."""
    return _ACCELERATOR_MATMUL_SIZE if accelerated else _CPU_MATMUL_SIZE


def _sync(tensor) -> None:
    """Block until `tensor` is computed by fetching one element (as float32)."""
    from keras import ops

    ops.convert_to_numpy(ops.cast(tensor[0, 0], "float32"))


def _next_batch(reps: int, elapsed: float, seconds: float) -> int:
    """Matmuls to run before the next sync, aiming to end at `seconds`."""
    if elapsed <= 0:
        return 4 * reps
    remaining = int((seconds - elapsed) * reps / elapsed)
    return max(1, min(remaining, 4 * reps))


def measure_peak(
    compute_dtype: str,
    seconds: float = 0.5,
    clock=time.perf_counter,
    size: int | None = None,
) -> float:
    """FLOP/s of square `keras.ops.matmul` products in `compute_dtype`."""
    import keras
    from keras import ops

    if size is None:
        size = matmul_size(bool(detect_accelerators(keras.backend.backend())))
    a = ops.cast(keras.random.uniform((size, size)), compute_dtype)
    b = ops.cast(keras.random.uniform((size, size)), compute_dtype)
    _sync(ops.matmul(a, b))
    reps, batch, elapsed, start = 0, 1, 0.0, clock()
    while elapsed < seconds and reps < _MAX_REPS:
        for _ in range(batch):
            out = ops.matmul(a, b)
        _sync(out)
        reps += batch
        elapsed = clock() - start
        batch = _next_batch(reps, elapsed, seconds)
    if elapsed <= 0:
        raise RuntimeError("measure_peak: the clock did not advance")
    return 2.0 * size**3 * reps / elapsed


def validate_peak_flops(value) -> None:
    """Raise ValueError unless value is None, 'auto', 'measure' or a positive number."""
    if value is None or isinstance(value, str) and value in (_AUTO, _MEASURE):
        return
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if is_number and math.isfinite(value) and value > 0:
        return
    raise ValueError(
        f"peak_flops must be None, 'auto', 'measure' or a positive finite number "
        f"of FLOP/s per device (e.g. 312e12); got {value!r}"
    )


def _device_count(names: list[str], replicas: int) -> int:
    """Devices the peak is summed over: the replicas that train (Keras uses one device without a strategy)."""
    return max(1, int(replicas))


def _warn_unknown(names: list[str], precision: str, warn) -> None:
    """Warn once that MFU is left out and how to supply a peak."""
    where = f"device {names[0]!r} at {precision}" if names else "a CPU (no accelerator found)"
    warn(
        f"MFU and HFU are left out: no datasheet peak FLOP/s for {where}. "
        f"Pass peak_flops=<dense FLOP/s per device> (e.g. peak_flops=312e12) or "
        f"peak_flops='measure' to time a matmul on this device."
    )


def _datasheet_peak(names, compute_dtype, backend, devices, warn) -> Peak | None:
    """Peak from the table for the first detected device, or warn and None."""
    tf32 = compute_dtype == "float32" and tf32_enabled(backend)
    precision = precision_for(compute_dtype, tf32)
    chip = find_chip(names[0]) if names else None
    found = chip_peak(chip, precision) if chip else None
    if found is None:
        _warn_unknown(names, precision, warn)
        return None
    used, value = found
    source = f"datasheet: {chip.source}"
    return Peak(value * devices, source, names[0], used, devices)


def _measured_peak(names, compute_dtype, devices) -> Peak:
    """Peak timed on this device, scaled to `devices`."""
    size = matmul_size(bool(names))
    value = measure_peak(compute_dtype, size=size)
    source = f"measured: {size}x{size} {compute_dtype} matmul"
    device = names[0] if names else "cpu"
    return Peak(value * devices, source, device, compute_dtype, devices)


def resolve_peak(
    peak_flops,
    backend: str,
    compute_dtype: str,
    replicas: int = 1,
    warn=None,
) -> Peak | None:
    """Total peak FLOP/s from a number, 'measure' or the datasheet table."""
    validate_peak_flops(peak_flops)
    if warn is None:
        from .notices import warn
    names = detect_accelerators(backend)
    devices = _device_count(names, replicas)
    if peak_flops is None or peak_flops == _AUTO:
        return _datasheet_peak(names, compute_dtype, backend, devices, warn)
    if peak_flops == _MEASURE:
        return _measured_peak(names, compute_dtype, devices)
    device = names[0] if names else "cpu"
    total = float(peak_flops) * devices
    return Peak(total, "peak_flops argument", device, compute_dtype, devices)
