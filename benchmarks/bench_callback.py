"""NNSCallback's accuracy and overhead, measured side by side, on the TensorFlow, JAX and torch backends.

Usage: python benchmarks/bench_callback.py [--backends tensorflow,jax,torch] [--repeats 5] [--steps 60]
       [--width 1024] [--batch 256] [--input numpy|generator|tf.data]

Short steps: ``--width 64 --batch 32``.  ``--input`` feeds the same data as arrays,
a Python generator or a tf.data pipeline whose batch dimension is unknown.

(a) Accuracy: the callback's epoch FLOP/s against the truth measured in the same run: the
    FLOPs of the steps after the third divided by the wall time from the end of the third
    step (its results fetched) to the end of training (after ``fit`` has waited for every
    step), i.e. synchronised at both ends.
    Also against the difference of whole ``fit`` times of N and 2N steps without any callback,
    where the fixed costs of a ``fit`` cancel (noisier on a shared machine).
(b) Overhead: ``fit`` with and without the callback, interleaved, medians; and the share
    of ``fit`` time spent inside the callback's hooks.
Each backend runs in its own process (Keras fixes its backend per process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _worker(args) -> dict:
    import keras
    import numpy as np

    from nns_callbacks import NNSCallback, estimate

    class TimedCallback(NNSCallback):
        """NNSCallback that adds up the wall time spent inside its hooks."""

        hook_seconds = 0.0
        batch_hook_seconds = 0.0

        def _guard(self, method, *hook_args):
            start = time.perf_counter()
            super()._guard(method, *hook_args)
            elapsed = time.perf_counter() - start
            TimedCallback.hook_seconds += elapsed
            if method.__name__ == "_train_batch_end":
                TimedCallback.batch_hook_seconds += elapsed

    inputs = keras.Input((args.width,))
    hidden = inputs
    for _ in range(4):
        hidden = keras.layers.Dense(args.width, activation="relu")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(10)(hidden))
    model.compile(keras.optimizers.SGD(1e-4), "mse")
    rng = np.random.default_rng(0)
    x = rng.random((args.batch * args.steps * 2, args.width), dtype=np.float32)
    y = rng.random((len(x), 10), dtype=np.float32)
    flops_per_sample = estimate(model, batch_size=args.batch).training_flops_per_sample

    def feed(steps):
        """The first ``steps`` batches, as the chosen kind of input."""
        xs, ys = x[: steps * args.batch], y[: steps * args.batch]
        if args.input == "generator":
            return (((xs[i:i + args.batch], ys[i:i + args.batch]) for i in range(0, len(xs), args.batch)),), {}
        if args.input == "tf.data":
            import tensorflow as tf

            data = tf.data.Dataset.from_tensor_slices((xs, ys)).batch(args.batch).filter(lambda a, b: True)
            return (data,), {}
        return (xs, ys), {"batch_size": args.batch}

    def fit(steps, callbacks):
        data, options = feed(steps)
        start = time.perf_counter()
        history = model.fit(*data, **options, epochs=1, callbacks=callbacks, verbose=0, shuffle=False)
        return time.perf_counter() - start, history.history

    class Truth(keras.callbacks.Callback):
        """Times the steps after warm-up between two synchronised points; async-safe like ours."""

        async_safe = True
        start_after = 3

        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 == self.start_after:  # logs were fetched from the device: step 3 is done
                self.start = time.perf_counter()

        def on_train_end(self, logs=None):  # fit has waited for every step
            self.end = time.perf_counter()

    fit(4, [])  # compile
    truths, reported, plain, half, with_cb, shares, hook_us = [], [], [], [], [], [], []
    steps = 2 * args.steps
    for _ in range(args.repeats):
        truth, callback = Truth(), TimedCallback(log_dir=None, peak_flops=1e12)
        TimedCallback.hook_seconds = TimedCallback.batch_hook_seconds = 0.0
        elapsed, history = fit(steps, [callback, truth])
        shares.append(TimedCallback.hook_seconds / elapsed)
        hook_us.append(TimedCallback.batch_hook_seconds / steps * 1e6)
        truths.append((steps - Truth.start_after) * args.batch * flops_per_sample / (truth.end - truth.start))
        reported.append(history["tflops_per_sec"][0] * 1e12)
        plain.append(fit(steps, [])[0])
        half.append(fit(steps // 2, [])[0])
        with_cb.append(fit(steps, [NNSCallback(log_dir=None, peak_flops=1e12)])[0])
    return {
        "backend": keras.backend.backend(),
        "truth_flops_per_sec": statistics.median(truths),
        "reported_flops_per_sec": statistics.median(reported),
        "reported_over_truth": statistics.median(r / t for r, t in zip(reported, truths)),
        # whole fits of N and 2N steps without any callback: fixed costs cancel, no hook takes part
        "reported_over_difference": statistics.median(reported) / (
            (steps - steps // 2) * args.batch * flops_per_sample / statistics.median(p - h for p, h in zip(plain, half))
        ),
        "fit_s_without": statistics.median(plain),
        "fit_s_with": statistics.median(with_cb),
        "slowdown": statistics.median(w / p for w, p in zip(with_cb, plain)) - 1,
        "hook_share": statistics.median(shares),
        "hook_us_per_step": statistics.median(hook_us),
        "raw_fit_s_without": plain,
        "raw_fit_s_with": with_cb,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--input", default="numpy", choices=["numpy", "generator", "tf.data"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=256)
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
    print(f"width {args.width}, batch {args.batch}, {args.steps * 2} steps per fit, input {args.input}")
    print("| backend | ms per step | truth TFLOP/s | reported TFLOP/s | reported / truth | fit s without | fit s with "
          "| slowdown | time in hooks | batch hook per step | reported / fit(2N) - fit(N) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['backend']} | {r['fit_s_without'] / (args.steps * 2) * 1e3:.2f} "
            f"| {r['truth_flops_per_sec'] / 1e12:.4f} | {r['reported_flops_per_sec'] / 1e12:.4f} | "
            f"{r['reported_over_truth']:.3f} | {r['fit_s_without']:.3f} | {r['fit_s_with']:.3f} | "
            f"{r['slowdown']:+.2%} | {r['hook_share']:.3%} | {r['hook_us_per_step']:.1f} us | "
            f"{r['reported_over_difference']:.3f} |"
        )
    for r in rows:
        pairs = ", ".join(f"{p:.2f}/{w:.2f}" for p, w in zip(r["raw_fit_s_without"], r["raw_fit_s_with"]))
        print(f"{r['backend']} fit seconds without/with, in run order: {pairs}")


if __name__ == "__main__":
    main()
