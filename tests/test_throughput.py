"""Throughput marks: fake times, whole results compared."""

import pytest

from nns_callbacks.throughput import Rates, ThroughputMeter, rates


def test_one_mark_has_no_rate():
    meter = ThroughputMeter(flops_per_sample=10.0, peak_flops=1000.0)
    meter.mark(1, 32, 5.0)  # warm-up step: compile time before it is never counted
    assert meter.total() is None


def test_rates_are_work_over_wall_time():
    meter = ThroughputMeter(flops_per_sample=10.0, peak_flops=1000.0)
    meter.mark(1, 32, 5.0)
    meter.mark(11, 352, 7.0)
    # 10 steps, 320 samples in 2 s: 160 samples/s, 160 x 10 = 1600 FLOP/s, 1600 / 1000 = 1.6
    assert meter.between(1, 11) == Rates(10, 320, 2.0, 160.0, 5.0, 1600.0, 1.6)
    assert meter.total().as_logs() == {"samples_per_sec": 160.0, "flops_per_sec": 1600.0, "mfu": 1.6}


def test_marks_arriving_out_of_order_give_the_same_rates():
    in_order, shuffled = ThroughputMeter(2.0), ThroughputMeter(2.0)
    marks = [(1, 10, 1.0), (2, 20, 2.0), (3, 30, 3.0), (4, 35, 4.0)]  # the last batch holds 5 samples
    for mark in marks:
        in_order.mark(*mark)
    for mark in (marks[1], marks[0], marks[3], marks[2]):
        shuffled.mark(*mark)
    # 25 samples from step 1 to 4 in 3 s
    assert in_order.total() == shuffled.total() == Rates(3, 25, 3.0, 25 / 3, 1.0, 50 / 3, None)


def test_a_late_hook_is_timed_by_the_later_step_seen_earlier():
    meter = ThroughputMeter()
    meter.mark(1, 10, 1.0)
    meter.mark(3, 30, 3.0)
    meter.mark(2, 20, 3.5)  # its hook ran late: step 3 had already finished at 3.0, so step 2 had too
    assert meter.between(1, 2) == Rates(1, 10, 2.0, 5.0, 0.5, None, None)


def test_start_forgets_earlier_marks():
    meter = ThroughputMeter(1.0)
    meter.mark(5, 50, 1.0)
    meter.start(0, 0, 10.0)  # a new epoch begins at t=10, nothing done yet
    meter.mark(4, 40, 12.0)
    assert meter.total() == Rates(4, 40, 2.0, 20.0, 2.0, 20.0, None)


def test_unknown_flops_or_peak_leave_those_out():
    assert rates(1, 10, 2.0, None, 100.0).as_logs() == {"samples_per_sec": 5.0}
    assert rates(1, 10, 2.0, 3.0, None).as_logs() == {"samples_per_sec": 5.0, "flops_per_sec": 15.0}


@pytest.mark.parametrize(("steps", "samples", "seconds"), [(0, 10, 1.0), (1, 10, 0.0), (1, 10, -1.0)])
def test_empty_or_timeless_spans_have_no_rate(steps, samples, seconds):
    assert rates(steps, samples, seconds, 1.0, 1.0) is None


def test_inconsistent_marks_are_rejected_with_the_values():
    meter = ThroughputMeter()
    meter.mark(4, 40, 1.0)
    with pytest.raises(ValueError, match="step 4 was marked with 40 samples, then 41"):
        meter.mark(4, 41, 2.0)
    meter.mark(5, 30, 2.0)
    with pytest.raises(ValueError, match="samples must not decrease with steps: 40 at step 4, then 30 at step 5"):
        meter.between(4, 5)


def test_reset_forgets_everything():
    meter = ThroughputMeter(1.0)
    meter.mark(0, 0, 0.0)
    meter.mark(1, 1, 1.0)
    meter.reset()
    assert meter.total() is None and not meter.started
