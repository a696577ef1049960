"""Timing a device's rate honestly: runs synchronised at their ends, repeated, the best kept.

A run repeats one step (a matrix product, a large copy) until about ``seconds`` have passed, syncing
between batches of steps, and divides the work by the time. ``best_of`` repeats runs after a warm-up and
keeps the best, with the median and the lowest beside it (``Spread``): on a machine shared with other
work the slow runs are the other work's, the best run is the device's.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable

MAX_STEPS = 100_000


@dataclasses.dataclass(frozen=True)
class Spread:
    """Best, median and lowest rate of `runs` timed runs on one device (work per second)."""

    best: float
    median: float
    low: float
    runs: int

    @property
    def ratio(self) -> float:
        """best / low - 1: how far the slowest run fell below the best."""
        return self.best / self.low - 1.0 if self.low > 0 else float("inf")

    def describe(self, unit: str) -> str:
        """'best of 5 runs (median 160 G, lowest 150 G FLOP/s)'."""
        return (f"best of {self.runs} runs (median {_si(self.median)}, lowest {_si(self.low)} {unit}"
                f" per device)")


def _si(value: float) -> str:
    """A rate with an SI prefix, 4 significant digits: '163.2 G'."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}"
    return f"{value:.4g} "


def spread_of(rates: list[float]) -> Spread:
    """The Spread of a list of rates."""
    if not rates:
        raise ValueError("spread_of needs at least one rate")
    return Spread(max(rates), statistics.median(rates), min(rates), len(rates))


def best_of(run: Callable[[], float], runs: int, warmups: int = 1) -> Spread:
    """Spread of `runs` calls of `run()` (each a rate), after `warmups` calls whose rates are dropped."""
    for _ in range(warmups):
        run()
    return spread_of([run() for _ in range(max(1, int(runs)))])


def _next_batch(steps: int, elapsed: float, seconds: float) -> int:
    """Steps to run before the next sync, aiming to end at `seconds`."""
    if elapsed <= 0:
        return 4 * steps
    remaining = int((seconds - elapsed) * steps / elapsed)
    return max(1, min(remaining, 4 * steps))


def timed_rate(step: Callable[[], object], sync: Callable[[object], None], work: float, seconds: float,
               clock=time.perf_counter) -> float:
    """`work` per step times the steps of `step()` run for about `seconds`, over the synced wall time."""
    steps, batch, elapsed, start = 0, 1, 0.0, clock()
    while elapsed < seconds and steps < MAX_STEPS:
        for _ in range(batch):
            out = step()
        sync(out)
        steps += batch
        elapsed = clock() - start
        batch = _next_batch(steps, elapsed, seconds)
    if elapsed <= 0:
        raise RuntimeError("timed_rate: the clock did not advance")
    return work * steps / elapsed


def sync(tensor) -> None:
    """Block until `tensor` is computed by fetching one element (as float32)."""
    from keras import ops

    ops.convert_to_numpy(ops.cast(tensor[0, 0], "float32"))
