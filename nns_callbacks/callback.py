"""NNSCallback: cost panels in TensorBoard and achieved samples/s, FLOP/s and MFU during training.

Timing never synchronises the device itself.  Keras hands every batch-end hook
logs that it has already converted to Python numbers, which waits for that
step to finish: on the TensorFlow backend in the training loop, on JAX in a
worker thread when every callback is ``async_safe`` (this one is).  So the time
at which a hook runs is the time its step had finished, and a window's rate is
the samples between two hooks divided by the time between them (hooks that run late
or out of order are handled in ``throughput``).  Warm-up (the
first call of each ``fit``, ``evaluate`` or ``predict``, which traces and
compiles) opens the first window and is never counted, and validation time is
left out of training throughput.
"""

from __future__ import annotations

import math
import os
import time
import warnings

import keras

from . import hardware, memory, panels
from . import keras_compat as compat
from .cost import format_bytes
from .estimation import estimate
from .summary_writer import NO_STEPS, SummaryWriters, check_writable, last_steps
from .tensorboard_plugin.metadata import COST_TAG
from .throughput import BatchPlan, PassMeter, Rates, Work, empty_logs, pass_rates, window_rates


def _keras_tensorboard(ours, log_dir: str | None):
    """A ``keras.callbacks.TensorBoard`` after ``ours`` in the running ``fit``, writing into ``log_dir``.

    It writes the rates we put into ``logs`` under the same tags, so we leave those to it.
    """
    if log_dir is None:
        return None
    callbacks = compat.running_loop_local("callbacks", lambda x: isinstance(x, keras.callbacks.CallbackList))
    listed = list(getattr(callbacks, "callbacks", []))
    after = listed[listed.index(ours) + 1:] if ours in listed else []
    for callback in after:
        if isinstance(callback, keras.callbacks.TensorBoard) and _same_dir(callback.log_dir, log_dir):
            return callback
    return None


def _same_dir(first: str, second: str) -> bool:
    return os.path.realpath(first) == os.path.realpath(second)


def _batch_plan(batch_size_arg, model) -> BatchPlan | None:
    """Samples per step: the argument, else the running data adapter, else a peeked first batch; ``None``: unknown."""
    adapter = compat.running_data_adapter()
    size = (
        batch_size_arg
        or _safe(lambda: adapter.batch_size)
        or _safe(lambda: compat.first_batch_size(adapter))
        or _safe(lambda: compat.dataset_batch_size(adapter))
    )
    if not size:
        inputs = _safe(lambda: model.inputs) or []
        size = inputs[0].shape[0] if inputs else None
    if not size:
        return None
    num_batches = _safe(lambda: adapter.num_batches)
    partial = _safe(lambda: adapter.partial_batch_size)
    return BatchPlan(int(size), num_batches, partial or None)


def _safe(getter):
    try:
        return getter()
    except Exception:  # noqa: BLE001  (any failure means "unknown here")
        return None


def _replicas(model) -> int:
    """Replicas that train in sync: the tf.distribute strategy's or the Keras distribution's devices."""
    strategy = _safe(lambda: model.distribute_strategy)
    count = _safe(lambda: strategy.num_replicas_in_sync)
    if count:
        return int(count)
    distribution = _safe(keras.distribution.distribution)
    devices = _safe(lambda: distribution.device_mesh.devices.size)
    return int(devices or 1)


def _is_chief(model) -> bool:
    """Whether this process writes summaries: the chief of a multi-worker job, or the only one."""
    strategy = _safe(lambda: model.distribute_strategy)
    resolver = _safe(lambda: strategy.cluster_resolver)
    if resolver is not None and getattr(resolver, "task_type", None) not in (None, "chief"):
        has_chief = "chief" in (_safe(lambda: resolver.cluster_spec().as_dict()) or {})
        return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0
    if keras.backend.backend() == "jax":
        import jax

        return jax.process_index() == 0
    return True


def _validate_update_freq(update_freq) -> None:
    if update_freq == "epoch":
        return
    if isinstance(update_freq, bool) or not isinstance(update_freq, int) or update_freq < 1:
        raise ValueError(f"update_freq must be 'epoch' or a positive number of steps, got {update_freq!r}")


