"""Quickstart: train a small CNN with NNSCallback and look at its cost panels in TensorBoard.

What it shows:
- the per-layer cost table (parameters, MACs, training FLOPs, activation memory) printed
  when training starts (``print_summary=True``);
- achieved samples/s, FLOP/s and MFU in the Keras logs of every epoch, for training and
  validation (``peak_flops="measure"`` times a matrix product, so a CPU gets an MFU too);
- TensorBoard event files in ``--log-dir``: cost scalars, the layer table, a chart of the
  costliest layers and throughput curves.

The data are synthetic 32x32 RGB images whose label is their brightest quadrant, so the
accuracy climbs within a few epochs and nothing is downloaded.

    python examples/quickstart.py
    .venv/bin/tensorboard --logdir logs
"""

import nns_callbacks

nns_callbacks.quiet_startup()  # before Keras: no TensorFlow start-up lines in the output

import argparse
import math

import keras
import numpy as np

from nns_callbacks import NNSCallback

CLASSES = 4


def synthetic_images(samples: int, size: int = 32, seed: int = 0):
    """Noise images with one brightened quadrant; the label says which one."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, samples)
    images = rng.random((samples, size, size, 3), dtype=np.float32)
    half = size // 2
    for quadrant in range(CLASSES):
        rows = slice(half * (quadrant // 2), half * (quadrant // 2 + 1))
        cols = slice(half * (quadrant % 2), half * (quadrant % 2 + 1))
        images[labels == quadrant, rows, cols, :] += 0.1
    return images, labels


def small_cnn(size: int = 32) -> keras.Model:
    """Two convolution blocks and a softmax classifier that sees where features are."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def print_throughput(history) -> None:
    """One line per epoch: achieved samples/s, GFLOP/s and MFU (training and validation)."""
    logs = history.history
    for epoch in range(len(logs["loss"])):
        train = _rates(logs, "", epoch)
        val = _rates(logs, "val_", epoch)
        print(f"epoch {epoch + 1}: train {train} | validation {val}")


def _rates(logs, prefix: str, epoch: int) -> str:
    def get(name):
        values = logs.get(prefix + name)
        return values[epoch] if values and epoch < len(values) else None

    samples, tflops, mfu = get("samples_per_sec"), get("tflops_per_sec"), get("mfu")
    if samples is None or math.isnan(samples):
        return "nothing measurable (a pass of one step)"
    text = f"{samples:,.0f} samples/s"
    text += f", {tflops * 1e3:.2f} GFLOP/s" if tflops is not None and not math.isnan(tflops) else ""
    text += f", MFU {mfu:.1%}" if mfu is not None and not math.isnan(mfu) else ""
    return text


def print_tensorboard_command(log_dir: str) -> None:
    """How to look at the run: every example's runs side by side, in TensorBoard's Cost tab and the others."""
    print(f"TensorBoard, Cost tab (every example's runs side by side): .venv/bin/tensorboard --logdir logs  # this one: {log_dir}")


def argument_parser(description: str, name: str = "quickstart") -> argparse.ArgumentParser:
    """The options the image examples share; each writes to its own log directory, logs/<name>."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--log-dir", default=f"logs/{name}", help=f"TensorBoard log directory (default logs/{name})")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2048, help="synthetic training + validation images")
    parser.add_argument("--batch-size", type=int, default=64)
    return parser


def parse_args(argv=None):
    return argument_parser(__doc__.splitlines()[0]).parse_args(argv)


def main(argv=None):
    """Train the CNN for a few epochs with NNSCallback and print what it measured."""
    args = parse_args(argv)
    images, labels = synthetic_images(args.samples)
    model = small_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = NNSCallback(log_dir=args.log_dir, peak_flops="measure", print_summary=True)
    history = model.fit(
        images, labels, batch_size=args.batch_size, epochs=args.epochs,
        validation_split=0.2, callbacks=[callback], verbose=2,
    )
    print_throughput(history)
    if callback.peak is not None:
        print(f"MFU is achieved / peak FLOP/s; peak {callback.peak.flops_per_sec / 1e9:.1f} GFLOP/s ({callback.peak.source})")
    print_tensorboard_command(args.log_dir)
    return history


if __name__ == "__main__":
    main()
