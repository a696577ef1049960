"""The accelerator table: one row per chip, with how its name is matched, its dense peaks and memory bandwidth.

A FLOP is one floating-point operation (a multiply-add counts as 2). Every peak is a DENSE figure per
device: vendors headline 2:4-sparse Tensor Core numbers that are twice as high, and those are halved here.
A missing (chip, precision) entry means unknown, never zero. Memory bandwidth is the device memory's (HBM
or GDDR) in bytes/s as the datasheet gives it. The chip table of docs/performance.md is printed by
``python -m nns_callbacks.chips --markdown`` and a test keeps the two equal.

Nothing here imports a framework.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys

PRECISIONS = ("float32", "tfloat32", "bfloat16", "float16", "float8")

_T = 1e12
_G = 1e9


@dataclasses.dataclass(frozen=True)
class Chip:
    """One accelerator: its key and label, the name tokens it matches, dense peaks, bandwidth and sources."""

    name: str  # the key match_chip returns, e.g. "h100 sxm"
    label: str  # as docs/performance.md shows it
    matches: tuple[str, ...]  # alternatives: each the space-separated tokens that must all appear
    excludes: str  # tokens none of which may appear
    peaks: dict[str, float]  # dense FLOP/s per precision
    bandwidth: float  # device memory bytes/s
    source: str  # where the peaks and the bandwidth come from


def _ampere_like(f32, tf32, half, fp8=None) -> dict[str, float]:
    """A peak row: float32, TF32, bfloat16 = float16 and optionally float8, in TFLOP/s."""
    row = {"float32": f32 * _T, "tfloat32": tf32 * _T, "bfloat16": half * _T, "float16": half * _T}
    if fp8 is not None:
        row["float8"] = fp8 * _T
    return row


_V100 = (
    "NVIDIA Tesla V100 datasheet (SXM2 and PCIe 900 GB/s, V100S PCIe 1,134 GB/s) "
    "https://images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf"
)
_ADA = (
    "NVIDIA Ada GPU architecture whitepaper v2.1, appendix "
    "https://images.nvidia.com/aem-dam/Solutions/Data-Center/l4/nvidia-ada-gpu-architecture-whitepaper-v2.1.pdf"
)
_H100 = (
    "NVIDIA H100 Tensor Core GPU architecture whitepaper (H100 SXM5); H100 datasheet "
    "(SXM 3.35 TB/s, PCIe 2 TB/s, NVL 3.9 TB/s) https://www.nvidia.com/en-us/data-center/h100/"
)
_H200 = "NVIDIA H200 datasheet (SXM and NVL 4.8 TB/s) https://www.nvidia.com/en-us/data-center/h200/"
_TPU = "Google Cloud TPU system architecture, peak bf16 and HBM bandwidth per chip https://cloud.google.com/tpu/docs/"

CHIPS: tuple[Chip, ...] = (
    Chip("v100 sxm", "V100 SXM2", ("v100 sxm",), "",
         {"float32": 15.7 * _T, "float16": 125 * _T}, 900 * _G, _V100),
    Chip("v100 pcie", "V100 PCIe", ("v100 pcie",), "",
         {"float32": 14 * _T, "float16": 112 * _T}, 900 * _G, _V100),
    Chip("v100s pcie", "V100S PCIe", ("v100s",), "",
         {"float32": 16.4 * _T, "float16": 130 * _T}, 1134 * _G, _V100),
    Chip("t4", "T4", ("t4",), "", {"float32": 8.1 * _T, "float16": 65 * _T}, 320 * _G,
         "NVIDIA T4 datasheet (320+ GB/s) https://www.nvidia.com/content/dam/en-zz/Solutions/"
         "Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf"),
    Chip("a10", "A10", ("a10",), "", _ampere_like(31.2, 62.5, 125), 600 * _G,
         "NVIDIA A10 datasheet (600 GB/s) https://www.nvidia.com/content/dam/en-zz/Solutions/"
         "Data-Center/a10/pdf/a10-datasheet.pdf"),
    Chip("a10g", "A10G", ("a10g",), "", _ampere_like(35, 35, 70), 600 * _G,
         "NVIDIA publishes no A10G datasheet; figures (and 600 GB/s) as tabulated in "
         "https://www.baseten.co/blog/nvidia-a10-vs-a10g-for-ml-model-inference/"),
    Chip("a100", "A100 (SXM and PCIe)", ("a100",), "", _ampere_like(19.5, 156, 312), 1555 * _G,
         "NVIDIA A100 datasheet (40/80GB, SXM and PCIe; bandwidth 1,555 GB/s of the 40GB, the lowest: "
         "80GB PCIe 1,935, 80GB SXM 2,039) https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/"
         "a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"),
    Chip("rtx 3090", "RTX 3090", ("rtx 3090",), "ti laptop mobile", _ampere_like(35.6, 35.6, 71), 936 * _G,
         "NVIDIA Ampere GA102 GPU architecture whitepaper, appendix (FP32 accumulate; 936 GB/s) "
         "https://www.nvidia.com/content/PDF/nvidia-ampere-ga-102-gpu-architecture-whitepaper-v2.pdf"),
    Chip("l4", "L4", ("l4",), "", _ampere_like(30.3, 60, 121, 242.5), 300 * _G,
         "NVIDIA L4 datasheet (300 GB/s) https://www.nvidia.com/en-us/data-center/l4/"),
    Chip("l40", "L40", ("l40",), "", _ampere_like(90.5, 90.5, 181.05, 362), 864 * _G,
         "NVIDIA L40 datasheet (864 GB/s) https://www.nvidia.com/en-us/data-center/l40/"),
    Chip("l40s", "L40S", ("l40s",), "", _ampere_like(91.6, 183, 362.05, 733), 864 * _G,
         "NVIDIA L40S datasheet (864 GB/s) https://www.nvidia.com/en-us/data-center/l40s/"),
    Chip("rtx 4090", "RTX 4090", ("rtx 4090",), "d ti laptop mobile", _ampere_like(82.6, 82.6, 165.2, 330.3),
         1008 * _G, _ADA + " (FP32 accumulate; 1,008 GB/s)"),
    Chip("h100 sxm", "H100 SXM", ("h100 hbm3", "h100 sxm"), "nvl pcie hbm2e",
         _ampere_like(66.9, 494.7, 989.4, 1978.9), 3350 * _G, _H100),
    Chip("h100 pcie", "H100 PCIe", ("h100 pcie", "h100 hbm2e"), "nvl",
         _ampere_like(51, 378, 756.5, 1513), 2000 * _G, _H100),
    Chip("h100 nvl", "H100 NVL", ("h100 nvl",), "", _ampere_like(60, 417.5, 835.5, 1670.5), 3900 * _G,
         _H100 + "; NVL per GPU: 60 FP32, 835 TF32, 1,671 BF16/FP16, 3,341 FP8 with sparsity"),
    Chip("h200 sxm", "H200", ("h200",), "nvl pcie", _ampere_like(66.9, 494.7, 989.4, 1978.9), 4800 * _G,
         _H200 + " (same GH100 SXM5 rates as H100 SXM)"),
    Chip("h200 nvl", "H200 NVL", ("h200 nvl",), "", _ampere_like(60, 417.5, 835.5, 1670.5), 4800 * _G,
         _H200 + " (same per-GPU rates as H100 NVL)"),
    Chip("tpu v4", "TPU v4", ("tpu v4",), "lite", {"bfloat16": 275 * _T}, 1200 * _G, _TPU + "v4 (1,200 GBps)"),
    Chip("tpu v5e", "TPU v5e", ("tpu v5e", "tpu v5 lite"), "", {"bfloat16": 197 * _T}, 819 * _G,
         _TPU + "v5e (819 GBps)"),
    Chip("tpu v5p", "TPU v5p", ("tpu v5p", "tpu v5"), "lite", {"bfloat16": 459 * _T}, 2765 * _G,
         _TPU + "v5p (2,765 GBps)"),
    Chip("tpu v6e", "TPU v6e", ("tpu v6e", "tpu v6 lite"), "", {"bfloat16": 918 * _T}, 1638 * _G,
         _TPU + "v6e (1,638 GBps)"),
)

_BY_NAME = {chip.name: chip for chip in CHIPS}


def chip_named(name: str) -> Chip:
    """The table row with this key (KeyError if none)."""
    return _BY_NAME[name]


def _tokens(device_name: str) -> frozenset[str]:
    """Lower-case alphanumeric tokens of a device name, sxmN folded to sxm."""
    words = re.findall(r"[a-z0-9]+", device_name.lower())
    return frozenset(re.sub(r"^sxm\d*$", "sxm", word) for word in words)


def matches(chip: Chip, device_name: str) -> bool:
    """Whether a device name has every token of one of the chip's alternatives and none of its exclusions."""
    tokens = _tokens(device_name or "")
    if tokens & set(chip.excludes.split()):
        return False
    return any(set(alternative.split()) <= tokens for alternative in chip.matches)


