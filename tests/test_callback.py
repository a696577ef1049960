"""NNSCallback under the TensorFlow backend: arguments, fake-clock timing, event files read back."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest

from nns_callbacks import NNSCallback
from nns_callbacks.tensorboard_plugin.metadata import parse_document
from tests.events import read_events
from tests.fake_time import FakeTime, Ticker

# Dense(4) on 8 features, SGD without momentum (2 FLOPs per parameter update, no state):
# forward per sample 2*8*4 MACs-as-FLOPs + 4 bias = 68; backward: weight gradient 2*8*4 + 4 bias = 68,
# no input gradient (first layer); update 2 * 36 parameters per step.
FORWARD_PER_SAMPLE = 2 * 8 * 4 + 4
UPDATE_PER_STEP = 2 * 36


def training_tflops(samples, steps, seconds):
    """TFLOP/s of ``samples`` in ``steps`` training steps over ``seconds``: forward, backward, updates."""
    return (samples * 2 * FORWARD_PER_SAMPLE + steps * UPDATE_PER_STEP) / seconds / 1e12


class TickClock:
    """A clock that moves on by one second at every reading."""

    def __init__(self, start=0.0):
        self.now = start

    def __call__(self):
        self.now += 1.0
        return self.now


def dense_model(steps_per_execution=1):
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    return model


def data(n):
    rng = np.random.default_rng(0)
    return rng.random((n, 8), dtype=np.float32), rng.random((n, 4), dtype=np.float32)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"update_freq": 0}, "update_freq"),
        ({"update_freq": "batch"}, "update_freq"),
        ({"update_freq": True}, "update_freq"),
        ({"peak_flops": -1}, "peak_flops"),
        ({"peak_flops": "fast"}, "peak_flops"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"top_layers": 0}, "top_layers"),
        ({"memory_bandwidth": 0}, "memory_bandwidth"),
        ({"memory_bandwidth": "fast"}, "memory_bandwidth"),
        ({"memory_bandwidth": float("inf")}, "memory_bandwidth"),
        ({"memory_bandwidth": True}, "memory_bandwidth"),
    ],
)
def test_wrong_arguments_raise_at_construction(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        NNSCallback(log_dir=str(tmp_path), **kwargs)


def test_unwritable_log_dir_is_an_error_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="cannot be written"):
        NNSCallback(log_dir=str(blocker / "logs"))


def test_windows_from_direct_hook_calls_with_a_fake_clock(tmp_path):
    clock = FakeTime(0.0)
    callback = NNSCallback(log_dir=str(tmp_path), update_freq=2, peak_flops=1000.0, batch_size=16, clock=clock)
    callback.set_model(dense_model())
    callback.set_params({"epochs": 1, "steps": 5, "verbose": 0})
    callback.on_train_begin()
    callback.on_epoch_begin(0)  # t = 0
    batch_logs = []
    for batch in range(5):  # the first step ends at t = 3 (2 s of start-up), the others at t = 4, 5, 6, 7
        clock.advance(3.0 if batch == 0 else 1.0)
        logs = {"loss": 1.0}
        callback.on_train_batch_end(batch, logs)
        batch_logs.append(logs)
    epoch_logs = {"loss": 1.0}
    callback.on_epoch_end(0, epoch_logs)
    callback.on_train_end()
    # the epoch as the wall clock sees it: 5 steps of 16 in 7 s
    tflops = training_tflops(80, 5, 7.0)
    assert epoch_logs == pytest.approx(
        {"loss": 1.0, "samples_per_sec": 80 / 7, "steps_per_sec": 5 / 7, "tflops_per_sec": tflops, "mfu": tflops * 1e9}
    )
    # windows from the first step's end: steps 1 -> 3 and 3 -> 5, 32 samples in 2 s each; rates only where one closes
    assert [sorted(logs) for logs in batch_logs] == [["loss"], ["loss"], sorted(epoch_logs), ["loss"], sorted(epoch_logs)]
    assert batch_logs[2]["samples_per_sec"] == 16.0
    events = read_events(tmp_path)
    assert events[("train", "batch_samples_per_sec")] == [(3, 16.0), (5, 16.0)]
    assert events[("train", "epoch_mfu")] == [(0, pytest.approx(tflops * 1e9, rel=1e-6))]
    # where the time went: 64 samples in the 4 s after the first step; that step's 3 s less a steady 1 s
    assert events[("train", "epoch_steady_samples_per_sec")] == [(0, 16.0)]
    assert events[("train", "epoch_startup_seconds")] == [(0, 2.0)]


COST_TAGS = {
    "cost/params", "cost/trainable_params", "cost/batch_size", "cost/forward_macs_per_sample",
    "cost/forward_flops_per_sample", "cost/training_flops_per_sample", "cost/forward_flops_per_step",
    "cost/training_flops_per_step", "cost/memory/weight_bytes", "cost/memory/gradient_bytes",
    "cost/memory/optimizer_bytes", "cost/memory/activation_bytes", "cost/memory/training_bytes",
    "cost/peak_flops_per_sec", "cost/layers", "cost/notes", "cost/top_layers", "custom_scalars__config__",
    "cost/model_flops_per_step", "nns/cost", "nns/run", "cost/training_bytes_moved_per_step",
}
RATE_TAGS = {"samples_per_sec", "steps_per_sec", "tflops_per_sec", "mfu"}
TIME_TAGS = {"steady_samples_per_sec", "startup_seconds", "compile_seconds"}


def test_fit_writes_exactly_the_expected_panels_and_values(tmp_path):
    x, y = data(100)  # 4 steps of 32, the last one 4 samples
    val = data(40)  # 2 steps: 32, then 8
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(tmp_path), update_freq=2, peak_flops=1000.0, clock=clock)
    history = dense_model().fit(x, y, batch_size=32, epochs=2, validation_data=val, callbacks=[Ticker(clock), callback],
                                verbose=0)
    events = read_events(tmp_path)
    expected = {("train", tag) for tag in COST_TAGS}
    expected |= {("train", f"{kind}_{tag}") for kind in ("batch", "epoch") for tag in RATE_TAGS}
    expected |= {(run, f"epoch_{tag}") for run in ("train", "validation") for tag in RATE_TAGS | TIME_TAGS}
    assert set(events) == expected

    # Each training step takes 1 s, each validation step 0.5 s.  Epoch 0: 100 samples in 4 s, from its begin
    # to its last training step; the window from step 1 closes at step 3 (+64 samples in 2 s).  Validation:
    # 40 samples in 1 s.  Epoch 1 alike, its window at training step 4 + 3 = 7.
    assert events[("train", "batch_samples_per_sec")] == [(3, 32.0), (7, 32.0)]
    assert events[("train", "epoch_samples_per_sec")] == [(0, 25.0), (1, 25.0)]
    tflops = training_tflops(100, 4, 4.0)
    assert events[("train", "epoch_tflops_per_sec")] == [(epoch, pytest.approx(tflops, rel=1e-6)) for epoch in (0, 1)]
    val_tflops = 40.0 * FORWARD_PER_SAMPLE / 1e12
    assert events[("validation", "epoch_tflops_per_sec")] == [(0, pytest.approx(val_tflops)), (1, pytest.approx(val_tflops))]
    assert history.history["samples_per_sec"] == pytest.approx([25.0, 25.0])
    assert history.history["val_mfu"] == pytest.approx([val_tflops * 1e9] * 2)
    # the first step took no longer than the others: no start-up, nothing compiled beyond a step's time
    assert events[("train", "epoch_compile_seconds")] == [(0, 0.0), (1, 0.0)]
    assert events[("train", "epoch_steady_samples_per_sec")] == [(e, pytest.approx(68 / 3)) for e in (0, 1)]

    assert events[("train", "cost/params")] == [(0, 36.0)]
    assert events[("train", "cost/training_flops_per_step")] == [(0, 32 * 2 * FORWARD_PER_SAMPLE + UPDATE_PER_STEP)]
    assert events[("train", "cost/model_flops_per_step")] == events[("train", "cost/training_flops_per_step")]
    assert events[("train", "cost/peak_flops_per_sec")] == [(0, 1000.0)]
    assert "| Dense |" in events[("train", "cost/layers")][0][1]
    assert events[("train", "cost/top_layers")][0][1].startswith(b"\x89PNG")

    [(step, document)] = events[("train", "nns/cost")]  # what the Cost tab shows
    document = parse_document(document)
    assert (step, document["params"], document["batch_size"]) == (0, 36, 32)
    assert document["training_flops"] == 32 * 2 * FORWARD_PER_SAMPLE + UPDATE_PER_STEP
    assert document["peak"]["flops_per_sec"] == 1000.0
    assert [row["type"] for row in document["layers"]] == ["Dense"]
    states = [parse_document(doc)["state"] for _, doc in events[("train", "nns/run")]]
    assert states == ["running", "finished"]


# The roofline of dense_model at batch 32 (float32, SGD): forward reads x (32 x 8 x 4 B = 1024) and the weights
# (36 x 4 B = 144) and writes y (32 x 4 x 4 B = 512): 1680 B; backward (no input gradient) reads dy (512) and the
# kept x (1024) and writes the weight gradient (144): 1680 B; SGD reads weights and gradients, writes weights:
# 3 x 144 = 432 B.  At 1000 FLOP/s and 100 B/s every pass is memory-bound.
ROOFLINE_SECONDS = 1680 / 100 + 1680 / 100 + 432 / 100  # 37.92


def test_fit_writes_the_roofline_beside_mfu(tmp_path):
    x, y = data(100)
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1000.0, memory_bandwidth=100.0, clock=clock)
    dense_model().fit(x, y, batch_size=32, epochs=2, callbacks=[Ticker(clock), callback], verbose=0)
    events = read_events(tmp_path)
    assert events[("train", "epoch_roofline_step_seconds")] == [(e, pytest.approx(ROOFLINE_SECONDS)) for e in (0, 1)]
    steady_step = 32 / (68 / 3)  # 68 samples in the 3 s after the first step: a batch of 32 every 1.41 s
    fraction = ROOFLINE_SECONDS / steady_step
    assert events[("train", "epoch_roofline_fraction")] == [(e, pytest.approx(fraction)) for e in (0, 1)]
    assert events[("train", "cost/memory_bandwidth_bytes_per_sec")] == [(0, 100.0)]
    [(_, document)] = events[("train", "nns/cost")]
    roofline = parse_document(document)["roofline"]
    assert roofline["step_seconds"] == pytest.approx(ROOFLINE_SECONDS)
    assert roofline["ridge_point"] == 1000.0 / 100.0
    assert [point["bound"] for point in roofline["points"]] == ["memory"]


@pytest.mark.parametrize(("peak", "bandwidth"), [(1000.0, None), (None, 100.0)])
def test_roofline_left_out_where_the_peak_or_the_bandwidth_is_unknown(tmp_path, peak, bandwidth):
    x, y = data(64)
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=peak, memory_bandwidth=bandwidth, clock=TickClock())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dense_model().fit(x, y, batch_size=32, epochs=2, callbacks=[callback], verbose=0)
    events = read_events(tmp_path)
    assert not {tag for _, tag in events if "roofline" in tag}  # left out, not zero
    messages = [str(w.message) for w in caught if "roofline" in str(w.message)]
    assert len(messages) == (1 if bandwidth is None else 0)  # no bandwidth: said once; no peak: MFU's warning says it


def test_steps_per_execution_counts_every_step(tmp_path):
    x, y = data(100)
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(tmp_path), update_freq=2, peak_flops=1000.0, clock=clock)
    logs = dense_model(steps_per_execution=2).fit(x, y, batch_size=32, epochs=1, callbacks=[Ticker(clock), callback],
                                                  verbose=0)
    # one hook per execution of 2 steps, 1 s each: steps 2 (opens) and 4: 100 - 64 = 36 samples in 1 s
    assert read_events(tmp_path)[("train", "batch_samples_per_sec")] == [(4, 36.0)]
    assert logs.history["samples_per_sec"] == [50.0]  # 100 samples in 2 s


def test_fit_again_continues_steps_and_writes_the_cost_only_where_it_changed(tmp_path):
    x, y = data(128)
    model = dense_model()
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(tmp_path), update_freq=2, peak_flops=1000.0, clock=clock)
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[Ticker(clock), callback], verbose=0)
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[Ticker(clock), callback], verbose=0)
    events = read_events(tmp_path)
    assert [step for step, _ in events[("train", "batch_samples_per_sec")]] == [3, 7]  # = optimizer.iterations
    assert [step for step, _ in events[("train", "cost/params")]] == [0]  # the same cost: not written again
    assert [step for step, _ in events[("train", "epoch_samples_per_sec")]] == [0, 1]  # epoch 0 again: shifted


@pytest.mark.parametrize("stopper", [keras.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=0)])
def test_early_stopping_still_flushes_summaries(tmp_path, stopper):
    x, y = data(64)
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1000.0, clock=TickClock())
    history = dense_model().fit(x, y, batch_size=16, epochs=10, callbacks=[callback, stopper], verbose=0)
    assert len(history.epoch) == 2  # the first epoch sets the best loss, the second stops
    assert len(read_events(tmp_path)[("train", "epoch_samples_per_sec")]) == 2


class Interrupt(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            raise KeyboardInterrupt


def test_keyboard_interrupt_leaves_the_cost_panels_on_disk(tmp_path):
    x, y = data(128)
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1000.0)
    with pytest.raises(KeyboardInterrupt):
        dense_model().fit(x, y, batch_size=16, epochs=1, callbacks=[callback, Interrupt()], verbose=0)
    assert ("train", "cost/params") in read_events(tmp_path)


def sequence_model():
    inputs = keras.Input((None, 4))
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(6)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(pooled))
    model.compile("sgd", "mse")
    return model


def test_estimation_trouble_is_a_warning_and_training_goes_on():
    x, y = np.ones((32, 5, 4), "float32"), np.ones((32, 1), "float32")
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, clock=TickClock())
    with pytest.warns(UserWarning, match="could not estimate"):
        history = sequence_model().fit(x, y, batch_size=8, epochs=1, callbacks=[callback], verbose=0)
    assert "samples_per_sec" in history.history and "tflops_per_sec" not in history.history


def test_input_shape_lets_variable_length_models_be_costed():
    x, y = np.ones((32, 5, 4), "float32"), np.ones((32, 1), "float32")
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, input_shape=(5, 4), clock=TickClock())
    history = sequence_model().fit(x, y, batch_size=8, epochs=1, callbacks=[callback], verbose=0)
    assert callback.cost.batch_size == 8 and "tflops_per_sec" in history.history


def test_unknown_peak_warns_once_and_leaves_mfu_out():
    x, y = data(64)
    callback = NNSCallback(log_dir=None, clock=TickClock())
    model = dense_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=16, epochs=1, callbacks=[callback], verbose=0)
        history = model.fit(x, y, batch_size=16, epochs=1, callbacks=[callback], verbose=0)
    assert sum("MFU" in str(w.message) for w in caught) == 1
    assert "tflops_per_sec" in history.history and "mfu" not in history.history


def test_log_dir_none_measures_without_writing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = data(64)
    history = dense_model().fit(x, y, batch_size=16, epochs=1, callbacks=[NNSCallback(log_dir=None)], verbose=0)
    assert "samples_per_sec" in history.history and list(tmp_path.iterdir()) == []


def test_evaluate_and_predict_report_forward_throughput(tmp_path):
    x, y = data(96)
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1000.0, clock=clock)
    model = dense_model()
    ticker = Ticker(clock, val_step=0.5)
    model.evaluate(x, y, batch_size=32, callbacks=[ticker, callback], verbose=0)
    model.predict(x, batch_size=32, callbacks=[ticker, callback], verbose=0)
    events = read_events(tmp_path)
    # 3 steps of 32, 0.5 s each: 96 samples in 1.5 s, forward FLOPs only
    assert events[("validation", "evaluation_tflops_per_sec")] == [(0, pytest.approx(64.0 * FORWARD_PER_SAMPLE / 1e12))]
    assert events[("validation", "prediction_samples_per_sec")] == [(0, 64.0)]


MIRRORED = textwrap.dedent(
    """
    import json, numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from nns_callbacks import NNSCallback
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        inputs = keras.Input((8,))
        model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
        model.compile("sgd", "mse")
    callback = NNSCallback(log_dir=None, peak_flops=1000.0)
    history = model.fit(np.ones((128, 8), "float32"), np.ones((128, 4), "float32"), batch_size=32,
                        epochs=1, callbacks=[callback], verbose=0)
    print(json.dumps({"devices": callback.peak.devices, "peak": callback.peak.flops_per_sec,
                      "batch": callback.cost.batch_size, "keys": sorted(history.history)}))
    """
)


def test_mirrored_strategy_uses_global_batch_and_every_replica():
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", MIRRORED], env=env, cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    keys = ["loss", "mfu", "samples_per_sec", "steps_per_sec", "tflops_per_sec"]
    assert report == {"devices": 2, "peak": 2000.0, "batch": 32, "keys": keys}


@pytest.mark.parametrize("keras_update_freq", ["epoch", 2])
def test_sharing_log_dir_with_keras_tensorboard_writes_each_tag_once(tmp_path, keras_update_freq):
    x, y = data(128)
    clock = FakeTime()
    ours = NNSCallback(log_dir=str(tmp_path), update_freq=2, peak_flops=1000.0, clock=clock)
    theirs = keras.callbacks.TensorBoard(log_dir=str(tmp_path), update_freq=keras_update_freq)
    dense_model().fit(x, y, batch_size=32, epochs=2, validation_data=data(64), callbacks=[Ticker(clock), ours, theirs],
                      verbose=0)
    events = read_events(tmp_path)
    for (run, tag), points in events.items():
        steps = [step for step, _ in points]
        assert len(steps) == len(set(steps)), (run, tag, steps)
    # Keras's callback writes the rates NNSCallback put into the logs: epoch 0 of training,
    # 4 steps of 32 in 4 s
    assert events[("train", "epoch_samples_per_sec")][0] == (0, 32.0)
    assert ("validation", "epoch_mfu") in events and ("train", "cost/params") in events


def test_an_mfu_above_100_percent_is_never_written_silently():
    x, y = data(64)
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, clock=TickClock())  # far below what any run achieves
    with pytest.warns(UserWarning, match=r"MFU \d+% above 100%: the peak \(peak_flops argument: 1e\+03 FLOP/s"):
        history = dense_model().fit(x, y, batch_size=16, epochs=2, callbacks=[callback], verbose=0)
    assert min(history.history["mfu"]) > 1


def test_an_mfu_within_the_peak_says_nothing_of_it():
    x, y = data(64)
    callback = NNSCallback(log_dir=None, peak_flops=1e18, clock=TickClock())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dense_model().fit(x, y, batch_size=16, epochs=1, callbacks=[callback], verbose=0)
    assert not [w for w in caught if "above 100%" in str(w.message)]


def test_a_failed_bandwidth_measurement_leaves_the_roofline_out_and_training_goes_on(tmp_path, monkeypatch):
    from nns_callbacks import bandwidth

    def broken(*args, **kwargs):
        raise RuntimeError("no timer here")

    monkeypatch.setattr(bandwidth, "resolve_bandwidth", broken)
    x, y = data(64)
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1000.0, memory_bandwidth="measure", clock=TickClock())
    with pytest.warns(UserWarning, match="roofline_step_seconds and roofline_fraction are left out.*no timer here"):
        history = dense_model().fit(x, y, batch_size=32, epochs=1, callbacks=[callback], verbose=0)
    assert history.history["samples_per_sec"]
    assert not {tag for _, tag in read_events(tmp_path) if "roofline" in tag}