class NNSCallback(keras.callbacks.Callback):
    """Write the model's cost to TensorBoard and report samples/s, FLOP/s and MFU while it trains.

    Args:
        log_dir: directory for ``train/`` and ``validation/`` event files (shareable with
            ``keras.callbacks.TensorBoard``); ``None`` measures without writing.
        update_freq: steps per measurement window and batch-level summary, or ``"epoch"``.
        peak_flops: peak FLOP/s per device for MFU: a number, ``"measure"`` (time a matrix
            product of the compute dtype for under a second), or ``None`` / ``"auto"``
            (datasheet table for the detected accelerator; unknown: no MFU).
        batch_size: global samples per step, if it can't be read from the data.
        input_shape: per-sample input shape, for models with dimensions of unknown size.
        print_summary: print the per-layer cost table when training starts.
        top_layers: layers shown in the chart.
        compiled_memory: on the JAX backend, also compile the training step once at the start to
            get XLA's memory figure (``ModelCost.compiled_training_bytes``), which the memory
            warning then uses.
        clock: a function returning seconds, for tests.

    Logs gain ``samples_per_sec``, ``steps_per_sec``, ``tflops_per_sec`` (training FLOPs:
    forward + backward + optimizer, not MACs, in TFLOP/s = 1e12 FLOP/s) and ``mfu``
    (achieved / peak FLOP/s) at every epoch end (NaN where nothing was measurable), with
    ``val_`` versions for validation, whose FLOPs are forward only; in batch logs only where a
    window of ``update_freq`` steps closes.  Place it before ``CSVLogger`` to log them there.
    """

    async_safe = True

    def __init__(
        self,
        log_dir: str | None = "logs",
        update_freq="epoch",
        peak_flops=None,
        batch_size: int | None = None,
        input_shape=None,
        print_summary: bool = False,
        top_layers: int = 12,
        compiled_memory: bool = False,
        clock=time.perf_counter,
    ):
        super().__init__()
        _validate_update_freq(update_freq)
        hardware.validate_peak_flops(peak_flops)
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        if isinstance(top_layers, bool) or not isinstance(top_layers, int) or top_layers < 1:
            raise ValueError(f"top_layers must be a positive integer, got {top_layers!r}")
        if log_dir is not None:
            check_writable(str(log_dir))
        self.log_dir = None if log_dir is None else str(log_dir)
        self.update_freq = update_freq
        self.peak_flops = peak_flops
        self.batch_size = batch_size
        self.input_shape = input_shape
        self.print_summary = print_summary
        self.top_layers = top_layers
        self.compiled_memory = bool(compiled_memory)
        self._clock = clock
        self._writers = SummaryWriters(self.log_dir) if self.log_dir else None
        self.cost = None
        self.peak = None
        self._peak_resolved = False
        self._chief = True
        self._keras_tb = None
        self._last = None  # the last step written for each kind of tag (summary_writer.last_steps)
        self._fit_start = 0
        self._step_base = 0  # step axis = optimizer.iterations + this
        self._epoch_shift = 0
        self._in_fit = False
        self._first_epoch_of_fit = True
        self._train = PassMeter(None if update_freq == "epoch" else update_freq)
        self._test = PassMeter()
        self._predict = PassMeter()
        self._plans = {"train": None, "test": None, "predict": None}
        self._training_work = self._forward_work = None
        self._steps_per_epoch = None
        self._steps_per_execution = 1
        self._epoch_iterations = 0
        self._train_counts = None
        self._val_logs: dict[str, float] = {}
        self._predict_samples = 0
        self._warned_samples = False

    # Keras hooks: each one line.
    def on_train_begin(self, logs=None):
        self._guard(self._begin_training)

    def on_epoch_begin(self, epoch, logs=None):
        self._guard(self._begin_epoch, epoch)

    def on_train_batch_end(self, batch, logs=None):
        self._guard(self._train_batch_end, batch, logs)

    def on_test_begin(self, logs=None):
        self._guard(self._begin_test)

    def on_test_batch_end(self, batch, logs=None):
        self._guard(self._test_batch_end, batch)

    def on_test_end(self, logs=None):
        self._guard(self._end_test)

    def on_predict_begin(self, logs=None):
        self._guard(self._begin_predict)

    def on_predict_batch_end(self, batch, logs=None):
        self._guard(self._predict_batch_end, batch, logs)

    def on_predict_end(self, logs=None):
        self._guard(self._end_predict)

    def on_epoch_end(self, epoch, logs=None):
        self._guard(self._end_epoch, epoch, logs)

    def on_train_end(self, logs=None):
        self._guard(self._end_training)

    # Implementation. Batch-end hooks may run in a worker thread while JAX trains: they must not
    # touch ``self.model``, whose property syncs the training state into the model.
    def _guard(self, method, *args):
        """Run a hook body; trouble becomes a warning, never a failed ``fit``."""
        try:
            method(*args)
        except Exception as error:  # noqa: BLE001  (measuring must never break training)
            warnings.warn(f"nns_callbacks: {method.__name__} failed: {error!r}; training goes on", stacklevel=3)

    def _estimate(self, batch: int):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                return estimate(
                    self.model, batch_size=batch, input_shape=self.input_shape, compiled_memory=self.compiled_memory
                )
        except Exception as error:  # noqa: BLE001  (estimation trouble is a warning during fit)
            warnings.warn(
                f"nns_callbacks: could not estimate the model's cost ({error}); samples/s are still "
                "measured, FLOP/s and MFU are left out",
                stacklevel=5,
            )
            return None

    def _resolve_peak(self):
        """Whether this process writes, and the peak FLOP/s (once per callback: measuring takes a second)."""
        self._chief = _is_chief(self.model)
        if not self._peak_resolved:
            self._peak_resolved = True
            compute_dtype = self.model.dtype_policy.compute_dtype
            self.peak = hardware.resolve_peak(
                self.peak_flops, keras.backend.backend(), compute_dtype, replicas=_replicas(self.model)
            )

    @property
    def _peak(self) -> float | None:
        """The peak FLOP/s that MFU divides by, over every replica; ``None``: unknown."""
        return self.peak.flops_per_sec if self.peak else None

    def _ensure_cost(self, plan: BatchPlan | None) -> None:
        """The cost for the real batch size (1 where unknown yet: FLOPs per sample hold), and the work of a step."""
        if self.cost is None or (plan is not None and self.cost.batch_size != plan.batch_size):
            cost = self._estimate(plan.batch_size if plan else 1)
            if cost is None:
                return
            self.cost = cost
        batch = self.cost.batch_size
        model_flops = (self.cost.forward_flops + self.cost.backward_flops) / batch
        self._training_work = Work(model_flops, self.cost.optimizer_flops)
        self._forward_work = Work(self.cost.forward_flops / batch)

    def _load_axes(self):
        if self._last is None:
            self._last = last_steps(self.log_dir) if self.log_dir else NO_STEPS.copy()

    def _iterations(self) -> int:
        return int(_safe(lambda: int(self.model.optimizer.iterations)) or 0)

    def _begin_training(self):
        self._load_axes()
        plan = _batch_plan(self.batch_size, self.model)
        if plan is None and compat.running_data_adapter() is None:
            warnings.warn(
                "nns_callbacks: could not find the data of the running fit (a custom training loop?): samples "
                "per step are taken from Keras's sample count at each epoch end, and windows get none. Pass "
                "NNSCallback(batch_size=<global batch size>).",
                stacklevel=4,
            )
        self._plans["train"] = plan
        self._steps_per_epoch = self.params.get("steps") if self.params else None
        self._steps_per_execution = int(_safe(lambda: self.model.steps_per_execution) or 1)
        self._ensure_cost(plan)
        self._resolve_peak()
        self._in_fit = True
        self._first_epoch_of_fit = True
        start = self._iterations()
        # The step axis is optimizer.iterations, moved on where that would write over what is there
        # (a recompiled model, a new callback on an old log_dir): past the last cost panels, and not
        # before the last window.
        need = max(self._last["cost"] + 1, self._last["batch"])
        self._step_base = max(self._step_base, need - start)
        self._fit_start = start + self._step_base
        self._keras_tb = _keras_tensorboard(self, self.log_dir)
        self._warn_if_too_big()
        if plan is not None:
            self._write_cost_panels()

    def _warn_if_too_big(self):
        """Warn before the first step when the estimate exceeds the device's memory, naming a batch that fits."""
        if self.cost is None:
            return
        capacity = memory.device_memory(keras.backend.backend())
        needed = self.cost.compiled_training_bytes or self.cost.training_bytes
        if capacity is None or needed <= capacity:
            return
        fits = _safe(lambda: memory.max_batch_size(self.model, capacity, input_shape=self.input_shape))
        advice = f"batch {fits} fits" if fits else "not even one sample fits"
        which = "compiled" if self.cost.compiled_training_bytes else "estimated"
        warnings.warn(
            f"nns_callbacks: the {which} training memory, {format_bytes(needed)} for batch "
            f"{self.cost.batch_size}, exceeds the device's {format_bytes(capacity)}: {advice} by the analytic "
            "estimate (ModelCost's memory figures)",
            stacklevel=4,
        )

    def _begin_epoch(self, epoch):
        if self._first_epoch_of_fit:  # a new fit that counts epochs from 0 again continues the epoch axis
            self._epoch_shift = max(0, self._last["epoch"] + 1 - epoch)
        self._first_epoch_of_fit = False
        self._train.begin()
        self._epoch_iterations = self._iterations()
        self._train_counts = None
        self._val_logs = {}

    def _train_batch_end(self, batch, logs):
        steps = compat.steps_done(batch, self._steps_per_execution)
        if self._steps_per_epoch and steps > self._steps_per_epoch:
            steps = self._steps_per_epoch  # steps_per_execution reports the end of a shorter last execution
        window = self._train.step_end(steps, self._clock())
        if window is not None:
            self._close_window(window, logs)

    def _close_window(self, window, logs):
        rates = window_rates(window, self._plans["train"], self._training_work, self._peak)
        if rates is None:
            return
        values = self._as_logs(rates)
        if logs is not None:
            logs.update(values)
        step = self._epoch_iterations + self._step_base + window[1].steps
        if not self._keras_tb_writes("batch"):
            self._write_logs("train", "batch_", values, step)
        self._last["batch"] = max(self._last["batch"], step)

    def _as_logs(self, rates: Rates | None) -> dict[str, float]:
        flops, mfu = self._training_work is not None, self._training_work is not None and self._peak is not None
        return empty_logs(flops, mfu) if rates is None else rates.as_logs(flops, mfu)

    def _count_training_epoch(self):
        """Exact steps and samples of the epoch that just trained (the state is synced here)."""
        if self._train_counts is None:
            steps = self._iterations() - self._epoch_iterations
            self._train_counts = (steps if steps > 0 else None, _safe(lambda: compat.samples_seen(self.model)))
        return self._train_counts

    def _forward_pass_plan(self, batch_size_arg) -> BatchPlan | None:
        """An evaluation or prediction about to run: its batch plan, and the cost and peak if fit did not get them."""
        self._steps_per_execution = int(_safe(lambda: self.model.steps_per_execution) or 1)
        plan = _batch_plan(batch_size_arg, self.model)
        if self._forward_work is None:
            self._ensure_cost(plan)
            self._resolve_peak()
        return plan

    def _begin_test(self):
        if self._in_fit:
            self._count_training_epoch()  # before evaluate resets the metrics
        self._plans["test"] = self._forward_pass_plan(self.batch_size if not self._in_fit else None)
        self._test.begin()

    def _test_batch_end(self, batch):
        self._test.step_end(compat.steps_done(batch, self._steps_per_execution), self._clock())

    def _end_test(self):
        samples = _safe(lambda: compat.samples_seen(self.model))
        plan = self._plans["test"]
        steps = plan.num_batches if plan is not None else None
        rates = pass_rates(self._test.span(), plan, self._forward_work, self._peak, steps, samples)
        self._warn_if_samples_unknown(rates)
        if self._in_fit:
            self._val_logs = {f"val_{k}": v for k, v in self._as_logs(rates).items()}
        elif rates is not None:
            self._write_logs("validation", "evaluation_", self._as_logs(rates), self._standalone_step("evaluation"))
            self._flush()

    def _standalone_step(self, kind: str) -> int:
        """The step of an ``evaluate`` or ``predict`` outside ``fit``: the model's, after any written before."""
        self._load_axes()
        step = max(self._iterations() + self._step_base, self._last[kind] + 1)
        self._last[kind] = step
        return step

    def _begin_predict(self):
        self._plans["predict"] = self._forward_pass_plan(self.batch_size)
        self._predict.begin()
        self._predict_samples = 0

    def _predict_batch_end(self, batch, logs):
        if self._plans["predict"] is None and logs:
            outputs = keras.tree.flatten(logs.get("outputs"))
            self._predict_samples += int(outputs[0].shape[0]) if outputs else 0
        self._predict.step_end(compat.steps_done(batch, self._steps_per_execution), self._clock())

    def _end_predict(self):
        plan = self._plans["predict"]
        samples = None if plan is not None else self._predict_samples or None
        rates = pass_rates(self._predict.span(), plan, self._forward_work, self._peak, None, samples)
        self._warn_if_samples_unknown(rates)
        if rates is not None:
            self._write_logs("validation", "prediction_", self._as_logs(rates), self._standalone_step("prediction"))
            self._flush()

    def _end_epoch(self, epoch, logs):
        steps, samples = self._count_training_epoch()
        plan = self._plans["train"]
        if plan is None and samples and steps:  # the batch size is known now: cost panels for it
            plan = self._plans["train"] = BatchPlan(max(1, round(samples / steps)))
            self._ensure_cost(plan)
            self._write_cost_panels()
        rates = pass_rates(self._train.span(), plan, self._training_work, self._peak, steps, samples)
        self._warn_if_samples_unknown(rates)
        values = self._as_logs(rates)
        if logs is not None:
            logs.update(values)
            logs.update(self._val_logs)
        step = epoch + self._epoch_shift
        self._last["epoch"] = max(self._last["epoch"], step)
        if not self._keras_tb_writes("epoch"):
            self._write_logs("train", "epoch_", values, step)
            val = {k[len("val_"):]: v for k, v in self._val_logs.items()}
            self._write_logs("validation", "epoch_", val, step)
        self._write_peak_memory(step)
        self._flush()

    def _write_peak_memory(self, epoch_step: int):
        """The device's peak bytes in use so far, and its ratio to the estimate, where the backend can tell."""
        peak = memory.peak_bytes_in_use(keras.backend.backend())
        if peak is None:
            return
        values = {"peak_memory_bytes": float(peak)}
        if self.cost is not None and self.cost.training_bytes:
            values["peak_memory_over_estimate"] = peak / self.cost.training_bytes
        self._write_logs("train", "epoch_", values, epoch_step)

    def _warn_if_samples_unknown(self, rates: Rates | None) -> None:
        if rates is not None and rates.samples is None and not self._warned_samples:
            self._warned_samples = True
            warnings.warn(
                "nns_callbacks: samples per step unknown (the data does not tell its batch size and the model "
                "counts no samples): steps/s are reported, samples/s, FLOP/s and MFU are not. Pass "
                "NNSCallback(batch_size=<global batch size>).",
                stacklevel=5,
            )

    def _keras_tb_writes(self, level: str) -> bool:
        """Whether a keras.callbacks.TensorBoard in our log_dir writes ``level``-wise logs, ours included."""
        if self._keras_tb is None:
            return False
        return level == "epoch" or self._keras_tb.update_freq != "epoch"

    def _end_training(self):
        self._in_fit = False
        if self._writers is not None:
            self._writers.close()

    # Summaries.
    def _write_logs(self, run: str, prefix: str, values: dict, step: int):
        if self._writers is None or not self._chief:
            return
        for name, value in values.items():
            if value is not None and math.isfinite(value):
                self._writers.scalar(run, prefix + name, value, step)

    def _write_cost_panels(self):
        if self.cost is None:
            return
        if self.print_summary:
            print(self.cost.summary())
        if self._writers is None or not self._chief:
            return
        step = self._fit_start
        self._last["cost"] = step
        for tag, value in panels.cost_scalars(self.cost, self.peak).items():
            self._writers.scalar("train", tag, value, step)
        self._writers.text("train", "cost/layers", self.cost.to_markdown(), step)
        self._writers.text("train", "cost/notes", panels.notes_markdown(self.cost, self.peak), step)
        self._writers.document("train", COST_TAG, panels.cost_document(self.cost, self.peak), step)
        self._write_chart(step)
        measured = memory.peak_bytes_in_use(keras.backend.backend()) is not None
        layout = panels.custom_scalars_layout(windows=self.update_freq != "epoch", memory=measured)
        self._writers.custom_scalars("train", layout, step)
        self._flush()

    def _write_chart(self, step: int):
        try:
            from .charts import top_layers_png

            png, width, height = top_layers_png(self.cost.layers, self.top_layers)
        except ImportError:
            warnings.warn("nns_callbacks: matplotlib is missing: no chart", stacklevel=4)
            return
        self._writers.image("train", "cost/top_layers", png, width, height, step)

    def _flush(self):
        if self._writers is not None:
            self._writers.flush()