def find_chip(device_name: str) -> Chip | None:
    """The table row for a device name as a framework reports it, None if unknown."""
    return next((chip for chip in CHIPS if matches(chip, device_name)), None)


def match_chip(device_name: str) -> str | None:
    """Table key for a device name as a framework reports it, None if unknown."""
    chip = find_chip(device_name)
    return chip.name if chip else None


def precision_for(compute_dtype: str, tf32: bool) -> str:
    """Table precision for a Keras compute dtype, TF32 if enabled for float32."""
    if compute_dtype == "float32" and tf32:
        return "tfloat32"
    if compute_dtype.startswith("float8"):
        return "float8"
    return compute_dtype


def chip_peak(chip: Chip, precision: str) -> tuple[str, float] | None:
    """(precision used, dense peak) for a chip; TF32 falls back to float32 where the chip has no TF32."""
    if precision == "tfloat32" and "tfloat32" not in chip.peaks:
        precision = "float32"
    value = chip.peaks.get(precision)
    return None if value is None else (precision, value)


def table_peak(device_name: str, precision: str) -> float | None:
    """Dense datasheet peak FLOP/s of one device, None if unknown."""
    chip = find_chip(device_name)
    found = chip_peak(chip, precision) if chip else None
    return found[1] if found else None


def table_bandwidth(device_name: str) -> float | None:
    """Datasheet memory bandwidth (bytes/s) of one device, None if unknown."""
    chip = find_chip(device_name)
    return chip.bandwidth if chip else None


