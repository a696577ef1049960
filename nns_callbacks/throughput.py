"""Throughput of passes over the data, free of any framework.

A *pass* is one training epoch, one evaluation or one prediction.  The callback
reports each finished step (a batch-end hook, where Keras has already waited for
the step) as ``step_end(steps, time)``.  Every pass is timed the same way: from
its first finished step to its last, so that the first step's tracing,
compilation and data start-up stay out.  Hooks may arrive late or out of
order (Keras runs async-safe hooks in worker threads): a step counts when a
hook reports more steps than any before it, at the time that hook ran, which is
the earliest moment that step (or a later one) was seen finished; a late hook
only matters if it moves the pass's start earlier.  A pass keeps three marks
whatever its length.

Samples come from a :class:`BatchPlan` where the batch size is known, and at
the end of a pass from the exact counts of steps and samples, where the
framework keeps them.
"""

from __future__ import annotations

import dataclasses
import threading

NAN = float("nan")


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """Samples per step of one pass: ``batch_size``, and a smaller last batch after ``num_batches``."""

    batch_size: int
    num_batches: int | None = None
    partial_batch_size: int | None = None

    def samples(self, steps: int) -> int:
        """Samples done after ``steps`` steps of the pass."""
        done = steps * self.batch_size
        if self.partial_batch_size and self.num_batches and steps >= self.num_batches:
            done -= self.batch_size - self.partial_batch_size
        return done


@dataclasses.dataclass(frozen=True)
class Work:
    """FLOPs of training or inference: per sample (forward, backward) and per step (the optimizer update)."""

    per_sample: float
    per_step: float = 0.0

    def flops(self, samples: float, steps: int) -> float:
        """samples x FLOPs per sample + steps x FLOPs per step."""
        return samples * self.per_sample + steps * self.per_step


@dataclasses.dataclass(frozen=True)
class Rates:
    """Rates over a span of steps.  FLOP/s and MFU count FLOPs, not MACs; ``None``: unknown."""

    steps: int
    samples: float | None
    seconds: float
    samples_per_sec: float | None
    steps_per_sec: float
    flops_per_sec: float | None
    mfu: float | None

    def as_logs(self, flops: bool = True, mfu: bool = True) -> dict[str, float]:
        """Keras ``logs``: samples_per_sec, steps_per_sec, tflops_per_sec (TFLOP/s = 1e12 FLOP/s), mfu.

        ``flops`` and ``mfu`` say whether those keys belong to this run at all
        (a known cost, a known peak); an unknown value is NaN.
        """
        logs = {"samples_per_sec": _or_nan(self.samples_per_sec), "steps_per_sec": self.steps_per_sec}
        if flops:
            logs["tflops_per_sec"] = NAN if self.flops_per_sec is None else self.flops_per_sec / 1e12
        if mfu:
            logs["mfu"] = _or_nan(self.mfu)
        return logs


def empty_logs(flops: bool = True, mfu: bool = True) -> dict[str, float]:
    """The rate keys of a pass with nothing measurable: all NaN."""
    return Rates(0, None, 0.0, None, NAN, None, None).as_logs(flops, mfu)


def _or_nan(value: float | None) -> float:
    return NAN if value is None else value


def rates(steps: int, samples: float | None, seconds: float, work: Work | None, peak_flops: float | None) -> Rates | None:
    """Rates of ``steps`` (``samples``) done in ``seconds``: FLOP/s = work.flops / s; MFU = FLOP/s / peak."""
    if seconds <= 0 or steps <= 0:
        return None
    if samples is not None and samples < 0:
        raise ValueError(f"samples must not decrease: {samples} over {steps} steps")
    flops = None if work is None or samples is None else work.flops(samples, steps) / seconds
    mfu = None if flops is None or not peak_flops else flops / peak_flops
    per_sec = None if samples is None else samples / seconds
    return Rates(steps, samples, seconds, per_sec, steps / seconds, flops, mfu)


@dataclasses.dataclass(frozen=True)
class Mark:
    """``steps`` steps of the pass had finished by ``time`` (seconds)."""

    steps: int
    time: float


class PassMeter:
    """One pass: its first and latest finished step, and the edges of windows of ``window_steps`` steps.

    ``step_end`` is the hot path: a few comparisons under a lock and one small mark per new step.
    """

    def __init__(self, window_steps: int | None = None):
        if window_steps is not None and window_steps < 1:
            raise ValueError(f"window_steps must be a positive number of steps or None, got {window_steps!r}")
        self.window_steps = window_steps
        self._lock = threading.Lock()
        self.begin()

    def begin(self) -> None:
        """A new pass: nothing finished yet."""
        with self._lock:
            self.first: Mark | None = None
            self.last: Mark | None = None
            self._edge: Mark | None = None

    def step_end(self, steps: int, time: float) -> tuple[Mark, Mark] | None:
        """``steps`` steps had finished by ``time``; the window (start, end) this closes, if any."""
        with self._lock:
            if self.last is not None and steps <= self.last.steps:
                if steps < self.first.steps and time < self.first.time:  # a late hook of an earlier start
                    earlier = Mark(steps, time)
                    if self._edge is self.first:  # no window closed yet: it opens there too
                        self._edge = earlier
                    self.first = earlier
                return None  # a later step was already seen finished: nothing new
            mark = Mark(steps, time)
            self.last = mark
            if self.first is None:
                self.first = self._edge = mark
                return None
            if time < self._edge.time:  # a later step seen earlier: the open marks had finished by then too
                if self._edge is self.first:
                    self.first = Mark(self.first.steps, time)
                    self._edge = self.first
                else:
                    self._edge = Mark(self._edge.steps, time)
            if time < self.first.time:
                self.first = Mark(self.first.steps, time)
            if self.window_steps is None or steps - self._edge.steps < self.window_steps:
                return None
            window, self._edge = (self._edge, mark), mark
            return window

    def span(self) -> tuple[Mark, Mark] | None:
        """(first, last) finished step of the pass; ``None`` before two steps were seen."""
        with self._lock:
            if self.first is None or self.last is self.first:
                return None
            return self.first, self.last


def window_rates(window: tuple[Mark, Mark], plan: BatchPlan | None, work: Work | None, peak: float | None) -> Rates | None:
    """Rates of one window; samples from the batch plan (unknown without one)."""
    start, end = window
    samples = None if plan is None else plan.samples(end.steps) - plan.samples(start.steps)
    return rates(end.steps - start.steps, samples, end.time - start.time, work, peak)


def pass_rates(
    span: tuple[Mark, Mark] | None,
    plan: BatchPlan | None,
    work: Work | None,
    peak: float | None,
    total_steps: int | None = None,
    total_samples: float | None = None,
) -> Rates | None:
    """Rates of a pass from its first finished step to its last.

    ``total_steps`` and ``total_samples`` are the exact counts of the whole pass
    where the framework keeps them; they correct a last hook that reports more
    steps than ran (``steps_per_execution`` not dividing the pass) and give the
    samples of any input.  The samples before the span are the first hook's
    steps of full batches (of the plan, else of the pass's mean batch).
    """
    if span is None:
        return None
    first, last = span
    end_steps = last.steps if total_steps is None else min(last.steps, total_steps)
    if end_steps <= first.steps:
        return None
    samples = None
    if total_samples is not None:
        per_step = plan.batch_size if plan is not None else total_samples / max(total_steps or end_steps, 1)
        samples = total_samples - first.steps * per_step
    elif plan is not None:
        samples = plan.samples(end_steps) - plan.samples(first.steps)
    return rates(end_steps - first.steps, samples, last.time - first.time, work, peak)
