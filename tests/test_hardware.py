"""Tests for nns_callbacks.hardware: chip matching, peak table, peak resolution."""

import math

import keras
import pytest

from nns_callbacks import hardware
from nns_callbacks.hardware import (
    Peak,
    match_chip,
    measure_peak,
    precision_for,
    resolve_peak,
    table_peak,
    validate_peak_flops,
)


@pytest.mark.parametrize(
    ("device_name", "chip"),
    [
        ("NVIDIA H200", "h200 sxm"),
        ("NVIDIA H200 NVL", "h200 nvl"),
        ("NVIDIA H100 80GB HBM3", "h100 sxm"),
        ("NVIDIA H100 PCIe", "h100 pcie"),
        ("NVIDIA H100 NVL", "h100 nvl"),
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
    ],
)
def test_match_chip_known_names(device_name, chip):
    assert match_chip(device_name) == chip


@pytest.mark.parametrize(
    "device_name",
    [
        "cpu",
        "CPU",
        "",
        "NVIDIA GeForce RTX 3090 Ti",
        "NVIDIA GeForce RTX 4090 D",
        "NVIDIA GeForce RTX 4090 Laptop GPU",
        "NVIDIA GH200 480GB",
        "NVIDIA H100",
        "NVIDIA A40",
        "NVIDIA RTX A6000",
        "TPU v4 lite",
        "/physical_device:GPU:0",
        "Apple M2",
    ],
)
def test_match_chip_unknown_names(device_name):
    assert match_chip(device_name) is None


def test_l4_family_is_not_substring_matched():
    assert {match_chip(n) for n in ("NVIDIA L4", "NVIDIA L40", "NVIDIA L40S")} == {
        "l4",
        "l40",
        "l40s",
    }


@pytest.mark.parametrize(
    ("device_name", "precision", "flops"),
    [
        # H100 architecture whitepaper, H100 SXM5 dense.
        ("NVIDIA H100 80GB HBM3", "bfloat16", 989.4e12),
        ("NVIDIA H100 80GB HBM3", "tfloat32", 494.7e12),
        ("NVIDIA H100 80GB HBM3", "float32", 66.9e12),
        # H100 datasheet, H100 PCIe: 1,513 BF16 with sparsity.
        ("NVIDIA H100 PCIe", "bfloat16", 756.5e12),
        # H100 NVL datasheet per GPU: 1,671 BF16 with sparsity.
        ("NVIDIA H100 NVL", "bfloat16", 835.5e12),
        # A100 datasheet (SXM and PCIe alike).
        ("NVIDIA A100-SXM4-80GB", "bfloat16", 312e12),
        ("NVIDIA A100 80GB PCIe", "tfloat32", 156e12),
        ("NVIDIA A100-PCIE-40GB", "float32", 19.5e12),
        # L4 datasheet: 242 BF16 with sparsity.
        ("NVIDIA L4", "bfloat16", 121e12),
        # L40S datasheet: 733 BF16 with sparsity, 362.05 dense.
        ("NVIDIA L40S", "bfloat16", 362.05e12),
        # T4 datasheet: 65 FP16 (mixed precision), 8.1 FP32.
        ("Tesla T4", "float16", 65e12),
        ("Tesla T4", "float32", 8.1e12),
        # V100 datasheet: SXM2 125 / PCIe 112 tensor, 15.7 / 14 FP32.
        ("Tesla V100-SXM2-16GB", "float16", 125e12),
        ("Tesla V100-PCIE-32GB", "float32", 14e12),
        # Ada whitepaper, RTX 4090 BF16 with FP32 accumulate.
        ("NVIDIA GeForce RTX 4090", "bfloat16", 165.2e12),
        # Cloud TPU docs: peak bf16 per chip.
        ("TPU v4", "bfloat16", 275e12),
        ("TPU v5 lite", "bfloat16", 197e12),
        ("TPU v5p", "bfloat16", 459e12),
        ("TPU v6 lite", "bfloat16", 918e12),
    ],
)
def test_table_peak_matches_datasheets(device_name, precision, flops):
    assert table_peak(device_name, precision) == pytest.approx(flops)


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


