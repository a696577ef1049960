"""The cost side of a training run: the model's cost, re-estimated when what it depends on changes, the peak
FLOP/s and memory bandwidth, the work per step behind FLOP/s, MFU (model FLOPs) and HFU (the step as it runs),
and the roofline's predicted step time."""

from __future__ import annotations

from typing import NamedTuple

import keras

from . import bandwidth, fit_context, hardware, notices, step_count
from .arguments import validate_stated_flops
from .estimation import estimate
from .panels import WorkSources
from .peaks import AUTO
from .throughput import StepWork, Work, empty_logs


class LogKeys(NamedTuple):
    """Which rate keys a pass logs: tflops_per_sec (a known work), mfu (model FLOPs and a peak), hfu (a counted
    step and a peak), tokens_per_sec (a token-sequence model: its tokens per sample)."""

    flops: bool
    mfu: bool
    hfu: bool
    tokens_per_sample: int | None = None


class TrainingWork(NamedTuple):
    """The FLOPs of a training step and the log keys they give."""

    work: StepWork
    keys: LogKeys


def cost_key(model, batch: int) -> tuple:
    """What the estimate depends on: the model, its trainable flags, its optimizer, the batch, the dtype policy, the
    distribution it trains under."""
    optimizer = getattr(model, "optimizer", None)
    trainable = tuple(bool(w.trainable) for w in model.weights)
    policy = getattr(getattr(model, "dtype_policy", None), "name", None)
    distribution = id(keras.distribution.distribution())
    return id(model), trainable, id(optimizer), type(optimizer).__name__, batch, policy, bool(model.built), distribution


