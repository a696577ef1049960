"""ModelCost: the whole-model totals and the per-layer table, with exports.

Units: ``*_macs`` are multiply-adds; ``*_flops`` are floating-point operations
(one multiply-add = 2 FLOPs); ``*_bytes`` are bytes.  Published papers call
multiply-adds "FLOPs".  Figures are for the whole batch unless the name ends in
``_per_sample``.  ``*_bytes_moved`` are device-memory traffic (``traffic``), apart from the memory
footprint (``*_bytes``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from .per_device import PerDeviceCost

CONVENTIONS = (
    "A MAC is one multiply-add; a FLOP is one floating-point operation, so a MAC is 2 FLOPs "
    "(papers call MACs 'FLOPs'). forward_flops = 2 x MACs of products and convolutions + "
    "elementwise work (bias, normalisation, activations, pooling, merges, softmax) at XLA's "
    "per-element count, a transcendental counted as 1. Convolution MACs include taps on zero "
    "padding. backward_flops = input gradients (skipped where nothing upstream needs one) + "
    "weight gradients (skipped for frozen layers): 2 x MACs each for products with a weight. "
    "training_flops = forward + backward + optimizer update. Activation memory: the tensors the "
    "calls taking part in the backward pass keep for it (products their inputs, normalisations "
    "their inputs, activations their outputs, adds nothing), each counted once, in the compute dtype."
)

TOTAL_FIELDS = (
    "params",
    "trainable_params",
    "non_trainable_params",
    "forward_macs",
    "forward_flops",
    "backward_flops",
    "optimizer_flops",
    "training_flops",
    "weight_bytes",
    "gradient_bytes",
    "optimizer_bytes",
    "activation_bytes",
    "training_bytes",
)

BYTES_MOVED_FIELDS = ("forward_bytes_moved", "backward_bytes_moved", "optimizer_bytes_moved", "training_bytes_moved")
"""Device-memory traffic of a training step, in bytes: not a memory footprint (``training_bytes``)."""

PER_SAMPLE_FIELDS = ("forward_macs", "forward_flops", "backward_flops", "training_flops", "activation_bytes")


def _per_device(name: str) -> property:
    """A property: one device's ``name`` (the whole figure where one device holds it all)."""
    return property(lambda cost: getattr(cost.per_device, name) if cost.per_device else getattr(cost, name),
                    doc=f"One device's {name}.")


def _per_token(name: str) -> property:
    """A property: the total ``name`` divided by the batch's tokens (``None`` where the input is no token sequence)."""
    return property(lambda cost: getattr(cost, name) / (cost.batch_size * cost.tokens_per_sample)
                    if cost.tokens_per_sample else None, doc=f"{name} / (batch_size x tokens_per_sample).")


def _per_sample(name: str) -> property:
    """A property: the total ``name`` divided by the batch size."""
    return property(lambda cost: getattr(cost, name) / cost.batch_size, doc=f"{name} / batch_size.")


