"""Compare keras.applications models: parameters, MACs, training FLOPs and memory, in one table.

What it shows: ``nns_callbacks.estimate`` needs no data and no training, so a table of
architectures costs only the time to build them (``weights=None``: nothing is downloaded).
Columns, per sample at batch 1 unless noted:
- ``forward GMAC``: multiply-adds of one forward pass, the figure papers call "FLOPs"
  (ResNet50: 3.9 G);
- ``training GFLOP``: forward + backward + Adam update, in FLOPs (2 per MAC);
- ``weights MiB`` and ``activations MiB``: parameters in float32, and what one sample's
  forward pass keeps for the backward pass (scales with the batch size).

    python examples/compare_applications.py
    python examples/compare_applications.py --models ResNet50 MobileNetV2 --csv costs.csv
"""

import nns_callbacks

nns_callbacks.quiet_startup()  # before Keras: no TensorFlow start-up lines in the output

import argparse
import warnings

import keras
import pandas as pd

from nns_callbacks import estimate

DEFAULT_MODELS = ("MobileNetV3Small", "MobileNetV2", "EfficientNetB0", "ResNet50", "DenseNet121", "InceptionV3")
MIB = 2**20


def model_costs(name: str, optimizer: str = "adam") -> dict:
    """One row of the table: the costs of ``keras.applications.<name>`` at its default input size."""
    model = getattr(keras.applications, name)(weights=None)
    shape = tuple(224 if d is None else d for d in model.inputs[0].shape[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # layers without a rule are listed in the last column
        cost = estimate(model, batch_size=1, input_shape=shape, optimizer=optimizer)
    return {
        "model": name,
        "input": "x".join(map(str, shape)),
        "params (M)": cost.params / 1e6,
        "forward GMAC": cost.forward_macs_per_sample / 1e9,
        "training GFLOP": cost.training_flops_per_sample / 1e9,
        "weights MiB": cost.weight_bytes / MIB,
        "activations MiB": cost.activation_bytes_per_sample / MIB,
        "not counted": ", ".join(f"{k} x{v}" for k, v in sorted(cost.unsupported.items())) or "-",
    }


def compare(names, sort_by: str = "forward GMAC") -> pd.DataFrame:
    """The cost table of the named applications, cheapest first."""
    frame = pd.DataFrame([model_costs(name) for name in names])
    return frame.sort_values(sort_by).reset_index(drop=True)


def to_markdown(frame: pd.DataFrame) -> str:
    """A Markdown table, numbers to 3 significant digits (no ``tabulate`` needed)."""

    def cell(value):
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    numeric = [frame[column].dtype.kind == "f" for column in frame.columns]
    lines = [
        "| " + " | ".join(frame.columns) + " |",
        "| " + " | ".join("---:" if is_number else "---" for is_number in numeric) + " |",
    ]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="NAME",
                        help="keras.applications function names (default: %(default)s)")
    parser.add_argument("--sort-by", default="forward GMAC", help="column to sort by (default: forward GMAC)")
    parser.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    return parser.parse_args(argv)


def main(argv=None):
    """Print the comparison table (and write it as CSV when asked)."""
    args = parse_args(argv)
    frame = compare(args.models, args.sort_by)
    print(to_markdown(frame))
    print("\nMACs are multiply-adds (papers' 'FLOPs'); training GFLOP counts FLOPs, 2 per MAC, with Adam.")
    if args.csv:
        frame.to_csv(args.csv, index=False)
        print(f"CSV: {args.csv}")
    return frame


if __name__ == "__main__":
    main()
