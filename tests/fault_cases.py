"""Fault-round scenarios for NNSCallback inside ``fit``, run under every backend: ``tests/test_faults.py``
(TensorFlow) and ``tests/jax_backend/test_faults_jax.py`` call them and assert what they return.

Each scenario trains tiny models on a fake clock (``tests.fake_time``: 1 s per training step, 0.5 s per
validation step), so every rate has an exact expected value.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np

from nns_callbacks import NNSCallback
from tests.events import read_events, served
from tests.fake_time import FakeTime, Ticker

RNG = np.random.default_rng(0)


def data(n: int, features: int = 8, outputs: int = 1):
    return RNG.random((n, features), dtype=np.float32), RNG.random((n, outputs), dtype=np.float32)


def fit(model, log_dir, *args, epochs=1, callbacks=(), update_freq="epoch", **kwargs):
    """``model.fit`` with a fresh ``NNSCallback`` (``log_dir``) after a ``Ticker``: (history, callback)."""
    clock = FakeTime()
    callback = kwargs.pop("callback", None) or NNSCallback(log_dir=str(log_dir), update_freq=update_freq,
                                                            peak_flops=1000.0, clock=clock)
    callback._clock = clock
    history = model.fit(*args, epochs=epochs, callbacks=[Ticker(clock), callback, *callbacks], verbose=0, **kwargs)
    return history, callback


def stack(frozen: bool, width: int = 16):
    """Input(8) -> Dense(width) -> Dense(1); the first layer frozen or not."""
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(width, name="base")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(hidden))
    model.get_layer("base").trainable = not frozen
    model.compile("sgd", "mse")
    return model


def fine_tuning_recipe(log_dir):
    """Train the head with the base frozen, unfreeze, recompile, fit again with the same callback; then the same
    callback on another model at the same batch size.  Returns the events and the three phases' cost/histories."""
    x, y = data(128)
    model = stack(frozen=True)
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(log_dir), peak_flops=1000.0, clock=clock)
    phases = []
    for build in (lambda: model, lambda: _unfrozen(model), lambda: stack(frozen=False, width=32)):
        current = build()
        history = current.fit(x, y, batch_size=32, epochs=2, callbacks=[Ticker(clock), callback], verbose=0)
        phases.append((callback.cost.trainable_params, callback.cost.training_flops, history.history))
    return read_events(log_dir), phases


def _unfrozen(model):
    model.get_layer("base").trainable = True
    model.compile("sgd", "mse")
    return model


def varying_batches(log_dir):
    """A generator yielding batches of 32, 7, 50, 1 (twice per epoch), windows of 2 steps, 2 epochs."""
    sizes = [32, 7, 50, 1] * 2

    def batches():
        while True:
            for size in sizes:
                yield data(size)

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    history, _ = fit(model, log_dir, batches(), epochs=2, steps_per_epoch=len(sizes), update_freq=2)
    return read_events(log_dir), history.history, sizes


def unwritable_validation(log_dir):
    """After the first epoch, ``validation`` becomes a file: that run cannot be written, ``train`` still is."""
    x, y = data(96)

    class Block(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            folder = log_dir / "validation"
            nns = next(c for c in self.model_callbacks if isinstance(c, NNSCallback))
            nns.summaries.writers.wait()  # the first epoch's summaries are written (by the writing thread)
            if epoch == 0 and folder.is_dir():
                for path in folder.iterdir():
                    path.unlink()
                folder.rmdir()
                folder.write_text("in the way")

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    block = Block()
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(log_dir), peak_flops=1000.0, clock=clock)
    block.model_callbacks = [callback]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history, _ = fit(model, log_dir, x, y, batch_size=32, epochs=3, validation_data=data(32), callbacks=[block],
                         callback=callback)
    return read_events(log_dir), history.history, [str(w.message) for w in caught]