@dataclasses.dataclass
class ModelCost:
    """What a model costs for one batch of ``batch_size`` samples."""

    model_name: str
    batch_size: int
    dtype_policy: str
    optimizer: str
    params: int
    trainable_params: int
    non_trainable_params: int
    forward_macs: int
    forward_flops: int
    backward_flops: int
    optimizer_flops: int
    training_flops: int
    weight_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    # Bytes moved (device-memory traffic of a training step), kept apart from the memory footprint above.
    forward_bytes_moved: int
    backward_bytes_moved: int
    optimizer_bytes_moved: int
    layers: pd.DataFrame
    unsupported: dict[str, int]
    compiled_training_bytes: int | None = None
    """XLA's memory analysis of the jitted training step (JAX backend, ``estimate(compiled_memory=True)``)."""
    tokens_per_sample: int | None = None
    """Tokens in a sample where the input is a token sequence (its length, padding included), else ``None``."""
    devices: int = 1
    """Devices the model is spread over (``estimate(distribution=...)``)."""
    mesh_shape: dict[str, int] = dataclasses.field(default_factory=dict)
    """The mesh's axes and their sizes (empty on one device)."""
    per_device: PerDeviceCost | None = None
    """One device's share (``per_device.PerDeviceCost``); ``None``: one device holds it all."""

    @property
    def training_bytes(self) -> int:
        """Weights + gradients + optimizer state + activations, in bytes."""
        return self.weight_bytes + self.gradient_bytes + self.optimizer_bytes + self.activation_bytes

    @property
    def training_bytes_moved(self) -> int:
        """Forward + backward + optimizer bytes moved: the traffic of one training step, in bytes."""
        return self.forward_bytes_moved + self.backward_bytes_moved + self.optimizer_bytes_moved

    @property
    def arithmetic_intensity(self) -> float:
        """Training FLOPs per training byte moved (NaN where nothing is moved)."""
        return self.training_flops / self.training_bytes_moved if self.training_bytes_moved else float("nan")

    def roofline(self, peak_flops: float, memory_bandwidth: float):
        """The step's ``roofline.Roofline`` on a device of ``peak_flops`` FLOP/s and ``memory_bandwidth`` bytes/s:
        each row's predicted seconds and bound, the predicted step time, the ridge point."""
        from .roofline import roofline

        return roofline(self.layers, peak_flops, memory_bandwidth)

    def by_block(self, depth: int = 1, peak_flops=None, memory_bandwidth=None) -> pd.DataFrame:
        """Rows summed by block (the qualified name's first ``depth`` parts): parameters, FLOPs, bytes moved,
        activation bytes, and with both rates the predicted seconds; each column sums to the total."""
        from .rollups import by_block

        return by_block(self.layers, depth, peak_flops, memory_bandwidth)

    def by_kind(self, peak_flops=None, memory_bandwidth=None) -> pd.DataFrame:
        """Rows summed by kind: attention, mlp, normalization, embedding, convolution, other (``rollups``)."""
        from .rollups import by_kind

        return by_kind(self.layers, peak_flops, memory_bandwidth)

    forward_macs_per_sample = _per_sample("forward_macs")
    forward_flops_per_sample = _per_sample("forward_flops")
    backward_flops_per_sample = _per_sample("backward_flops")
    training_flops_per_sample = _per_sample("training_flops")
    activation_bytes_per_sample = _per_sample("activation_bytes")

    forward_flops_per_token = _per_token("forward_flops")
    training_flops_per_token = _per_token("training_flops")
    per_device_weight_bytes = _per_device("weight_bytes")
    per_device_gradient_bytes = _per_device("gradient_bytes")
    per_device_optimizer_bytes = _per_device("optimizer_bytes")
    per_device_activation_bytes = _per_device("activation_bytes")
    per_device_training_bytes = _per_device("training_bytes")
    per_device_training_flops = _per_device("training_flops")

    @property
    def per_device_communication_bytes(self) -> int:
        """Bytes one device sends per training step for the collectives (0 on one device)."""
        return self.per_device.communication_bytes if self.per_device else 0

    @property
    def per_device_compiled_training_bytes(self) -> int | None:
        """XLA's memory of the sharded training step for one device (``compiled_memory=True``)."""
        return self.per_device.compiled_training_bytes if self.per_device else self.compiled_training_bytes

    def per_sample(self) -> dict[str, float]:
        """The batch-proportional totals divided by the batch size."""
        return {f"{name}_per_sample": getattr(self, name) / self.batch_size for name in PER_SAMPLE_FIELDS}

    def to_dict(self) -> dict:
        """Totals, per-sample figures, conventions, unsupported layers and the layer rows."""
        result = {
            "model": self.model_name,
            "batch_size": self.batch_size,
            "dtype_policy": self.dtype_policy,
            "optimizer": self.optimizer,
        }
        result.update({name: int(getattr(self, name)) for name in TOTAL_FIELDS})
        result.update({name: int(getattr(self, name)) for name in BYTES_MOVED_FIELDS})
        moved = self.training_bytes_moved
        result["arithmetic_intensity"] = self.training_flops / moved if moved else None  # None: nothing moved
        result.update(self.per_sample())
        if self.compiled_training_bytes is not None:
            result["compiled_training_bytes"] = int(self.compiled_training_bytes)
        if self.tokens_per_sample:
            result.update(tokens_per_sample=self.tokens_per_sample, forward_flops_per_token=self.forward_flops_per_token,
                          training_flops_per_token=self.training_flops_per_token)
        if self.per_device is not None:
            result.update(devices=self.devices, mesh_shape=dict(self.mesh_shape), per_device=self._per_device_dict())
        result["unsupported"] = dict(self.unsupported)
        result["conventions"] = CONVENTIONS
        result["layers"] = json.loads(self.layers.to_json(orient="records"))
        return result

    def _per_device_dict(self) -> dict:
        share = self.per_device
        values = {field.name: getattr(share, field.name) for field in dataclasses.fields(share)}
        values["training_bytes"] = share.training_bytes
        return {name: value for name, value in values.items() if value is not None}

    def to_json(self, path=None, indent: int = 2) -> str | None:
        """``to_dict()`` as JSON text, or written to ``path``."""
        text = json.dumps(self.to_dict(), indent=indent)
        return _write_or_return(text, path)

    def to_csv(self, path=None) -> str | None:
        """The per-layer table as CSV text, or written to ``path``."""
        return _write_or_return(self.layers.to_csv(index=False), path)

    def to_markdown(self, max_rows: int | None = None, label: str | None = None) -> str:
        """Markdown: a header, the totals, the layer table (``max_rows``; ``None``: all), what was not counted."""
        header = f"**{label or self.model_name}**, batch {self.batch_size}, {self.dtype_policy}, optimizer {self.optimizer}"
        lines = [header, ""]
        lines += ["| quantity | whole batch | per sample |", "| --- | ---: | ---: |"]
        for name in TOTAL_FIELDS + BYTES_MOVED_FIELDS:
            value = getattr(self, name)
            fmt = format_bytes if "_bytes" in name else format_count
            per = fmt(value / self.batch_size) if name in PER_SAMPLE_FIELDS else ""
            lines.append(f"| {name} | {fmt(value)} | {per} |")
        lines += self._per_device_markdown()
        lines += ["", _markdown_table(self.layers, max_rows)]
        if self.unsupported:
            lines += ["", not_counted(self.unsupported)]
        return "\n".join(lines)

    def _per_device_markdown(self) -> list[str]:
        """One device's share as a Markdown table, where several hold the model."""
        share = self.per_device
        if share is None:
            return []
        mesh = " x ".join(f"{name} {size}" for name, size in self.mesh_shape.items())
        lines = ["", f"Per device ({self.devices} devices, mesh {mesh}):", "", "| quantity | per device |",
                 "| --- | ---: |"]
        for name in ("weight_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes", "gradient_buffer_bytes",
                     "training_bytes", "communication_bytes"):
            lines.append(f"| {name} | {format_bytes(getattr(share, name))} |")
        lines.append(f"| training_flops | {format_count(share.training_flops)} |")
        return lines + [f"- {note}" for note in share.notes]

    def summary(self, max_rows: int | None = None, label: str | None = None, depth: int | None = None) -> str:
        """The terminal table, like ``model.summary()``: one header, the layer rows (with ``depth``, the rows
        summed by block at that depth, as ``by_block``), the totals, what was not counted."""
        table = _text_table(self.layers, max_rows) if depth is None else _block_table(self.by_block(depth), max_rows)
        lines = [self._header(label), table, self._totals()]
        if self.unsupported:
            lines.append(not_counted(self.unsupported))
        return "\n".join(lines)

    def _header(self, label: str | None) -> str:
        """``label`` (default: the model's name), batch, dtype policy and optimizer, on one line."""
        return (
            f"{label or self.model_name}: batch {self.batch_size}, dtype policy {self.dtype_policy}, "
            f"optimizer {self.optimizer}"
        )

    def _totals(self) -> str:
        """Parameters, MACs and FLOPs; then the training memory as the sum of its parts."""
        return (
            f"params {self.params:,} | forward {format_count(self.forward_macs)}MAC = "
            f"{format_count(self.forward_flops)}FLOP | training step {format_count(self.training_flops)}FLOP, "
            f"{format_bytes(self.training_bytes_moved)} moved\n"
            f"memory {format_bytes(self.training_bytes)} = weights {format_bytes(self.weight_bytes)} + "
            f"gradients {format_bytes(self.gradient_bytes)} + optimizer {format_bytes(self.optimizer_bytes)} + "
            f"activations {format_bytes(self.activation_bytes)}"
        ) + self._per_device_lines()

    def _per_device_lines(self) -> str:
        """One device's share, where several hold the model: memory, FLOPs, what it sends, the notes."""
        share = self.per_device
        if share is None:
            return ""
        mesh = " x ".join(f"{name} {size}" for name, size in self.mesh_shape.items())
        lines = (
            f"\nper device ({self.devices} devices, mesh {mesh}): memory {format_bytes(share.training_bytes)} = "
            f"weights {format_bytes(share.weight_bytes)} + gradients {format_bytes(share.gradient_bytes)} + "
            f"optimizer {format_bytes(share.optimizer_bytes)} + activations {format_bytes(share.activation_bytes)} + "
            f"gradient buffer {format_bytes(share.gradient_buffer_bytes)} | training step "
            f"{format_count(share.training_flops)}FLOP | sends {format_bytes(share.communication_bytes)} per step"
        )
        return lines + "".join(f"\nnote: {note}" for note in share.notes)

    def __str__(self) -> str:
        return self.summary()


