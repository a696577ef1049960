"""The peak FLOP/s behind MFU: a number, the datasheet table, or measured on this device and cached.

``resolve_peak`` answers ``peak_flops``: a number is per device; ``None`` / ``"auto"`` look the detected
accelerator up in ``chips`` (TF32 for float32 where the backend runs float32 matmuls as TF32);
``"measure"`` reuses this machine's cached measurement for the device, backend and compute dtype, or
times square matmuls (the best of several runs, after a warm-up) and caches the figure;
``"measure!"`` measures again and replaces the cached entry. Every peak is summed over the replicas.

No framework is imported at module import time.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time

from . import chips, devices, measure_cache, timing
from .timing import Spread

AUTO, MEASURE, REMEASURE = "auto", "measure", "measure!"
CPU_MATMUL_SIZE = 2048
ACCELERATOR_MATMUL_SIZE = 8192
RUNS = 5
RUN_SECONDS = 0.25


@dataclasses.dataclass(frozen=True)
class Peak:
    """Peak FLOP/s summed over `devices` devices, with where it came from; `spread` (per device) if measured."""

    flops_per_sec: float
    source: str
    device: str
    precision: str
    devices: int
    spread: Spread | None = None


def matmul_size(accelerated: bool) -> int:
    """Side of the square matrices timed by `measure_peak`."""
    return ACCELERATOR_MATMUL_SIZE if accelerated else CPU_MATMUL_SIZE


def matmul_rate(a, b, size: int, seconds: float, clock=time.perf_counter) -> float:
    """FLOP/s of one run of `keras.ops.matmul(a, b)` (square, side `size`) lasting about `seconds`."""
    from keras import ops

    return timing.timed_rate(lambda: ops.matmul(a, b), timing.sync, 2.0 * size**3, seconds, clock)


def measure_peak(compute_dtype: str, size: int | None = None, runs: int = RUNS, seconds: float = RUN_SECONDS,
                 clock=time.perf_counter) -> Spread:
    """FLOP/s of square `keras.ops.matmul` products in `compute_dtype`: best, median, lowest of `runs` runs."""
    import keras
    from keras import ops

    if size is None:
        size = matmul_size(bool(devices.accelerator_names(keras.backend.backend())))
    a = ops.cast(keras.random.uniform((size, size)), compute_dtype)
    b = ops.cast(keras.random.uniform((size, size)), compute_dtype)
    timing.sync(ops.matmul(a, b))
    return timing.best_of(lambda: matmul_rate(a, b, size, seconds, clock), runs)


def validate_peak_flops(value) -> None:
    """Raise ValueError unless value is None, 'auto', 'measure', 'measure!' or a positive number."""
    if value is None or isinstance(value, str) and value in (AUTO, MEASURE, REMEASURE):
        return
    if is_positive_number(value):
        return
    raise ValueError(
        f"peak_flops must be None, 'auto', 'measure', 'measure!' or a positive finite number "
        f"of FLOP/s per device (e.g. 312e12); got {value!r}"
    )


def is_positive_number(value) -> bool:
    """A real, finite, positive number (not a bool)."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return is_number and math.isfinite(value) and value > 0


def _warn_unknown(names: list[str], precision: str, warn) -> None:
    """Warn once that MFU is left out and how to supply a peak."""
    where = f"device {names[0]!r} at {precision}" if names else "a CPU (no accelerator found)"
    warn(
        f"MFU and HFU are left out: no datasheet peak FLOP/s for {where}. "
        f"Pass peak_flops=<dense FLOP/s per device> (e.g. peak_flops=312e12) or "
        f"peak_flops='measure' to time a matmul on this device."
    )


def _datasheet_peak(names, compute_dtype, backend, count, warn) -> Peak | None:
    """Peak from the table for the first detected device, or warn and None."""
    tf32 = compute_dtype == "float32" and devices.tf32_enabled(backend)
    precision = chips.precision_for(compute_dtype, tf32)
    chip = chips.find_chip(names[0]) if names else None
    found = chips.chip_peak(chip, precision) if chip else None
    if found is None:
        _warn_unknown(names, precision, warn)
        return None
    used, value = found
    return Peak(value * count, f"datasheet: {chip.source}", names[0], used, count)


def _measured_peak(names, backend, compute_dtype, count, fresh, warn) -> Peak:
    """Peak timed on this device (or this machine's cached figure for it), scaled to `count` devices."""
    device = names[0] if names else "cpu"
    size = matmul_size(bool(names))
    key = measure_cache.CacheKey("peak_flops", devices.machine(), device, backend, compute_dtype)

    def measure():
        return measure_peak(compute_dtype, size=size), f"{size}x{size} {compute_dtype} matmuls"

    measurement, cached = measure_cache.measured(key, measure, fresh, warn)
    spread = measurement.spread
    source = measure_cache.source(measurement, cached, "FLOP/s")
    return Peak(spread.best * count, source, device, compute_dtype, count, spread)


def resolve_peak(peak_flops, backend: str, compute_dtype: str, replicas: int = 1, warn=None) -> Peak | None:
    """Total peak FLOP/s from a number, 'measure' / 'measure!' (cached per machine) or the datasheet table."""
    validate_peak_flops(peak_flops)
    if warn is None:
        from .notices import warn
    names = devices.accelerator_names(backend)
    count = max(1, int(replicas))  # the replicas that train: Keras uses one device without a strategy
    if peak_flops is None or peak_flops == AUTO:
        return _datasheet_peak(names, compute_dtype, backend, count, warn)
    if peak_flops in (MEASURE, REMEASURE):
        return _measured_peak(names, backend, compute_dtype, count, peak_flops == REMEASURE, warn)
    device = names[0] if names else "cpu"
    return Peak(float(peak_flops) * count, "peak_flops argument", device, compute_dtype, count)
