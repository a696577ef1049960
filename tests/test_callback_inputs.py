"""NNSCallback on every kind of input, steps_per_execution, partial batches and continuing axes (TF backend).

A fake clock moves 1 s per training step (``tests.fake_time``), so an epoch of n steps spans n seconds.
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
from tests.fake_time import FakeTime, Ticker
from tests.test_callback import TickClock, dense_model

SAMPLES, BATCH = 300, 32  # 10 steps: 9 of 32 and a last one of 12
RNG = np.random.default_rng(0)
X = RNG.random((SAMPLES, 8), dtype=np.float32)
Y = RNG.random((SAMPLES, 4), dtype=np.float32)
EPOCH_RATE = SAMPLES / 10  # 300 samples in the 10 s of the epoch


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
    clock = FakeTime()
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, clock=clock)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras: shuffle ignored for generators and datasets
        history = model.fit(*args, epochs=2, callbacks=[Ticker(clock), callback], verbose=0, **kwargs)
    assert history.history["samples_per_sec"] == pytest.approx([EPOCH_RATE] * 2)
    assert history.history["steps_per_sec"] == [1.0, 1.0]
    assert callback.cost.batch_size == BATCH  # the cost panels are for the real batch size


def test_given_batch_size_still_counts_the_smaller_last_batch():
    clock = FakeTime()
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, batch_size=BATCH, clock=clock)
    history = dense_model().fit(X, Y, batch_size=BATCH, epochs=1, callbacks=[Ticker(clock), callback], verbose=0)
    assert history.history["samples_per_sec"] == pytest.approx([EPOCH_RATE])  # 300 samples, not 320


@pytest.mark.parametrize("spe", [3, 4])
def test_steps_per_execution_counts_exact_steps_and_keeps_the_step_axis_on_iterations(tmp_path, spe):
    model = dense_model(steps_per_execution=spe)
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(tmp_path), update_freq=spe, peak_flops=1000.0, clock=clock)
    history = model.fit(X, Y, batch_size=30, epochs=2, callbacks=[Ticker(clock), callback], verbose=0)  # 10 of 30
    executions = -(-10 // spe)  # 1 s each; one hook per execution, the last one after step 10
    assert history.history["steps_per_sec"] == pytest.approx([10 / executions] * 2)
    assert history.history["samples_per_sec"] == pytest.approx([300 / executions] * 2)
    windows = [step for step, _ in read_events(tmp_path)[("train", "batch_samples_per_sec")]]
    assert int(model.optimizer.iterations) == 20
    # windows of spe steps from the first hook's step, on the optimizer's step axis: a last
    # execution shorter than spe never counts as a whole one
    assert windows == [epoch * 10 + end for epoch in (0, 1) for end in range(2 * spe, 11, spe)]


def test_epochs_of_one_step_give_every_rate_key_from_the_wall_clock(tmp_path):
    log = tmp_path / "log.csv"
    clock = FakeTime()
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, clock=clock)
    history = dense_model().fit(X[:32], Y[:32], batch_size=32, epochs=3, verbose=0,
                                callbacks=[Ticker(clock), callback, keras.callbacks.CSVLogger(str(log))])
    keys = ("samples_per_sec", "steps_per_sec", "tflops_per_sec", "mfu")
    for key in keys:
        assert len(history.history[key]) == 3  # the same keys in every epoch
    # one step of 32 in 1 s; the first epoch's compilation cannot be told from its one step: not taken out
    assert history.history["samples_per_sec"] == [32.0, 32.0, 32.0]
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
    clock = FakeTime()
    callback = NNSCallback(log_dir=None, peak_flops=1000.0, clock=clock)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(dataset, steps_per_epoch=10, epochs=2, callbacks=[Ticker(clock), callback], verbose=0)
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

    clock = FakeTime()

    def callbacks():
        return [Ticker(clock), NNSCallback(log_dir=str(tmp_path), update_freq=2, peak_flops=1000.0, clock=clock)]

    model.fit(**fit, callbacks=callbacks())  # steps 0..8; windows at 3 and 7; epochs 0, 1
    model.fit(**fit, callbacks=callbacks())  # a new callback on the same log_dir: steps 8..16, epochs 2, 3
    model.compile("sgd", "mse")  # fine-tuning: optimizer.iterations starts again at 0; the axis goes on
    model.fit(**fit, callbacks=callbacks())  # after the 16 steps on disk: windows at 16 + 3, 16 + 7
    late = callbacks()
    model.evaluate(X, Y, batch_size=32, callbacks=late, verbose=0)
    model.evaluate(X, Y, batch_size=32, callbacks=late, verbose=0)
    model.evaluate(X, Y, batch_size=32, callbacks=callbacks(), verbose=0)
    events = read_events(tmp_path)
    no_duplicates(events)
    assert [step for step, _ in events[("train", "epoch_samples_per_sec")]] == [0, 1, 2, 3, 4, 5]
    assert [step for step, _ in events[("train", "batch_samples_per_sec")]] == [3, 7, 11, 15, 19, 23]
    assert [step for step, _ in events[("train", "cost/params")]] == [0, 8, 16]  # a new callback, a new optimizer
    # evaluations where the axis stands, each after the last
    assert [step for step, _ in events[("validation", "evaluation_samples_per_sec")]] == [23, 24, 25]


def test_cost_panels_wait_until_the_data_tells_the_batch_size(tmp_path):
    signature = (tf.TensorSpec((None, 8), "float32"), tf.TensorSpec((None, 4), "float32"))
    full = [(X[i:i + BATCH], Y[i:i + BATCH]) for i in range(0, 9 * BATCH, BATCH)]  # 9 full batches
    dataset = tf.data.Dataset.from_generator(lambda: iter(full), output_signature=signature).repeat()
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1000.0, clock=clock)
    history = dense_model().fit(dataset, steps_per_epoch=9, epochs=2, callbacks=[Ticker(clock), callback], verbose=0)
    # nothing tells the batch size before the first epoch ends; the loss tracker's count does then
    assert read_events(tmp_path)[("train", "cost/batch_size")] == [(0, float(BATCH))]
    assert history.history["samples_per_sec"] == pytest.approx([BATCH] * 2)
    assert history.history["tflops_per_sec"][0] > 0  # the first epoch already has its FLOP/s


def test_a_custom_loop_without_batch_size_is_told_what_was_not_found():
    callback = NNSCallback(log_dir=None, update_freq=2, peak_flops=1000.0, clock=TickClock())
    callback.set_model(dense_model())
    callback.set_params({"epochs": 1, "steps": 4, "verbose": 0})
    with pytest.warns(UserWarning, match="could not find the data of the running fit"):
        callback.on_train_begin()
