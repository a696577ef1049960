"""The chip table (nns_callbacks.chips): matching real device names, datasheet peaks and bandwidths, sources,
the chip table of docs/performance.md; and the old import names of nns_callbacks.hardware."""

import math
import pathlib
import re
import subprocess
import sys

import pytest

from nns_callbacks import chips, hardware
from nns_callbacks.chips import CHIPS, PRECISIONS, match_chip, precision_for, table_bandwidth, table_peak

CHIP_TABLE_PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "performance.md"

# Device names as frameworks report them (nvidia-smi, JAX device_kind, torch, TensorFlow device details).
REAL_NAMES = [
    ("NVIDIA H200", "h200 sxm"),
    ("NVIDIA H200 NVL", "h200 nvl"),
    ("NVIDIA H100 80GB HBM3", "h100 sxm"),
    ("NVIDIA H100 PCIe", "h100 pcie"),
    ("NVIDIA H100 80GB HBM2e", "h100 pcie"),
    ("NVIDIA H100 NVL", "h100 nvl"),
    ("NVIDIA H100 SXM5 80GB", "h100 sxm"),
    ("NVIDIA A100-SXM4-80GB", "a100"),
    ("NVIDIA A100-SXM4-40GB", "a100"),
    ("NVIDIA A100-PCIE-40GB", "a100"),
    ("NVIDIA A100 80GB PCIe", "a100"),
    ("NVIDIA L40S", "l40s"),
    ("NVIDIA L40", "l40"),
    ("NVIDIA L4", "l4"),
    ("Tesla T4", "t4"),
    ("Tesla V100-SXM2-16GB", "v100 sxm"),
    ("Tesla V100-SXM2-32GB", "v100 sxm"),
    ("Tesla V100-PCIE-32GB", "v100 pcie"),
    ("Tesla V100S-PCIE-32GB", "v100s pcie"),
    ("NVIDIA A10G", "a10g"),
    ("NVIDIA A10", "a10"),
    ("NVIDIA GeForce RTX 4090", "rtx 4090"),
    ("NVIDIA GeForce RTX 3090", "rtx 3090"),
    ("TPU v4", "tpu v4"),
    ("TPU v5 lite", "tpu v5e"),
    ("TPU v5e", "tpu v5e"),
    ("TPU v5p", "tpu v5p"),
    ("TPU v5", "tpu v5p"),
    ("TPU v6 lite", "tpu v6e"),
    ("TPU v6e", "tpu v6e"),
    ("nvidia h100 80gb hbm3", "h100 sxm"),
]

UNKNOWN_NAMES = [
    "cpu", "CPU", "", "NVIDIA GeForce RTX 3090 Ti", "NVIDIA GeForce RTX 4090 D", "NVIDIA GeForce RTX 4090 Laptop GPU",
    "NVIDIA GH200 480GB", "NVIDIA H100", "NVIDIA A40", "NVIDIA RTX A6000", "TPU v4 lite", "/physical_device:GPU:0",
    "Apple M2",
]


@pytest.mark.parametrize(("device_name", "chip"), REAL_NAMES)
def test_match_chip_known_names(device_name, chip):
    assert match_chip(device_name) == chip


@pytest.mark.parametrize("device_name", UNKNOWN_NAMES)
def test_match_chip_unknown_names(device_name):
    assert match_chip(device_name) is None


@pytest.mark.parametrize("device_name", [name for name, _ in REAL_NAMES] + UNKNOWN_NAMES)
def test_no_device_name_matches_two_rows(device_name):
    # The exclusions make the matcher independent of the table's order.
    assert len([chip for chip in CHIPS if chips.matches(chip, device_name)]) <= 1


def test_l4_family_is_not_substring_matched():
    assert [match_chip(n) for n in ("NVIDIA L4", "NVIDIA L40", "NVIDIA L40S")] == ["l4", "l40", "l40s"]


