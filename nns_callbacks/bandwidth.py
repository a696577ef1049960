"""Device memory bandwidth: a number, the datasheet table, or measured on this device and cached.

``resolve_bandwidth`` answers ``memory_bandwidth`` as ``peaks.resolve_peak`` answers ``peak_flops``: a
number is bytes/s per device; ``None`` / ``"auto"`` look the detected accelerator up in ``chips`` (a CPU
or an unknown device: one warning and ``None``); ``"measure"`` reuses this machine's cached figure or
times a large elementwise copy (``x + 1``: every byte read once and written once) and caches it;
``"measure!"`` measures again. Every figure is summed over the replicas.

No framework is imported at module import time.
"""

from __future__ import annotations

import dataclasses
import time

from . import chips, devices, measure_cache, timing
from .peaks import AUTO, MEASURE, REMEASURE, RUN_SECONDS, RUNS, is_positive_number
from .timing import Spread

CPU_COPY_BYTES = 64 * 2**20
ACCELERATOR_COPY_BYTES = 256 * 2**20
_COLUMNS = 1024
_DTYPE = "float32"


@dataclasses.dataclass(frozen=True)
class Bandwidth:
    """Memory bytes/s summed over `devices` devices, with where it came from; `spread` (per device) if measured."""

    bytes_per_sec: float
    source: str
    device: str
    devices: int
    spread: Spread | None = None


def copy_bytes(accelerated: bool) -> int:
    """Bytes of the array `measure_bandwidth` copies."""
    return ACCELERATOR_COPY_BYTES if accelerated else CPU_COPY_BYTES


def copy_rate(x, one, moved: float, seconds: float, clock=time.perf_counter) -> float:
    """Bytes/s of one run of `x + one` (`moved` bytes read and written per step) lasting about `seconds`."""
    return timing.timed_rate(lambda: x + one, timing.sync, moved, seconds, clock)


def measure_bandwidth(nbytes: int | None = None, runs: int = RUNS, seconds: float = RUN_SECONDS,
                      clock=time.perf_counter) -> Spread:
    """Bytes/s read plus written by `x + 1` over a float32 array of `nbytes`: best, median, lowest of `runs`."""
    import keras
    from keras import ops

    if nbytes is None:
        nbytes = copy_bytes(bool(devices.accelerator_names(keras.backend.backend())))
    rows = max(1, nbytes // (4 * _COLUMNS))
    x = keras.random.uniform((rows, _COLUMNS), dtype=_DTYPE)
    one = ops.convert_to_tensor(1.0, dtype=_DTYPE)  # a device scalar, so no compiler can drop the add
    timing.sync(x + one)
    moved = 2.0 * 4 * rows * _COLUMNS
    return timing.best_of(lambda: copy_rate(x, one, moved, seconds, clock), runs)


def validate_memory_bandwidth(value) -> None:
    """Raise ValueError unless value is None, 'auto', 'measure', 'measure!' or a positive number."""
    if value is None or isinstance(value, str) and value in (AUTO, MEASURE, REMEASURE):
        return
    if is_positive_number(value):
        return
    raise ValueError(
        f"memory_bandwidth must be None, 'auto', 'measure', 'measure!' or a positive finite number "
        f"of bytes/s per device (e.g. 3.35e12); got {value!r}"
    )


def _datasheet_bandwidth(names, count, warn) -> Bandwidth | None:
    """Bandwidth from the table for the first detected device, or warn and None."""
    chip = chips.find_chip(names[0]) if names else None
    if chip is None:
        where = f"device {names[0]!r}" if names else "a CPU (no accelerator found)"
        warn(f"no datasheet memory bandwidth for {where}: pass memory_bandwidth=<bytes/s per device> "
             f"(e.g. memory_bandwidth=3.35e12) or memory_bandwidth='measure' to time a copy on this device.")
        return None
    return Bandwidth(chip.bandwidth * count, f"datasheet: {chip.source}", names[0], count)


def _measured_bandwidth(names, backend, count, fresh, warn) -> Bandwidth:
    """Bandwidth timed on this device (or this machine's cached figure for it), scaled to `count` devices."""
    device = names[0] if names else "cpu"
    nbytes = copy_bytes(bool(names))
    key = measure_cache.CacheKey("memory_bandwidth", devices.machine(), device, backend, _DTYPE)

    def measure():
        return measure_bandwidth(nbytes), f"x + 1 over {nbytes // 2**20} MiB of {_DTYPE} (read + written)"

    measurement, cached = measure_cache.measured(key, measure, fresh, warn)
    source = measure_cache.source(measurement, cached, "B/s")
    return Bandwidth(measurement.spread.best * count, source, device, count, measurement.spread)


def resolve_bandwidth(memory_bandwidth, backend: str, replicas: int = 1, warn=None) -> Bandwidth | None:
    """Total memory bytes/s from a number, 'measure' / 'measure!' (cached per machine) or the datasheet table."""
    validate_memory_bandwidth(memory_bandwidth)
    if warn is None:
        from .notices import warn
    names = devices.accelerator_names(backend)
    count = max(1, int(replicas))
    if memory_bandwidth is None or memory_bandwidth == AUTO:
        return _datasheet_bandwidth(names, count, warn)
    if memory_bandwidth in (MEASURE, REMEASURE):
        return _measured_bandwidth(names, backend, count, memory_bandwidth == REMEASURE, warn)
    device = names[0] if names else "cpu"
    return Bandwidth(float(memory_bandwidth) * count, "memory_bandwidth argument", device, count)
