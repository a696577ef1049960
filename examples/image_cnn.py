"""Image CNN: a small residual network with batch-level throughput next to Keras's own TensorBoard logs.

What it shows, beyond the quickstart:
- ``update_freq=N``: samples/s, FLOP/s and MFU every N steps (``batch_*`` scalars) as well as
  per epoch (``epoch_*``);
- NNSCallback and ``keras.callbacks.TensorBoard`` sharing one log directory, so the loss
  curves and the cost panels sit side by side;
- ``callback.cost`` (a ``ModelCost``) after training: which layers dominate training FLOPs
  and activation memory, and how far the training step is from the datasheet "FLOPs"
  (papers quote forward MACs).

The images are synthetic (see ``quickstart.synthetic_images``); nothing is downloaded.

    python examples/image_cnn.py
    .venv/bin/tensorboard --logdir logs
"""

import nns_callbacks

nns_callbacks.quiet_startup()  # before Keras: no TensorFlow start-up lines in the output

import keras
from quickstart import CLASSES, argument_parser, print_tensorboard_command, print_throughput, synthetic_images

from nns_callbacks import NNSCallback


def residual_block(x, filters: int, stride: int):
    """Two 3x3 convolutions with batch normalisation and a projection shortcut.

    ``momentum=0.9``: the moving statistics that validation uses settle within a short run.
    """
    shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
    shortcut = keras.layers.BatchNormalization(momentum=0.9)(shortcut)
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    return keras.layers.ReLU()(keras.layers.Add()([x, shortcut]))


def residual_cnn(size: int = 32, widths=(16, 32, 64)) -> keras.Model:
    """A stem convolution, one residual block per width (each halving the resolution), a classifier."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(widths[0], 3, padding="same", activation="relu")(inputs)
    for filters in widths:
        x = residual_block(x, filters, stride=2)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="residual_cnn")


def print_top_layers(cost, count: int = 5) -> None:
    """The layers with the most training FLOPs, with their share of FLOPs and activation memory."""
    top = cost.layers.nlargest(count, "training_flops")
    print(f"Top {count} layers by training FLOPs (batch {cost.batch_size}):")
    for row in top.itertuples():
        print(
            f"  {row.name:<28} {row.type:<20} {row.training_flops / 1e6:9.1f} MFLOP "
            f"({row.training_flops_share:5.1%} of FLOPs, {row.activation_bytes_share:5.1%} of activations)"
        )
    print(
        f"Forward {cost.forward_macs_per_sample / 1e6:.1f} MMAC per image (what papers call 'FLOPs'); "
        f"a training step costs {cost.training_flops_per_sample / cost.forward_macs_per_sample:.1f} FLOPs per MAC."
    )


def parse_args(argv=None):
    parser = argument_parser(__doc__.splitlines()[0], "image_cnn")
    parser.add_argument("--update-freq", type=int, default=5, help="steps per batch-level measurement")
    return parser.parse_args(argv)


def main(argv=None):
    """Train the residual CNN, logging throughput every few steps, and print the costliest layers."""
    args = parse_args(argv)
    images, labels = synthetic_images(args.samples, seed=1)
    model = residual_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [
        NNSCallback(log_dir=args.log_dir, update_freq=args.update_freq, peak_flops="measure"),
        keras.callbacks.TensorBoard(log_dir=args.log_dir),
    ]
    history = model.fit(
        images, labels, batch_size=args.batch_size, epochs=args.epochs,
        validation_split=0.2, callbacks=callbacks, verbose=2,
    )
    print_top_layers(callbacks[0].cost)
    print_throughput(history)
    print_tensorboard_command(args.log_dir)
    return history


if __name__ == "__main__":
    main()