@pytest.mark.parametrize(
    ("device_name", "precision", "flops"),
    [
        ("NVIDIA H100 80GB HBM3", "bfloat16", 989.4e12),  # H100 whitepaper, SXM5 dense
        ("NVIDIA H100 80GB HBM3", "tfloat32", 494.7e12),
        ("NVIDIA H100 80GB HBM3", "float32", 66.9e12),
        ("NVIDIA H100 PCIe", "bfloat16", 756.5e12),  # datasheet: 1,513 with sparsity
        ("NVIDIA H100 NVL", "bfloat16", 835.5e12),  # datasheet per GPU: 1,671 with sparsity
        ("NVIDIA H200", "bfloat16", 989.4e12),  # design notes: the table's figure for "NVIDIA H200"
        ("NVIDIA H200", "tfloat32", 494.7e12),
        ("NVIDIA A100-SXM4-80GB", "bfloat16", 312e12),
        ("NVIDIA A100 80GB PCIe", "tfloat32", 156e12),
        ("NVIDIA A100-PCIE-40GB", "float32", 19.5e12),
        ("NVIDIA L4", "bfloat16", 121e12),  # datasheet: 242 with sparsity
        ("NVIDIA L40S", "bfloat16", 362.05e12),  # datasheet: 733 with sparsity
        ("Tesla T4", "float16", 65e12),
        ("Tesla T4", "float32", 8.1e12),
        ("Tesla V100-SXM2-16GB", "float16", 125e12),
        ("Tesla V100-PCIE-32GB", "float32", 14e12),
        ("NVIDIA GeForce RTX 4090", "bfloat16", 165.2e12),  # Ada whitepaper, FP32 accumulate
        ("TPU v4", "bfloat16", 275e12),
        ("TPU v5 lite", "bfloat16", 197e12),
        ("TPU v5p", "bfloat16", 459e12),
        ("TPU v6 lite", "bfloat16", 918e12),
    ],
)
def test_table_peak_matches_datasheets(device_name, precision, flops):
    assert table_peak(device_name, precision) == pytest.approx(flops)


@pytest.mark.parametrize(
    ("device_name", "bytes_per_sec"),
    [
        ("NVIDIA H100 80GB HBM3", 3.35e12),
        ("NVIDIA H100 PCIe", 2.0e12),
        ("NVIDIA H100 NVL", 3.9e12),
        ("NVIDIA H200", 4.8e12),
        ("NVIDIA H200 NVL", 4.8e12),
        ("NVIDIA A100-SXM4-80GB", 1.555e12),  # the 40GB's, the lowest of the variants the name covers
        ("Tesla V100-SXM2-16GB", 900e9),
        ("Tesla V100S-PCIE-32GB", 1134e9),
        ("Tesla T4", 320e9),
        ("NVIDIA A10", 600e9),
        ("NVIDIA A10G", 600e9),
        ("NVIDIA L4", 300e9),
        ("NVIDIA L40S", 864e9),
        ("NVIDIA GeForce RTX 4090", 1008e9),
        ("NVIDIA GeForce RTX 3090", 936e9),
        ("TPU v4", 1.2e12),
        ("TPU v5 lite", 819e9),
        ("TPU v5p", 2.765e12),
        ("TPU v6 lite", 1.638e12),
    ],
)
def test_table_bandwidth_matches_datasheets(device_name, bytes_per_sec):
    assert table_bandwidth(device_name) == pytest.approx(bytes_per_sec)


@pytest.mark.parametrize(
    ("device_name", "precision"),
    [
        ("Tesla T4", "bfloat16"),
        ("Tesla V100-SXM2-16GB", "bfloat16"),
        ("NVIDIA A100-SXM4-80GB", "float8"),
        ("TPU v4", "float32"),
        ("NVIDIA A10G", "float64"),
        ("cpu", "float32"),
        ("Mystery Accelerator 9000", "bfloat16"),
    ],
)
def test_table_peak_missing_is_none(device_name, precision):
    assert table_peak(device_name, precision) is None


@pytest.mark.parametrize("device_name", ["cpu", "Mystery Accelerator 9000", "NVIDIA H100"])
def test_table_bandwidth_of_an_unknown_device_is_none(device_name):
    assert table_bandwidth(device_name) is None


