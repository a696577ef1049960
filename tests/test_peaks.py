"""nns_callbacks.peaks, timing and measure_cache: the peak FLOP/s from a number, the datasheet or a measurement
kept per machine. Timings are faked: no assertion depends on how fast this machine is."""

import json
import math

import pytest

from nns_callbacks import devices, measure_cache, peaks, timing
from nns_callbacks.peaks import Peak, measure_peak, resolve_peak, validate_peak_flops
from nns_callbacks.timing import Spread
from tests.measurements import fake_names


class FakeMeasure:
    """measure_peak's stand-in: counts its calls and returns one spread after another."""

    def __init__(self, *spreads):
        self.spreads, self.calls = list(spreads), []

    def __call__(self, compute_dtype, size=None, **kwargs):
        self.calls.append((compute_dtype, size))
        return self.spreads[len(self.calls) - 1]


SLOW, FAST = Spread(50e9, 45e9, 40e9, 5), Spread(117e9, 110e9, 100e9, 5)


# The datasheet ("auto", None).


def test_resolve_peak_auto_uses_datasheet(monkeypatch):
    fake_names(monkeypatch, ["NVIDIA A100-SXM4-80GB"])
    peak = resolve_peak("auto", "tensorflow", "bfloat16")
    assert peak == Peak(312e12, peak.source, "NVIDIA A100-SXM4-80GB", "bfloat16", 1)
    assert peak.source.startswith("datasheet: ") and "A100" in peak.source


def test_resolve_peak_of_the_design_notes_h200(monkeypatch):
    fake_names(monkeypatch, ["NVIDIA H200"])
    monkeypatch.setattr(devices, "tf32_enabled", lambda backend: True)
    assert resolve_peak(None, "jax", "bfloat16").flops_per_sec == pytest.approx(989.4e12)
    assert resolve_peak(None, "jax", "float32").flops_per_sec == pytest.approx(494.7e12)


def test_resolve_peak_none_means_auto_and_counts_replicas_not_visible_devices(monkeypatch):
    fake_names(monkeypatch, ["NVIDIA H100 80GB HBM3"] * 8)
    assert resolve_peak(None, "tensorflow", "bfloat16").devices == 1  # without a strategy Keras uses one
    mirrored = resolve_peak(None, "tensorflow", "bfloat16", replicas=8)
    assert (mirrored.devices, mirrored.flops_per_sec) == (8, pytest.approx(8 * 989.4e12))


def test_resolve_peak_mixed_devices_use_first_name(monkeypatch):
    fake_names(monkeypatch, ["NVIDIA L40S", "NVIDIA L4"])
    peak = resolve_peak("auto", "tensorflow", "bfloat16")
    assert (peak.device, peak.flops_per_sec) == ("NVIDIA L40S", pytest.approx(362.05e12))


@pytest.mark.parametrize(("tf32", "precision", "flops"), [(True, "tfloat32", 156e12), (False, "float32", 19.5e12)])
def test_resolve_peak_float32_follows_tf32_switch(monkeypatch, tf32, precision, flops):
    fake_names(monkeypatch, ["NVIDIA A100-SXM4-40GB"])
    monkeypatch.setattr(devices, "tf32_enabled", lambda backend: tf32)
    peak = resolve_peak("auto", "tensorflow", "float32")
    assert (peak.precision, peak.flops_per_sec) == (precision, pytest.approx(flops))


def test_resolve_peak_tf32_on_v100_reports_float32(monkeypatch):
    fake_names(monkeypatch, ["Tesla V100-SXM2-16GB"])
    monkeypatch.setattr(devices, "tf32_enabled", lambda backend: True)
    peak = resolve_peak("auto", "tensorflow", "float32")
    assert (peak.precision, peak.flops_per_sec) == ("float32", pytest.approx(15.7e12))


@pytest.mark.parametrize(("names", "dtype"), [(["Mystery Accelerator 9000"], "bfloat16"), (["Tesla T4"], "bfloat16"),
                                              ([], "float32")])
def test_resolve_peak_unknown_warns_once_and_returns_none(monkeypatch, names, dtype):
    fake_names(monkeypatch, names)
    seen = []
    assert resolve_peak("auto", "tensorflow", dtype, warn=seen.append) is None
    assert len(seen) == 1 and "MFU" in seen[0] and "peak_flops=" in seen[0] and "'measure'" in seen[0]


