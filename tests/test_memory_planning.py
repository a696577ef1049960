"""Device memory: the largest batch that fits, the warning before training, measured peaks in TensorBoard.

The device APIs are replaced by fakes: this machine has no accelerator.
"""

import keras
import numpy as np
import pytest

from nns_callbacks import NNSCallback, estimate, max_batch_size, memory
from tests.events import read_events
from tests.test_callback import TickClock


def mlp():
    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Dense(128, activation="relu")(inputs)))
    model.compile("adam", "mse")
    return model


@pytest.mark.parametrize(("text", "expected"), [("80GiB", 80 * 2**30), ("16 GB", 16 * 10**9), ("1024", 1024)])
def test_memory_sizes_read_with_their_units(text, expected):
    assert memory.parse_bytes(text) == expected


def test_a_memory_size_without_a_known_unit_is_an_error():
    with pytest.raises(ValueError, match="80GiB"):
        memory.parse_bytes("80 gigs")


def test_max_batch_size_is_the_exact_boundary_of_a_linear_model():
    model = mlp()
    one, two = estimate(model, batch_size=1).training_bytes, estimate(model, batch_size=2).training_bytes
    per_sample, fixed = two - one, 2 * one - two
    budget = fixed + 37 * per_sample + per_sample // 2  # room for 37.5 samples
    assert max_batch_size(model, budget) == 37
    assert estimate(model, batch_size=37).training_bytes <= budget < estimate(model, batch_size=38).training_bytes
    assert max_batch_size(model, fixed + per_sample - 1) == 0  # not even one sample


def test_max_batch_size_needs_a_memory_size_without_an_accelerator():
    with pytest.raises(ValueError, match="memory_bytes"):
        max_batch_size(mlp())


def test_training_warns_before_the_first_step_when_the_estimate_does_not_fit(monkeypatch):
    model = mlp()
    budget = estimate(model, batch_size=8, optimizer="adam").training_bytes  # batch 8 fits exactly, 32 does not
    monkeypatch.setattr(memory, "device_memory", lambda backend: budget)
    callback = NNSCallback(log_dir=None, peak_flops=1e12, clock=TickClock())
    x, y = np.ones((64, 64), "float32"), np.ones((64, 10), "float32")
    with pytest.warns(UserWarning, match=r"estimated training memory.*exceeds the device.s .*: batch 8 fits"):
        model.fit(x, y, batch_size=32, epochs=1, callbacks=[callback], verbose=0)


def test_measured_peak_memory_is_written_every_epoch_with_its_ratio_to_the_estimate(tmp_path, monkeypatch):
    peaks = iter([1e6, 3e6, 5e6])  # the first read, at the start, only asks whether the device reports a peak
    monkeypatch.setattr(memory, "peak_bytes_in_use", lambda backend: next(peaks))
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1e12, clock=TickClock())
    model = mlp()
    model.fit(np.ones((64, 64), "float32"), np.ones((64, 10), "float32"), batch_size=16, epochs=2,
              callbacks=[callback], verbose=0)
    events = read_events(tmp_path)
    assert events[("train", "epoch_peak_memory_bytes")] == [(0, 3e6), (1, 5e6)]
    estimated = callback.cost.training_bytes
    assert events[("train", "epoch_peak_memory_over_estimate")] == [
        (0, pytest.approx(3e6 / estimated)), (1, pytest.approx(5e6 / estimated))
    ]


def test_a_cpu_reports_no_device_memory_and_no_peak():
    assert memory.device_memory(keras.backend.backend()) is None
    assert memory.peak_bytes_in_use(keras.backend.backend()) is None


def test_the_compiled_figure_needs_the_jax_backend():
    cost = estimate(mlp(), batch_size=4, compiled_memory=True)
    assert cost.compiled_training_bytes is None and "compiled_training_bytes" not in cost.to_dict()


@pytest.mark.parametrize(("update_freq", "peak", "expected"), [
    ("epoch", None, {"throughput per epoch"}),
    (2, None, {"throughput per epoch", "throughput per window (x: training step)"}),
    ("epoch", 1e6, {"throughput per epoch", "memory"}),
])
def test_custom_scalars_hold_only_charts_that_get_data(tmp_path, monkeypatch, update_freq, peak, expected):
    from tensorboard.plugins.custom_scalar import layout_pb2

    monkeypatch.setattr(memory, "peak_bytes_in_use", lambda backend: peak)
    callback = NNSCallback(log_dir=str(tmp_path), update_freq=update_freq, peak_flops=1e12, clock=TickClock())
    mlp().fit(np.ones((32, 64), "float32"), np.ones((32, 10), "float32"), batch_size=16, epochs=1,
              callbacks=[callback], verbose=0)
    [(_, config)] = read_events(tmp_path)[("train", "custom_scalars__config__")]
    layout = layout_pb2.Layout.FromString(config)
    assert {category.title.removeprefix("nns_callbacks: ") for category in layout.category} == expected