def format_count(value: float) -> str:
    """1234567 -> '1.23 M'."""
    rounded = float(f"{value:.3g}")  # 999999 -> 1e6: '1 M', not '1e+03 k'
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(rounded) >= scale:
            return f"{_three_digits(rounded / scale)} {unit}"
    return f"{value:.4g} "


def format_bytes(value: float) -> str:
    """Bytes in binary units: 1536 -> '1.5 KiB', 1034240 -> '1010 KiB'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= scale:
            return f"{_three_digits(value / scale)} {unit}"
    return f"{int(value)} B"


def _three_digits(value: float) -> str:
    """Three significant digits without an exponent: 1.5, 12.3, 1010."""
    text = f"{value:.3g}"
    return f"{value:.0f}" if "e" in text else text


_FORMATTERS = {
    "forward_macs": format_count,
    "training_flops": format_count,
    "activation_bytes": format_bytes,
    "training_bytes_moved": format_bytes,
    "params": "{:,}".format,
}


def not_counted(unsupported: dict[str, int]) -> str:
    """The one line that lists what was left uncounted: ``Not counted (cost 0): ops.Sort x2, ...``."""
    return "Not counted (cost 0): " + ", ".join(f"{name} x{count}" for name, count in sorted(unsupported.items()))


_TEXT_COLUMNS = ["name", "type", "output_shape", "params", "forward_macs", "training_flops", "activation_bytes",
                 "training_bytes_moved"]
_BLOCK_COLUMNS = ["block", "rows", "params", "forward_macs", "training_flops", "activation_bytes",
                  "training_bytes_moved"]


def _text_table(frame: pd.DataFrame, max_rows: int | None, columns=None, names=("name", "type", "output_shape")) -> str:
    """The layer rows as plain text, names read from the left, and how many rows were left out."""
    shown = frame if max_rows is None else frame.head(max_rows)
    left = {c: _left_aligned(shown[c], c) for c in names}
    text = shown[columns or _TEXT_COLUMNS].to_string(index=False, formatters={**_FORMATTERS, **left}, justify="left")
    return text if len(shown) == len(frame) else f"{text}\n... {len(frame) - len(shown)} more rows"


def _block_table(blocks: pd.DataFrame, max_rows: int | None) -> str:
    """``by_block``'s rows as plain text, like the layer rows."""
    return _text_table(blocks, max_rows, _BLOCK_COLUMNS, ("block",))


