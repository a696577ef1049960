"""``Throughput``, the rates of a training loop of one's own: windows, running totals, work and MFU, no framework."""

import subprocess
import sys

import keras
import numpy as np
import pytest

import nns_callbacks
from nns_callbacks import Throughput


def fed(throughput: Throughput, steps: int, batch: int = 32, seconds_per_step: float = 0.5, start: float = 100.0):
    """Feed ``steps`` updates of ``batch`` samples each, one every ``seconds_per_step`` (a fake clock)."""
    for step in range(steps + 1):
        throughput.update(steps=step, samples=batch * step, time=start + seconds_per_step * step)
    return throughput


@pytest.mark.parametrize("window, steps", [(1, 5), (3, 5), (5, 5), (10, 5)])
def test_rates_span_the_last_window_of_updates(window, steps):
    rates = fed(Throughput(window=window), steps, seconds_per_step=0.25).compute()
    spanned = min(window, steps)
    assert rates.steps == spanned
    assert rates.seconds == pytest.approx(0.25 * spanned)
    assert rates.samples_per_sec == pytest.approx(32 / 0.25)
    assert rates.steps_per_sec == pytest.approx(1 / 0.25)


def test_a_slow_step_leaves_the_window_once_it_is_older_than_the_window():
    throughput = Throughput(window=2)
    for step, at in enumerate([0.0, 1.0, 5.0, 6.0, 7.0]):  # step 2 took 4 s
        throughput.update(steps=step, samples=10 * step, time=at)
    assert throughput.compute().samples_per_sec == pytest.approx(20 / 2.0)


def test_model_flops_give_flops_per_sec_and_mfu():
    rates = fed(Throughput(window=4, flops_per_sample=3e9, flops_per_step=1e8, peak_flops=1e12), 4).compute()
    flops = 4 * 32 * 3e9 + 4 * 1e8  # samples x per sample + steps x per step, over 4 steps of 0.5 s
    assert rates.flops_per_sec == pytest.approx(flops / 2.0)
    assert rates.mfu == pytest.approx(flops / 2.0 / 1e12)
    assert rates.as_logs()["tflops_per_sec"] == pytest.approx(flops / 2.0 / 1e12)


def test_a_model_cost_gives_the_training_flops_of_its_steps():
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    cost = nns_callbacks.estimate(model, batch_size=32)
    rates = fed(Throughput(window=3, cost=cost, peak_flops=2e12), 3, batch=32).compute()
    assert rates.flops_per_sec * rates.seconds == pytest.approx(3 * cost.training_flops)
    assert rates.mfu == pytest.approx(3 * cost.training_flops / rates.seconds / 2e12)


@pytest.mark.parametrize("keyword", [{}, {"flops_per_sample": 1e9}])
def test_no_peak_or_no_work_leaves_mfu_out(keyword):
    rates = fed(Throughput(**keyword), 3).compute()
    assert rates.mfu is None
    assert (rates.flops_per_sec is None) == (not keyword)
    assert "mfu" in rates.as_logs() and np.isnan(rates.as_logs()["mfu"])


def test_unknown_samples_give_steps_per_sec_only():
    throughput = Throughput(flops_per_sample=1e9, peak_flops=1e12)
    for step in range(3):
        throughput.update(steps=step, time=float(step))
    rates = throughput.compute()
    assert rates.steps_per_sec == pytest.approx(1.0)
    assert rates.samples_per_sec is None and rates.flops_per_sec is None and rates.mfu is None


@pytest.mark.parametrize("updates", [1, 0])
def test_nothing_to_compute_before_two_updates(updates):
    throughput = Throughput()
    for step in range(updates):
        throughput.update(steps=step, samples=step, time=1.0)
    assert throughput.compute() is None


def test_reset_forgets_the_updates():
    throughput = fed(Throughput(), 3)
    throughput.reset()
    assert throughput.compute() is None
    throughput.update(steps=0, samples=0, time=0.0)
    throughput.update(steps=1, samples=8, time=2.0)
    assert throughput.compute().samples_per_sec == pytest.approx(4.0)


@pytest.mark.parametrize("going_back", [
    {"steps": 1, "samples": 64, "time": 3.0},
    {"steps": 3, "samples": 32, "time": 3.0},
    {"steps": 3, "samples": 96, "time": 1.0},
])
def test_running_totals_that_go_back_are_an_error(going_back):
    throughput = Throughput()
    throughput.update(steps=2, samples=64, time=2.0)
    with pytest.raises(ValueError, match="must not decrease"):
        throughput.update(**going_back)


@pytest.mark.parametrize("arguments, message", [
    ({"window": 0}, "window"),
    ({"window": True}, "window"),
    ({"flops_per_sample": -1.0}, "flops_per_sample"),
    ({"flops_per_step": float("inf")}, "flops_per_step"),
    ({"peak_flops": 0}, "peak_flops"),
    ({"peak_flops": "measure"}, "peak_flops"),
    ({"cost": object(), "flops_per_sample": 1.0}, "not both"),
])
def test_wrong_arguments_are_a_value_error(arguments, message):
    with pytest.raises(ValueError, match=message):
        Throughput(**arguments)


def test_it_imports_no_framework():
    code = ("import sys; from nns_callbacks import Throughput; Throughput().update(steps=0); "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]"
