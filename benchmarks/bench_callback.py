"""NNSCallback's accuracy and cost, measured side by side, on the TensorFlow, JAX and torch backends.

Usage: python benchmarks/bench_callback.py [--backends tensorflow,jax,torch] [--repeats 5] [--steps 30]
       [--epochs 4] [--width 64] [--batch 32] [--input numpy|generator|tf.data]

(a) Accuracy: each epoch's ``samples_per_sec`` against the wall clock's: the epoch's samples over the time
    from its begin to its last training step, with the device synchronised at both ends (a weight read back
    from the device), for every epoch after the first (which compiles); and the steady-state rate against
    the same span less its start-up.
(b) Cost: the wall time inside the callback's batch and epoch hooks, per step, with ``update_freq="epoch"``
    (without and with a log directory) and with ``update_freq=1`` writing every step's window, less the
    timer's own cost (the same timing around a bare ``keras.callbacks.Callback``'s hooks, in the same fits);
    and ``fit`` with and without the callback, interleaved, medians.
Each backend runs in its own process (Keras fixes its backend per process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _worker(args) -> dict:
    import keras
    import numpy as np

    from nns_callbacks import NNSCallback

    def timed(base):
        """``base`` adding up the wall time inside its batch and epoch hooks (``Timed.seconds``)."""

        class Timed(base):
            seconds = 0.0
            async_safe = True

            def on_train_batch_end(self, batch, logs=None):
                start = time.perf_counter()
                super().on_train_batch_end(batch, logs)
                Timed.seconds += time.perf_counter() - start

            def on_epoch_begin(self, epoch, logs=None):
                start = time.perf_counter()
                super().on_epoch_begin(epoch, logs)
                Timed.seconds += time.perf_counter() - start

            def on_epoch_end(self, epoch, logs=None):
                start = time.perf_counter()
                super().on_epoch_end(epoch, logs)
                Timed.seconds += time.perf_counter() - start

        return Timed

    Timed, Bare, TimedKerasTensorBoard = (timed(NNSCallback), timed(keras.callbacks.Callback),
                                          timed(keras.callbacks.TensorBoard))

    class WallClock(keras.callbacks.Callback):
        """Each epoch's wall time from its begin to its last training step, the device synchronised at both ends;
        placed last, so that its end follows every other callback's epoch-end work."""

        def on_epoch_begin(self, epoch, logs=None):
            _sync(self.model)
            self.begin = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            _sync(self.model)
            self.spans.append(time.perf_counter() - self.begin)

    def _sync(model):
        keras.ops.convert_to_numpy(model.trainable_weights[0].value)

    inputs = keras.Input((args.width,))
    hidden = inputs
    for _ in range(4):
        hidden = keras.layers.Dense(args.width, activation="relu")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(10)(hidden))
    model.compile(keras.optimizers.SGD(1e-4), "mse")
    rng = np.random.default_rng(0)
    samples = args.batch * args.steps
    x = rng.random((samples, args.width), dtype=np.float32)
    y = rng.random((samples, 10), dtype=np.float32)

    def feed():
        if args.input == "generator":
            def batches():
                while True:
                    for i in range(0, samples, args.batch):
                        yield x[i:i + args.batch], y[i:i + args.batch]

            return (batches(),), {"steps_per_epoch": args.steps}
        if args.input == "tf.data":
            import tensorflow as tf

            data = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch).filter(lambda a, b: True)
            return (data,), {}
        return (x, y), {"batch_size": args.batch}

    def fit(callbacks):
        data, options = feed()
        start = time.perf_counter()
        history = model.fit(*data, **options, epochs=args.epochs, callbacks=callbacks, verbose=0, shuffle=False)
        return time.perf_counter() - start, history.history

    fit([])  # compile
    ratios, plain, with_cb = [], [], []
    hooks = {"epoch": [], "epoch_writing": [], "every_step_writing": [], "keras_tensorboard": [], "timer": []}
    steps = args.steps * args.epochs

    def hook_us(kind, callback, extra=()):
        type(callback).seconds = 0.0
        result = fit([callback, *extra])
        hooks[kind].append(type(callback).seconds / steps * 1e6)
        return result

    for _ in range(args.repeats):
        clock = WallClock()
        clock.spans = []
        _, history = hook_us("epoch", Timed(log_dir=None, peak_flops=1e12), [clock])
        truth = [samples / span for span in clock.spans]
        ratios += [r / t for r, t in zip(history["samples_per_sec"][1:], truth[1:])]
        hook_us("timer", Bare())
        with tempfile.TemporaryDirectory() as log_dir:
            hook_us("epoch_writing", Timed(log_dir=log_dir, peak_flops=1e12))
        with tempfile.TemporaryDirectory() as log_dir:
            hook_us("every_step_writing", Timed(log_dir=log_dir, update_freq=1, peak_flops=1e12))
        with tempfile.TemporaryDirectory() as log_dir:  # for scale: Keras's own, writing the epoch's logs
            hook_us("keras_tensorboard", TimedKerasTensorBoard(log_dir=log_dir, write_graph=False, profile_batch=0))
        plain.append(fit([])[0])
        with_cb.append(fit([NNSCallback(log_dir=None, peak_flops=1e12)])[0])
    return {
        "backend": keras.backend.backend(),
        "ms_per_step": statistics.median(plain) / steps * 1e3,
        "reported_over_wall_clock": statistics.median(ratios),
        "worst_over_wall_clock": max(ratios, key=lambda r: abs(r - 1)),
        **{f"hook_us_{kind}": statistics.median(values) for kind, values in hooks.items()},
        "slowdown": statistics.median(w / p for w, p in zip(with_cb, plain)) - 1,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--input", default="numpy", choices=["numpy", "generator", "tf.data"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args)))
        return
    rows = []
    for backend in args.backends.split(","):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        command = [sys.executable, __file__, "--worker"] + [a for a in (argv or sys.argv[1:]) if a != "--worker"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"4 x Dense({args.width}), batch {args.batch}, {args.steps} steps x {args.epochs} epochs, input {args.input}")
    print("Hooks per step: the time inside the batch and epoch hooks over the steps, less the timer's own cost (the "
          "same timing around a bare keras.callbacks.Callback's hooks, in parentheses).")
    print("| backend | ms per step | samples/s reported / wall clock (median; worst) | hooks per step, "
          "update_freq='epoch', log_dir=None | the same, writing to a log_dir | update_freq=1, writing | "
          "keras.callbacks.TensorBoard, epoch logs | slowdown |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    kinds = ("epoch", "epoch_writing", "every_step_writing", "keras_tensorboard")
    for r in rows:
        net = {kind: r[f"hook_us_{kind}"] - r["hook_us_timer"] for kind in kinds}
        print(
            f"| {r['backend']} | {r['ms_per_step']:.2f} | {r['reported_over_wall_clock']:.3f}; "
            f"{r['worst_over_wall_clock']:.3f} | {net['epoch']:.1f} us ({r['hook_us_timer']:.1f}) | "
            f"{net['epoch_writing']:.1f} us | {net['every_step_writing']:.1f} us | {net['keras_tensorboard']:.1f} us "
            f"| {r['slowdown']:+.1%} |"
        )


if __name__ == "__main__":
    main()
