"""Throughput from timed marks, free of any framework.

A *mark* says that ``steps`` steps holding ``samples`` samples had finished by
wall-clock ``time``.  The callback takes one in every batch-end hook, where
Keras has already waited for that step; on JAX those hooks run in worker
threads and may arrive out of order, so marks are kept by step, and a mark's
time is taken as the earliest time at which it *or any later step* was seen
finished.  Rates divide the samples between two marks by the time between
them; nothing before the first mark (or ``start``) is counted, so warm-up
(tracing, compilation) stays out.
"""

from __future__ import annotations

import bisect
import dataclasses


@dataclasses.dataclass(frozen=True)
class Mark:
    """``steps`` steps and ``samples`` samples had finished by ``time`` (seconds)."""

    steps: int
    samples: int
    time: float


@dataclasses.dataclass(frozen=True)
class Rates:
    """Rates over a span of marks: FLOP/s and MFU in FLOPs, not MACs."""

    steps: int
    samples: int
    seconds: float
    samples_per_sec: float
    steps_per_sec: float
    flops_per_sec: float | None
    mfu: float | None

    def as_logs(self) -> dict[str, float]:
        """The figures Keras ``logs`` carry: samples_per_sec, flops_per_sec, mfu (when known)."""
        logs = {"samples_per_sec": self.samples_per_sec}
        if self.flops_per_sec is not None:
            logs["flops_per_sec"] = self.flops_per_sec
        if self.mfu is not None:
            logs["mfu"] = self.mfu
        return logs


def rates(steps: int, samples: int, seconds: float, flops_per_sample, peak_flops) -> Rates | None:
    """Rates of ``samples`` done in ``seconds``: FLOP/s = samples x FLOPs per sample / s; MFU = FLOP/s / peak."""
    if seconds <= 0 or steps <= 0:
        return None
    flops = None if flops_per_sample is None else samples * flops_per_sample / seconds
    mfu = None if flops is None or not peak_flops else flops / peak_flops
    return Rates(steps, samples, seconds, samples / seconds, steps / seconds, flops, mfu)


class ThroughputMeter:
    """Marks of one pass over the data (an epoch, an evaluation), and the rates between them."""

    def __init__(self, flops_per_sample: float | None = None, peak_flops: float | None = None):
        self.flops_per_sample = flops_per_sample
        self.peak_flops = peak_flops
        self.reset()

    def reset(self) -> None:
        """Forget every mark."""
        self._marks: dict[int, Mark] = {}
        self._steps: list[int] = []

    def start(self, steps: int, samples: int, time: float) -> None:
        """Begin the pass here, forgetting earlier marks: e.g. at an epoch's start, 0 steps done."""
        self._marks = {steps: Mark(steps, samples, time)}
        self._steps = [steps]

    @property
    def started(self) -> bool:
        return bool(self._marks)

    def mark(self, steps: int, samples: int, time: float) -> None:
        """Record that ``steps`` steps (``samples`` samples) had finished by ``time``; any order.

        Stored times stay effective: no later than any later step's, so that a step
        is timed by the earliest moment it or a later one was seen finished.
        """
        known = self._marks.get(steps)
        if known is not None and known.samples != samples:
            raise ValueError(f"step {steps} was marked with {known.samples} samples, then {samples}")
        index = bisect.bisect_left(self._steps, steps)
        if known is None:
            self._steps.insert(index, steps)
        if index + 1 < len(self._steps):
            time = min(time, self._marks[self._steps[index + 1]].time)
        if known is not None and known.time <= time:
            return
        self._marks[steps] = Mark(steps, samples, time)
        for position in range(index - 1, -1, -1):  # in-order marks stop at once
            earlier = self._marks[self._steps[position]]
            if earlier.time <= time:
                break
            self._marks[earlier.steps] = dataclasses.replace(earlier, time=time)

    def between(self, first_steps: int, last_steps: int) -> Rates | None:
        """Rates from the mark at ``first_steps`` to the mark at ``last_steps``."""
        if first_steps not in self._marks or last_steps not in self._marks or last_steps <= first_steps:
            return None
        first, last = self._marks[first_steps], self._marks[last_steps]
        _check_increasing(first, last)
        return rates(
            last.steps - first.steps, last.samples - first.samples, last.time - first.time,
            self.flops_per_sample, self.peak_flops,
        )

    def total(self) -> Rates | None:
        """Rates from the first mark to the last."""
        if len(self._steps) < 2:
            return None
        return self.between(self._steps[0], self._steps[-1])


def _check_increasing(first: Mark, last: Mark) -> None:
    if last.samples < first.samples:
        raise ValueError(f"samples must not decrease with steps: {first.samples} at step {first.steps}, "
                         f"then {last.samples} at step {last.steps}")
