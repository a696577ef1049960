"""NNSCallback: cost panels in TensorBoard and achieved samples/s, FLOP/s, MFU and HFU during training.

Every hook is one line over parts that know nothing of callbacks: the run's cost (``run_cost``), what is
written and where (``run_summaries``), the records of the fit and its passes (``passes``), the passes'
clocks and rates (``throughput``) and what Keras does not pass to callbacks (``fit_context``).  Timing never
synchronises the device: a pass runs from its begin hook to its end hook (training: to its last step,
before validation), where Keras has the device idle or has waited for it, and the batch-end hooks, which
Keras calls once a step's logs are Python numbers, time the first step (its excess is start-up, and in a
pass that compiles, compilation) and the windows.
"""

from __future__ import annotations

import threading
import time

import keras

from . import fit_context, memory, notices
from . import keras_compat as compat
from .arguments import validate_callback_arguments
from .passes import FitState, PassRecord, end_steps, epoch_counts, forward_report
from .run_cost import RunCost
from .run_summaries import RunSummaries
from .summary_writer import check_writable
from .throughput import PassMeter, PassTimes, Rates, pass_report, window_rates


class NNSCallback(keras.callbacks.Callback):
    """Write the model's cost to TensorBoard and report samples/s, FLOP/s, MFU and HFU while it trains.

    Args:
        log_dir: directory for ``train/`` and ``validation/`` event files (shareable with
            ``keras.callbacks.TensorBoard``); ``None`` measures without writing.
        update_freq: steps per measurement window and batch-level summary, or ``"epoch"``.
        peak_flops: peak FLOP/s per device for MFU and HFU: a number, ``"measure"`` (time matrix products of
            the compute dtype, cached per machine; ``"measure!"`` times them again), or ``None`` / ``"auto"``
            (the datasheet table; an unknown device: none).
        memory_bandwidth: device memory bytes/s per device for the roofline: a number, ``"measure"`` (time a
            copy, cached per machine; ``"measure!"`` times it again), or ``None`` / ``"auto"`` (the datasheet
            table). With a peak, each epoch writes ``epoch_roofline_step_seconds`` (the predicted step time,
            ``ModelCost.roofline``) and ``epoch_roofline_fraction`` (predicted / measured steady step time).
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
                 flops_per_step=None, flops_per_sample=None, count_step="auto", memory_bandwidth=None,
                 clock=time.perf_counter):
        super().__init__()
        validate_callback_arguments(update_freq, peak_flops, batch_size, top_layers, count_step, flops_per_step,
                                    flops_per_sample, memory_bandwidth)
        if log_dir is not None:
            check_writable(str(log_dir))
        self.log_dir = None if log_dir is None else str(log_dir)
        self.update_freq, self.peak_flops, self.batch_size = update_freq, peak_flops, batch_size
        self.print_summary, self.count_step = print_summary, count_step
        self.run = RunCost(input_shape, bool(compiled_memory), flops_per_step, flops_per_sample, memory_bandwidth)
        self.summaries = RunSummaries(self.log_dir, top_layers, windows=update_freq != "epoch")
        self._clock = clock
        window = None if update_freq == "epoch" else update_freq
        self._train, self._test, self._predict = PassRecord(PassMeter(window)), PassRecord(PassMeter()), PassRecord(
            PassMeter())
        self._fit: FitState | None = None
        self._train_marks = False  # whether train batch-end hooks still have something to record
        self._last_batch = -1
        self._warned: set = set()
        self._functions: dict[str, object] = {}
        self._lock = threading.Lock()
        self._hooks_overlap = compat.batch_hooks_may_overlap()
        self._predict_samples = 0

    @property
    def cost(self):
        """The ``ModelCost`` of the running (or last) fit, or ``None``."""
        return self.run.cost

    @property
    def peak(self):
        """The peak FLOP/s (``peaks.Peak``) behind MFU and HFU, or ``None``."""
        return self.run.peak

    @property
    def chief(self) -> bool:
        """Whether this process writes summaries (the chief of a multi-worker job)."""
        return self.summaries.chief

    # Keras hooks: each one line.  Batch-end hooks may run in worker threads while JAX trains: they never
    # touch ``self.model``, whose property syncs the training state into the model.
    def on_train_begin(self, logs=None):
        self._guard(self._begin_fit)

    def on_epoch_begin(self, epoch, logs=None):
        self._guard(self._begin_epoch, epoch)

    def on_train_batch_end(self, batch, logs=None):
        if self._hooks_overlap:
            with self._lock:
                self._last_batch = max(self._last_batch, batch)
        elif batch > self._last_batch:  # in step order: no lock needed
            self._last_batch = batch
        if self._train_marks:
            self._guard(self._train_batch_end, batch, logs)

    def on_test_begin(self, logs=None):
        self._guard(self._begin_pass, self._test, "test")

    def on_test_batch_end(self, batch, logs=None):
        self._guard(self._batch_end, self._test, batch)

    def on_test_end(self, logs=None):
        self._guard(self._end_test)

    def on_predict_begin(self, logs=None):
        self._guard(self._begin_pass, self._predict, "predict")

    def on_predict_batch_end(self, batch, logs=None):
        self._guard(self._predict_batch_end, batch, logs)

    def on_predict_end(self, logs=None):
        self._guard(self._end_predict)

    def on_epoch_end(self, epoch, logs=None):
        self._guard(self._end_epoch, epoch, logs)

    def on_train_end(self, logs=None):
        self._guard(self._end_fit)

    def _guard(self, method, *args):
        """Run a hook body; trouble becomes a warning, never a failed ``fit``."""
        try:
            method(*args)
        except Exception as error:  # noqa: BLE001  (measuring must never break training)
            self._warn(f"{method.__name__} failed: {error!r}; training goes on", ("hook", method.__name__))

    def _warn(self, message: str, cause=None):
        """A warning, once per cause per fit."""
        notices.warn(message, cause, stacklevel=5, seen=self._warned)

    # A fit.
    def _begin_fit(self):
        self._end_stale_fit()
        self._warned.clear()
        model, adapter = self.model, compat.running_data_adapter()
        plan = fit_context.batch_plan(self.batch_size, model, adapter)
        if plan is None and adapter is None:
            self._warn("could not find the data of the running fit (a custom training loop?): samples per step "
                       "are taken from Keras's sample count at each epoch end. Pass NNSCallback(batch_size=...)")
        with notices.once_per_cause(self._warned):
            if plan is not None:
                self.run.update(model, plan.batch_size)
            self.run.resolve_peak(model, self.peak_flops)
            self.run.resolve_bandwidth(model)
        self.summaries.chief = fit_context.is_chief(model)
        axes = self.summaries.open()
        self._train.plan, self._train.iterations = plan, self._iterations()
        self._fit = fit = fit_context.open_fit(self, model, adapter, self._fresh(model, "train_function"),
                                               axes.begin_fit(self._train.iterations))
        fit.start = axes.step
        self.run.count_first_step(model, self.count_step, self._warn)
        too_big = memory.too_big(model, self.run.cost, keras.backend.backend(), self.run.input_shape)
        if too_big:
            self._warn(too_big)
        if self.print_summary and self.run.cost is not None:
            print(self.run.cost.summary())
        fit.staged, fit.panels_at = self.summaries.stage_start(self.run, fit.start, fit.restart, fit.measures_memory)

    def _fresh(self, model, name: str) -> bool:
        """Whether ``model.<name>`` (a step function) was made anew since the last pass: its first step compiles."""
        function = getattr(model, name, None)
        fresh = function is not self._functions.get(name)
        self._functions[name] = function
        return fresh and (keras.backend.backend() != "torch" or bool(getattr(model, "jit_compile", False)))

    def _end_stale_fit(self):
        """A fit that ended by an exception never called ``on_train_end``: end its state now (what it queued is
        written, and its writer lock let go)."""
        if self._fit is not None:
            self._fit, self._train_marks = None, False
            self.summaries.close()

    def _iterations(self) -> int:
        return int(fit_context.safe(lambda: int(self.model.optimizer.iterations)) or 0)

    def _begin_epoch(self, epoch):
        fit = self._fit
        if fit.first_epoch:
            self.summaries.commit_start(fit.staged, fit.panels_at, self.run)
            fit.wrote_status = self.summaries.writing
        self.summaries.axes.begin_epoch(epoch, fit.first_epoch)
        fit.keras_tb_batches = fit.keras_tb_writes("batch")
        self._last_batch, self._train_marks = -1, True
        self._train.start(self._clock(), fit.compiles and fit.first_epoch)
        fit.first_epoch = False

    def _train_batch_end(self, batch, logs):
        fit = self._fit
        steps = compat.steps_done(batch, fit.steps_per_execution)
        if fit.steps_per_epoch and steps > fit.steps_per_epoch:
            steps = fit.steps_per_epoch  # steps_per_execution reports the end of a shorter last execution
        meter = self._train.meter
        window = meter.step_end(steps, self._clock())
        if meter.window_steps is None:
            self._train_marks = False  # the first step's mark is all an epoch-only run needs
        elif window is not None:
            self._close_window(window, logs)

    def _close_window(self, window, logs):
        fit = self._fit
        training = self.run.training()
        samples = fit.ledger.samples(window.start.steps, window.end.steps)
        rates = window_rates(window, self._train.plan, training.work, self.run.peak_flops, samples)
        if rates is None:
            return
        values = rates.as_logs(*training.keys)
        if logs is not None:
            logs.update(values)
        if not fit.keras_tb_batches:
            self.summaries.scalars("train", "batch_", values, self.summaries.axes.step_in_epoch(window.end.steps),
                                   "batch")

    def _end_training_steps(self):
        """The epoch's steps are over (validation starts, or the epoch ends): their end time, and Keras's count of
        their samples where needed, before an evaluation resets it."""
        if self._train.end is None:
            read_count = lambda: fit_context.safe(lambda: compat.samples_seen(self.model))
            end_steps(self._train, self._fit, self._clock(), read_count)

    def _report_training(self):
        """The epoch's report, at its end, where every batch hook has run (Keras waits for them there)."""
        self._end_training_steps()
        fit, train = self._fit, self._train
        steps, samples, first_samples = epoch_counts(train, fit, self._last_batch,
                                                     lambda: self._iterations() - train.iterations)
        if train.plan is None and samples and steps:  # the batch size is known now: the cost for it
            with notices.once_per_cause(self._warned):
                self.run.update(self.model, max(1, round(samples / steps)))
            if self.summaries.cost_panels_due(self.run, fit.start):
                self.summaries.write_cost_panels(self.run, fit.start, fit.measures_memory)
        times = PassTimes(train.begin, train.end, train.meter.first)
        train.report = pass_report(times, steps, samples, first_samples, self.run.training().work,
                                   self.run.peak_flops, train.compiles)
        self.summaries.axes.end_epoch(steps)
        fit.ledger.end_epoch(steps)

    def _end_epoch(self, epoch, logs):
        self._report_training()
        train, test, fit = self._train.report, self._test.report, self._fit
        self._test.report = None
        values = self.run.training_logs(train.rates)
        validation = self.run.logs(test.rates, self.run.forward_work()) if test is not None else {}
        if logs is not None:
            logs.update(values)
            logs.update({f"val_{k}": v for k, v in validation.items()})
        if over := self.run.above_peak(values):
            self._warn(over, "above peak")
        if fit.keras_tb_writes("epoch"):  # Keras's TensorBoard writes the logs, ours among them
            values, validation = {}, {}
        memory_used = memory.peak_memory_values(keras.backend.backend(), self.run.cost) if fit.measures_memory else {}
        roofline = self.run.roofline_values(train.steady_samples_per_sec)
        step = self.summaries.axes.epoch(epoch)
        self.summaries.scalars("train", "epoch_", {**values, **train.extras(), **memory_used, **roofline}, step,
                               "epoch")
        if test is not None:
            validation = {**validation, **test.extras()}
        self.summaries.scalars("validation", "epoch_", validation, step, "epoch")
        self._warn_if_samples_unknown(train.rates)
        if self.run.counted is not None and not fit.wrote_count:
            fit.wrote_count = True
            self.summaries.counted_step(self.run, fit.start)
        self.summaries.end_epoch()

    def _end_fit(self):
        if self._fit is not None and self._fit.wrote_status:
            self.summaries.status("finished", self.run)
        self._fit, self._train_marks = None, False
        self.summaries.close()

    # Evaluation and prediction, inside a fit (validation) or on their own.
    def _in_fit(self) -> bool:
        return self._fit is not None and fit_context.in_running_fit(self._model)

    def _begin_pass(self, record: PassRecord, kind: str):
        in_fit = self._in_fit()
        if kind == "test" and in_fit:
            self._end_training_steps()  # before evaluate resets the metrics
        elif self._fit is not None and not in_fit:
            self._end_stale_fit()
        record.plan = fit_context.batch_plan(None if in_fit else self.batch_size, self._model)
        if not in_fit:
            with notices.once_per_cause(self._warned):
                if self.run.cost is None and self.run.error is None:
                    self.run.update(self.model, record.plan.batch_size if record.plan else 1)
                    self.run.resolve_peak(self.model, self.peak_flops)
                self.summaries.open()
        self._predict_samples = 0
        record.start(self._clock(), self._fresh(self._model, f"{kind}_function"))

    def _batch_end(self, record: PassRecord, batch):
        steps_per_execution = self._fit.steps_per_execution if self._fit else 1
        record.meter.step_end(compat.steps_done(batch, steps_per_execution), self._clock())

    def _predict_batch_end(self, batch, logs):
        if self._predict.plan is None and logs:
            outputs = keras.tree.flatten(logs.get("outputs"))
            with self._lock:
                self._predict_samples += int(outputs[0].shape[0]) if outputs else 0
        self._batch_end(self._predict, batch)

    def _end_test(self):
        samples = fit_context.safe(lambda: compat.samples_seen(self.model))
        report = forward_report(self._test, self._clock(), samples, self.run.forward_work(), self.run.peak_flops)
        self._warn_if_samples_unknown(report.rates)
        if self._in_fit():
            self._test.report = report
        else:
            self._write_standalone(report, "evaluation")

    def _end_predict(self):
        report = forward_report(self._predict, self._clock(), self._predict_samples or None, self.run.forward_work(),
                                self.run.peak_flops)
        self._warn_if_samples_unknown(report.rates)
        self._write_standalone(report, "prediction")

    def _write_standalone(self, report, kind: str):
        """An ``evaluate`` or ``predict`` outside fit: its rates at a step of its own, written at once."""
        if report.rates is not None:
            values = self.run.logs(report.rates, self.run.forward_work())
            self.summaries.scalars("validation", f"{kind}_", values, self.summaries.axes.standalone(kind), None)
            self.summaries.close()

    # Helpers.
    def _warn_if_samples_unknown(self, rates: Rates | None) -> None:
        if rates is not None and rates.samples is None:
            self._warn("samples per step unknown (the data does not tell its batch size and the model counts no "
                       "samples): steps/s are reported, samples/s, FLOP/s and MFU are not. Pass "
                       "NNSCallback(batch_size=<global batch size>).", "samples unknown")