def _left_aligned(column: pd.Series, title: str):
    """A formatter that pads the column's text on the right, so names read from the left."""
    width = max([len(title), *(len(str(value)) for value in column)])
    return lambda value: f"{value!s:<{width}}"


_MARKDOWN_COLUMNS = {
    # column: (heading, formatter): the columns a reader needs first, in human units
    "name": ("layer", str),
    "type": ("type", str),
    "output_shape": ("output shape", str),
    "params": ("params", "{:,}".format),
    "forward_macs": ("forward MACs", format_count),
    "training_flops": ("training FLOPs", format_count),
    "training_flops_share": ("share of training FLOPs", "{:.1%}".format),
    "activation_bytes": ("activations kept", format_bytes),
    "counted": ("counted", lambda value: "yes" if value else "**no**"),
}


def _markdown_table(frame: pd.DataFrame, max_rows: int | None) -> str:
    """The per-layer table in Markdown: names, shapes and human units (K/M/G, KiB/MiB), shares in percent."""
    shown = frame if max_rows is None else frame.head(max_rows)
    columns = [c for c in _MARKDOWN_COLUMNS if c in shown.columns]
    header = "| " + " | ".join(_MARKDOWN_COLUMNS[c][0] for c in columns) + " |"
    rule = "| " + " | ".join("---" if c in ("name", "type", "output_shape") else "---:" for c in columns) + " |"
    rows = [
        "| " + " | ".join(_cell(_MARKDOWN_COLUMNS[c][1](row[c])) for c in columns) + " |"
        for row in shown.to_dict("records")
    ]
    if max_rows is not None and len(frame) > max_rows:
        rows.append(f"| ... {len(frame) - max_rows} more rows |" + " |" * (len(columns) - 1))
    return "\n".join([header, rule, *rows])


def _cell(text: str) -> str:
    """A table cell: no pipe breaks the row, no space breaks a number or a name across lines."""
    return str(text).replace("|", "\\|").replace(" ", "\u00a0")


def _write_or_return(text: str, path):
    if path is None:
        return text
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return None
