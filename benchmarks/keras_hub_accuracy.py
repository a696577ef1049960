"""Our FLOP count of keras-hub models against XLA's cost analysis, as a Markdown table (JAX backend, CPU).

Usage: KERAS_BACKEND=jax python benchmarks/keras_hub_accuracy.py

The models and inputs are the test suite's (tests/hub_models.py: small configurations
built from the constructors, batch 2); XLA's figures are for the jitted inference
call and for the training-mode call with its VJP, as in
tests/jax_backend/test_keras_hub_xla.py.  ResNet's row counts the taps on zero
padding, which XLA skips.
"""

from __future__ import annotations

import os
import pathlib
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "jax_backend")]

from test_keras_hub_xla import xla_forward_and_training

import nns_callbacks
from tests import hub_models


def main() -> None:
    print("| Model (batch 2) | seq | forward, ours | forward, XLA | ratio | fwd+bwd, ours | fwd+bwd, XLA | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (_, seq) in hub_models.MODELS.items():
        model, shapes = hub_models.build(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cost = nns_callbacks.estimate(model, batch_size=hub_models.BATCH, input_shape=shapes)
        forward, training = xla_forward_and_training(model, hub_models.inputs(model, seq))
        ours_training = cost.forward_flops + cost.backward_flops
        print(
            f"| {name.split('-')[0]}{' (Gemma 2 options)' if 'gemma2' in name else ''} | {seq or '-'} "
            f"| {cost.forward_flops / 1e6:.1f} M | {forward / 1e6:.1f} M | {cost.forward_flops / forward:.3f} "
            f"| {ours_training / 1e6:.1f} M | {training / 1e6:.1f} M | {ours_training / training:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