def test_every_chip_has_a_source_a_bandwidth_and_positive_peaks_of_known_precisions():
    for chip in CHIPS:
        assert chip.source and "http" in chip.source, chip.name
        assert math.isfinite(chip.bandwidth) and 100e9 <= chip.bandwidth <= 10e12, chip.name
        assert chip.peaks and set(chip.peaks) <= set(PRECISIONS), chip.name
        assert all(math.isfinite(v) and v > 0 for v in chip.peaks.values()), chip.name
        assert chip.matches, chip.name


def test_chip_names_are_unique_and_every_row_matches_its_own_label():
    assert len({chip.name for chip in CHIPS}) == len(CHIPS)
    for chip in CHIPS:
        assert chips.chip_named(chip.name) is chip
        assert match_chip(chip.matches[0]) == chip.name


def test_tensor_core_peaks_are_not_sparse_figures():
    assert table_peak("NVIDIA H100 80GB HBM3", "bfloat16") < 1.5e15  # the sparse headline is 1,979 T


@pytest.mark.parametrize(
    ("dtype", "tf32", "expected"),
    [
        ("float32", True, "tfloat32"),
        ("float32", False, "float32"),
        ("bfloat16", True, "bfloat16"),
        ("bfloat16", False, "bfloat16"),
        ("float16", True, "float16"),
        ("float8_e4m3fn", False, "float8"),
    ],
)
def test_precision_for(dtype, tf32, expected):
    assert precision_for(dtype, tf32) == expected


def test_tf32_falls_back_to_float32_on_pre_ampere_chips():
    assert table_peak("Tesla V100-SXM2-16GB", "tfloat32") == pytest.approx(15.7e12)
    assert table_peak("Tesla T4", "tfloat32") == pytest.approx(8.1e12)
    assert chips.chip_peak(chips.chip_named("a100"), "tfloat32") == ("tfloat32", 156e12)
    assert chips.chip_peak(chips.chip_named("t4"), "tfloat32") == ("float32", 8.1e12)


def _docs_chip_table() -> str:
    """docs/performance.md's generated region, between its two markers."""
    text = CHIP_TABLE_PAGE.read_text(encoding="utf-8")
    found = re.search(r"<!-- chip table:[^\n]*-->\n(.*?)<!-- end of the chip table -->", text, re.DOTALL)
    assert found, "docs/performance.md has lost the chip table's markers"
    return found.group(1)


def test_docs_chip_table_is_the_generated_one():
    # On failure: python -m nns_callbacks.chips --markdown, and paste it between the markers.
    assert _docs_chip_table() == chips.markdown_table()


def test_the_chips_command_prints_the_table_and_the_sources():
    table = subprocess.run([sys.executable, "-m", "nns_callbacks.chips", "--markdown"], check=True,
                           capture_output=True, text=True).stdout
    assert table == chips.markdown_table()
    sources = subprocess.run([sys.executable, "-m", "nns_callbacks.chips", "--sources"], check=True,
                             capture_output=True, text=True).stdout
    assert sources.count("\n") == len(CHIPS) and "A100 (SXM and PCIe): NVIDIA A100 datasheet" in sources


def test_markdown_rows_show_each_chip_with_its_units():
    rows = chips.markdown_table().splitlines()
    assert "| H200 | 66.9 T | 494.7 T | 989.4 T | 989.4 T | 1978.9 T | 4.8 TB/s |" in rows
    assert "| T4 | 8.1 T | - | - | 65 T | - | 320 GB/s |" in rows
    assert len(rows) == 2 + len(CHIPS)


def test_the_old_hardware_names_still_import():
    from nns_callbacks import bandwidth, devices, peaks

    assert hardware.resolve_peak is peaks.resolve_peak and hardware.Peak is peaks.Peak
    assert hardware.validate_peak_flops is peaks.validate_peak_flops
    assert hardware.detect_accelerators is devices.accelerator_names
    assert hardware.match_chip is chips.match_chip and hardware.table_peak is chips.table_peak
    assert hardware.resolve_bandwidth is bandwidth.resolve_bandwidth
