"""Throughput of passes over the data, free of any framework.

A *pass* is one training epoch, one evaluation or one prediction.  Every pass is
timed as the wall clock sees it, from its begin hook to its end (``pass_report``),
with a breakdown: the steady-state rate after its first step(s), the start-up of
its first step (a new data iterator) and, where its first step compiled the step
function, that compilation time, which is taken out of its rates.  The callback
reports each finished step (a batch-end hook, where Keras has already waited for
the step) as ``step_end(steps, time)``: windows of ``window_steps`` steps are timed
between such hooks.  Hooks may arrive late or out of
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
from typing import NamedTuple

NAN = float("nan")


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """Samples per step of one pass: ``batch_size``, and a smaller last batch after ``num_batches``; ``exact``:
    every step holds what the plan says (arrays sliced by Keras), not only the first."""

    batch_size: int
    num_batches: int | None = None
    partial_batch_size: int | None = None
    exact: bool = False

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
class StepWork:
    """The FLOPs of a pass's steps: ``model`` (the model's own, what MFU counts) and ``hardware`` (what the
    step counted as it runs executes: rematerialisation, random numbers, a GAN's several passes: HFU);
    ``None`` where unknown."""

    model: Work | None = None
    hardware: Work | None = None

    @property
    def achieved(self) -> Work | None:
        """The work FLOP/s are reported for: the model's where known, else the counted step's."""
        return self.model if self.model is not None else self.hardware


class Rates(NamedTuple):
    """Rates over a span of steps.  FLOP/s, MFU and HFU count FLOPs, not MACs; ``None``: unknown."""

    steps: int
    samples: float | None
    seconds: float
    samples_per_sec: float | None
    steps_per_sec: float
    flops_per_sec: float | None
    mfu: float | None
    hfu: float | None = None

    def as_logs(self, flops: bool = True, mfu: bool = True, hfu: bool = False,
                tokens_per_sample: int | None = None) -> dict[str, float]:
        """Keras ``logs``: samples_per_sec, steps_per_sec, tflops_per_sec (TFLOP/s = 1e12 FLOP/s), mfu, hfu, and
        tokens_per_sec (samples/s x ``tokens_per_sample``, padding included) for a token-sequence model.

        ``flops``, ``mfu`` and ``hfu`` say whether those keys belong to this run at all
        (a known cost, a known peak, a counted step); an unknown value is NaN.
        """
        logs = {"samples_per_sec": _or_nan(self.samples_per_sec), "steps_per_sec": self.steps_per_sec}
        if tokens_per_sample:
            logs["tokens_per_sec"] = _or_nan(self.samples_per_sec and self.samples_per_sec * tokens_per_sample)
        if flops:
            logs["tflops_per_sec"] = NAN if self.flops_per_sec is None else self.flops_per_sec / 1e12
        if mfu:
            logs["mfu"] = _or_nan(self.mfu)
        if hfu:
            logs["hfu"] = _or_nan(self.hfu)
        return logs


def empty_logs(flops: bool = True, mfu: bool = True, hfu: bool = False,
               tokens_per_sample: int | None = None) -> dict[str, float]:
    """The rate keys of a pass with nothing measurable: all NaN."""
    return Rates(0, None, 0.0, None, NAN, None, None).as_logs(flops, mfu, hfu, tokens_per_sample)


def _or_nan(value: float | None) -> float:
    return NAN if value is None else value


def rates(steps: int, samples: float | None, seconds: float, work, peak_flops: float | None) -> Rates | None:
    """Rates of ``steps`` (``samples``) done in ``seconds``: FLOP/s = work's FLOPs / s; MFU = model FLOP/s / peak;
    HFU = counted FLOP/s / peak.  ``work``: a ``StepWork``, a ``Work`` (the model's) or ``None``."""
    if seconds <= 0 or steps <= 0:
        return None
    if samples is not None and samples < 0:
        raise ValueError(f"samples must not decrease: {samples} over {steps} steps")
    work = work if isinstance(work, StepWork) else StepWork(work)

    def per_sec(of: Work | None) -> float | None:
        return None if of is None or samples is None else of.flops(samples, steps) / seconds

    model, hardware, achieved = per_sec(work.model), per_sec(work.hardware), per_sec(work.achieved)
    mfu = None if model is None or not peak_flops else model / peak_flops
    hfu = None if hardware is None or not peak_flops else hardware / peak_flops
    samples_per_sec = None if samples is None else samples / seconds
    return Rates(steps, samples, seconds, samples_per_sec, steps / seconds, achieved, mfu, hfu)


class Mark(NamedTuple):
    """``steps`` steps of the pass had finished by ``time`` (seconds)."""

    steps: int
    time: float


class Window(NamedTuple):
    """The marks that open and close a window of steps."""

    start: Mark
    end: Mark


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

    def step_end(self, steps: int, time: float) -> Window | None:
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
            window, self._edge = Window(self._edge, mark), mark
            return window

    def span(self) -> Window | None:
        """The first and last finished step of the pass; ``None`` before two steps were seen."""
        with self._lock:
            if self.first is None or self.last is self.first:
                return None
            return Window(self.first, self.last)


def window_rates(
    window: Window, plan: BatchPlan | None, work, peak: float | None, samples: float | None = None
) -> Rates | None:
    """Rates of one window; ``samples`` where the data told them, else from the batch plan (unknown without one)."""
    start, end = window
    if samples is None and plan is not None:
        samples = plan.samples(end.steps) - plan.samples(start.steps)
    return rates(end.steps - start.steps, samples, end.time - start.time, work, peak)


class PassTimes(NamedTuple):
    """The wall clock of one pass: its ``begin`` and ``end`` (hooks where the device is idle or synchronised)
    and ``first``, the first finished step(s) seen."""

    begin: float
    end: float
    first: Mark | None


class PassReport(NamedTuple):
    """Where a pass's time went: ``rates`` over its wall time (less ``compile_seconds``), the steady-state
    rate after its first step(s), and its start-up (the first steps' time beyond the steady rate: a new data
    iterator, and in a pass that compiles, the tracing and compilation, reported as ``compile_seconds``)."""

    rates: Rates | None
    steady_samples_per_sec: float | None
    startup_seconds: float | None
    compile_seconds: float | None

    def extras(self) -> dict[str, float]:
        """The time breakdown for TensorBoard: steady_samples_per_sec, startup_seconds, compile_seconds."""
        names = ("steady_samples_per_sec", "startup_seconds", "compile_seconds")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


def pass_report(
    times: PassTimes,
    steps: int | None,
    samples: float | None,
    first_samples: float | None,
    work,
    peak: float | None,
    compiles: bool = False,
) -> PassReport:
    """Rates of a pass as the wall clock sees it, from ``begin`` to ``end``.

    ``steps`` and ``samples``: the whole pass's (``None``: unknown); ``first_samples``: those of the
    first finished step(s) (``times.first``); ``compiles``: whether its first step traced and compiled
    the step function, whose time is then taken out of the rates and reported as ``compile_seconds``.
    """
    if not steps or times.end <= times.begin:
        return PassReport(None, None, None, None)
    first = times.first if times.first is not None and times.first.steps < steps else None
    per_step = startup = steady = None
    if first is not None and times.end > first.time:
        per_step = (times.end - first.time) / (steps - first.steps)
        startup = max(0.0, (first.time - times.begin) - first.steps * per_step)
        if samples is not None and first_samples is not None:
            steady = (samples - first_samples) / (times.end - first.time)
    compile_seconds = startup if compiles else 0.0
    seconds = (times.end - times.begin) - (compile_seconds or 0.0)
    return PassReport(rates(steps, samples, seconds, work, peak), steady, startup, compile_seconds)
