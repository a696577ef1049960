"""NNSCallback under the JAX backend: asynchronous dispatch stays on, panels and rates appear."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from nns_callbacks import NNSCallback
from tests.events import read_events


def model():
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    built = keras.Model(inputs, keras.layers.Dense(4)(hidden))
    built.compile("adam", "mse")
    return built


def test_callback_keeps_asynchronous_batch_dispatch():
    callbacks = keras.callbacks.CallbackList([NNSCallback(log_dir=None)], model=model())
    assert callbacks._async_train and callbacks._async_test and callbacks._async_predict


def test_fit_under_jax_writes_panels_and_rates(tmp_path):
    # 24 training and 8 validation steps per epoch: on JAX the batch-end hooks run in worker threads
    # and may run out of order; a pass of two steps whose hooks swap has no measurable span.
    x, y = np.ones((1024, 8), "float32"), np.ones((1024, 4), "float32")
    callback = NNSCallback(log_dir=str(tmp_path), update_freq=4, peak_flops=1e12)
    history = model().fit(x, y, batch_size=32, epochs=2, validation_split=0.25, callbacks=[callback], verbose=0)
    for key in ("samples_per_sec", "tflops_per_sec", "mfu", "val_samples_per_sec"):
        assert len(history.history[key]) == 2 and all(v > 0 for v in history.history[key])
    # 768 training samples in 24 full steps of 32: every step timed holds 32 samples
    assert history.history["samples_per_sec"] == pytest.approx([32 * s for s in history.history["steps_per_sec"]])
    # the MFU is the achieved FLOP/s over the 1e12 peak given: TFLOP/s x 1e12 / 1e12
    assert history.history["mfu"] == pytest.approx(history.history["tflops_per_sec"])
    events = read_events(tmp_path)
    assert {("train", "cost/params"), ("train", "batch_tflops_per_sec"), ("validation", "epoch_mfu")} <= set(events)
    assert events[("train", "cost/params")] == [(0, 16 * 8 + 16 + 16 * 4 + 4)]


def test_measuring_without_log_dir_needs_no_tensorflow():
    script = textwrap.dedent(
        """
        import sys, numpy as np, keras
        from nns_callbacks import NNSCallback, estimate
        inputs = keras.Input((8,))
        model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
        model.compile("sgd", "mse")
        estimate(model, batch_size=4)
        callback = NNSCallback(log_dir=None, peak_flops=1e12)
        callback.set_model(model)
        callback.set_params({"epochs": 1, "steps": 2})
        callback.on_train_begin()
        print("tensorflow" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr[-2000:]
