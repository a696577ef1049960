"""Accelerator detection and peak FLOP/s lookup for MFU reporting.

A FLOP is one floating-point operation (a multiply-add counts as 2).
Every peak in the table is a DENSE figure per device: vendors headline
2:4-sparse Tensor Core numbers that are twice as high, and those are halved
here. A missing (chip, precision) entry means unknown, never zero.

No framework is imported at module import time: tensorflow, jax, torch and
keras are imported lazily inside the functions that need them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import time

from .devices import accelerator_names as detect_accelerators
from .devices import tf32_enabled

PRECISIONS = ("float32", "tfloat32", "bfloat16", "float16", "float8")

_T = 1e12

# Dense peak FLOP/s per device; 2:4-sparse vendor figures halved.
_ROWS: dict[str, dict[str, float]] = {
    "v100 sxm": {"float32": 15.7 * _T, "float16": 125 * _T},
    "v100 pcie": {"float32": 14 * _T, "float16": 112 * _T},
    "v100s pcie": {"float32": 16.4 * _T, "float16": 130 * _T},
    "t4": {"float32": 8.1 * _T, "float16": 65 * _T},
    "a10": {
        "float32": 31.2 * _T,
        "tfloat32": 62.5 * _T,
        "bfloat16": 125 * _T,
        "float16": 125 * _T,
    },
    "a10g": {
        "float32": 35 * _T,
        "tfloat32": 35 * _T,
        "bfloat16": 70 * _T,
        "float16": 70 * _T,
    },
    "a100": {
        "float32": 19.5 * _T,
        "tfloat32": 156 * _T,
        "bfloat16": 312 * _T,
        "float16": 312 * _T,
    },
    "rtx 3090": {
        "float32": 35.6 * _T,
        "tfloat32": 35.6 * _T,
        "bfloat16": 71 * _T,
        "float16": 71 * _T,
    },
    "l4": {
        "float32": 30.3 * _T,
        "tfloat32": 60 * _T,
        "bfloat16": 121 * _T,
        "float16": 121 * _T,
        "float8": 242.5 * _T,
    },
    "l40": {
        "float32": 90.5 * _T,
        "tfloat32": 90.5 * _T,
        "bfloat16": 181.05 * _T,
        "float16": 181.05 * _T,
        "float8": 362 * _T,
    },
    "l40s": {
        "float32": 91.6 * _T,
        "tfloat32": 183 * _T,
        "bfloat16": 362.05 * _T,
        "float16": 362.05 * _T,
        "float8": 733 * _T,
    },
    "rtx 4090": {
        "float32": 82.6 * _T,
        "tfloat32": 82.6 * _T,
        "bfloat16": 165.2 * _T,
        "float16": 165.2 * _T,
        "float8": 330.3 * _T,
    },
    "h100 sxm": {
        "float32": 66.9 * _T,
        "tfloat32": 494.7 * _T,
        "bfloat16": 989.4 * _T,
        "float16": 989.4 * _T,
        "float8": 1978.9 * _T,
    },
    "h100 pcie": {
        "float32": 51 * _T,
        "tfloat32": 378 * _T,
        "bfloat16": 756.5 * _T,
        "float16": 756.5 * _T,
        "float8": 1513 * _T,
    },
    "h100 nvl": {
        "float32": 60 * _T,
        "tfloat32": 417.5 * _T,
        "bfloat16": 835.5 * _T,
        "float16": 835.5 * _T,
        "float8": 1670.5 * _T,
    },
    "h200 sxm": {
        "float32": 66.9 * _T,
        "tfloat32": 494.7 * _T,
        "bfloat16": 989.4 * _T,
        "float16": 989.4 * _T,
        "float8": 1978.9 * _T,
    },
    "h200 nvl": {
        "float32": 60 * _T,
        "tfloat32": 417.5 * _T,
        "bfloat16": 835.5 * _T,
        "float16": 835.5 * _T,
        "float8": 1670.5 * _T,
    },
    "tpu v4": {"bfloat16": 275 * _T},
    "tpu v5e": {"bfloat16": 197 * _T},
    "tpu v5p": {"bfloat16": 459 * _T},
    "tpu v6e": {"bfloat16": 918 * _T},
}

_PEAKS: dict[tuple[str, str], float] = {
    (chip, precision): value
    for chip, row in _ROWS.items()
    for precision, value in row.items()
}

_V100 = (
    "NVIDIA Tesla V100 datasheet "
    "https://images.nvidia.com/content/technologies/volta/pdf/"
    "volta-v100-datasheet-update-us-1165301-r5.pdf"
)
_ADA = (
    "NVIDIA Ada GPU architecture whitepaper v2.1, appendix "
    "https://images.nvidia.com/aem-dam/Solutions/Data-Center/l4/"
    "nvidia-ada-gpu-architecture-whitepaper-v2.1.pdf"
)
_H100 = (
    "NVIDIA H100 Tensor Core GPU architecture whitepaper (H100 SXM5); "
    "H100 datasheet https://www.nvidia.com/en-us/data-center/h100/"
)
_H100_NVL = (
    "NVIDIA H100 NVL datasheet, per GPU (60 FP32; 835 TF32, 1,671 BF16/FP16, "
    "3,341 FP8 with sparsity) https://www.nvidia.com/en-us/data-center/h100/"
)
_H200 = "NVIDIA H200 datasheet https://www.nvidia.com/en-us/data-center/h200/"
_TPU = "Google Cloud TPU system architecture https://cloud.google.com/tpu/docs/"

_SOURCES: dict[str, str] = {
    "v100 sxm": _V100,
    "v100 pcie": _V100,
    "v100s pcie": _V100,
    "t4": (
        "NVIDIA T4 datasheet https://www.nvidia.com/content/dam/en-zz/Solutions/"
        "Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf"
    ),
    "a10": (
        "NVIDIA A10 datasheet https://www.nvidia.com/content/dam/en-zz/Solutions/"
        "Data-Center/a10/pdf/a10-datasheet.pdf"
    ),
    "a10g": (
        "NVIDIA publishes no A10G datasheet; figures as tabulated in "
        "https://www.baseten.co/blog/nvidia-a10-vs-a10g-for-ml-model-inference/"
    ),
    "a100": (
        "NVIDIA A100 datasheet (40/80GB, SXM and PCIe) https://www.nvidia.com/"
        "content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
        "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"
    ),
    "rtx 3090": (
        "NVIDIA Ampere GA102 GPU architecture whitepaper, appendix (FP32 "
        "accumulate) https://www.nvidia.com/content/PDF/"
        "nvidia-ampere-ga-102-gpu-architecture-whitepaper-v2.pdf"
    ),
    "l4": "NVIDIA L4 datasheet https://www.nvidia.com/en-us/data-center/l4/",
    "l40": "NVIDIA L40 datasheet https://www.nvidia.com/en-us/data-center/l40/",
    "l40s": "NVIDIA L40S datasheet https://www.nvidia.com/en-us/data-center/l40s/",
    "rtx 4090": _ADA + " (FP32 accumulate)",
    "h100 sxm": _H100,
    "h100 pcie": _H100,
    "h100 nvl": _H100_NVL,
    "h200 sxm": _H200 + " (same GH100 SXM5 rates as H100 SXM)",
    "h200 nvl": _H200 + " (same per-GPU rates as H100 NVL)",
    "tpu v4": _TPU + "v4",
    "tpu v5e": _TPU + "v5e",
    "tpu v5p": _TPU + "v5p",
    "tpu v6e": _TPU + "v6e",
}

# Chips whose float32 matmuls can run as TF32 (compute capability >= 8.0).
_TF32_CHIPS = frozenset(chip for chip, precision in _PEAKS if precision == "tfloat32")

# (chip, tokens that must all appear, tokens that must not appear); first wins.
_RULES: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = tuple(
    (chip, frozenset(required.split()), frozenset(forbidden.split()))
    for chip, required, forbidden in (
        ("h200 nvl", "h200 nvl", ""),
        ("h200 sxm", "h200", "pcie"),
        ("h100 nvl", "h100 nvl", ""),
        ("h100 pcie", "h100 pcie", ""),
        ("h100 pcie", "h100 hbm2e", ""),
        ("h100 sxm", "h100 hbm3", ""),
        ("h100 sxm", "h100 sxm", ""),
        ("a100", "a100", ""),
        ("a10g", "a10g", ""),
        ("a10", "a10", ""),
        ("l40s", "l40s", ""),
        ("l40", "l40", ""),
        ("l4", "l4", ""),
        ("t4", "t4", ""),
        ("v100s pcie", "v100s", ""),
        ("v100 sxm", "v100 sxm", ""),
        ("v100 pcie", "v100 pcie", ""),
        ("rtx 4090", "rtx 4090", "d ti laptop mobile"),
        ("rtx 3090", "rtx 3090", "ti laptop mobile"),
        ("tpu v4", "tpu v4", "lite"),
        ("tpu v5e", "tpu v5e", ""),
        ("tpu v5e", "tpu v5 lite", ""),
        ("tpu v5p", "tpu v5p", ""),
        ("tpu v5p", "tpu v5", "lite e"),
        ("tpu v6e", "tpu v6e", ""),
        ("tpu v6e", "tpu v6 lite", ""),
    )
)

_CPU_MATMUL_SIZE = 512
_ACCELERATOR_MATMUL_SIZE = 4096
_MAX_REPS = 100_000
_AUTO = "auto"
_MEASURE = "measure"


@dataclasses.dataclass(frozen=True)
class Peak:
    """Peak FLOP/s summed over `devices` devices, with where it came from."""

    flops_per_sec: float
    source: str
    device: str
    precision: str
    devices: int


def _tokens(device_name: str) -> frozenset[str]:
    """Lower-case alphanumeric tokens of a device name, sxmN folded to sxm."""
    words = re.findall(r"[a-z0-9]+", device_name.lower())
    return frozenset(re.sub(r"^sxm\d*$", "sxm", word) for word in words)


def match_chip(device_name: str) -> str | None:
    """Table key for a device name as a framework reports it, None if unknown."""
    tokens = _tokens(device_name or "")
    for chip, required, forbidden in _RULES:
        if required <= tokens and not forbidden & tokens:
            return chip
    return None


def precision_for(compute_dtype: str, tf32: bool) -> str:
    """Table precision for a Keras compute dtype, TF32 if enabled for float32."""
    if compute_dtype == "float32" and tf32:
        return "tfloat32"
    if compute_dtype.startswith("float8"):
        return "float8"
    return compute_dtype


def _lookup(chip: str, precision: str) -> tuple[str, float] | None:
    """(precision used, dense peak) for a chip, TF32 falling back to float32."""
    if precision == "tfloat32" and chip not in _TF32_CHIPS:
        precision = "float32"
    value = _PEAKS.get((chip, precision))
    return None if value is None else (precision, value)


def table_peak(device_name: str, precision: str) -> float | None:
    """Dense datasheet peak FLOP/s of one device, None if unknown."""
    chip = match_chip(device_name)
    found = _lookup(chip, precision) if chip else None
    return found[1] if found else None


def matmul_size(accelerated: bool) -> int:
    """Side of the square matrices timed by `measure_peak`."""
    return _ACCELERATOR_MATMUL_SIZE if accelerated else _CPU_MATMUL_SIZE


def _sync(tensor) -> None:
    """Block until `tensor` is computed by fetching one element (as float32)."""
    from keras import ops

    ops.convert_to_numpy(ops.cast(tensor[0, 0], "float32"))


def _next_batch(reps: int, elapsed: float, seconds: float) -> int:
    """Matmuls to run before the next sync, aiming to end at `seconds`."""
    if elapsed <= 0:
        return 4 * reps
    remaining = int((seconds - elapsed) * reps / elapsed)
    return max(1, min(remaining, 4 * reps))


def measure_peak(
    compute_dtype: str,
    seconds: float = 0.5,
    clock=time.perf_counter,
    size: int | None = None,
) -> float:
    """FLOP/s of square `keras.ops.matmul` products in `compute_dtype`."""
    import keras
    from keras import ops

    if size is None:
        size = matmul_size(bool(detect_accelerators(keras.backend.backend())))
    a = ops.cast(keras.random.uniform((size, size)), compute_dtype)
    b = ops.cast(keras.random.uniform((size, size)), compute_dtype)
    _sync(ops.matmul(a, b))
    reps, batch, elapsed, start = 0, 1, 0.0, clock()
    while elapsed < seconds and reps < _MAX_REPS:
        for _ in range(batch):
            out = ops.matmul(a, b)
        _sync(out)
        reps += batch
        elapsed = clock() - start
        batch = _next_batch(reps, elapsed, seconds)
    if elapsed <= 0:
        raise RuntimeError("measure_peak: the clock did not advance")
    return 2.0 * size**3 * reps / elapsed


def validate_peak_flops(value) -> None:
    """Raise ValueError unless value is None, 'auto', 'measure' or a positive number."""
    if value is None or isinstance(value, str) and value in (_AUTO, _MEASURE):
        return
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if is_number and math.isfinite(value) and value > 0:
        return
    raise ValueError(
        f"peak_flops must be None, 'auto', 'measure' or a positive finite number "
        f"of FLOP/s per device (e.g. 312e12); got {value!r}"
    )


def _device_count(names: list[str], replicas: int) -> int:
    """Devices the peak is summed over: the replicas that train (Keras uses one device without a strategy)."""
    return max(1, int(replicas))


def _warn_unknown(names: list[str], precision: str, warn) -> None:
    """Warn once that MFU is left out and how to supply a peak."""
    where = f"device {names[0]!r} at {precision}" if names else "a CPU (no accelerator found)"
    warn(
        f"MFU and HFU are left out: no datasheet peak FLOP/s for {where}. "
        f"Pass peak_flops=<dense FLOP/s per device> (e.g. peak_flops=312e12) or "
        f"peak_flops='measure' to time a matmul on this device."
    )


def _datasheet_peak(names, compute_dtype, backend, devices, warn) -> Peak | None:
    """Peak from the table for the first detected device, or warn and None."""
    tf32 = compute_dtype == "float32" and tf32_enabled(backend)
    precision = precision_for(compute_dtype, tf32)
    chip = match_chip(names[0]) if names else None
    found = _lookup(chip, precision) if chip else None
    if found is None:
        _warn_unknown(names, precision, warn)
        return None
    used, value = found
    source = f"datasheet: {_SOURCES[chip]}"
    return Peak(value * devices, source, names[0], used, devices)


def _measured_peak(names, compute_dtype, devices) -> Peak:
    """Peak timed on this device, scaled to `devices`."""
    size = matmul_size(bool(names))
    value = measure_peak(compute_dtype, size=size)
    source = f"measured: {size}x{size} {compute_dtype} matmul"
    device = names[0] if names else "cpu"
    return Peak(value * devices, source, device, compute_dtype, devices)


def resolve_peak(
    peak_flops,
    backend: str,
    compute_dtype: str,
    replicas: int = 1,
    warn=None,
) -> Peak | None:
    """Total peak FLOP/s from a number, 'measure' or the datasheet table."""
    validate_peak_flops(peak_flops)
    if warn is None:
        from .notices import warn
    names = detect_accelerators(backend)
    devices = _device_count(names, replicas)
    if peak_flops is None or peak_flops == _AUTO:
        return _datasheet_peak(names, compute_dtype, backend, devices, warn)
    if peak_flops == _MEASURE:
        return _measured_peak(names, compute_dtype, devices)
    device = names[0] if names else "cpu"
    total = float(peak_flops) * devices
    return Peak(total, "peak_flops argument", device, compute_dtype, devices)
