"""Pass accounting and rates, framework-free: fake times, whole results compared."""

import math
import sys

import pytest

from nns_callbacks.throughput import (
    BatchPlan,
    Mark,
    PassMeter,
    PassReport,
    PassTimes,
    Rates,
    StepWork,
    Work,
    empty_logs,
    pass_report,
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
    meter.step_end(1, 5.0)  # the first step: its start-up is timed apart, against the steady state after it
    assert meter.span() is None
    assert meter.first == Mark(1, 5.0)


def test_a_pass_is_timed_from_its_begin_to_its_end_with_its_start_up_apart():
    # begin at t=2; step 1 done at 5; steps 2..11 done by 7 (0.2 s each): the first step took 3 s, 2.8 s beyond
    # the steady 0.2 s: its start-up.  The wall clock: 11 steps of 32 in 5 s.
    report = pass_report(PassTimes(2.0, 7.0, Mark(1, 5.0)), 11, 352, 32, WORK, 1000.0)
    flops = 352 * 10.0 + 11 * 100.0  # 4620 FLOPs in 5 s
    assert report == PassReport(Rates(11, 352, 5.0, 352 / 5, 11 / 5, flops / 5, flops / 5 / 1000.0), 320 / 2,
                                pytest.approx(2.8), 0.0)


def test_a_pass_that_compiles_reports_its_compilation_apart_and_leaves_it_out_of_its_rates():
    report = pass_report(PassTimes(2.0, 7.0, Mark(1, 5.0)), 11, 352, 32, None, None, compiles=True)
    assert report.compile_seconds == pytest.approx(2.8) == report.startup_seconds
    # 5 s of wall clock less 2.8 s of compilation: 352 samples in 2.2 s
    assert report.rates.seconds == pytest.approx(2.2) and report.rates.samples_per_sec == pytest.approx(352 / 2.2)


def test_a_single_step_pass_has_only_its_wall_clock_rate():
    report = pass_report(PassTimes(0.0, 4.0, Mark(1, 4.0)), 1, 32, 32, None, None)
    assert (report.rates.samples_per_sec, report.steady_samples_per_sec, report.startup_seconds) == (8.0, None, None)
    compiled = pass_report(PassTimes(0.0, 4.0, Mark(1, 4.0)), 1, 32, 32, None, None, compiles=True)
    assert compiled.compile_seconds is None and compiled.rates.seconds == 4.0  # nothing to tell it apart by


def test_an_empty_or_timeless_pass_has_no_rates():
    assert pass_report(PassTimes(1.0, 1.0, None), 3, 96, None, WORK, None) == PassReport(None, None, None, None)
    assert pass_report(PassTimes(0.0, 2.0, None), 0, 0, None, WORK, None).rates is None


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


def test_a_window_takes_the_samples_the_data_told_over_the_plan():
    window = (Mark(2, 1.0), Mark(4, 3.0))  # batches of 32, 7, 50, 1: steps 3 and 4 held 50 + 1
    assert window_rates(window, BatchPlan(32), None, None, samples=51).samples_per_sec == 25.5
    assert window_rates(window, BatchPlan(32), None, None).samples_per_sec == 32.0


def test_unknown_samples_still_give_steps_per_second():
    result = pass_report(PassTimes(0.0, 3.0, Mark(1, 1.0)), 5, None, None, WORK, 1000.0).rates
    assert result == Rates(5, None, 3.0, None, 5 / 3, None, None)
    logs = result.as_logs()
    assert logs["steps_per_sec"] == 5 / 3 and math.isnan(logs["samples_per_sec"]) and math.isnan(logs["mfu"])


def test_model_and_counted_work_give_mfu_and_hfu_and_flops_fall_back_to_the_counted():
    both = rates(2, 64, 2.0, StepWork(Work(1e12), Work(0.0, 1e14)), 1e14)
    # model: 64 x 1e12 in 2 s = 32e12 FLOP/s, MFU 0.32; counted: 2 x 1e14 in 2 s = 1e14, HFU 1.0
    assert (both.flops_per_sec, both.mfu, both.hfu) == (32e12, 0.32, 1.0)
    counted_only = rates(2, 64, 2.0, StepWork(None, Work(0.0, 1e14)), 1e14)
    assert (counted_only.flops_per_sec, counted_only.mfu, counted_only.hfu) == (1e14, None, 1.0)
    assert counted_only.as_logs(flops=True, mfu=False, hfu=True) == {
        "samples_per_sec": 32.0, "steps_per_sec": 1.0, "tflops_per_sec": 100.0, "hfu": 1.0}


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