def test_table_has_no_zero_or_negative_entries():
    assert all(v > 0 and math.isfinite(v) for v in hardware._PEAKS.values())


def test_every_chip_has_a_source_and_known_precisions():
    chips = {chip for chip, _ in hardware._PEAKS}
    assert chips == set(hardware._SOURCES)
    assert all(p in hardware.PRECISIONS for _, p in hardware._PEAKS)
    assert all(hardware._SOURCES[c] for c in chips)


def test_every_rule_targets_a_table_chip():
    assert {chip for chip, _, _ in hardware._RULES} == set(hardware._SOURCES)


def test_tensor_core_peaks_are_not_sparse_figures():
    # Dense bf16 of H100 SXM must be below the 1,979 TFLOP/s sparse headline.
    assert table_peak("NVIDIA H100 80GB HBM3", "bfloat16") < 1.5e15


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
    assert "a100" in hardware._TF32_CHIPS
    assert "v100 sxm" not in hardware._TF32_CHIPS
    assert "t4" not in hardware._TF32_CHIPS


def _fake_detect(monkeypatch, names):
    monkeypatch.setattr(hardware, "detect_accelerators", lambda backend: list(names))


def test_resolve_peak_auto_uses_datasheet(monkeypatch):
    _fake_detect(monkeypatch, ["NVIDIA A100-SXM4-80GB"])
    peak = resolve_peak("auto", "tensorflow", "bfloat16")
    assert peak == Peak(312e12, peak.source, "NVIDIA A100-SXM4-80GB", "bfloat16", 1)
    assert peak.source.startswith("datasheet: ")
    assert "a100" in peak.source.lower()


def test_resolve_peak_none_means_auto_and_counts_replicas_not_visible_devices(monkeypatch):
    _fake_detect(monkeypatch, ["NVIDIA H100 80GB HBM3"] * 8)
    alone = resolve_peak(None, "tensorflow", "bfloat16")
    assert alone.devices == 1  # without a strategy Keras trains on one of the eight
    mirrored = resolve_peak(None, "tensorflow", "bfloat16", replicas=8)
    assert mirrored.devices == 8
    assert mirrored.flops_per_sec == pytest.approx(8 * 989.4e12)


def test_resolve_peak_replicas_override_detected_count(monkeypatch):
    _fake_detect(monkeypatch, ["NVIDIA L4"])
    peak = resolve_peak("auto", "jax", "bfloat16", replicas=4)
    assert peak.devices == 4
    assert peak.flops_per_sec == pytest.approx(4 * 121e12)


def test_resolve_peak_mixed_devices_use_first_name(monkeypatch):
    _fake_detect(monkeypatch, ["NVIDIA L40S", "NVIDIA L4"])
    peak = resolve_peak("auto", "tensorflow", "bfloat16")
    assert peak.device == "NVIDIA L40S"
    assert peak.flops_per_sec == pytest.approx(362.05e12)  # one replica


@pytest.mark.parametrize(
    ("tf32", "precision", "flops"),
    [(True, "tfloat32", 156e12), (False, "float32", 19.5e12)],
)
def test_resolve_peak_float32_follows_tf32_switch(monkeypatch, tf32, precision, flops):
    _fake_detect(monkeypatch, ["NVIDIA A100-SXM4-40GB"])
    monkeypatch.setattr(hardware, "tf32_enabled", lambda backend: tf32)
    peak = resolve_peak("auto", "tensorflow", "float32")
    assert (peak.precision, peak.flops_per_sec) == (precision, pytest.approx(flops))


def test_resolve_peak_tf32_on_v100_reports_float32(monkeypatch):
    _fake_detect(monkeypatch, ["Tesla V100-SXM2-16GB"])
    monkeypatch.setattr(hardware, "tf32_enabled", lambda backend: True)
    peak = resolve_peak("auto", "tensorflow", "float32")
    assert (peak.precision, peak.flops_per_sec) == ("float32", pytest.approx(15.7e12))


