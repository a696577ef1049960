"""The records ``NNSCallback`` keeps of a fit and of each pass over the data, and the step and sample counts of a
pass as the hooks and the data tell them.  Framework-free but for Keras's sample count, read through a function
the callback passes in."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from . import keras_compat as compat
from .throughput import BatchPlan, PassMeter, PassTimes, StepWork, pass_report


@dataclasses.dataclass
class PassRecord:
    """One pass under way (training epoch, validation, evaluation, prediction): its clock and batch plan.

    ``end``: where its steps were over (a training epoch's: before its validation); ``counted``: Keras's
    count of its samples, where read; ``iterations``: ``optimizer.iterations`` when the fit started."""

    meter: PassMeter
    plan: BatchPlan | None = None
    begin: float = 0.0
    compiles: bool = False
    iterations: int = 0
    report: object = None
    end: float | None = None
    counted: float | None = None

    def start(self, time: float, compiles: bool) -> None:
        """A new pass begins at ``time``; ``compiles``: its first step traces and compiles the step function."""
        self.meter.begin()
        self.report = self.end = self.counted = None
        self.compiles = compiles
        self.begin = time


@dataclasses.dataclass
class FitState:
    """What the callback knows of the running ``fit``; ``None`` between fits (a fit that raised leaves it set,
    and the next pass ends it)."""

    ledger: object  # fit_context.SampleLedger
    keras_tb: object  # a keras.callbacks.TensorBoard writing our logs, or None
    steps_per_epoch: int | None
    steps_per_execution: int
    compiles: bool  # the train function is new: the first epoch compiles it
    start: int  # the step axis where the fit started
    restart: int | None  # where a resumed run restarts its axis
    measures_memory: bool  # the device reports the peak bytes in use
    staged: object = None  # summary_writer.Staged: what the first epoch writes
    panels_at: tuple | None = None  # (cost key, step) of the staged cost panels
    first_epoch: bool = True
    keras_tb_batches: bool = False
    wrote_status: bool = False
    wrote_count: bool = False

    def keras_tb_writes(self, level: str) -> bool:
        """Whether a keras.callbacks.TensorBoard in our log_dir writes ``level``-wise logs, ours included."""
        return self.keras_tb is not None and (level == "epoch" or self.keras_tb.update_freq != "epoch")


def end_steps(train: PassRecord, fit: FitState, time: float, read_count) -> None:
    """The epoch's steps ended by ``time``; Keras's count of their samples (``read_count()``, a device read) where
    neither the data's ledger nor an exact plan tells them."""
    train.end = time
    if not fit.ledger.watching and (train.plan is None or not train.plan.exact):
        train.counted = read_count()


class PassCounts(NamedTuple):
    """A pass's steps and samples, and the samples of its first finished step(s) (the start-up mark)."""

    steps: int
    samples: float | None
    first_samples: float | None


def epoch_counts(train: PassRecord, fit: FitState, last_batch: int, iterations_delta) -> PassCounts:
    """The counts of the epoch that ended."""
    steps = steps_run(last_batch, fit, iterations_delta)
    return PassCounts(steps, *samples_of(train, steps, fit.ledger))


def steps_run(last_batch: int, fit: FitState, iterations_delta) -> int:
    """The training steps of an epoch, from the last batch index Keras passed to the hooks (no device read);
    from ``optimizer.iterations`` (``iterations_delta()``) where no hook ran."""
    if last_batch < 0:
        return max(iterations_delta(), 0)
    steps = compat.steps_done(last_batch, fit.steps_per_execution)
    return min(steps, fit.steps_per_epoch) if fit.steps_per_epoch else steps


def samples_of(record: PassRecord, steps: int, ledger=None) -> tuple[float | None, float | None]:
    """Samples of a pass and of its first finished step(s), exact where the data or Keras tell: a ledger of
    a generator's batches, Keras's count (``record.counted``), a plan of arrays."""
    first = record.meter.first
    counted = (ledger.samples(0, steps) if ledger else None) or record.counted
    plan = record.plan
    samples = counted or (plan.samples(steps) if plan else None)
    first_samples = None
    if first is not None:
        first_samples = (ledger.samples(0, first.steps) if ledger else None) or (
            plan.samples(first.steps) if plan else (samples / steps * first.steps if samples else None))
    return samples, first_samples


def forward_report(record: PassRecord, end: float, samples, work: StepWork, peak):
    """The report of an evaluation or prediction pass: its steps from its hooks, capped by the data's."""
    meter, plan = record.meter, record.plan
    steps = meter.last.steps if meter.last else 0
    if plan is not None and plan.num_batches:
        steps = min(steps, plan.num_batches) if steps else plan.num_batches
    first = meter.first
    first_samples = plan.samples(first.steps) if plan and first else None
    samples = samples or (plan.samples(steps) if plan else None)
    return pass_report(PassTimes(record.begin, end, first), steps, samples, first_samples, work, peak,
                       record.compiles)
