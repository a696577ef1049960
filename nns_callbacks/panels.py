"""What the cost panels in TensorBoard show: scalars, Markdown text, the chart, the layout, the run's status."""

from __future__ import annotations

import dataclasses
import math
import os
import socket

from .cost import CONVENTIONS, ModelCost, format_bytes, format_count
from .tensorboard_plugin import metadata


@dataclasses.dataclass(frozen=True)
class WorkSources:
    """What the FLOP/s, MFU and HFU of a run count, per training step (the nominal batch's).

    ``model_flops``: the model's own FLOPs (what MFU counts), from ``model_source``; ``hardware``: the
    ``step_count.CountedStep`` of the step as it runs (HFU), or ``None``; ``hardware_note``: why there is none.
    """

    model_flops: float | None = None
    model_source: str = "unknown"
    hardware: object = None
    hardware_note: str = ""

    def as_dict(self) -> dict:
        hardware = self.hardware
        return {
            "model_flops_per_step": self.model_flops,
            "model_source": self.model_source,
            "hardware_flops_per_step": None if hardware is None else hardware.flops,
            "hardware_source": None if hardware is None else hardware.source,
            "hardware_left_out": [] if hardware is None else list(hardware.left_out),
            "hardware_note": self.hardware_note,
        }

    def markdown(self) -> str:
        """The work lines of the notes."""
        model = "unknown: no MFU" if self.model_flops is None else f"{format_count(self.model_flops)}FLOP per step"
        lines = [f"**Model FLOPs (MFU, FLOP/s).** {model}; source: {self.model_source}."]
        if self.hardware is not None:
            left_out = f" Not in it: {'; '.join(self.hardware.left_out)}." if self.hardware.left_out else ""
            lines.append(
                f"**Counted step (HFU).** {format_count(self.hardware.flops)}FLOP per step; source: "
                f"{self.hardware.source}.{left_out}"
            )
        elif self.hardware_note:
            lines.append(f"**Counted step (HFU).** {self.hardware_note}")
        return "\n\n".join(lines)


def cost_scalars(cost: ModelCost, peak=None, bandwidth=None) -> dict[str, float]:
    """Scalar tags of the cost model: FLOPs, MACs and bytes named by unit."""
    scalars = {
        "cost/params": cost.params,
        "cost/trainable_params": cost.trainable_params,
        "cost/batch_size": cost.batch_size,
        "cost/forward_macs_per_sample": cost.forward_macs_per_sample,
        "cost/forward_flops_per_sample": cost.forward_flops_per_sample,
        "cost/training_flops_per_sample": cost.training_flops_per_sample,
        "cost/forward_flops_per_step": cost.forward_flops,
        "cost/training_flops_per_step": cost.training_flops,
        "cost/memory/weight_bytes": cost.weight_bytes,
        "cost/memory/gradient_bytes": cost.gradient_bytes,
        "cost/memory/optimizer_bytes": cost.optimizer_bytes,
        "cost/memory/activation_bytes": cost.activation_bytes,
        "cost/memory/training_bytes": cost.training_bytes,
        "cost/training_bytes_moved_per_step": cost.training_bytes_moved,
    }
    if peak is not None:
        scalars["cost/peak_flops_per_sec"] = peak.flops_per_sec
    if bandwidth is not None:
        scalars["cost/memory_bandwidth_bytes_per_sec"] = bandwidth.bytes_per_sec
    return scalars


ROOFLINE_POINTS = 60
ROOFLINE_TOP = 15


def cost_document(cost: ModelCost, peak=None, bandwidth=None, roofline=None) -> dict:
    """What the Cost tab shows of a run: ``cost.to_dict()``, the peak FLOP/s behind MFU and the memory bandwidth
    (``None``: unknown), the roofline (``roofline.Roofline``, ``None`` without both) and the roll-up by kind,
    with non-finite numbers as ``None`` so that the JSON is strict."""
    document = cost.to_dict()
    document["peak"] = None if peak is None else dataclasses.asdict(peak)
    document["bandwidth"] = None if bandwidth is None else dataclasses.asdict(bandwidth)
    document["roofline"] = None if roofline is None else roofline_document(cost, roofline)
    document["by_kind"] = _records(cost.by_kind(*_rates(roofline)))
    return _finite(document)


def _rates(roofline) -> tuple:
    return (None, None) if roofline is None else (roofline.peak_flops, roofline.memory_bandwidth)


def _records(frame) -> list[dict]:
    """A DataFrame's rows as JSON-ready dicts (NumPy numbers as Python numbers)."""
    return [{key: value.item() if hasattr(value, "item") else value for key, value in row.items()}
            for row in frame.to_dict("records")]