@pytest.mark.parametrize(
    ("names", "dtype"),
    [
        (["Mystery Accelerator 9000"], "bfloat16"),
        (["Tesla T4"], "bfloat16"),
        ([], "float32"),
    ],
)
def test_resolve_peak_unknown_warns_once_and_returns_none(monkeypatch, names, dtype):
    _fake_detect(monkeypatch, names)
    warnings_seen = []
    assert resolve_peak("auto", "tensorflow", dtype, warn=warnings_seen.append) is None
    assert len(warnings_seen) == 1
    message = warnings_seen[0]
    assert "MFU" in message and "peak_flops=" in message and "'measure'" in message


def test_resolve_peak_on_this_cpu_machine_warns():
    warnings_seen = []
    assert (
        resolve_peak(None, "tensorflow", "float32", warn=warnings_seen.append) is None
    )
    assert len(warnings_seen) == 1
    assert "CPU" in warnings_seen[0]


def test_resolve_peak_explicit_number_wins(monkeypatch):
    _fake_detect(monkeypatch, ["Mystery Accelerator 9000"])
    warnings_seen = []
    peak = resolve_peak(100e12, "tensorflow", "bfloat16", warn=warnings_seen.append)
    assert peak.flops_per_sec == 100e12
    assert peak.source == "peak_flops argument"
    assert peak.devices == 1
    assert warnings_seen == []


def test_resolve_peak_explicit_number_is_per_device(monkeypatch):
    _fake_detect(monkeypatch, ["NVIDIA A100-SXM4-80GB"])
    peak = resolve_peak(300e12, "tensorflow", "bfloat16", replicas=2)
    assert (peak.flops_per_sec, peak.devices) == (600e12, 2)


def test_resolve_peak_measure_uses_measure_peak(monkeypatch):
    _fake_detect(monkeypatch, [])
    calls = []

    def fake_measure(compute_dtype, size=None, **kwargs):
        calls.append((compute_dtype, size))
        return 5e10

    monkeypatch.setattr(hardware, "measure_peak", fake_measure)
    warnings_seen = []
    peak = resolve_peak(
        "measure", "tensorflow", "float32", replicas=2, warn=warnings_seen.append
    )
    assert calls == [("float32", 512)]
    assert peak == Peak(1e11, "measured: 512x512 float32 matmul", "cpu", "float32", 2)
    assert warnings_seen == []


def test_measure_peak_formula_with_fake_clock(monkeypatch):
    ticks = iter([10.0, 10.1, 10.3, 10.6])
    matmuls = []
    real_matmul = keras.ops.matmul

    def counting_matmul(a, b):
        matmuls.append(1)
        return real_matmul(a, b)

    monkeypatch.setattr(keras.ops, "matmul", counting_matmul)
    size = 8
    flops = measure_peak("float32", seconds=0.5, clock=lambda: next(ticks), size=size)
    reps = len(matmuls) - 1  # the first call is the warm-up
    assert reps >= 2
    assert flops == pytest.approx(2 * size**3 * reps / 0.6)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_measure_peak_real_tiny_matmul_is_positive(dtype):
    # bfloat16 also checks the sync path, which numpy cannot convert directly.
    assert measure_peak(dtype, seconds=0.01, size=16) > 0


def test_measure_peak_stopped_clock_raises(monkeypatch):
    monkeypatch.setattr(hardware, "_MAX_REPS", 3)
    with pytest.raises(RuntimeError):
        measure_peak("float32", seconds=0.5, clock=lambda: 1.0, size=4)


@pytest.mark.parametrize("value", [None, "auto", "measure", 1, 312e12, 2.5])
def test_validate_peak_flops_accepts(value):
    validate_peak_flops(value)


@pytest.mark.parametrize(
    "value",
    [0, 0.0, -1, -1e12, math.nan, math.inf, -math.inf, True, False, "fast", "", [1e12]],
)
def test_validate_peak_flops_rejects(value):
    with pytest.raises(ValueError, match="peak_flops"):
        validate_peak_flops(value)


def test_resolve_peak_validates_first():
    with pytest.raises(ValueError):
        resolve_peak("fast", "tensorflow", "float32")