class RunCost:
    """The cost model of the run's model and the work of its steps; estimation trouble is a warning."""

    def __init__(self, input_shape=None, compiled_memory=False, flops_per_step=None, flops_per_sample=None,
                 memory_bandwidth=None):
        validate_stated_flops(flops_per_step, flops_per_sample)
        bandwidth.validate_memory_bandwidth(memory_bandwidth)
        self.memory_bandwidth = memory_bandwidth
        self.bandwidth = None
        self.bandwidth_resolved = False
        self.input_shape = input_shape
        self.compiled_memory = compiled_memory
        self.flops_per_step = flops_per_step
        self.flops_per_sample = flops_per_sample
        self.cost = None
        self.error: str | None = None
        self.key: tuple | None = None
        self.peak = None
        self.peak_resolved = False
        self.custom_step = False
        self.counted = None
        self.count_note = ""
        self._training = None  # (StepWork, its log keys), made once per change
        self._roofline = None  # (cost, peak, bandwidth) and their Roofline, made once per change
        self._warned: set = set()

    def update(self, model, batch: int) -> bool:
        """Estimate the cost for ``batch`` where the model, its trainable flags, optimizer, batch or dtype policy
        changed since the last estimate; whether it did."""
        key = cost_key(model, batch)
        if key == self.key:
            return False
        self.key, self._training = key, None
        self.custom_step = fit_context.has_custom_train_step(model)
        try:
            self.cost = estimate(
                model, batch_size=batch, input_shape=self.input_shape, compiled_memory=self.compiled_memory
            )
            self.error = None
        except Exception as error:  # noqa: BLE001  (estimation trouble is a warning during fit)
            self.cost, self.error = None, f"{type(error).__name__}: {error}"
            advice = (
                "the model trains with its own train_step, whose FLOPs are counted where the backend can (HFU); "
                "state its model FLOPs with NNSCallback(flops_per_step=...) for MFU"
                if self.custom_step else
                "for a model whose inputs have dimensions of unknown size, pass NNSCallback(input_shape=<one "
                "sample's shape>), or state a step's work with NNSCallback(flops_per_step=...)"
            )
            notices.warn(f"could not estimate the model's cost ({error}); samples/s are still measured: {advice}",
                         cause=("estimate failed", str(error)), stacklevel=6)
        return True

    def resolve_peak(self, model, peak_flops) -> None:
        """The peak FLOP/s over every replica, once per run (measuring it takes a second)."""
        if not self.peak_resolved:
            self.peak_resolved, self._training = True, None
            self.peak = hardware.resolve_peak(
                peak_flops, keras.backend.backend(), model.dtype_policy.compute_dtype,
                replicas=fit_context.replicas(model), warn=lambda message: notices.warn(message, stacklevel=7),
            )

    def resolve_bandwidth(self, model) -> None:
        """The memory bandwidth over every replica for the roofline, once per run; the datasheet is looked up only
        where there is a peak to make a roofline with (a stated or measured bandwidth is resolved anyway)."""
        if self.bandwidth_resolved or (self.peak is None and self.memory_bandwidth in (None, AUTO)):
            return
        self.bandwidth_resolved = True
        try:
            self.bandwidth = bandwidth.resolve_bandwidth(self.memory_bandwidth, keras.backend.backend(),
                                                         replicas=fit_context.replicas(model), warn=_roofline_left_out)
        except Exception as error:  # noqa: BLE001  (a failed measurement must not stop training)
            _roofline_left_out(f"the memory bandwidth could not be measured ({error!r})")

    @property
    def peak_flops(self) -> float | None:
        return self.peak.flops_per_sec if self.peak else None

    def above_peak(self, logs: dict) -> str | None:
        """What to say where a pass's MFU or HFU passes 100%: the peak or the FLOPs are wrong, not the hardware."""
        if not ((logs.get("mfu") or 0.0) > 1 or (logs.get("hfu") or 0.0) > 1):  # NaN compares False
            return None
        over = {key: value for key in ("mfu", "hfu") if (value := logs.get(key)) is not None and value > 1}
        shown = ", ".join(f"{key.upper()} {value:.0%}" for key, value in over.items())
        return (f"{shown} above 100%: the peak ({self.peak.source}: {self.peak.flops_per_sec:.3g} FLOP/s over "
                f"{self.peak.devices} device(s)) is below what the run achieved, or the step's FLOPs are overstated; "
                "pass peak_flops= with the device's dense peak, or peak_flops='measure!'")

    def model_work(self) -> Work | None:
        """The model FLOPs of a training step: stated, else the estimate's (not for a custom ``train_step``)."""
        if self.flops_per_step is not None:
            return Work(0.0, float(self.flops_per_step))
        if self.flops_per_sample is not None:
            return Work(float(self.flops_per_sample))
        if self.cost is None or self.custom_step:
            return None
        batch = self.cost.batch_size
        return Work((self.cost.forward_flops + self.cost.backward_flops) / batch, self.cost.optimizer_flops)

    def training_work(self) -> StepWork:
        hardware_work = None if self.counted is None else Work(0.0, self.counted.flops)
        return StepWork(self.model_work(), hardware_work)

    def training(self) -> TrainingWork:
        """The training work and the log keys it gives; made once per change of the cost, the peak or the counted
        step (the windows read it every few steps)."""
        if self._training is None:
            work = self.training_work()
            self._training = TrainingWork(work, self.log_keys(work))
        return self._training

    def log_keys(self, work: StepWork) -> LogKeys:
        """Which of tflops_per_sec, mfu and hfu a pass of ``work`` logs."""
        peak = self.peak_flops is not None
        tokens = self.cost.tokens_per_sample if self.cost is not None else None
        return LogKeys(work.achieved is not None, work.model is not None and peak, work.hardware is not None and peak,
                       tokens)

    def logs(self, rates, work: StepWork) -> dict[str, float]:
        """Keras's logs of ``rates`` of a pass of ``work`` (all NaN where nothing was measurable)."""
        return _logs(rates, self.log_keys(work))

    def training_logs(self, rates) -> dict[str, float]:
        """Keras's logs of ``rates`` of training steps (all NaN where nothing was measurable)."""
        return _logs(rates, self.training().keys)

    def count_first_step(self, model, count_step, warn) -> None:
        """Count the first step's FLOPs where asked (``count_step``: True, or "auto" for a custom ``train_step``)
        and the backend can; ``warn(message, cause)`` says where it cannot."""
        self.counted, self.count_note, self._training = None, "", None
        if not (count_step is True or (count_step == "auto" and self.custom_step)):
            return
        backend = keras.backend.backend()

        def counted(step):
            self.counted, self._training = step, None

        def failed(error):
            self.count_note = f"counting the step failed: {error!r}"
            warn(f"could not count the training step's FLOPs ({error!r}): no HFU", "count failed")

        if not step_count.counting_first_step(model, backend, counted, failed):
            self.count_note = ("not counted on this backend (TensorFlow has no cheap counter): state the step's "
                               "work with NNSCallback(flops_per_step=...)")
            warn(f"the FLOPs of the training step are not counted on the {backend} backend: no HFU; state the "
                 "model FLOPs of a step with NNSCallback(flops_per_step=...) for MFU", "not counted")

    def roofline(self):
        """The step's ``roofline.Roofline`` on the run's peak and bandwidth; ``None`` where either is unknown, the
        cost is, or the model trains with its own ``train_step`` (whose work is not one pass of the model), or
        where it could not be made (warned once)."""
        if self.cost is None or self.peak is None or self.bandwidth is None or self.custom_step:
            return None
        key = (id(self.cost), self.peak, self.bandwidth)
        if self._roofline is None or self._roofline[0] != key:
            try:
                made = self.cost.roofline(self.peak.flops_per_sec, self.bandwidth.bytes_per_sec)
            except Exception as error:  # noqa: BLE001  (estimation trouble is a warning during fit)
                notices.warn(f"the roofline could not be made ({error!r}): left out", cause=("roofline", str(error)),
                             seen=self._warned)
                made = None
            self._roofline = key, made
        return self._roofline[1]

    def roofline_values(self, steady_samples_per_sec: float | None) -> dict[str, float]:
        """``roofline_step_seconds`` (predicted) and ``roofline_fraction`` (predicted / measured steady step
        time: batch / steady samples/s), each left out where unknown."""
        predicted = self.roofline()
        if predicted is None:
            return {}
        values = {"roofline_step_seconds": predicted.step_seconds}
        if steady_samples_per_sec:
            fraction = predicted.fraction_of(self.cost.batch_size / steady_samples_per_sec)
            if fraction is not None:
                values["roofline_fraction"] = fraction
        return values

    def forward_work(self) -> StepWork:
        """Validation, evaluation, prediction: the model's forward FLOPs."""
        if self.cost is None or not self.cost.forward_flops:
            return StepWork()
        return StepWork(Work(self.cost.forward_flops / self.cost.batch_size))

    def sources(self) -> WorkSources:
        """What FLOP/s, MFU and HFU count, said in words, for the notes and the Cost tab."""
        work = self.model_work()
        batch = self.cost.batch_size if self.cost is not None else None
        flops = None if work is None or batch is None and work.per_sample else work.flops(batch or 0, 1)
        if self.flops_per_step is not None:
            source = "stated: NNSCallback(flops_per_step=...)"
        elif self.flops_per_sample is not None:
            source = "stated: NNSCallback(flops_per_sample=...)"
        elif self.custom_step:
            source = ("unknown: the model's own train_step may do any work (several passes, several models); "
                      "state it with NNSCallback(flops_per_step=...)")
        elif self.cost is None:
            source = f"unknown: the cost could not be estimated ({self.error})"
        else:
            source = "the estimate: forward + backward + optimizer update"
        return WorkSources(flops, source, self.counted, self.count_note)


def _roofline_left_out(message: str) -> None:
    notices.warn(f"roofline_step_seconds and roofline_fraction are left out: {message}", stacklevel=8)


def _logs(rates, keys: LogKeys) -> dict[str, float]:
    return empty_logs(*keys) if rates is None else rates.as_logs(*keys)
