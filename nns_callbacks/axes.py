"""Where the callback's summaries go on TensorBoard's step axis: framework-free.

Two axes, as ``keras.callbacks.TensorBoard`` has them: the training step
(``batch_*`` windows, the cost panels, ``evaluation_*`` and ``prediction_*``) and the
epoch (``epoch_*``).  The training step is the number of training steps run, which
is ``optimizer.iterations`` for a model that steps its optimizer once per batch, and
a count of our own for a custom ``train_step`` whose optimizers are its own.  It
continues across fits, recompiles and models, and after a process restart where the
log directory already holds our summaries; a run resumed from a checkpoint at an
earlier step than what is on disk starts again from there, with a restart marker
(``SessionLog.START``) that makes TensorBoard drop the orphaned later points.  Only our
own event files decide (another writer's tags never move our axes).
"""

from __future__ import annotations

import dataclasses
import os

from . import event_files

MAX_STEP = 2**63 - 1
"""The largest step an event can hold (int64)."""

KINDS = ("cost", "batch", "epoch", "evaluation", "prediction", "status")
STEP_KINDS = ("cost", "batch", "evaluation", "prediction")
"""The kinds of tag on the training-step axis (``epoch`` is on the epoch axis; ``status``, the run-status
document, counts its own writes)."""


def kind_of(run: str, tag: str) -> str | None:
    """Which axis kind one of our tags is on: ``cost``, ``batch``, ``epoch``, ``evaluation``, ``prediction``."""
    if tag.startswith("epoch_"):
        return "epoch"
    if run == "train" and tag.startswith("batch_"):
        return "batch"
    if run == "train" and tag == "nns/run":
        return "status"
    if run == "train" and (tag.startswith(("cost/", "nns/"))):
        return "cost"
    if run == "validation" and tag.startswith(("evaluation_", "prediction_")):
        return tag.split("_", 1)[0]
    return None


def written_steps(folders: dict[str, str], suffix: str) -> dict[str, int]:
    """The last step of each kind in our event files (name ending in ``suffix``) of ``folders`` (run -> folder),
    after the restarts they mark; -1 where none is."""
    last = dict.fromkeys(KINDS, -1)
    for run, folder in folders.items():
        for path in _event_files(folder, suffix):
            for event in event_files.read_events(path):
                if event.HasField("session_log") and event.session_log.status == event.session_log.START:
                    for kind in KINDS:  # TensorBoard drops the run's events at this step and later
                        last[kind] = min(last[kind], event.step - 1)
                for value in event.summary.value:
                    kind = kind_of(run, value.tag)
                    if kind is not None:
                        last[kind] = max(last[kind], event.step)
    return last


def _event_files(folder: str, suffix: str) -> list[str]:
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if n.startswith("events.out.tfevents.") and n.endswith(suffix)]


@dataclasses.dataclass
class Axes:
    """The step and epoch axes of one callback, from the last steps already written (``written``)."""

    written: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(KINDS, -1))
    steps: int | None = None
    """Training steps on the axis so far (``None`` before the first fit)."""
    epoch_shift: int = 0
    _epoch_start: int = 0

    def begin_fit(self, iterations: int) -> int | None:
        """A fit starts with the model's ``optimizer.iterations``; the step at which to mark a restart, if any.

        The first fit of a callback resumes at ``iterations`` where what is on disk goes past it (a restart
        from a checkpoint), continues after what is on disk for a fresh model (``iterations`` 0), and follows
        ``iterations`` otherwise; later fits continue the axis (a recompiled optimizer counts from 0 again).
        """
        restart = None
        if self.steps is None:
            on_disk = max(self.written[kind] for kind in STEP_KINDS)
            # a point at ``iterations`` itself is the state after those steps (a window's end), not orphaned;
            # cost panels there would be written a second time, so they restart the axis too
            if iterations > 0 and (on_disk > iterations or self.written["cost"] >= iterations):
                restart = iterations
                for kind in KINDS:
                    self.written[kind] = min(self.written[kind], iterations - 1)
            self.steps = iterations if iterations > 0 else on_disk + 1
        else:
            self.steps = max(self.steps, iterations)
        self._epoch_start = self.steps
        return restart

    def begin_epoch(self, epoch: int, first_of_fit: bool) -> None:
        """An epoch starts (Keras's 0-based ``epoch``); the first of a fit continues the epoch axis after ours."""
        if first_of_fit:
            self.epoch_shift = max(0, self.written["epoch"] + 1 - epoch)
        self._epoch_start = self.steps or 0

    def step_in_epoch(self, steps_done: int) -> int:
        """The axis step after ``steps_done`` steps of the running epoch."""
        return self._epoch_start + steps_done

    def end_epoch(self, steps_run: int) -> None:
        """The running epoch ran ``steps_run`` steps."""
        self.steps = self._epoch_start + max(0, steps_run)
        self._epoch_start = self.steps

    def epoch(self, epoch: int) -> int:
        """The axis step of Keras's ``epoch``."""
        return epoch + self.epoch_shift

    @property
    def step(self) -> int:
        """The axis step now: after the steps run so far, or where our summaries on disk stand before a fit."""
        if self.steps is None:
            return max(0, self.written["cost"], self.written["batch"])
        return self.steps

    def standalone(self, kind: str) -> int:
        """The step of an ``evaluate`` or ``predict`` outside ``fit``: now, after any of its kind written before."""
        step = max(self.step, self.written[kind] + 1)
        self.written[kind] = step
        return step

    def wrote(self, kind: str, step: int) -> None:
        """Record that a tag of ``kind`` was written at ``step``."""
        self.written[kind] = max(self.written[kind], step)
