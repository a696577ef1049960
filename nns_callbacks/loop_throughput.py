"""``Throughput``: samples/s, steps/s, FLOP/s and MFU for a training loop of your own, free of any framework.

Give it running totals after each step (``update``) and read the rates over the last ``window`` steps
(``compute``).  Time the way the callback does: read the clock once the step's result is on the host (a
logged loss), never by synchronising the device for it.
"""

from __future__ import annotations

import collections
import time as _time
from typing import NamedTuple

from .arguments import is_positive_int, validate_flops
from .peaks import is_positive_number
from .throughput import Rates, Work, rates


class Total(NamedTuple):
    """Running totals at ``time`` (seconds): steps and samples done (``None``: samples unknown)."""

    time: float
    steps: int
    samples: float | None


class Throughput:
    """Rates of a custom training loop over its last ``window`` updates.

    Args:
        window: how many of the latest updates the rates span (the latest ``window`` steps, one update a step).
        flops_per_sample, flops_per_step: model FLOPs (not MACs) of one sample's forward and backward pass and of
            one step's optimizer update; or ``cost``, a ``ModelCost``, that gives both.
        peak_flops: peak FLOP/s of the hardware the loop runs on, summed over its devices, for MFU.

    ``compute()`` returns a ``Rates`` record (``samples_per_sec``, ``steps_per_sec``, ``flops_per_sec`` in FLOP/s,
    ``mfu``; ``None`` where unknown) or ``None`` before two updates; ``Rates.as_logs()`` is a dict to log.
    """

    def __init__(self, window: int = 100, flops_per_sample=None, flops_per_step=None, peak_flops=None, cost=None):
        if not is_positive_int(window):
            raise ValueError(f"window must be a positive number of updates, got {window!r}")
        if cost is not None and (flops_per_sample is not None or flops_per_step is not None):
            raise ValueError("pass cost or flops_per_sample/flops_per_step, not both: they state the same work")
        validate_flops("flops_per_sample", flops_per_sample)
        validate_flops("flops_per_step", flops_per_step)
        if peak_flops is not None and not is_positive_number(peak_flops):
            raise ValueError(f"peak_flops must be a positive number of FLOP/s or None, got {peak_flops!r}")
        self.window, self.peak_flops = window, peak_flops
        self.work = _work(cost, flops_per_sample, flops_per_step)
        self._totals: collections.deque[Total] = collections.deque(maxlen=window + 1)

    def update(self, *, steps: int, samples: float | None = None, time: float | None = None) -> None:
        """Record the running totals after a step: ``steps`` and ``samples`` done so far, at ``time`` (seconds,
        default ``time.perf_counter()``).  A total that goes back is a ``ValueError``."""
        now = _time.perf_counter() if time is None else float(time)
        if self._totals:
            last = self._totals[-1]
            if now < last.time or steps < last.steps:
                raise ValueError(f"time and steps are running totals and must not decrease: got time {now}, steps "
                                 f"{steps} after time {last.time}, steps {last.steps}")
            if samples is not None and last.samples is not None and samples < last.samples:
                raise ValueError(f"samples is a running total and must not decrease: got {samples} after "
                                 f"{last.samples}")
        self._totals.append(Total(now, steps, samples))

    def compute(self) -> Rates | None:
        """The rates between the oldest and the latest update of the window: FLOP/s = work / s, MFU = FLOP/s /
        peak_flops; ``None`` before two updates or where no time passed."""
        if len(self._totals) < 2:
            return None
        first, last = self._totals[0], self._totals[-1]
        known = first.samples is not None and last.samples is not None
        samples = last.samples - first.samples if known else None
        return rates(last.steps - first.steps, samples, last.time - first.time, self.work, self.peak_flops)

    def reset(self) -> None:
        """Forget every update (a new epoch, a pause in the loop)."""
        self._totals.clear()


def _work(cost, flops_per_sample, flops_per_step) -> Work | None:
    """The model FLOPs behind FLOP/s: forward and backward per sample, the optimizer update per step."""
    if cost is not None:
        return Work((cost.forward_flops + cost.backward_flops) / cost.batch_size, float(cost.optimizer_flops))
    if flops_per_sample is None and flops_per_step is None:
        return None
    return Work(float(flops_per_sample or 0.0), float(flops_per_step or 0.0))