def test_resolve_peak_on_this_cpu_machine_warns():
    seen = []
    assert resolve_peak(None, "tensorflow", "float32", warn=seen.append) is None
    assert len(seen) == 1 and "CPU" in seen[0]


# A number.


def test_resolve_peak_explicit_number_wins_and_is_per_device(monkeypatch):
    fake_names(monkeypatch, ["NVIDIA A100-SXM4-80GB"])
    seen = []
    peak = resolve_peak(300e12, "tensorflow", "bfloat16", replicas=2, warn=seen.append)
    assert peak == Peak(600e12, "peak_flops argument", "NVIDIA A100-SXM4-80GB", "bfloat16", 2)
    assert seen == []


# "measure" and "measure!": the cache.


def test_measure_times_once_then_reuses_the_cached_figure(monkeypatch, measurement_cache):
    fake_names(monkeypatch, [])
    fake = FakeMeasure(FAST, SLOW)
    monkeypatch.setattr(peaks, "measure_peak", fake)
    seen = []
    first = resolve_peak("measure", "tensorflow", "float32", replicas=2, warn=seen.append)
    second = resolve_peak("measure", "tensorflow", "float32", replicas=2, warn=seen.append)
    assert fake.calls == [("float32", peaks.CPU_MATMUL_SIZE)]  # the second run timed nothing
    assert first.flops_per_sec == second.flops_per_sec == 2 * 117e9
    assert first.spread == second.spread == FAST
    assert (second.device, second.precision, second.devices) == ("cpu", "float32", 2)
    assert first.source.startswith("measured on ") and ", cached" not in first.source
    assert second.source.startswith(f"measured on {measure_cache.now()[:10]}, cached: 2048x2048 float32 matmuls")
    assert "best of 5 runs (median 110 G, lowest 100 G FLOP/s per device)" in second.source
    assert seen == []


def test_measure_bang_measures_again_and_replaces_the_cached_entry(monkeypatch, measurement_cache):
    fake_names(monkeypatch, [])
    fake = FakeMeasure(SLOW, FAST)
    monkeypatch.setattr(peaks, "measure_peak", fake)
    resolve_peak("measure", "jax", "float32")
    again = resolve_peak("measure!", "jax", "float32")
    assert len(fake.calls) == 2 and again.flops_per_sec == 117e9 and ", cached" not in again.source
    reused = resolve_peak("measure", "jax", "float32")
    assert (len(fake.calls), reused.flops_per_sec) == (2, 117e9)
    entries = json.loads(measurement_cache.read_text())["measurements"]
    assert len(entries) == 1 and entries[0]["best"] == 117e9


def test_the_cache_is_kept_per_device_backend_and_dtype(monkeypatch, measurement_cache):
    fake = FakeMeasure(SLOW, FAST, SLOW, FAST)
    monkeypatch.setattr(peaks, "measure_peak", fake)
    fake_names(monkeypatch, [])
    resolve_peak("measure", "jax", "float32")
    resolve_peak("measure", "jax", "bfloat16")
    resolve_peak("measure", "torch", "float32")
    fake_names(monkeypatch, ["NVIDIA L4"])
    resolve_peak("measure", "jax", "float32")
    assert [call[1] for call in fake.calls] == [2048, 2048, 2048, 8192]
    document = json.loads(measurement_cache.read_text())
    assert document["format"] == 1
    keys = {(e["device"], e["backend"], e["dtype"]) for e in document["measurements"]}
    assert keys == {("cpu", "jax", "float32"), ("cpu", "jax", "bfloat16"), ("cpu", "torch", "float32"),
                    ("NVIDIA L4", "jax", "float32")}
    assert {e["machine"] for e in document["measurements"]} == {devices.machine()}


def test_another_machine_does_not_reuse_the_figure(monkeypatch, measurement_cache):
    fake_names(monkeypatch, [])
    fake = FakeMeasure(SLOW, FAST)
    monkeypatch.setattr(peaks, "measure_peak", fake)
    resolve_peak("measure", "jax", "float32")
    monkeypatch.setattr(devices, "machine", lambda: "other-host (Another CPU)")
    assert resolve_peak("measure", "jax", "float32").flops_per_sec == 117e9
    assert len(fake.calls) == 2


