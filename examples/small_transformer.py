"""Small transformer: one encoder block (MultiHeadAttention, LayerNormalization, Dense FFN) on tokens.

What it shows:
- where a transformer's cost goes: the attention projections and the feed-forward network
  grow with the width, the attention scores with the square of the sequence length;
- a layer of your own needs no rule when it is written with Keras ops: ``PositionEmbedding``'s
  ``call`` is traced and its addition counted as the row ``position_embedding/add``;
- samples/s, FLOP/s and MFU while it trains, and the cost panels in TensorBoard.

Each sequence holds random tokens; the label says whether token 1 occurs more often than
token 2.  Nothing is downloaded.

    python examples/small_transformer.py
    .venv/bin/tensorboard --logdir logs
"""

import nns_callbacks

nns_callbacks.quiet_startup()  # before Keras: no TensorFlow start-up lines in the output

import argparse

import keras
from quickstart import print_tensorboard_command, print_throughput
from sequence_rnn import VOCABULARY, synthetic_sequences

from nns_callbacks import NNSCallback


class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per position to the token embeddings."""

    def build(self, input_shape):
        self.positions = self.add_weight(shape=tuple(input_shape[1:]), initializer="zeros", name="positions")

    def call(self, x):
        return x + self.positions


def encoder_block(x, heads: int, width: int, ffn_width: int):
    """Self-attention and a feed-forward network, each with a residual connection and LayerNorm."""
    attended = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads)(x, x)
    x = keras.layers.LayerNormalization()(keras.layers.Add()([x, attended]))
    hidden = keras.layers.Dense(ffn_width, activation="gelu")(x)
    x = keras.layers.LayerNormalization()(keras.layers.Add()([x, keras.layers.Dense(width)(hidden)]))
    return x


def transformer_classifier(length: int, width: int = 32, heads: int = 4) -> keras.Model:
    """Token and position embeddings, one encoder block, mean pooling and a sigmoid output."""
    inputs = keras.Input((length,), dtype="int32")
    x = PositionEmbedding()(keras.layers.Embedding(VOCABULARY, width)(inputs))
    x = encoder_block(x, heads, width, ffn_width=4 * width)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="small_transformer")


def print_cost_by_type(cost) -> None:
    """Training FLOPs per sample and their share, by layer type."""
    by_type = cost.layers.groupby("type")[["training_flops", "training_flops_share"]].sum()
    print("Training FLOPs per sequence, by layer type:")
    for layer_type, row in by_type.sort_values("training_flops", ascending=False).iterrows():
        per_sample = row["training_flops"] / cost.batch_size
        print(f"  {layer_type:<22} {per_sample / 1e3:9.1f} kFLOP ({row['training_flops_share']:5.1%})")
    print(f"Not counted: {cost.unsupported or 'nothing'}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-dir", default="logs/small_transformer", help="TensorBoard log directory (default logs/small_transformer)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2048, help="synthetic training + validation sequences")
    parser.add_argument("--length", type=int, default=32, help="tokens per sequence")
    parser.add_argument("--batch-size", type=int, default=64)
    return parser.parse_args(argv)


def main(argv=None):
    """Train the transformer with NNSCallback and print where its FLOPs go."""
    args = parse_args(argv)
    tokens, labels = synthetic_sequences(args.samples, args.length)
    model = transformer_classifier(args.length)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    callback = NNSCallback(log_dir=args.log_dir, peak_flops="measure")
    history = model.fit(
        tokens, labels, batch_size=args.batch_size, epochs=args.epochs,
        validation_split=0.2, callbacks=[callback], verbose=2,
    )
    print_cost_by_type(callback.cost)
    print_throughput(history)
    print_tensorboard_command(args.log_dir)
    return history


if __name__ == "__main__":
    main()
