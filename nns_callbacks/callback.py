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

import dataclasses
import math
import os
import sys
import threading
import time
import warnings

import keras

from . import hardware, panels
from .estimation import estimate
from .summary_writer import SummaryWriters, check_writable
from .throughput import Rates, ThroughputMeter


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """Samples per step of one pass over the data: ``batch_size``, and a smaller last batch."""

    batch_size: int
    num_batches: int | None = None
    partial_batch_size: int | None = None

    def samples(self, steps: int) -> int:
        """Samples done after ``steps`` steps of the pass."""
        done = steps * self.batch_size
        if self.partial_batch_size and self.num_batches and steps >= self.num_batches:
            done -= self.batch_size - self.partial_batch_size
        return done


class _Phase:
    """Marks and windows of one pass of one mode (a training epoch, an evaluation, a prediction)."""

    def __init__(self, flops_per_sample, peak_flops, plan: BatchPlan | None, update_freq):
        self.meter = ThroughputMeter(flops_per_sample, peak_flops)
        self.plan = plan
        self.update_freq = update_freq
        self.last_edge: int | None = None
        self.latest: dict[str, float] = {}
        self.lock = threading.Lock()

    def begin_pass(self, time_now: float | None) -> None:
        """A new pass; ``time_now`` starts it at 0 steps, ``None`` lets its first finished step start it (warm-up)."""
        with self.lock:
            self.meter.reset()
            self.last_edge = None
            if time_now is not None:
                self.meter.start(0, 0, time_now)
                self.last_edge = 0

    def batch_end(self, steps: int, time_now: float, last_step: bool) -> Rates | None:
        """Mark a finished batch; the window's rates when this batch closes one."""
        if self.plan is None:
            return None
        with self.lock:
            self.meter.mark(steps, self.plan.samples(steps), time_now)
            if self.last_edge is None:
                self.last_edge = steps
                return None
            due = self.update_freq != "epoch" and steps - self.last_edge >= self.update_freq
            if steps <= self.last_edge or not (due or last_step):
                return None
            window = self.meter.between(self.last_edge, steps)
            self.last_edge = steps
            if window is not None:
                self.latest = window.as_logs()
            return window

    def total(self) -> Rates | None:
        """Rates over the whole pass."""
        with self.lock:
            return self.meter.total()


def _caller_local(name: str, wanted):
    """The local ``name`` of the nearest calling frame (``fit``, ``evaluate``, ...) that has a ``wanted`` one."""
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get(name)
        if candidate is not None and wanted(candidate):
            return candidate
        frame = frame.f_back
    return None


def _caller_epoch_iterator():
    """The data iterator of the ``fit`` / ``evaluate`` / ``predict`` that is calling us, if any."""
    return _caller_local("epoch_iterator", lambda x: hasattr(x, "data_adapter"))


def _keras_tensorboard(ours, log_dir: str | None):
    """A ``keras.callbacks.TensorBoard`` after ``ours`` in the running ``fit``, writing into ``log_dir``.

    It writes the rates we put into ``logs`` under the same tags, so we leave those to it.
    """
    if log_dir is None:
        return None
    callbacks = _caller_local("callbacks", lambda x: isinstance(x, keras.callbacks.CallbackList))
    listed = list(getattr(callbacks, "callbacks", []))
    after = listed[listed.index(ours) + 1:] if ours in listed else []
    for callback in after:
        if isinstance(callback, keras.callbacks.TensorBoard) and _same_dir(callback.log_dir, log_dir):
            return callback
    return None


def _same_dir(first: str, second: str) -> bool:
    return os.path.realpath(first) == os.path.realpath(second)