def test_an_unwritable_cache_warns_and_still_returns_the_peak(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("NNS_CACHE_DIR", str(blocker / "cache"))
    fake_names(monkeypatch, [])
    fake = FakeMeasure(FAST, FAST)
    monkeypatch.setattr(peaks, "measure_peak", fake)
    seen = []
    peak = resolve_peak("measure", "tensorflow", "float32", warn=seen.append)
    assert peak.flops_per_sec == 117e9
    assert len(seen) == 1 and "could not write the measurement cache" in seen[0] and "NNS_CACHE_DIR" in seen[0]
    resolve_peak("measure", "tensorflow", "float32", warn=seen.append)
    assert len(fake.calls) == 2  # nothing was kept, so it measures again


@pytest.mark.parametrize("content", ["{not json", "[]", '{"format": 99, "measurements": []}',
                                     '{"format": 1, "measurements": [{"quantity": "peak_flops"}, 3]}'])
def test_a_malformed_cache_file_counts_as_empty_and_is_replaced(monkeypatch, measurement_cache, content):
    measurement_cache.parent.mkdir(parents=True)
    measurement_cache.write_text(content)
    fake_names(monkeypatch, [])
    monkeypatch.setattr(peaks, "measure_peak", FakeMeasure(FAST))
    assert resolve_peak("measure", "jax", "float32").flops_per_sec == 117e9
    assert json.loads(measurement_cache.read_text())["measurements"][-1]["best"] == 117e9


@pytest.mark.parametrize(("environment", "expected"), [
    ({"NNS_CACHE_DIR": "/x/nns", "XDG_CACHE_HOME": "/y"}, "/x/nns"),
    ({"XDG_CACHE_HOME": "/y"}, "/y/nns_callbacks"),
    ({"HOME": "/home/someone"}, "/home/someone/.cache/nns_callbacks"),
])
def test_where_the_cache_lives(monkeypatch, environment, expected):
    for name in ("NNS_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert str(measure_cache.cache_dir()) == expected


# measure_peak and timing: the best of several runs.


def test_measure_peak_keeps_the_best_of_its_runs_after_a_warm_up(monkeypatch):
    rates = iter([20e9, 50.6e9, 117e9, 90e9, 80e9, 100e9])  # the first is the warm-up, dropped
    monkeypatch.setattr(peaks, "matmul_rate", lambda *args, **kwargs: next(rates))
    assert measure_peak("float32", size=4, runs=5) == Spread(117e9, 90e9, 50.6e9, 5)


def test_spread_and_its_ratio():
    spread = timing.spread_of([50.6e9, 117e9, 92e9, 99e9])
    assert spread == Spread(117e9, 95.5e9, 50.6e9, 4)
    assert spread.ratio == pytest.approx(117 / 50.6 - 1)
    assert spread.describe("FLOP/s") == "best of 4 runs (median 95.5 G, lowest 50.6 G FLOP/s per device)"


def test_timed_rate_with_a_fake_clock():
    ticks = iter([10.0, 10.1, 10.3, 10.6])
    steps, syncs = [], []
    rate = timing.timed_rate(lambda: steps.append(1), syncs.append, work=1000.0, seconds=0.5,
                             clock=lambda: next(ticks))
    # batches of 1, then 4 (aiming at 0.5 s after 0.1 s), then 3: 8 steps in 0.6 s, synced after each batch
    assert (len(steps), len(syncs)) == (8, 3)
    assert rate == pytest.approx(1000.0 * 8 / 0.6)


def test_timed_rate_with_a_stopped_clock_raises(monkeypatch):
    monkeypatch.setattr(timing, "MAX_STEPS", 3)
    with pytest.raises(RuntimeError, match="clock"):
        timing.timed_rate(lambda: None, lambda out: None, 1.0, 0.5, clock=lambda: 1.0)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_measure_peak_real_tiny_matmul_is_positive(dtype):
    # bfloat16 also checks the sync path, which numpy cannot convert directly.
    spread = measure_peak(dtype, size=16, runs=2, seconds=0.01)
    assert spread.runs == 2 and 0 < spread.low <= spread.median <= spread.best


# validate_peak_flops.


@pytest.mark.parametrize("value", [None, "auto", "measure", "measure!", 1, 312e12, 2.5])
def test_validate_peak_flops_accepts(value):
    validate_peak_flops(value)


@pytest.mark.parametrize("value", [0, 0.0, -1, -1e12, math.nan, math.inf, -math.inf, True, False, "fast", "",
                                   "measure!!", [1e12]])
def test_validate_peak_flops_rejects(value):
    with pytest.raises(ValueError, match="peak_flops"):
        validate_peak_flops(value)


def test_resolve_peak_validates_first():
    with pytest.raises(ValueError):
        resolve_peak("fast", "tensorflow", "float32")
