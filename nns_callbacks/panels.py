"""What the cost panels in TensorBoard show: scalars, Markdown text, the chart, the layout."""

from __future__ import annotations

import dataclasses
import math

from .cost import CONVENTIONS, ModelCost, format_count


def cost_scalars(cost: ModelCost, peak=None) -> dict[str, float]:
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
    }
    if peak is not None:
        scalars["cost/peak_flops_per_sec"] = peak.flops_per_sec
    return scalars


def cost_document(cost: ModelCost, peak=None) -> dict:
    """What the Cost tab shows of a run: ``cost.to_dict()`` and the peak FLOP/s behind MFU (``None``:
    unknown), with non-finite numbers as ``None`` so that the JSON is strict."""
    document = cost.to_dict()
    document["peak"] = None if peak is None else dataclasses.asdict(peak)
    return _finite(document)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def notes_markdown(cost: ModelCost, peak=None) -> str:
    """Conventions, the peak behind MFU and what was not counted, in Markdown."""
    lines = ["**Conventions.** " + CONVENTIONS, ""]
    if peak is None:
        lines.append("**Peak.** Unknown: MFU is left out. Pass `NNSCallback(peak_flops=...)` or `'measure'`.")
    else:
        lines.append(
            f"**Peak.** {format_count(peak.flops_per_sec)}FLOP/s over {peak.devices} device(s) "
            f"({peak.device}, {peak.precision}); source: {peak.source}."
        )
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

    def rate_charts(title: str, prefix: str):
        return layout_pb2.Category(
            title=title,
            chart=[
                chart("samples/s", prefix + "samples_per_sec"),
                chart("achieved TFLOP/s (1e12 FLOP/s)", prefix + "tflops_per_sec"),
                chart("MFU (achieved / peak FLOP/s)", prefix + "mfu"),
            ],
        )

    categories = [rate_charts("nns_callbacks: throughput per epoch", "epoch_")]
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
