"""``NNSCallback``'s constructor arguments, checked at once: a wrong one is a ``ValueError`` before training."""

from __future__ import annotations

import math
import numbers

from .bandwidth import validate_memory_bandwidth
from .peaks import validate_peak_flops


def validate_callback_arguments(update_freq, peak_flops, batch_size, top_layers, count_step, flops_per_step,
                                flops_per_sample, memory_bandwidth=None) -> None:
    """Raise ``ValueError`` naming the first argument that ``NNSCallback`` cannot use."""
    if update_freq != "epoch" and not is_positive_int(update_freq):
        raise ValueError(f"update_freq must be 'epoch' or a positive number of steps, got {update_freq!r}")
    validate_peak_flops(peak_flops)
    validate_memory_bandwidth(memory_bandwidth)
    if batch_size is not None and not is_positive_int(batch_size):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if not is_positive_int(top_layers):
        raise ValueError(f"top_layers must be a positive integer, got {top_layers!r}")
    if count_step not in ("auto", True, False):
        raise ValueError(f"count_step must be 'auto', True or False, got {count_step!r}")
    validate_stated_flops(flops_per_step, flops_per_sample)


def validate_stated_flops(flops_per_step, flops_per_sample) -> None:
    """At most one of them, a positive finite number of FLOPs, else ``ValueError``."""
    if flops_per_step is not None and flops_per_sample is not None:
        raise ValueError("pass flops_per_step or flops_per_sample, not both: they state the same work")
    validate_flops("flops_per_step", flops_per_step)
    validate_flops("flops_per_sample", flops_per_sample)


def validate_flops(name: str, value) -> None:
    """``None`` or a positive finite number of FLOPs, else ``ValueError`` naming ``name``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of FLOPs (not MACs), got {value!r}")


def is_positive_int(value) -> bool:
    """An int (not a bool) of at least 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
