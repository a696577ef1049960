"""Sequence RNN: an Embedding + bidirectional LSTM classifier on synthetic token sequences.

What it shows:
- the cost of a recurrent layer: an LSTM does 4 gate products per time step, so its MACs
  grow with the sequence length while its parameters do not; ``Bidirectional`` doubles both;
- ``input_shape=`` for models whose sequence length is left open (``keras.Input((None,))``):
  NNSCallback needs the length you train with to count the steps;
- samples/s, FLOP/s and MFU of a recurrent model, which keeps far less of the hardware busy
  than a CNN of the same FLOPs (many small sequential products).

Each sequence holds random tokens; the label says whether token 1 occurs more often than
token 2.  Nothing is downloaded.

    python examples/sequence_rnn.py
    .venv/bin/tensorboard --logdir logs
"""

import nns_callbacks

nns_callbacks.quiet_startup()  # before Keras: no TensorFlow start-up lines in the output

import argparse

import keras
import numpy as np
from quickstart import print_tensorboard_command, print_throughput

from nns_callbacks import NNSCallback

VOCABULARY = 32


def synthetic_sequences(samples: int, length: int, seed: int = 0):
    """Random token sequences; label 1 where token 1 outnumbers token 2."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCABULARY, (samples, length)).astype("int32")
    labels = ((tokens == 1).sum(axis=1) > (tokens == 2).sum(axis=1)).astype("float32")
    return tokens, labels


def lstm_classifier(units: int = 32) -> keras.Model:
    """Embedding, a bidirectional LSTM over the whole sequence and a sigmoid output."""
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, 16)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(units))(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="lstm_classifier")


def print_recurrent_cost(cost, length: int) -> None:
    """Per-sample MACs of each layer: the LSTM's scale with the sequence length."""
    print(f"Per sequence of {length} tokens:")
    for row in cost.layers.itertuples():
        macs = row.forward_macs / cost.batch_size
        print(f"  {row.name:<16} {row.type:<14} {row.params:>7,} params {macs / 1e3:9.1f} kMAC forward")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-dir", default="logs/sequence_rnn", help="TensorBoard log directory (default logs/sequence_rnn)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2048, help="synthetic training + validation sequences")
    parser.add_argument("--length", type=int, default=40, help="tokens per sequence")
    parser.add_argument("--batch-size", type=int, default=64)
    return parser.parse_args(argv)


def main(argv=None):
    """Train the LSTM classifier with NNSCallback and print the recurrent cost and throughput."""
    args = parse_args(argv)
    tokens, labels = synthetic_sequences(args.samples, args.length)
    model = lstm_classifier()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    callback = NNSCallback(log_dir=args.log_dir, peak_flops="measure", input_shape=(args.length,))
    history = model.fit(
        tokens, labels, batch_size=args.batch_size, epochs=args.epochs,
        validation_split=0.2, callbacks=[callback], verbose=2,
    )
    print_recurrent_cost(callback.cost, args.length)
    print_throughput(history)
    print_tensorboard_command(args.log_dir)
    return history


if __name__ == "__main__":
    main()
