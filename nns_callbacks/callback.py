"""NNSCallback: cost panels in TensorBoard and achieved samples/s, FLOP/s, MFU and HFU during training.

Every hook is one line over framework-free parts: the run's cost (``run_cost``), the axes of its
summaries (``axes``), the passes' clocks and rates (``throughput``), the event files
(``summary_writer``) and what Keras does not pass to callbacks (``fit_context``).  Timing never
synchronises the device: a pass runs from its begin hook to its end hook (training: to the last
training step, before validation), where Keras has the device idle or waited for it, and the
batch-end hooks, which Keras calls once a step's logs are Python numbers, time the first step
(whose excess is start-up, and in a pass that compiles, compilation) and the windows.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import keras

from . import axes as axes_module
from . import fit_context, memory, notices, panels, step_count
from . import keras_compat as compat
from .cost import format_bytes
from .hardware import validate_peak_flops
from .run_cost import RunCost
from .summary_writer import Staged, SummaryWriters, check_writable
from .tensorboard_plugin import metadata
from .throughput import BatchPlan, PassMeter, PassTimes, Rates, StepWork, empty_logs, pass_report, window_rates


@dataclasses.dataclass
class PassRecord:
    """One pass under way (training epoch, validation, evaluation, prediction): its clock and batch plan."""

    meter: PassMeter
    plan: BatchPlan | None = None
    begin: float = 0.0
    compiles: bool = False
    iterations: int = 0
    report: object = None
    end: float | None = None
    counted: float | None = None  # Keras's count of the pass's samples, where read


class NNSCallback(keras.callbacks.Callback):
    """Write the model's cost to TensorBoard and report samples/s, FLOP/s, MFU and HFU while it trains.

    Args:
        log_dir: directory for ``train/`` and ``validation/`` event files (shareable with
            ``keras.callbacks.TensorBoard``); ``None`` measures without writing.
        update_freq: steps per measurement window and batch-level summary, or ``"epoch"``.
        peak_flops: peak FLOP/s per device for MFU and HFU: a number, ``"measure"`` (time a matrix
            product of the compute dtype), or ``None`` / ``"auto"`` (datasheet table; unknown: none).
        batch_size: global samples per step, if it can't be read from the data.
        input_shape: per-sample input shape, for models with dimensions of unknown size.
        print_summary: print the per-layer cost table when training starts.
        top_layers: layers shown in the chart.
        compiled_memory: on the JAX backend, also compile the training step once at the start to get
            XLA's memory figure (``ModelCost.compiled_training_bytes``) for the memory warning.
        flops_per_step, flops_per_sample: the model FLOPs (not MACs) of one training step or one sample,
            stated; they win over the estimate and give MFU for a custom ``train_step``. Not both.
        count_step: count the FLOPs the training step executes (HFU): ``"auto"`` where the model defines
            its own ``train_step``, ``True`` always, ``False`` never.  JAX: XLA's count of the lowered
            step; torch: ``FlopCounterMode`` over the first step (products, convolutions, attention).
        clock: a function returning seconds, for tests.

    Logs gain ``samples_per_sec`` (the wall clock's, less the first epoch's compilation),
    ``steps_per_sec``, ``tflops_per_sec`` (TFLOP/s = 1e12 FLOP/s: model FLOPs, or the counted step's
    where the model's are unknown), ``mfu`` and ``hfu`` at every epoch end (NaN where nothing was
    measurable), ``val_`` versions for validation (forward FLOPs only), and in batch logs where a
    window of ``update_freq`` steps closes.  Place it before ``CSVLogger`` to log them there.
    """

    async_safe = True

    def __init__(self, log_dir: str | None = "logs", update_freq="epoch", peak_flops=None, batch_size=None,
                 input_shape=None, print_summary: bool = False, top_layers: int = 12, compiled_memory: bool = False,
                 flops_per_step=None, flops_per_sample=None, count_step="auto", clock=time.perf_counter):
        super().__init__()
        _validate(update_freq, peak_flops, batch_size, top_layers, count_step)
        if log_dir is not None:
            check_writable(str(log_dir))
        self.log_dir = None if log_dir is None else str(log_dir)
        self.update_freq, self.peak_flops, self.batch_size = update_freq, peak_flops, batch_size
        self.print_summary, self.top_layers, self.count_step = print_summary, top_layers, count_step
        self.run = RunCost(input_shape, bool(compiled_memory), flops_per_step, flops_per_sample)
        self._clock = clock
        self._writers = SummaryWriters(self.log_dir) if self.log_dir else None
        self._axes: axes_module.Axes | None = None
        window = None if update_freq == "epoch" else update_freq
        self._passes = {"train": PassRecord(PassMeter(window)), "test": PassRecord(PassMeter()),
                        "predict": PassRecord(PassMeter())}
        self._lock = threading.Lock()
        self._fit: dict | None = None  # the running fit's state; left set by a fit that raised
        self._train_marks = False  # whether train batch-end hooks still have something to record
        self._last_batch = -1
        self._warned: set = set()
        self._functions: dict[str, object] = {}
        self._panels_key = None
        self.chief = True  # whether this process writes summaries (the chief of a multi-worker job)
        self._predict_samples = 0

    @property
    def cost(self):
        """The ``ModelCost`` of the running (or last) fit, or ``None``."""
        return self.run.cost

    @property
    def peak(self):
        """The peak FLOP/s (``hardware.Peak``) behind MFU and HFU, or ``None``."""
        return self.run.peak

    # Keras hooks: each one line.
    def on_train_begin(self, logs=None):
        self._guard(self._begin_fit)

    def on_epoch_begin(self, epoch, logs=None):
        self._guard(self._begin_epoch, epoch)

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch = max(self._last_batch, batch)
        if self._train_marks:
            self._guard(self._train_batch_end, batch, logs)

    def on_test_begin(self, logs=None):
        self._guard(self._begin_pass, "test")

    def on_test_batch_end(self, batch, logs=None):
        self._guard(self._batch_end, "test", batch)

    def on_test_end(self, logs=None):
        self._guard(self._end_test)

    def on_predict_begin(self, logs=None):
        self._guard(self._begin_pass, "predict")

    def on_predict_batch_end(self, batch, logs=None):
        self._guard(self._predict_batch_end, batch, logs)

    def on_predict_end(self, logs=None):
        self._guard(self._end_predict)

    def on_epoch_end(self, epoch, logs=None):
        self._guard(self._end_epoch, epoch, logs)

    def on_train_end(self, logs=None):
        self._guard(self._end_fit)

    # Implementation.  Batch-end hooks may run in a worker thread while JAX trains: they never touch
    # ``self.model``, whose property syncs the training state into the model.
    def _guard(self, method, *args):
        """Run a hook body; trouble becomes a warning, never a failed ``fit``."""
        try:
            method(*args)
        except Exception as error:  # noqa: BLE001  (measuring must never break training)
            self._warn(f"{method.__name__} failed: {error!r}; training goes on", ("hook", method.__name__))

    def _warn(self, message: str, cause=None):
        """A warning, once per cause per fit."""
        notices.warn(message, cause, stacklevel=5, seen=self._warned)

    def _begin_fit(self):
        self._finish_aborted_fit()
        self._warned.clear()
        model = self.model
        plan = fit_context.batch_plan(self.batch_size, model)
        adapter = compat.running_data_adapter()
        if plan is None and adapter is None:
            self._warn("could not find the data of the running fit (a custom training loop?): samples per step "
                       "are taken from Keras's sample count at each epoch end. Pass NNSCallback(batch_size=...)")
        with notices.once_per_cause(self._warned):
            if plan is not None:
                self.run.update(model, plan.batch_size)
            self.run.resolve_peak(model, self.peak_flops)
        self._open_axes()
        self._passes["train"].plan = plan
        ledger = fit_context.SampleLedger()
        ledger.watch(adapter)
        self.chief = fit_context.is_chief(model)
        iterations = self._iterations()
        self._passes["train"].iterations = iterations
        self._fit = {"restart": self._axes.begin_fit(iterations), "first_epoch": True, "ledger": ledger,
                     "chief": self.chief, "keras_tb": fit_context.keras_tensorboard(self, self.log_dir),
                     "steps_per_epoch": (self.params or {}).get("steps"), "wrote_status": False,
                     "steps_per_execution": int(fit_context.safe(lambda: model.steps_per_execution) or 1),
                     "compiles": self._fresh(model, "train_function"), "start": self._axes.step}
        self._fit["measures_memory"] = memory.peak_bytes_in_use(keras.backend.backend()) is not None
        self._count_step(model)
        self._warn_if_too_big(model)
        self._fit["staged"] = self._stage_start_of_fit()

    def _count_step(self, model):
        """Count the first step's FLOPs where asked (``count_step``) and the backend can."""
        self.run.counted, self.run.count_note = None, ""
        if not (self.count_step is True or (self.count_step == "auto" and self.run.custom_step)):
            return
        backend = keras.backend.backend()
        if not step_count.counting_first_step(model, backend, self._counted, self._count_failed):
            self.run.count_note = ("not counted on this backend (TensorFlow has no cheap counter): state the "
                                   "step's work with NNSCallback(flops_per_step=...)")
            self._warn(f"the FLOPs of the training step are not counted on the {backend} backend: no HFU; "
                         "state the model FLOPs of a step with NNSCallback(flops_per_step=...) for MFU")

    def _counted(self, counted):
        self.run.counted = counted
        self._cache_training_work()

    def _count_failed(self, error):
        self.run.count_note = f"counting the step failed: {error!r}"
        self._warn(f"could not count the training step's FLOPs ({error!r}): no HFU", "count failed")

    def _fresh(self, model, name: str) -> bool:
        """Whether ``model.<name>`` (a step function) was made anew since the last pass: its first step compiles."""
        function = getattr(model, name, None)
        fresh = function is not self._functions.get(name)
        self._functions[name] = function
        return fresh and (keras.backend.backend() != "torch" or bool(getattr(model, "jit_compile", False)))

    def _open_axes(self):
        if self._axes is None:
            written = {}
            if self._writers is not None:
                self._writers.open()
                folders = {run: self._writers.run_folder(run) for run in ("train", "validation")}
                written = axes_module.written_steps(folders, ".nns")
            self._axes = axes_module.Axes(written or dict.fromkeys(axes_module.KINDS, -1))
        elif self._writers is not None:
            self._writers.open()

    def _finish_aborted_fit(self):
        """A fit that ended by an exception never called ``on_train_end``: end its state now (what it queued
        is written, and its writer lock let go)."""
        if self._fit is not None:
            self._fit = None
            self._train_marks = False
            self._close()

    def _iterations(self) -> int:
        return int(fit_context.safe(lambda: int(self.model.optimizer.iterations)) or 0)

    def _begin_epoch(self, epoch):
        fit, train = self._fit, self._passes["train"]
        if fit["first_epoch"]:
            self._write_start_of_fit()
        self._axes.begin_epoch(epoch, fit["first_epoch"])
        train.compiles, fit["first_epoch"] = fit["compiles"] and fit["first_epoch"], False
        train.report, train.end, train.counted, self._last_batch = None, None, None, -1
        train.meter.begin()
        self._cache_training_work()
        fit["keras_tb_batches"] = self._keras_tb_writes("batch")
        self._train_marks = True
        train.begin = self._clock()

    def _train_batch_end(self, batch, logs):
        fit = self._fit
        steps = compat.steps_done(batch, fit["steps_per_execution"])
        if fit["steps_per_epoch"] and steps > fit["steps_per_epoch"]:
            steps = fit["steps_per_epoch"]  # steps_per_execution reports the end of a shorter last execution
        meter = self._passes["train"].meter
        window = meter.step_end(steps, self._clock())
        if meter.window_steps is None:
            self._train_marks = False  # the first step's mark is all an epoch-only run needs
        elif window is not None:
            self._close_window(window, logs)

    def _close_window(self, window, logs):
        start, end = window
        fit = self._fit
        work, keys = fit["work"]
        samples = fit["ledger"].samples(start.steps, end.steps)
        rates = window_rates(window, self._passes["train"].plan, work, self.run.peak_flops, samples)
        if rates is None:
            return
        values = rates.as_logs(*keys)
        if logs is not None:
            logs.update(values)
        step = self._axes.step_in_epoch(end.steps)
        if not fit["keras_tb_batches"]:
            self._write("train", "batch_", values, step, "batch")
        if self._writers is not None:
            self._writers.flush_if_due()

    def _end_training_steps(self):
        """The epoch's training steps are over (validation is about to start, or the epoch ends): their end
        time, and Keras's count of their samples where it is needed, before an evaluation resets it."""
        train = self._passes["train"]
        if train.end is not None:
            return
        train.end = self._clock()
        ledger, plan = self._fit["ledger"], train.plan
        if not ledger.watching and (plan is None or not plan.exact):
            train.counted = fit_context.safe(lambda: compat.samples_seen(self.model))

    def _report_training(self):
        """The epoch's report, at its end, where every batch hook has run (Keras waits for them there)."""
        self._end_training_steps()
        train = self._passes["train"]
        steps = self._steps_run()
        first = train.meter.first
        samples, first_samples = self._samples(train, steps, first)
        if train.plan is None and samples and steps:  # the batch size is known now: the cost for it
            train.plan = BatchPlan(max(1, round(samples / steps)))
            with notices.once_per_cause(self._warned):
                self.run.update(self.model, train.plan.batch_size)
            if self._cost_panels_due(self._fit["start"]):
                self._write_cost_panels(self._fit["start"])
        times = PassTimes(train.begin, train.end, first)
        train.report = pass_report(times, steps, samples, first_samples, self._fit["work"][0], self.run.peak_flops,
                                   train.compiles)
        self._axes.end_epoch(steps)
        self._fit["ledger"].end_epoch(steps)

    def _steps_run(self) -> int:
        """The training steps of the epoch, from the last batch index Keras passed to the hooks (no device read);
        from ``optimizer.iterations`` where no hook ran."""
        fit = self._fit
        if self._last_batch < 0:
            return max(self._iterations() - self._passes["train"].iterations, 0)
        steps = compat.steps_done(self._last_batch, fit["steps_per_execution"])
        return min(steps, fit["steps_per_epoch"]) if fit["steps_per_epoch"] else steps

    def _samples(self, record: PassRecord, steps: int, first) -> tuple:
        """(samples of the pass, samples of its first finished step(s)), exact where the data or Keras tell: a
        plan of arrays, a ledger of a generator's batches, else Keras's own count (read at the steps' end)."""
        ledger = self._fit["ledger"] if record is self._passes["train"] and self._fit else None
        counted = (ledger.samples(0, steps) if ledger else None) or record.counted
        plan = record.plan
        samples = counted or (plan.samples(steps) if plan else None)
        first_samples = None
        if first is not None:
            first_samples = (ledger.samples(0, first.steps) if ledger else None) or (
                plan.samples(first.steps) if plan else (samples / steps * first.steps if samples else None))
        return samples, first_samples

    def _begin_pass(self, kind: str):
        record = self._passes[kind]
        in_fit = self._fit is not None and fit_context.in_running_fit(self._model)
        if kind == "test" and in_fit:
            self._end_training_steps()  # before evaluate resets the metrics
        elif self._fit is not None and not in_fit:
            self._finish_aborted_fit()
        record.plan = fit_context.batch_plan(None if in_fit else self.batch_size, self._model)
        if not in_fit:
            with notices.once_per_cause(self._warned):
                self._ensure_cost(record.plan)
        record.compiles = self._fresh(self._model, f"{kind}_function")
        record.meter.begin()
        self._predict_samples = 0
        record.begin = self._clock()

    def _ensure_cost(self, plan):
        """An evaluation or prediction outside fit: the cost and peak if no fit got them."""
        if self.run.cost is None and self.run.error is None:
            self.run.update(self.model, plan.batch_size if plan else 1)
            self.run.resolve_peak(self.model, self.peak_flops)
        self._open_axes()

    def _batch_end(self, kind: str, batch):
        steps_per_execution = self._fit["steps_per_execution"] if self._fit else 1
        self._passes[kind].meter.step_end(compat.steps_done(batch, steps_per_execution), self._clock())

    def _predict_batch_end(self, batch, logs):
        if self._passes["predict"].plan is None and logs:
            outputs = keras.tree.flatten(logs.get("outputs"))
            with self._lock:
                self._predict_samples += int(outputs[0].shape[0]) if outputs else 0
        self._batch_end("predict", batch)

    def _forward_report(self, kind: str, samples):
        record = self._passes[kind]
        end = self._clock()
        first = record.meter.first
        steps = record.meter.last.steps if record.meter.last else 0
        if record.plan is not None and record.plan.num_batches:
            steps = min(steps, record.plan.num_batches) if steps else record.plan.num_batches
        first_samples = record.plan.samples(first.steps) if record.plan and first else None
        samples = samples or (record.plan.samples(steps) if record.plan else None)
        return pass_report(PassTimes(record.begin, end, first), steps, samples, first_samples,
                           self.run.forward_work(), self.run.peak_flops, record.compiles)

    def _end_test(self):
        report = self._forward_report("test", fit_context.safe(lambda: compat.samples_seen(self.model)))
        self._warn_if_samples_unknown(report.rates)
        if self._fit is not None and fit_context.in_running_fit(self._model):
            self._passes["test"].report = report
        elif report.rates is not None:
            self._write("validation", "evaluation_", self._as_logs(report.rates, self.run.forward_work()),
                        self._axes.standalone("evaluation"), None)
            self._close()

    def _end_predict(self):
        report = self._forward_report("predict", self._predict_samples or None)
        self._warn_if_samples_unknown(report.rates)
        if report.rates is not None:
            self._write("validation", "prediction_", self._as_logs(report.rates, self.run.forward_work()),
                        self._axes.standalone("prediction"), None)
            self._close()

    def _end_epoch(self, epoch, logs):
        self._report_training()
        train, test = self._passes["train"].report, self._passes["test"].report
        self._passes["test"].report = None
        _, keys = self._fit["work"]
        values = empty_logs(*keys) if train.rates is None else train.rates.as_logs(*keys)
        if logs is not None:
            logs.update(values)
            if test is not None:
                logs.update({f"val_{k}": v for k, v in self._as_logs(test.rates, self.run.forward_work()).items()})
        step = self._axes.epoch(epoch)
        if not self._keras_tb_writes("epoch"):
            self._write("train", "epoch_", values, step, "epoch")
            if test is not None:
                self._write("validation", "epoch_", self._as_logs(test.rates, self.run.forward_work()), step, "epoch")
        self._write("train", "epoch_", train.extras(), step, "epoch")
        if test is not None:
            self._write("validation", "epoch_", test.extras(), step, "epoch")
        self._write("train", "epoch_", self._peak_memory(), step, "epoch")
        self._warn_if_samples_unknown(train.rates)
        self._write_counted_step()
        self._flush()

    def _end_fit(self):
        if self._fit is not None and self._fit["wrote_status"]:
            self._write_status("finished")
        self._fit = None
        self._train_marks = False
        self._close()

    # Summaries.
    def _as_logs(self, rates: Rates | None, work: StepWork) -> dict[str, float]:
        keys = self._log_keys(work)
        return empty_logs(*keys) if rates is None else rates.as_logs(*keys)

    def _log_keys(self, work: StepWork) -> tuple[bool, bool, bool]:
        """Which of tflops_per_sec, mfu and hfu a pass of ``work`` logs."""
        peak = self.run.peak_flops is not None
        return work.achieved is not None, work.model is not None and peak, work.hardware is not None and peak

    def _cache_training_work(self):
        """The training work and its log keys, for the windows (refreshed where it changes: the counted step)."""
        if self._fit is not None:
            work = self.run.training_work()
            self._fit["work"] = work, self._log_keys(work)

    def _chief(self) -> bool:
        return self._writers is not None and (self._fit is None or self._fit["chief"])

    def _write(self, run: str, prefix: str, values: dict, step: int, kind: str | None):
        if not self._chief() or step > axes_module.MAX_STEP or not values:
            return
        self._writers.scalars(run, prefix, values, step)
        if kind is not None:
            self._axes.wrote(kind, step)

    def _stage_start_of_fit(self) -> Staged:
        """What the first epoch of a fit writes, prepared while the fit starts: the restart marker of a resumed
        run and the cost panels where the cost changed (``fit(epochs=0)`` writes none of it)."""
        staged, fit = Staged(), self._fit
        if self.print_summary and self.run.cost is not None:
            print(self.run.cost.summary())
        if not self._chief():
            return staged
        if fit["restart"] is not None:
            for run in ("train", "validation"):
                staged.restart(run, fit["restart"])
        if self._cost_panels_due(fit["start"]):
            fit["panels"] = (self.run.key, fit["start"])
            self._write_cost_panels(fit["start"], staged)
        return staged

    def _write_start_of_fit(self):
        """At the first epoch of a fit: what was staged for it, and the run's status."""
        fit = self._fit
        if not self._chief():
            return
        fit["staged"].commit(self._writers)
        if fit.get("panels"):
            self._panels_key, step = fit["panels"]
            self._axes.wrote("cost", step)
        self._write_status("running")
        fit["wrote_status"] = True
        self._flush()

    def _cost_panels_due(self, step: int) -> bool:
        """Whether the cost changed since its panels were last written, and none are at ``step`` yet."""
        return (self.run.cost is not None and self.run.key != self._panels_key and self._chief()
                and self._axes.written["cost"] < step)

    def _write_cost_panels(self, step: int, into=None):
        """The cost panels at ``step``, into the writers (or ``into``, a ``Staged``)."""
        layout = panels.custom_scalars_layout(windows=self.update_freq != "epoch",
                                              memory=bool(self._fit and self._fit.get("measures_memory")))
        panels.write_cost_panels(into or self._writers, self.run.cost, self.run.peak, self.run.sources(), step,
                                 self.top_layers, layout)
        if into is None:
            self._panels_key = self.run.key
            self._axes.wrote("cost", step)

    def _write_status(self, state: str):
        if not self._chief():
            return
        step = self._axes.written.get("status", -1) + 1
        document = panels.status_document(state, self.run.error, self.run.sources(), keras.backend.backend(),
                                          self._writers.lock.number or 1)
        self._writers.document("train", metadata.STATUS_TAG, document, metadata.create_summary_metadata(), step)
        self._axes.written["status"] = step

    def _write_counted_step(self):
        """The counted step's FLOPs, once known (after the first step), at the step the fit started."""
        counted = self.run.counted
        if counted is None or self._fit.get("wrote_count") or not self._chief():
            return
        self._fit["wrote_count"] = True
        self._writers.scalar("train", "cost/hardware_flops_per_step", counted.flops, self._fit["start"])
        self._write_status("running")

    def _peak_memory(self) -> dict:
        """The device's peak bytes in use so far, and its ratio to the estimate, where the backend can tell."""
        if not self._fit["measures_memory"]:
            return {}
        peak = memory.peak_bytes_in_use(keras.backend.backend())
        if peak is None:
            return {}
        values = {"peak_memory_bytes": float(peak)}
        if self.run.cost is not None and self.run.cost.training_bytes:
            values["peak_memory_over_estimate"] = peak / self.run.cost.training_bytes
        return values

    def _warn_if_too_big(self, model):
        """Warn before the first step when the estimate exceeds the device's memory, naming a batch that fits."""
        cost = self.run.cost
        capacity = memory.device_memory(keras.backend.backend()) if cost is not None else None
        needed = cost and (cost.compiled_training_bytes or cost.training_bytes)
        if capacity is None or needed <= capacity:
            return
        fits = fit_context.safe(lambda: memory.max_batch_size(model, capacity, input_shape=self.run.input_shape))
        advice = f"batch {fits} fits" if fits else "not even one sample fits"
        which = "compiled" if cost.compiled_training_bytes else "estimated"
        self._warn(f"the {which} training memory, {format_bytes(needed)} for batch {cost.batch_size}, exceeds the "
                     f"device's {format_bytes(capacity)}: {advice} by the analytic estimate (ModelCost's memory)")

    def _warn_if_samples_unknown(self, rates: Rates | None) -> None:
        if rates is not None and rates.samples is None:
            self._warn("samples per step unknown (the data does not tell its batch size and the model counts no "
                         "samples): steps/s are reported, samples/s, FLOP/s and MFU are not. Pass "
                       "NNSCallback(batch_size=<global batch size>).", "samples unknown")

    def _keras_tb_writes(self, level: str) -> bool:
        """Whether a keras.callbacks.TensorBoard in our log_dir writes ``level``-wise logs, ours included."""
        keras_tb = self._fit["keras_tb"] if self._fit else None
        return keras_tb is not None and (level == "epoch" or keras_tb.update_freq != "epoch")

    def _flush(self):
        if self._writers is not None:
            self._writers.flush()

    def _close(self):
        """Write what is queued and let the writer lock go (a later pass takes it again)."""
        if self._writers is not None:
            self._writers.close()


def _validate(update_freq, peak_flops, batch_size, top_layers, count_step) -> None:
    """Wrong constructor arguments are a ``ValueError`` at once."""
    if update_freq != "epoch" and (isinstance(update_freq, bool) or not isinstance(update_freq, int) or update_freq < 1):
        raise ValueError(f"update_freq must be 'epoch' or a positive number of steps, got {update_freq!r}")
    validate_peak_flops(peak_flops)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if isinstance(top_layers, bool) or not isinstance(top_layers, int) or top_layers < 1:
        raise ValueError(f"top_layers must be a positive integer, got {top_layers!r}")
    if count_step not in ("auto", True, False):
        raise ValueError(f"count_step must be 'auto', True or False, got {count_step!r}")
