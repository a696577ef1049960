"""The measurement cache: measured peaks and bandwidths kept per machine, device, backend and dtype.

One JSON file, ``measurements.json``, in ``$NNS_CACHE_DIR``, else ``$XDG_CACHE_HOME/nns_callbacks``, else
``~/.cache/nns_callbacks``::

    {"format": 1, "measurements": [
      {"quantity": "peak_flops", "machine": "host (CPU model)", "device": "cpu", "backend": "jax",
       "dtype": "float32", "best": 1.6e11, "median": 1.5e11, "low": 1.4e11, "runs": 5,
       "method": "2048x2048 float32 matmuls", "measured_at": "2026-01-05T10:00:00+00:00"}]}

Rates are per device. A file that cannot be read or parsed counts as empty; one that cannot be written
is a warning, and the figure is used for this run only.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .timing import Spread

FORMAT = 1
FILE_NAME = "measurements.json"


@dataclasses.dataclass(frozen=True)
class CacheKey:
    """What a measurement depends on: the quantity, this machine, the device, the backend and the dtype."""

    quantity: str  # "peak_flops" or "memory_bandwidth"
    machine: str  # host name and CPU model
    device: str  # accelerator name, or "cpu"
    backend: str
    dtype: str


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A measured rate per device: its key, spread, what was timed and when (ISO 8601, UTC)."""

    key: CacheKey
    spread: Spread
    method: str
    measured_at: str

    @property
    def date(self) -> str:
        """The day it was measured, YYYY-MM-DD."""
        return self.measured_at[:10]


def cache_dir() -> Path:
    """Where the cache lives: $NNS_CACHE_DIR, else $XDG_CACHE_HOME/nns_callbacks, else ~/.cache/nns_callbacks."""
    if os.environ.get("NNS_CACHE_DIR"):
        return Path(os.environ["NNS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nns_callbacks"


def cache_file() -> Path:
    """The cache's JSON file."""
    return cache_dir() / FILE_NAME


def now() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()  # noqa: UP017 - 3.10


def _to_entry(measurement: Measurement) -> dict:
    """One measurement as the file stores it."""
    return {**dataclasses.asdict(measurement.key), **dataclasses.asdict(measurement.spread),
            "method": measurement.method, "measured_at": measurement.measured_at}


def _from_entry(entry: dict) -> Measurement:
    """One stored entry as a Measurement (KeyError, TypeError or ValueError if malformed)."""
    key = CacheKey(**{field.name: str(entry[field.name]) for field in dataclasses.fields(CacheKey)})
    spread = Spread(float(entry["best"]), float(entry["median"]), float(entry["low"]), int(entry["runs"]))
    return Measurement(key, spread, str(entry["method"]), str(entry["measured_at"]))


def _entries() -> list[dict]:
    """The file's entries; [] if it is missing, unreadable, malformed or of another format."""
    try:
        document = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return []
    entries = document.get("measurements")
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


def load(key: CacheKey) -> Measurement | None:
    """The cached measurement for `key`, None if there is none (or only a malformed one)."""
    for entry in _entries():
        try:
            measurement = _from_entry(entry)
        except (KeyError, TypeError, ValueError):
            continue
        if measurement.key == key and measurement.spread.best > 0:
            return measurement
    return None


def _write(entries: list[dict]) -> None:
    """Replace the file atomically with these entries."""
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".measurements-", suffix=".json", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"format": FORMAT, "measurements": entries}, out, indent=1)
        os.replace(temporary, directory / FILE_NAME)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def store(measurement: Measurement, warn: Callable[[str], None]) -> bool:
    """Add `measurement`, replacing any entry with its key; warn (never raise) where it cannot be written."""
    key = dataclasses.asdict(measurement.key)
    kept = [entry for entry in _entries() if any(entry.get(name) != value for name, value in key.items())]
    try:
        _write(kept + [_to_entry(measurement)])
    except OSError as error:
        warn(f"could not write the measurement cache {cache_file()} ({error}); the measured figure is used "
             f"for this run only. Set NNS_CACHE_DIR to a writable directory to keep it.")
        return False
    return True


def measured(key: CacheKey, measure: Callable[[], tuple[Spread, str]], fresh: bool,
             warn: Callable[[str], None]) -> tuple[Measurement, bool]:
    """(the cached measurement for `key`, True), or a new one from `measure()` stored in the cache, False.

    `fresh` skips the cache and replaces its entry. `measure` returns the spread and what was timed.
    """
    cached = None if fresh else load(key)
    if cached is not None:
        return cached, True
    spread, method = measure()
    measurement = Measurement(key, spread, method, now())
    store(measurement, warn)
    return measurement, False


def source(measurement: Measurement, cached: bool, unit: str) -> str:
    """'measured on 2026-01-05, cached: best of 5 runs of ... (median ..., lowest ...)'."""
    when = f"measured on {measurement.date}" + (", cached" if cached else "")
    return f"{when}: {measurement.method}, {measurement.spread.describe(unit)}"