def _batch_plan(batch_size_arg, model) -> BatchPlan | None:
    """Batch size from the argument, else the running data adapter, else the model's inputs."""
    iterator = _caller_epoch_iterator()
    adapter = getattr(iterator, "data_adapter", None)
    size = batch_size_arg or _safe(lambda: adapter.batch_size)
    if not size:
        inputs = _safe(lambda: model.inputs) or []
        size = inputs[0].shape[0] if inputs else None
    if not size:
        return None
    num_batches = getattr(iterator, "_num_batches", None) or _safe(lambda: adapter.num_batches)
    partial = _safe(lambda: adapter.partial_batch_size) if not batch_size_arg else None
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
        clock: a function returning seconds, for tests.

    Logs gain ``samples_per_sec``, ``flops_per_sec`` (training FLOPs: forward + backward +
    optimizer, not MACs) and ``mfu`` (achieved / peak FLOP/s), with ``val_`` versions for
    validation, whose FLOPs are forward only.  Place it before ``CSVLogger`` to log them there.
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
        self._clock = clock
        self._writers = SummaryWriters(self.log_dir) if self.log_dir else None
        self.cost = None
        self.peak = None
        self._peak_resolved = False
        self._train = self._test = self._predict = None
        self._in_fit = False
        self._step_offset = 0
        self._steps_in_fit = 0
        self._epoch_steps = 0
        self._val_logs: dict[str, float] = {}
        self._first_epoch_of_fit = True
        self._chief = True
        self._epoch_shift = 0
        self._last_epoch_step = -1
        self._keras_tb = None

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
        self._guard(self._phase_batch_end, self._test, batch, logs)

    def on_test_end(self, logs=None):
        self._guard(self._end_test)

    def on_predict_begin(self, logs=None):
        self._guard(self._begin_predict)

    def on_predict_batch_end(self, batch, logs=None):
        self._guard(self._phase_batch_end, self._predict, batch, None)

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

    def _estimate(self, plan: BatchPlan | None):
        batch = plan.batch_size if plan else 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                return estimate(self.model, batch_size=batch, input_shape=self.input_shape)
        except Exception as error:  # noqa: BLE001  (estimation trouble is a warning during fit)
            warnings.warn(
                f"nns_callbacks: could not estimate the model's cost ({error}); samples/s are still "
                "measured, FLOP/s and MFU are left out",
                stacklevel=4,
            )
            return None

    def _resolve_peak(self):
        self._chief = _is_chief(self.model)
        if not self._peak_resolved:
            self._peak_resolved = True
            compute_dtype = self.model.dtype_policy.compute_dtype
            self.peak = hardware.resolve_peak(
                self.peak_flops, keras.backend.backend(), compute_dtype, replicas=_replicas(self.model)
            )
        return self.peak

    def _begin_training(self):
        plan = _batch_plan(self.batch_size, self.model)
        if plan is None:
            warnings.warn("nns_callbacks: batch size unknown: pass NNSCallback(batch_size=...)", stacklevel=3)
        self.cost = self._estimate(plan)
        peak = self._resolve_peak()
        flops = self.cost.training_flops_per_sample if self.cost else None
        self._train = _Phase(flops, peak.flops_per_sec if peak else None, plan, self.update_freq)
        self._in_fit = True
        self._first_epoch_of_fit = True
        iterations = _safe(lambda: int(self.model.optimizer.iterations))
        self._step_offset = iterations if iterations is not None else self._step_offset + self._steps_in_fit
        self._steps_in_fit = 0
        self._keras_tb = _keras_tensorboard(self, self.log_dir)
        self._write_cost_panels()

    def _begin_epoch(self, epoch):
        if self._train is None:
            return
        warm = self._first_epoch_of_fit
        if warm:  # a new fit that counts epochs from 0 again continues the epoch axis instead
            self._epoch_shift = max(0, self._last_epoch_step + 1 - epoch)
        self._first_epoch_of_fit = False
        self._epoch_steps = 0
        self._train.begin_pass(None if warm else self._clock())
        self._val_logs = {}

    def _train_batch_end(self, batch, logs):
        phase = self._train
        if phase is None:
            return
        steps = batch + 1
        window = phase.batch_end(steps, self._clock(), steps == self.params.get("steps"))
        with phase.lock:
            if steps > self._epoch_steps:
                self._steps_in_fit += steps - self._epoch_steps
                self._epoch_steps = steps
            global_step = self._step_offset + self._steps_in_fit
        if window is not None and self.update_freq != "epoch" and not self._keras_tb_writes("batch"):
            self._write_rates("train", "batch_", window, global_step)
        if logs is not None:
            logs.update(phase.latest)

    def _begin_phase(self, flops_per_sample, warm: bool) -> _Phase:
        """A test or predict pass; the first of each kind warms up (compiles), later ones time from now."""
        plan = _batch_plan(None, self.model) if not self.batch_size else BatchPlan(self.batch_size)
        peak = self._resolve_peak()
        phase = _Phase(flops_per_sample, peak.flops_per_sec if peak else None, plan, self.update_freq)
        phase.begin_pass(None if warm else self._clock())
        return phase

    def _forward_flops_per_sample(self):
        if self.cost is None:
            plan = _batch_plan(self.batch_size, self.model)
            self.cost = self._estimate(plan)
        return self.cost.forward_flops_per_sample if self.cost else None

    def _begin_test(self):
        self._test = self._begin_phase(self._forward_flops_per_sample(), warm=self._test is None)

    def _begin_predict(self):
        self._predict = self._begin_phase(self._forward_flops_per_sample(), warm=self._predict is None)

    def _phase_batch_end(self, phase, batch, logs):
        if phase is None:
            return
        last = batch + 1 == (phase.plan.num_batches if phase.plan else None)
        phase.batch_end(batch + 1, self._clock(), last)
        if logs is not None:
            logs.update(phase.latest)

    def _end_test(self):
        total = self._test.total() if self._test else None
        if total is None:
            return
        if self._in_fit:
            self._val_logs = {f"val_{k}": v for k, v in total.as_logs().items()}
        else:
            self._write_rates("validation", "evaluation_", total, self._step_offset + self._steps_in_fit)
            self._flush()

    def _end_predict(self):
        total = self._predict.total() if self._predict else None
        if total is not None:
            self._write_rates("validation", "prediction_", total, self._step_offset + self._steps_in_fit)
            self._flush()

    def _end_epoch(self, epoch, logs):
        total = self._train.total() if self._train else None
        if total is not None and logs is not None:
            logs.update(total.as_logs())
        step = epoch + self._epoch_shift
        self._last_epoch_step = max(self._last_epoch_step, step)
        if self._val_logs and logs is not None:
            logs.update(self._val_logs)
        if not self._keras_tb_writes("epoch"):
            if total is not None:
                self._write_rates("train", "epoch_", total, step)
            val = {k[len("val_"):]: v for k, v in self._val_logs.items()}
            self._write_logs("validation", "epoch_", val, step)
        self._flush()

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
    def _write_rates(self, run: str, prefix: str, rates: Rates, step: int):
        self._write_logs(run, prefix, rates.as_logs(), step)

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
        step = self._step_offset
        for tag, value in panels.cost_scalars(self.cost, self.peak).items():
            self._writers.scalar("train", tag, value, step)
        self._writers.text("train", "cost/layers", self.cost.to_markdown(), step)
        self._writers.text("train", "cost/notes", panels.notes_markdown(self.cost, self.peak), step)
        self._write_chart(step)
        self._writers.custom_scalars("train", panels.custom_scalars_layout())
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