def two_callbacks_one_log_dir(log_dir):
    """Two NNSCallbacks on one log_dir in one fit."""
    x, y = data(128)
    clock = FakeTime()
    first, second = (NNSCallback(log_dir=str(log_dir), update_freq=1, peak_flops=1000.0, clock=clock) for _ in "ab")
    model = stack(frozen=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=32, epochs=2, callbacks=[Ticker(clock), first, second], verbose=0)
    return served(log_dir), [str(w.message) for w in caught]


def aborted_fit_then_evaluate(log_dir):
    """A fit ended by another callback's exception at the 4th step, then an evaluate with the same callback."""
    x, y = data(256)

    class Explode(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                raise RuntimeError("boom")

    model = stack(frozen=False)
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(log_dir), update_freq=1, peak_flops=1000.0, clock=clock)
    try:
        model.fit(x, y, batch_size=32, epochs=1, callbacks=[Ticker(clock), callback, Explode()], verbose=0)
    except RuntimeError:
        pass
    model.evaluate(x, y, batch_size=32, callbacks=[Ticker(clock), callback], verbose=0)
    return read_events(log_dir)


def foreign_tags_then_fit(log_dir):
    """Another writer's ``epoch_*`` tags in our runs (one at the largest step an event holds), then a fit."""
    from nns_callbacks import event_files
    from nns_callbacks.summary_writer import SummaryWriters

    foreign = SummaryWriters(str(log_dir))
    foreign.scalar("train", "epoch_learning_rate", 0.1, 5000)
    foreign.scalar("train", "epoch_loss", 1.0, 2**63 - 1)
    foreign.close()
    for path in (log_dir / "train").iterdir():  # not ours: no ".nns" suffix
        path.rename(path.with_name(path.name.removesuffix(".nns")))
    del event_files
    x, y = data(64)
    history, _ = fit(stack(frozen=False), log_dir, x, y, batch_size=32, epochs=2, update_freq=1)
    return read_events(log_dir), history.history


def resumed_after_a_crash(log_dir, checkpoint):
    """Train 1 epoch, save, train 2 more (then the process dies); a new process resumes from the save."""
    x, y = data(128)
    model = stack(frozen=False)
    fit(model, log_dir, x, y, batch_size=32, epochs=1, update_freq=2)
    model.save(checkpoint)
    fit(model, log_dir, x, y, batch_size=32, epochs=3, initial_epoch=1, update_freq=2)
    restored = keras.saving.load_model(checkpoint)
    resumed_at = int(restored.optimizer.iterations)
    fit(restored, log_dir, x, y, batch_size=32, epochs=3, initial_epoch=1, update_freq=2)
    return served(log_dir), read_events(log_dir), resumed_at


def empty_fits_then_a_fit(log_dir):
    """fit(epochs=0) twice writes nothing; the fit after them starts the axes at 0."""
    x, y = data(64)
    model = stack(frozen=False)
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(log_dir), update_freq=1, peak_flops=1000.0, clock=clock)
    for _ in range(2):
        model.fit(x, y, batch_size=32, epochs=0, callbacks=[callback], verbose=0)
    empty = read_events(log_dir)
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[Ticker(clock), callback], verbose=0)
    return empty, read_events(log_dir)


def slow_epoch_starts(log_dir):
    """Epochs whose data takes 5 s to start (each step 1 s), with validation: the wall clock's rates."""
    x, y = data(320)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(log_dir), peak_flops=1000.0, clock=clock)
    syncs = _count_state_syncs(model)
    history = model.fit(x, y, batch_size=32, epochs=3, validation_data=data(64), verbose=0,
                        callbacks=[Ticker(clock, step=1.0, startup=5.0, val_step=0.5), callback])
    return read_events(log_dir), history.history, syncs


def _count_state_syncs(model) -> list:
    """Record the JAX trainer's state syncs that had work to do (the device sync a callback's ``self.model`` makes
    in the middle of an epoch): the model's variables were not up to date with the training state."""
    calls = []
    original = getattr(model, "jax_state_sync", None)
    if original is not None:
        def counted():
            if getattr(model, "_jax_state", None) and not getattr(model, "_jax_state_synced", True):
                calls.append(1)
            return original()
        model.jax_state_sync = counted
    return calls
