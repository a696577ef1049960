"""Throughput windows: fake times, whole results compared."""

import pytest

from nns_callbacks.throughput import Rates, ThroughputMeter, rates


def test_first_edge_only_opens_a_window():
    meter = ThroughputMeter(flops_per_sample=10.0, peak_flops=1000.0)
    assert meter.edge(1, 32, 5.0) is None  # warm-up step: compile time is never counted
    assert meter.total() is None


def test_window_rates_are_work_over_wall_time():
    meter = ThroughputMeter(flops_per_sample=10.0, peak_flops=1000.0)
    meter.start(1, 32, 5.0)
    window = meter.edge(11, 352, 7.0)
    # 10 steps, 320 samples in 2 s: 160 samples/s, 160 x 10 = 1600 FLOP/s, 1600 / 1000 = 1.6
    assert window == Rates(10, 320, 2.0, 160.0, 5.0, 1600.0, 1.6)
    assert window.as_logs() == {"samples_per_sec": 160.0, "flops_per_sec": 1600.0, "mfu": 1.6}


def test_total_sums_windows_and_skips_pauses():
    meter = ThroughputMeter(flops_per_sample=2.0)
    meter.start(0, 0, 0.0)
    meter.edge(4, 40, 1.0)
    meter.edge(8, 80, 3.0)
    meter.pause()  # validation runs from t=3 to t=10
    assert meter.edge(9, 90, 10.5) is None
    meter.start(9, 90, 10.0)
    meter.edge(10, 95, 11.0)  # smaller last batch: 5 samples
    # windows: 4 steps/40 samples in 1 s, 4/40 in 2 s, 1/5 in 1 s -> 9 steps, 85 samples in 4 s
    assert meter.total() == Rates(9, 85, 4.0, 85 / 4, 9 / 4, 85 * 2.0 / 4, None)


def test_unknown_flops_or_peak_leave_those_out():
    assert rates(1, 10, 2.0, None, 100.0).as_logs() == {"samples_per_sec": 5.0}
    assert rates(1, 10, 2.0, 3.0, None).as_logs() == {"samples_per_sec": 5.0, "flops_per_sec": 15.0}


@pytest.mark.parametrize(("steps", "samples", "seconds"), [(0, 10, 1.0), (1, 10, 0.0), (1, 10, -1.0)])
def test_empty_or_timeless_windows_have_no_rate(steps, samples, seconds):
    assert rates(steps, samples, seconds, 1.0, 1.0) is None


@pytest.mark.parametrize(
    ("edge", "message"),
    [((3, 40, 2.0), "steps must not decrease between edges: 4 then 3"),
     ((5, 30, 2.0), "samples must not decrease between edges: 40 then 30"),
     ((5, 50, 0.5), "time must not decrease between edges: 1.0 then 0.5")],
)
def test_decreasing_counters_are_rejected_with_the_values(edge, message):
    meter = ThroughputMeter()
    meter.start(4, 40, 1.0)
    with pytest.raises(ValueError, match=message):
        meter.edge(*edge)


def test_reset_forgets_everything():
    meter = ThroughputMeter(1.0)
    meter.start(0, 0, 0.0)
    meter.edge(1, 1, 1.0)
    meter.reset()
    assert meter.total() is None and not meter.started
