"""A fake clock that the test moves, and a callback that moves it as a run's steps would take time.

``Ticker`` goes before ``NNSCallback`` in the callback list (Keras calls callbacks in order): each
training step takes ``step`` seconds (moved in its batch-begin hook, so the step's end is seen after it),
the first step of each epoch ``startup`` seconds more (a data iterator starting), each validation
step ``val_step`` seconds.  So an epoch of n steps spans ``startup + n * step`` seconds of fake time,
from its begin hook to its last training step.
"""

import keras


class FakeTime:
    """A clock that moves only when told: ``advance(seconds)``."""

    def __init__(self, start: float = 100.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Ticker(keras.callbacks.Callback):
    """Moves a ``FakeTime`` as the steps of a run take time."""

    def __init__(self, clock: FakeTime, step: float = 1.0, startup: float = 0.0, val_step: float = 0.5):
        super().__init__()
        self.clock, self.step, self.startup, self.val_step = clock, step, startup, val_step

    def on_train_batch_begin(self, batch, logs=None):
        self.clock.advance(self.step + (self.startup if batch == 0 else 0.0))

    def on_test_batch_begin(self, batch, logs=None):
        self.clock.advance(self.val_step)

    def on_predict_batch_begin(self, batch, logs=None):
        self.clock.advance(self.val_step)
