"""NNSCallback on every kind of input, steps_per_execution, partial batches and continuing axes (TF backend).

A fake clock ticks once per batch-end hook, so every pass of n steps spans n - 1 seconds
(timed from its first finished step to its last).
"""

import csv
import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from nns_callbacks import NNSCallback
from tests.events import read_events
from tests.test_callback import TickClock, dense_model

SAMPLES, BATCH = 300, 32  # 10 steps: 9 of 32 and a last one of 12
RNG = np.random.default_rng(0)
X = RNG.random((SAMPLES, 8), dtype=np.float32)
Y = RNG.random((SAMPLES, 4), dtype=np.float32)
EPOCH_RATE = (SAMPLES - BATCH) / 9  # samples after the first step over the 9 s from its end to the last's


def batches():
    return [(X[i:i + BATCH], Y[i:i + BATCH]) for i in range(0, SAMPLES, BATCH)]


def generator():
    while True:
        yield from batches()


class Batches(keras.utils.PyDataset):
    def __len__(self):
        return len(batches())

    def __getitem__(self, index):
        return batches()[index]


def dict_model():
    """Two named inputs, fed as a dict of arrays (how keras-hub tasks are fed)."""
    a, b = keras.Input((5,), name="a"), keras.Input((3,), name="b")
    model = keras.Model({"a": a, "b": b}, keras.layers.Dense(4)(keras.layers.Concatenate()([a, b])))
    model.compile("sgd", "mse")
    return model


INPUTS = {
    "numpy": lambda: ((X, Y), {"batch_size": BATCH}, dense_model()),
    "dict of arrays": lambda: (({"a": X[:, :5], "b": X[:, 5:]}, Y), {"batch_size": BATCH}, dict_model()),
    "generator": lambda: ((generator(),), {"steps_per_epoch": 10}, dense_model()),
    "PyDataset": lambda: ((Batches(),), {}, dense_model()),
    "tf.data": lambda: ((tf.data.Dataset.from_tensor_slices((X, Y)).batch(BATCH),), {}, dense_model()),
    "tf.data, unknown batch": lambda: (
        (tf.data.Dataset.from_tensor_slices((X, Y)).batch(BATCH).filter(lambda x, y: True).repeat(),),
        {"steps_per_epoch": 10},
        dense_model(),
    ),
}


@pytest.mark.parametrize("kind", list(INPUTS))
def test_every_input_kind_gets_exact_samples_per_second(kind):
    args, kwargs, model = INPUTS[kind]()
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, clock=TickClock())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras: shuffle ignored for generators and datasets
        history = model.fit(*args, epochs=2, callbacks=[callback], verbose=0, **kwargs)
    assert history.history["samples_per_sec"] == pytest.approx([EPOCH_RATE] * 2)
    assert history.history["steps_per_sec"] == [1.0, 1.0]
    assert callback.cost.batch_size == BATCH  # the cost panels are for the real batch size


def test_given_batch_size_still_counts_the_smaller_last_batch():
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, batch_size=BATCH, clock=TickClock())
    history = dense_model().fit(X, Y, batch_size=BATCH, epochs=1, callbacks=[callback], verbose=0)
    assert history.history["samples_per_sec"] == pytest.approx([EPOCH_RATE])  # 300 samples, not 320


@pytest.mark.parametrize("spe", [3, 4])
def test_steps_per_execution_counts_exact_steps_and_keeps_the_step_axis_on_iterations(tmp_path, spe):
    model = dense_model(steps_per_execution=spe)
    callback = NNSCallback(log_dir=str(tmp_path), update_freq=spe, peak_flops=1000.0, clock=TickClock())
    history = model.fit(X, Y, batch_size=30, epochs=2, callbacks=[callback], verbose=0)  # 10 steps of 30
    hooks = -(-10 // spe)  # one hook per execution: the first closes after spe steps, the last after step 10
    span_steps, seconds = 10 - spe, hooks - 1
    assert history.history["steps_per_sec"] == pytest.approx([span_steps / seconds] * 2)
    assert history.history["samples_per_sec"] == pytest.approx([30 * span_steps / seconds] * 2)
    windows = [step for step, _ in read_events(tmp_path)[("train", "batch_samples_per_sec")]]
    assert int(model.optimizer.iterations) == 20
    # windows of spe steps from the first hook's step, on the optimizer's step axis: a last
    # execution shorter than spe never counts as a whole one
    assert windows == [epoch * 10 + end for epoch in (0, 1) for end in range(2 * spe, 11, spe)]


def test_a_first_epoch_of_one_step_still_gives_every_rate_key(tmp_path):
    log = tmp_path / "log.csv"
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, clock=TickClock())
    history = dense_model().fit(
        X[:32], Y[:32], batch_size=32, epochs=3, callbacks=[callback, keras.callbacks.CSVLogger(str(log))], verbose=0
    )
    keys = ("samples_per_sec", "steps_per_sec", "tflops_per_sec", "mfu")
    for key in keys:
        assert len(history.history[key]) == 3 and all(math.isnan(v) for v in history.history[key])
    with open(log) as file:
        assert set(keys) <= set(next(csv.reader(file)))


