"""What ``NNSCallback`` writes into TensorBoard, and at which step: the event files (``summary_writer``), the
axes (``axes``), the cost panels (prepared while a fit starts, written at its first epoch), the run's status.
Only the chief of a multi-worker job writes."""

from __future__ import annotations

import keras

from . import axes as axes_module
from . import panels
from .summary_writer import Staged, SummaryWriters
from .tensorboard_plugin import metadata


class RunSummaries:
    """The summaries of one callback under ``log_dir`` (``None``: nothing is written, the axes still count)."""

    def __init__(self, log_dir: str | None, top_layers: int, windows: bool):
        self.writers = SummaryWriters(log_dir) if log_dir else None
        self.axes: axes_module.Axes | None = None
        self.chief = True
        self.top_layers = top_layers
        self.windows = windows
        self._panels_key = None  # the cost key of the panels last written

    @property
    def writing(self) -> bool:
        """Whether this process writes: there is a log directory and it is the chief."""
        return self.writers is not None and self.chief

    def open(self) -> axes_module.Axes:
        """Take this writer's place in the log directory; the axes, read from what is there the first time."""
        if self.writers is not None:
            self.writers.open()
        if self.axes is None:
            written = dict.fromkeys(axes_module.KINDS, -1)
            if self.writers is not None:
                folders = {run: self.writers.run_folder(run) for run in ("train", "validation")}
                written = axes_module.written_steps(folders, ".nns")
            self.axes = axes_module.Axes(written)
        return self.axes

    def stage_start(self, run, start: int, restart: int | None, measures_memory: bool) -> tuple[Staged, tuple | None]:
        """What the first epoch of a fit writes, made now: the restart marker of a resumed run and the cost
        panels where the cost changed (``fit(epochs=0)`` writes none of it); with the panels' (key, step)."""
        staged, panels_at = Staged(), None
        if not self.writing:
            return staged, panels_at
        if restart is not None:
            for name in ("train", "validation"):
                staged.restart(name, restart)
        if self.cost_panels_due(run, start):
            panels_at = run.key, start
            self.write_cost_panels(run, start, measures_memory, into=staged)
        self.status("running", run, into=staged)
        return staged, panels_at

    def commit_start(self, staged: Staged, panels_at: tuple | None, run) -> None:
        """At the first epoch of a fit: what was staged for it, and the run's status."""
        if not self.writing:
            return
        staged.commit(self.writers)
        if panels_at is not None:
            self._panels_key, step = panels_at
            self.axes.wrote("cost", step)
        self.axes.written["status"] += 1  # the "running" status staged with them
        self.writers.flush(urgent=True)  # the cost panels on disk at once, also where the fit is interrupted

    def cost_panels_due(self, run, step: int) -> bool:
        """Whether the cost changed since its panels were last written, and none are at ``step`` yet."""
        return (run.cost is not None and run.key != self._panels_key and self.writing
                and self.axes.written["cost"] < step)

    def write_cost_panels(self, run, step: int, measures_memory: bool, into=None) -> None:
        """The cost panels at ``step``, into the writers (or ``into``, a ``Staged``)."""
        layout = panels.custom_scalars_layout(windows=self.windows, memory=measures_memory)
        panels.write_cost_panels(into or self.writers, run.cost, run.peak, run.sources(), step, self.top_layers,
                                 layout, run.bandwidth, run.roofline())
        if into is None:
            self._panels_key = run.key
            self.axes.wrote("cost", step)

    def scalars(self, name: str, prefix: str, values: dict, step: int, kind: str | None) -> None:
        """Scalars ``prefix + key`` of ``values`` at ``step`` in run ``name``; ``kind``: the axis they are on."""
        if not self.writing or step > axes_module.MAX_STEP or not values:
            return
        self.writers.scalars(name, prefix, values, step)
        if kind is not None:
            self.axes.wrote(kind, step)

    def status(self, state: str, run, into=None) -> None:
        """The run-status document (``nns/run``): running or finished, the cost's fate, the work behind the rates;
        into the writers, or staged ``into`` a ``Staged`` (whose commit counts it written)."""
        if not self.writing:
            return
        step = self.axes.written["status"] + 1
        document = panels.status_document(state, run.error, run.sources(), keras.backend.backend(),
                                          self.writers.lock.number or 1)
        (into or self.writers).document("train", metadata.STATUS_TAG, document, metadata.create_summary_metadata(),
                                        step)
        if into is None:
            self.axes.written["status"] = step

    def counted_step(self, run, step: int) -> None:
        """The counted step's FLOPs (known after the first step), at the step the fit started, and the status."""
        if self.writing:
            self.writers.scalar("train", "cost/hardware_flops_per_step", run.counted.flops, step)
            self.status("running", run)

    def end_epoch(self) -> None:
        """An epoch ended: what could not be written is tried again (the rest the writing thread takes)."""
        if self.writers is not None:
            self.writers.retry_if_failed()

    def close(self) -> None:
        """Write what is queued and let the writer lock go (a later pass takes it again)."""
        if self.writers is not None:
            self.writers.close()
