"""Pass accounting and rates, framework-free: fake times, whole results compared."""

import math
import sys

import pytest

from nns_callbacks.throughput import (
    BatchPlan,
    Mark,
    PassMeter,
    Rates,
    Work,
    empty_logs,
    pass_rates,
    rates,
    window_rates,
)

WORK = Work(per_sample=10.0, per_step=100.0)


@pytest.mark.parametrize(
    ("plan", "steps", "samples"),
    [(BatchPlan(32, 4, 4), 3, 96), (BatchPlan(32, 4, 4), 4, 100), (BatchPlan(32), 4, 128), (BatchPlan(32, 4), 4, 128)],
)
def test_batch_plan_counts_the_smaller_last_batch(plan, steps, samples):
    assert plan.samples(steps) == samples


def test_one_finished_step_has_no_span():
    meter = PassMeter()
    meter.step_end(1, 5.0)  # the first step: tracing, compilation and data start-up before it are never counted
    assert meter.span() is None
    assert pass_rates(meter.span(), BatchPlan(32), WORK, 1000.0) is None


def test_a_pass_is_timed_from_its_first_finished_step_to_its_last():
    meter = PassMeter()
    for steps, time in [(1, 5.0), (2, 6.0), (11, 7.0)]:
        meter.step_end(steps, time)
    assert meter.span() == (Mark(1, 5.0), Mark(11, 7.0))
    # 10 steps of 32 in 2 s: 160 samples/s; FLOPs 320 x 10 + 10 x 100 = 4200 in 2 s = 2100 FLOP/s, / 1000
    assert pass_rates(meter.span(), BatchPlan(32), WORK, 1000.0) == Rates(10, 320, 2.0, 160.0, 5.0, 2100.0, 2.1)


def test_late_hooks_add_nothing():
    in_order, shuffled = PassMeter(), PassMeter()
    marks = [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    for mark in marks:
        in_order.step_end(*mark)
    for steps, time in [(1, 1.0), (3, 2.5), (2, 3.0), (4, 4.0)]:  # step 2's hook ran after step 3's
        shuffled.step_end(steps, time)
    assert in_order.span() == (Mark(1, 1.0), Mark(4, 4.0))
    assert shuffled.span() == (Mark(1, 1.0), Mark(4, 4.0))


def test_windows_close_every_window_steps_and_never_on_a_late_hook():
    meter = PassMeter(window_steps=2)
    closed = [meter.step_end(steps, float(steps)) for steps in (1, 2, 3, 2, 4, 5)]
    assert closed == [None, None, (Mark(1, 1.0), Mark(3, 3.0)), None, None, (Mark(3, 3.0), Mark(5, 5.0))]
    # the last batch holds 4: samples 3 -> 5 are 32 + 4 in 2 s
    assert window_rates(closed[-1], BatchPlan(32, 5, 4), WORK, None) == Rates(2, 36, 2.0, 18.0, 1.0, 280.0, None)


def test_begin_forgets_the_previous_pass():
    meter = PassMeter(window_steps=1)
    meter.step_end(7, 1.0)
    meter.begin()
    assert meter.step_end(1, 10.0) is None  # a new pass's first step opens it, whatever came before
    assert meter.step_end(2, 12.0) == (Mark(1, 10.0), Mark(2, 12.0))


def test_exact_counts_correct_the_last_hook_and_give_samples_without_a_plan():
    meter = PassMeter()
    meter.step_end(4, 1.0)  # steps_per_execution=4 over 10 batches: hooks at 4, 8 and "12"
    meter.step_end(8, 2.0)
    meter.step_end(12, 3.0)
    # exact: 10 steps, 300 samples; before the span 4 steps of the mean batch 30: 180 samples in 2 s
    assert pass_rates(meter.span(), None, WORK, None, total_steps=10, total_samples=300.0) == Rates(
        6, 180.0, 2.0, 90.0, 3.0, (180 * 10.0 + 6 * 100.0) / 2, None
    )
    # with a plan, the steps before the span are full batches of it
    assert pass_rates(meter.span(), BatchPlan(32), None, None, 10, 300.0).samples == 300 - 4 * 32


def test_unknown_samples_still_give_steps_per_second():
    meter = PassMeter()
    meter.step_end(1, 1.0)
    meter.step_end(5, 3.0)
    result = pass_rates(meter.span(), None, WORK, 1000.0)
    assert result == Rates(4, None, 2.0, None, 2.0, None, None)
    logs = result.as_logs()
    assert logs["steps_per_sec"] == 2.0 and math.isnan(logs["samples_per_sec"]) and math.isnan(logs["mfu"])


def test_logs_hold_tflops_and_leave_out_what_the_run_cannot_have():
    result = rates(2, 64, 2.0, Work(5e12), 1e14)
    assert result.as_logs() == {"samples_per_sec": 32.0, "steps_per_sec": 1.0, "tflops_per_sec": 160.0, "mfu": 1.6}
    assert result.as_logs(flops=False, mfu=False) == {"samples_per_sec": 32.0, "steps_per_sec": 1.0}
    assert sorted(empty_logs()) == ["mfu", "samples_per_sec", "steps_per_sec", "tflops_per_sec"]
    assert all(math.isnan(v) for v in empty_logs().values())


@pytest.mark.parametrize(("steps", "samples", "seconds"), [(0, 10, 1.0), (1, 10, 0.0), (1, 10, -1.0)])
def test_empty_or_timeless_spans_have_no_rate(steps, samples, seconds):
    assert rates(steps, samples, seconds, WORK, 1.0) is None


def test_decreasing_samples_are_rejected_with_the_values():
    with pytest.raises(ValueError, match="samples must not decrease: -4 over 2 steps"):
        rates(2, -4, 1.0, None, None)


def test_window_steps_must_be_positive():
    with pytest.raises(ValueError, match="window_steps"):
        PassMeter(window_steps=0)


def test_a_pass_keeps_the_same_memory_however_long():
    meter = PassMeter(window_steps=1000)
    meter.step_end(1, 0.0)
    before = sys.getsizeof(meter.__dict__)
    for steps in range(2, 100_000):
        meter.step_end(steps, float(steps))
    assert sys.getsizeof(meter.__dict__) == before
    assert len(vars(meter)) == 5  # window size, lock, first, last, edge


def test_a_late_first_hook_that_read_the_clock_earlier_moves_the_start_back():
    meter = PassMeter(window_steps=4)
    meter.step_end(2, 12.0)  # step 2's hook won the race into the meter
    meter.step_end(1, 11.0)  # step 1's hook had read the clock first: the pass and its window start there
    assert meter.step_end(5, 15.0) == (Mark(1, 11.0), Mark(5, 15.0))
    assert meter.span() == (Mark(1, 11.0), Mark(5, 15.0))


def test_a_later_step_seen_earlier_times_the_start_by_it():
    meter = PassMeter(window_steps=3)
    meter.step_end(1, 2.0)  # step 1's hook read the clock after step 2's did
    meter.step_end(2, 1.0)  # step 2 was done at 1.0, so step 1 was too
    assert meter.step_end(4, 4.0) == (Mark(1, 1.0), Mark(4, 4.0))
    meter.step_end(10, 10.0)
    assert meter.span() == (Mark(1, 1.0), Mark(10, 10.0))