class NoLossTracker(keras.Model):
    """A custom train step that updates no metric: nothing counts the samples."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean((self(x, training=True) - y) ** 2)
        self.optimizer.apply(tape.gradient(loss, self.trainable_variables), self.trainable_variables)
        return {"loss": loss}


def test_unknown_samples_warn_once_naming_the_fix_and_steps_per_second_go_on():
    inputs = keras.Input((8,))
    model = NoLossTracker(inputs, keras.layers.Dense(4)(inputs))
    model.compile("sgd")
    signature = (tf.TensorSpec((None, 8), "float32"), tf.TensorSpec((None, 4), "float32"))
    dataset = tf.data.Dataset.from_generator(lambda: iter(batches()), output_signature=signature).repeat()
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, clock=TickClock())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(dataset, steps_per_epoch=10, epochs=2, callbacks=[callback], verbose=0)
    messages = [str(w.message) for w in caught if "samples per step unknown" in str(w.message)]
    assert len(messages) == 1 and "NNSCallback(batch_size=" in messages[0]
    assert history.history["steps_per_sec"] == [1.0, 1.0]
    assert all(math.isnan(v) for v in history.history["samples_per_sec"])


def no_duplicates(events):
    for (run, tag), points in events.items():
        steps = [step for step, _ in points]
        assert len(steps) == len(set(steps)), (run, tag, steps)


def test_axes_continue_across_callbacks_recompiles_and_evaluations(tmp_path):
    model = dense_model()
    fit = {"x": X[:128], "y": Y[:128], "batch_size": 32, "epochs": 2, "verbose": 0}

    def callback():
        return NNSCallback(log_dir=str(tmp_path), update_freq=2, peak_flops=1000.0, clock=TickClock())

    model.fit(**fit, callbacks=[callback()])  # steps 0..8; windows at 3 and 7; epochs 0, 1
    model.fit(**fit, callbacks=[callback()])  # a new callback on the same log_dir: steps 8..16, epochs 2, 3
    model.compile("sgd", "mse")  # fine-tuning: optimizer.iterations starts again at 0; the axis goes on
    model.fit(**fit, callbacks=[callback()])  # from the last window written, 15: windows at 15 + 3, 15 + 7
    late = callback()
    model.evaluate(X, Y, batch_size=32, callbacks=[late], verbose=0)
    model.evaluate(X, Y, batch_size=32, callbacks=[late], verbose=0)
    model.evaluate(X, Y, batch_size=32, callbacks=[callback()], verbose=0)
    events = read_events(tmp_path)
    no_duplicates(events)
    assert [step for step, _ in events[("train", "epoch_samples_per_sec")]] == [0, 1, 2, 3, 4, 5]
    assert [step for step, _ in events[("train", "batch_samples_per_sec")]] == [3, 7, 11, 15, 18, 22]
    assert [step for step, _ in events[("train", "cost/params")]] == [0, 8, 15]
    assert len(events[("validation", "evaluation_samples_per_sec")]) == 3


def test_cost_panels_wait_until_the_data_tells_the_batch_size(tmp_path):
    signature = (tf.TensorSpec((None, 8), "float32"), tf.TensorSpec((None, 4), "float32"))
    full = [(X[i:i + BATCH], Y[i:i + BATCH]) for i in range(0, 9 * BATCH, BATCH)]  # 9 full batches
    dataset = tf.data.Dataset.from_generator(lambda: iter(full), output_signature=signature).repeat()
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1000.0, clock=TickClock())
    history = dense_model().fit(dataset, steps_per_epoch=9, epochs=2, callbacks=[callback], verbose=0)
    # nothing tells the batch size before the first epoch ends; the loss tracker's count does then
    assert read_events(tmp_path)[("train", "cost/batch_size")] == [(0, float(BATCH))]
    assert history.history["samples_per_sec"] == pytest.approx([BATCH * 8 / 8] * 2)


def test_a_custom_loop_without_batch_size_is_told_what_was_not_found():
    callback = NNSCallback(log_dir=None, update_freq=2, peak_flops=1000.0, clock=TickClock())
    callback.set_model(dense_model())
    callback.set_params({"epochs": 1, "steps": 4, "verbose": 0})
    with pytest.warns(UserWarning, match="could not find the data of the running fit"):
        callback.on_train_begin()