def _tflops(value: float | None) -> str:
    """A peak in the chip table's units: '989.4 T', '-' where unknown."""
    return "-" if value is None else f"{value / _T:g} T"


def _bytes_per_sec(value: float) -> str:
    """A bandwidth in the chip table's units: '3.35 TB/s' or '900 GB/s'."""
    return f"{value / 1e12:g} TB/s" if value >= 1e12 else f"{value / _G:g} GB/s"


def markdown_table() -> str:
    """The chip table of docs/performance.md: dense peak FLOP/s per precision and memory bandwidth, one row per chip."""
    lines = [
        "| Chip | float32 | TF32 | bfloat16 | float16 | float8 | Memory bandwidth |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for chip in CHIPS:
        peaks = [_tflops(chip.peaks.get(precision)) for precision in PRECISIONS]
        lines.append(f"| {chip.label} | {' | '.join(peaks)} | {_bytes_per_sec(chip.bandwidth)} |")
    return "\n".join(lines) + "\n"


def sources_text() -> str:
    """One line per chip: its label and the source of its figures."""
    return "".join(f"{chip.label}: {chip.source}\n" for chip in CHIPS)


def main(argv=None) -> int:
    """``python -m nns_callbacks.chips --markdown`` prints docs/performance.md's chip table; ``--sources`` the sources."""
    parser = argparse.ArgumentParser(prog="python -m nns_callbacks.chips", description=main.__doc__)
    parser.add_argument("--markdown", action="store_true", help="the chip table of docs/performance.md")
    parser.add_argument("--sources", action="store_true", help="the source of each chip's figures")
    args = parser.parse_args(argv)
    if args.sources:
        sys.stdout.write(sources_text())
    if args.markdown or not args.sources:
        sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
