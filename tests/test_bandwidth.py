"""nns_callbacks.bandwidth: memory bytes/s from a number, the datasheet or a measurement kept per machine.
Timings are faked: no assertion depends on how fast this machine is."""

import json
import math

import pytest

from nns_callbacks import bandwidth, peaks
from nns_callbacks.bandwidth import Bandwidth, measure_bandwidth, resolve_bandwidth, validate_memory_bandwidth
from nns_callbacks.timing import Spread
from tests.measurements import fake_names

COPY = Spread(25e9, 24e9, 20e9, 5)


@pytest.mark.parametrize(("name", "bytes_per_sec"), [("NVIDIA H100 80GB HBM3", 3.35e12), ("TPU v5 lite", 819e9),
                                                     ("NVIDIA A100-SXM4-80GB", 1.555e12)])
def test_a_known_chip_gets_its_datasheet_bandwidth(monkeypatch, name, bytes_per_sec):
    fake_names(monkeypatch, [name])
    seen = []
    found = resolve_bandwidth("auto", "jax", warn=seen.append)
    assert found == Bandwidth(pytest.approx(bytes_per_sec), found.source, name, 1)
    assert found.source.startswith("datasheet: ") and "http" in found.source and seen == []


def test_the_datasheet_bandwidth_is_summed_over_replicas(monkeypatch):
    fake_names(monkeypatch, ["NVIDIA H200"] * 8)
    found = resolve_bandwidth(None, "torch", replicas=8)
    assert (found.bytes_per_sec, found.devices) == (pytest.approx(8 * 4.8e12), 8)


@pytest.mark.parametrize("names", [[], ["Mystery Accelerator 9000"]])
def test_a_cpu_or_unknown_device_under_auto_warns_once_and_gets_none(monkeypatch, names):
    fake_names(monkeypatch, names)
    seen = []
    assert resolve_bandwidth("auto", "tensorflow", warn=seen.append) is None
    assert len(seen) == 1 and "memory_bandwidth=" in seen[0] and "'measure'" in seen[0]
    assert ("CPU" in seen[0]) == (not names)


def test_this_cpu_machine_under_auto(monkeypatch):
    seen = []
    assert resolve_bandwidth(None, "tensorflow", warn=seen.append) is None
    assert len(seen) == 1 and "CPU" in seen[0]


def test_an_explicit_number_is_per_device(monkeypatch):
    fake_names(monkeypatch, [])
    assert resolve_bandwidth(1e11, "jax", replicas=2) == Bandwidth(2e11, "memory_bandwidth argument", "cpu", 2)


def test_measure_times_a_copy_once_then_reuses_it(monkeypatch, measurement_cache):
    fake_names(monkeypatch, [])
    calls = []
    monkeypatch.setattr(bandwidth, "measure_bandwidth", lambda nbytes=None, **kw: calls.append(nbytes) or COPY)
    first = resolve_bandwidth("measure", "jax")
    second = resolve_bandwidth("measure", "jax")
    assert calls == [64 * 2**20]
    assert first.bytes_per_sec == second.bytes_per_sec == 25e9 and second.spread == COPY
    assert ", cached: x + 1 over 64 MiB of float32 (read + written), best of 5 runs" in second.source
    resolve_bandwidth("measure!", "jax")
    assert len(calls) == 2


def test_an_accelerator_copies_256_mib(monkeypatch, measurement_cache):
    fake_names(monkeypatch, ["NVIDIA L4"])
    calls = []
    monkeypatch.setattr(bandwidth, "measure_bandwidth", lambda nbytes=None, **kw: calls.append(nbytes) or COPY)
    assert resolve_bandwidth("measure", "torch").device == "NVIDIA L4" and calls == [256 * 2**20]


def test_the_peak_and_the_bandwidth_share_one_cache_file(monkeypatch, measurement_cache):
    fake_names(monkeypatch, [])
    monkeypatch.setattr(bandwidth, "measure_bandwidth", lambda nbytes=None, **kw: COPY)
    monkeypatch.setattr(peaks, "measure_peak", lambda dtype, size=None, **kw: Spread(1e11, 1e11, 1e11, 5))
    resolve_bandwidth("measure", "jax")
    peaks.resolve_peak("measure", "jax", "float32")
    entries = json.loads(measurement_cache.read_text())["measurements"]
    assert sorted(e["quantity"] for e in entries) == ["memory_bandwidth", "peak_flops"]


def test_an_unwritable_cache_warns_and_still_returns_the_bandwidth(monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("NNS_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    fake_names(monkeypatch, [])
    monkeypatch.setattr(bandwidth, "measure_bandwidth", lambda nbytes=None, **kw: COPY)
    seen = []
    assert resolve_bandwidth("measure", "jax", warn=seen.append).bytes_per_sec == 25e9
    assert len(seen) == 1 and "could not write" in seen[0]


def test_measure_bandwidth_keeps_the_best_of_its_runs(monkeypatch):
    rates = iter([1e9, 20e9, 25e9, 24e9, 19e9, 24.5e9])  # the first is the warm-up, dropped
    monkeypatch.setattr(bandwidth, "copy_rate", lambda *args, **kwargs: next(rates))
    assert measure_bandwidth(4096 * 4, runs=5) == Spread(25e9, 24e9, 19e9, 5)


def test_measure_bandwidth_counts_bytes_read_and_written(monkeypatch):
    moved = []
    monkeypatch.setattr(bandwidth, "copy_rate", lambda x, one, nbytes, seconds, clock: moved.append(nbytes) or 1.0)
    measure_bandwidth(8 * 4096, runs=1)  # 8 rows of 1024 float32
    assert moved == [2 * 8 * 4096, 2 * 8 * 4096]  # warm-up and one run: each byte read once and written once


def test_measure_bandwidth_real_tiny_copy_is_positive():
    spread = measure_bandwidth(64 * 4096, runs=2, seconds=0.01)
    assert spread.runs == 2 and 0 < spread.low <= spread.best


@pytest.mark.parametrize("value", [None, "auto", "measure", "measure!", 1, 3.35e12])
def test_validate_memory_bandwidth_accepts(value):
    validate_memory_bandwidth(value)


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, True, "fast", "", [1e12]])
def test_validate_memory_bandwidth_rejects(value):
    with pytest.raises(ValueError, match="memory_bandwidth"):
        validate_memory_bandwidth(value)


def test_resolve_bandwidth_validates_first():
    with pytest.raises(ValueError, match="memory_bandwidth"):
        resolve_bandwidth("fast", "jax")