def roofline_document(cost: ModelCost, roofline, depth: int = 1) -> dict:
    """The roofline for the Cost tab: the device's roofs, the step's point, the blocks at ``depth`` as points
    (the ``ROOFLINE_POINTS`` with most predicted time) and the ``ROOFLINE_TOP`` rows with most predicted time."""
    blocks = cost.by_block(depth, roofline.peak_flops, roofline.memory_bandwidth)
    shown = blocks.sort_values("seconds", ascending=False, kind="stable").head(ROOFLINE_POINTS)
    top = roofline.top(ROOFLINE_TOP)[["name", "type", "training_flops", "training_bytes_moved",
                                      "arithmetic_intensity", "seconds", "bound", "share"]]
    return {
        "peak_flops_per_sec": roofline.peak_flops,
        "memory_bandwidth": roofline.memory_bandwidth,
        "ridge_point": roofline.ridge_point,
        "step_seconds": roofline.step_seconds,
        "training_flops": roofline.training_flops,
        "training_bytes_moved": roofline.training_bytes_moved,
        "arithmetic_intensity": roofline.arithmetic_intensity,
        "bound_seconds": roofline.bound_seconds(),
        "depth": depth,
        "blocks": len(blocks),
        "points": _records(shown),
        "top": _records(top),
    }


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def notes_markdown(cost: ModelCost, peak=None, work: WorkSources | None = None, bandwidth=None) -> str:
    """Conventions, the work behind FLOP/s, MFU and HFU, the peak and what was not counted, in Markdown."""
    lines = ["**Conventions.** " + CONVENTIONS, ""]
    if work is not None:
        lines += [work.markdown(), ""]
    if peak is None:
        lines.append("**Peak.** Unknown: MFU and HFU are left out. Pass `NNSCallback(peak_flops=...)` or `'measure'`.")
    else:
        lines.append(
            f"**Peak.** {format_count(peak.flops_per_sec)}FLOP/s over {peak.devices} device(s) "
            f"({peak.device}, {peak.precision}); source: {peak.source}."
        )
    if bandwidth is None:
        lines.append("\n**Memory bandwidth.** Unknown: no roofline. Pass `NNSCallback(memory_bandwidth=...)` or "
                     "`'measure'`.")
    else:
        lines.append(f"\n**Memory bandwidth.** {format_bytes(bandwidth.bytes_per_sec)}/s over {bandwidth.devices} "
                     f"device(s) ({bandwidth.device}); source: {bandwidth.source}.")
    if cost.unsupported:
        listed = ", ".join(f"`{name}` x{count}" for name, count in sorted(cost.unsupported.items()))
        lines += ["", f"**Not counted (cost 0):** {listed}."]
    return "\n".join(lines)


def custom_scalars_layout(windows: bool = True, memory: bool = True):
    """A Custom Scalars layout of the charts that have data: throughput per epoch (train and validation
    overlaid), per window where ``windows`` (``update_freq`` steps), and the measured peak memory where
    the device reports one (``memory``).

    The cost scalars are single points, written once: a chart has nothing to draw for them.
    """
    from tensorboard.plugins.custom_scalar import layout_pb2

    def chart(title: str, regex: str):
        return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=[regex]))

    def rate_charts(title: str, prefix: str, extra=()):
        return layout_pb2.Category(
            title=title,
            chart=[
                chart("samples/s (wall clock; steady state after the first step)",
                      prefix + "(samples_per_sec|steady_samples_per_sec)"),
                chart("achieved TFLOP/s (1e12 FLOP/s)", prefix + "tflops_per_sec"),
                chart("MFU and HFU (model and counted FLOP/s / peak FLOP/s)", prefix + "(mfu|hfu)"),
                *extra,
            ],
        )

    startup = chart("start-up and compilation per epoch (s)", "epoch_(startup|compile)_seconds")
    categories = [rate_charts("nns_callbacks: throughput per epoch", "epoch_", [startup])]
    if windows:
        categories.append(rate_charts("nns_callbacks: throughput per window (x: training step)", "batch_"))
    if memory:
        categories.append(
            layout_pb2.Category(
                title="nns_callbacks: memory",
                chart=[
                    chart("peak device memory (bytes)", r"epoch_peak_memory_bytes"),
                    chart("peak / estimated memory", r"epoch_peak_memory_over_estimate"),
                ],
            )
        )
    return layout_pb2.Layout(category=categories)


def status_document(state: str, cost_error: str | None, work: WorkSources | None, backend: str, writer: int) -> dict:
    """The run-status document (``nns/run``): ``state`` running or finished, the cost model's fate, the writer."""
    return _finite({
        "version": 1,
        "state": state,
        "cost": "missing" if cost_error else "ok",
        "cost_error": cost_error,
        "work": None if work is None else work.as_dict(),
        "writer": {"host": socket.gethostname(), "pid": os.getpid(), "number": writer},
        "backend": backend,
    })


def write_cost_panels(writers, cost: ModelCost, peak, work: WorkSources, step: int, top_layers: int, layout,
                      bandwidth=None, roofline=None) -> None:
    """The cost panels of the ``train`` run at ``step``: scalars, the layer table, the notes, the Cost tab's
    document, the top-layers chart and the Custom Scalars layout."""
    scalars = cost_scalars(cost, peak, bandwidth)
    if work.model_flops is not None:
        scalars["cost/model_flops_per_step"] = work.model_flops
    for tag, value in scalars.items():
        writers.scalar("train", tag, value, step)
    writers.text("train", "cost/layers", cost.to_markdown(), step)
    writers.text("train", "cost/notes", notes_markdown(cost, peak, work, bandwidth), step)
    document = cost_document(cost, peak, bandwidth, roofline)
    writers.document("train", metadata.COST_TAG, document, metadata.create_summary_metadata(), step)
    chart = top_layers_chart(cost, top_layers)
    if chart is not None:
        writers.image("train", "cost/top_layers", *chart, step)
    writers.custom_scalars("train", layout, step)


def top_layers_chart(cost: ModelCost, top: int):
    """(png, width, height) of the layers that dominate training FLOPs and activation memory; ``None``
    without matplotlib."""
    try:
        from .charts import top_layers_png
    except ImportError:
        return None
    return top_layers_png(cost.layers, top)
