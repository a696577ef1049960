"""Throughput over measurement windows, free of any framework.

A window runs between two *edges*: moments at which the device has finished
every step counted so far (the callback takes them where Keras has already
synchronised a step's results).  Rates divide a window's work by its wall time;
steps before the first edge (tracing, compilation) are never counted.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Edge:
    """Cumulative ``steps`` and ``samples`` finished at wall-clock ``time`` (seconds)."""

    steps: int
    samples: int
    time: float


@dataclasses.dataclass(frozen=True)
class Rates:
    """Rates of one or more windows: FLOP/s and MFU in FLOPs, not MACs."""

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
    """Windows between edges, and the running total of the windows since ``reset``.

    ``start`` opens a segment (after warm-up, or after a pause such as
    validation); every ``edge`` closes the window since the previous edge;
    ``pause`` ends the segment so that the time until the next ``start`` is not
    counted.
    """

    def __init__(self, flops_per_sample: float | None = None, peak_flops: float | None = None):
        self.flops_per_sample = flops_per_sample
        self.peak_flops = peak_flops
        self.reset()

    def reset(self) -> None:
        """Forget all windows and the open segment."""
        self._last: Edge | None = None
        self._steps = 0
        self._samples = 0
        self._seconds = 0.0

    def start(self, steps: int, samples: int, time: float) -> None:
        """Open a segment at this edge; nothing before it is counted."""
        self._last = Edge(steps, samples, time)

    def pause(self) -> None:
        """Close the segment: time until the next ``start`` is not counted."""
        self._last = None

    @property
    def started(self) -> bool:
        return self._last is not None

    def edge(self, steps: int, samples: int, time: float) -> Rates | None:
        """Close the window since the last edge; its rates, or ``None`` outside a segment."""
        current = Edge(steps, samples, time)
        previous, self._last = self._last, current
        if previous is None:
            return None
        _check_increasing(previous, current)
        window = (current.steps - previous.steps, current.samples - previous.samples, current.time - previous.time)
        self._steps += window[0]
        self._samples += window[1]
        self._seconds += window[2]
        return rates(*window, self.flops_per_sample, self.peak_flops)

    def total(self) -> Rates | None:
        """Rates over all closed windows since ``reset``."""
        return rates(self._steps, self._samples, self._seconds, self.flops_per_sample, self.peak_flops)


def _check_increasing(previous: Edge, current: Edge) -> None:
    for field in ("steps", "samples", "time"):
        before, after = getattr(previous, field), getattr(current, field)
        if after < before:
            raise ValueError(f"{field} must not decrease between edges: {before} then {after}")
