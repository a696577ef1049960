"""The old home of the accelerator code, kept so that its import names go on working.

Where things live now: ``devices`` (every probe of the accelerator, per backend), ``chips`` (the one
table of chips: name matching, dense peaks, memory bandwidth, sources), ``peaks`` (``Peak``,
``resolve_peak``, ``measure_peak``), ``bandwidth`` (``Bandwidth``, ``resolve_bandwidth``),
``measure_cache`` (measured figures kept per machine) and ``timing`` (repeated, synced timings).
"""

from __future__ import annotations

from .bandwidth import Bandwidth, resolve_bandwidth, validate_memory_bandwidth
from .chips import PRECISIONS, match_chip, precision_for, table_bandwidth, table_peak
from .devices import accelerator_names, tf32_enabled
from .devices import accelerator_names as detect_accelerators
from .peaks import Peak, matmul_size, measure_peak, resolve_peak, validate_peak_flops

__all__ = [
    "PRECISIONS", "Bandwidth", "Peak", "accelerator_names", "detect_accelerators", "match_chip", "matmul_size",
    "measure_peak", "precision_for", "resolve_bandwidth", "resolve_peak", "table_bandwidth", "table_peak",
    "tf32_enabled", "validate_memory_bandwidth", "validate_peak_flops",
]
