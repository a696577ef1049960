"""The roofline of a training step: each row's time bound by the device's peak FLOP/s or its memory bandwidth.

Every call is a kernel of its own (the fusion assumption of ``traffic``), and so are its three passes: the
forward pass, the backward pass and the optimizer's update of its weights.  A pass of ``F`` FLOPs that moves
``B`` bytes takes at least ``max(F / peak, B / bandwidth)`` seconds, bound by compute where the first term
is the larger (its arithmetic intensity ``F / B`` at or above the ridge point ``peak / bandwidth``) and by
memory otherwise.  A row's time is the sum over its passes, its bound that of the passes that take most of
it, and the predicted step time is the sum over the rows.  FLOPs are floating-point operations (a
multiply-add is 2), bytes are bytes, peaks FLOP/s and bandwidths bytes/s.

Framework-free: it reads the per-layer table's columns.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import pandas as pd

COMPUTE, MEMORY = "compute", "memory"
PASSES = (
    # (FLOPs column or how to get them, bytes column)
    ("forward_flops", "forward_bytes_moved"),
    ("backward_flops", "backward_bytes_moved"),
    ("optimizer_flops", "optimizer_bytes_moved"),
)
ROW_COLUMNS = (
    "name", "type", "training_flops", "training_bytes_moved", "arithmetic_intensity", "compute_seconds",
    "memory_seconds", "seconds", "bound", "share",
)
"""The columns of ``Roofline.rows``: FLOPs, bytes moved, intensity (FLOPs per byte), the seconds of the passes
bound by compute and by memory, their sum, the bound, and the row's share of the predicted step time."""


class PassTime(NamedTuple):
    """The least time of one pass and what bounds it."""

    seconds: float
    bound: str


def pass_time(flops: float, nbytes: float, peak_flops: float, memory_bandwidth: float) -> PassTime:
    """max(FLOPs / peak, bytes / bandwidth), and which of the two it is (compute where they are equal)."""
    compute, memory = flops / peak_flops, nbytes / memory_bandwidth
    return PassTime(compute, COMPUTE) if compute >= memory else PassTime(memory, MEMORY)


def check_rates(peak_flops, memory_bandwidth) -> None:
    """Both positive, finite numbers, else ``ValueError``."""
    for name, value in (("peak_flops", peak_flops), ("memory_bandwidth", memory_bandwidth)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive number ({'FLOP/s' if name == 'peak_flops' else 'bytes/s'}), "
                             f"got {value!r}")


def row_times(layers: pd.DataFrame, peak_flops: float, memory_bandwidth: float) -> pd.DataFrame:
    """Per row: the seconds its passes bound by compute and by memory take, their sum and the row's bound."""
    check_rates(peak_flops, memory_bandwidth)
    optimizer_flops = layers["training_flops"] - layers["forward_flops"] - layers["backward_flops"]
    columns = {"forward_flops": layers["forward_flops"], "backward_flops": layers["backward_flops"],
               "optimizer_flops": optimizer_flops}
    compute, memory = [0.0] * len(layers), [0.0] * len(layers)
    for flops_column, bytes_column in PASSES:
        for i, (flops, nbytes) in enumerate(zip(columns[flops_column], layers[bytes_column])):
            time = pass_time(float(flops), float(nbytes), peak_flops, memory_bandwidth)
            if time.bound == COMPUTE:
                compute[i] += time.seconds
            else:
                memory[i] += time.seconds
    seconds = [c + m for c, m in zip(compute, memory)]
    bound = [COMPUTE if c >= m else MEMORY for c, m in zip(compute, memory)]
    return pd.DataFrame({"compute_seconds": compute, "memory_seconds": memory, "seconds": seconds, "bound": bound},
                        index=layers.index)


@dataclasses.dataclass(frozen=True)
class Roofline:
    """A training step's roofline on a device of ``peak_flops`` FLOP/s and ``memory_bandwidth`` bytes/s.

    ``rows``: the per-layer table's rows with their predicted seconds and bound (``ROW_COLUMNS``);
    ``step_seconds``: the predicted step time, their sum; ``ridge_point``: peak / bandwidth, in FLOPs per
    byte; ``arithmetic_intensity``: the step's training FLOPs per byte moved.
    """

    peak_flops: float
    memory_bandwidth: float
    rows: pd.DataFrame
    step_seconds: float
    training_flops: int
    training_bytes_moved: int

    @property
    def ridge_point(self) -> float:
        """FLOPs per byte where the two roofs meet: peak FLOP/s / bandwidth."""
        return self.peak_flops / self.memory_bandwidth

    @property
    def arithmetic_intensity(self) -> float:
        """The step's training FLOPs per training byte moved (NaN where nothing is moved)."""
        return self.training_flops / self.training_bytes_moved if self.training_bytes_moved else float("nan")

    @property
    def attainable_flops(self) -> float:
        """FLOP/s the step would reach at its predicted time: training FLOPs / predicted seconds."""
        return self.training_flops / self.step_seconds if self.step_seconds else float("nan")

    def bound_seconds(self) -> dict[str, float]:
        """Predicted seconds of the rows bound by compute and of those bound by memory."""
        return {bound: math.fsum(self.rows.loc[self.rows["bound"] == bound, "seconds"]) for bound in (COMPUTE, MEMORY)}

    def top(self, count: int = 10) -> pd.DataFrame:
        """The ``count`` rows with the most predicted time."""
        return self.rows.sort_values("seconds", ascending=False, kind="stable").head(count)

    def fraction_of(self, measured_step_seconds: float | None) -> float | None:
        """Predicted / measured step time (``None`` where the measured time is unknown or not positive)."""
        if measured_step_seconds is None or not measured_step_seconds > 0:
            return None
        return self.step_seconds / measured_step_seconds


def roofline(layers: pd.DataFrame, peak_flops: float, memory_bandwidth: float) -> Roofline:
    """The roofline of the per-layer table ``layers`` (``ModelCost.layers``) on a device of ``peak_flops``
    FLOP/s and ``memory_bandwidth`` bytes/s."""
    times = row_times(layers, peak_flops, memory_bandwidth)
    rows = pd.concat([layers[["name", "type", "training_flops", "training_bytes_moved", "arithmetic_intensity"]],
                      times], axis=1)
    step = math.fsum(rows["seconds"])
    rows["share"] = rows["seconds"] / step if step else 0.0
    flops, nbytes = int(sum(layers["training_flops"])), int(sum(layers["training_bytes_moved"]))
    return Roofline(float(peak_flops), float(memory_bandwidth), rows.reset_index(drop=True), step, flops, nbytes)
