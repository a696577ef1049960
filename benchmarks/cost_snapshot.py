"""Every test model's ``ModelCost.to_dict()``, as JSON, to check that a refactoring changes no figure.

Usage: KERAS_BACKEND=jax python benchmarks/cost_snapshot.py before.json   (at the commit before the change)
       KERAS_BACKEND=jax python benchmarks/cost_snapshot.py after.json    (after it)
       cmp before.json after.json

Models: keras.applications (ResNet50, MobileNetV2, NASNetMobile, EfficientNetB0, ConvNeXtTiny), every keras-hub
model of ``tests/hub_models.py``, a recurrent stack, and custom ops (a Perceiver, a gated MLP, control-flow
loops), each at its test batch size, optimizer Adam.  Layer names are renumbered by a fresh name scope per model
so that the snapshot does not depend on the order models were built in.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras

import nns_callbacks


def applications():
    for name in ("ResNet50", "MobileNetV2", "NASNetMobile", "EfficientNetB0", "ConvNeXtTiny"):
        yield name, lambda name=name: (getattr(keras.applications, name)(weights=None), None, 4)


def hub():
    from tests import hub_models

    for name in hub_models.MODELS:
        yield name, lambda name=name: (*hub_models.build(name), hub_models.BATCH)


def recurrent():
    def build():
        inputs = keras.Input((12, 16))
        x = keras.layers.LSTM(32, return_sequences=True)(inputs)
        x = keras.layers.Bidirectional(keras.layers.GRU(16, return_sequences=True))(x)
        return keras.Model(inputs, keras.layers.SimpleRNN(8)(x)), None, 8

    yield "recurrent stack", build


def custom_ops():
    from tests.jax_backend import keras_io_models
    from tests.jax_backend import test_control_flow_xla as loops

    yield "perceiver", lambda: (*keras_io_models.perceiver(), 8)
    yield "gated MLP", lambda: (*keras_io_models.gated_mlp(), 8)
    for kind in ("scan", "fori_loop", "map", "vectorized_map"):
        yield f"loop {kind}", lambda kind=kind: (
            loops.model_of(loops.Loop(kind, looped=True), (loops.STEPS, loops.WIDTH)), None, loops.BATCH)


def snapshot() -> dict:
    results = {}
    for group in (applications, hub, recurrent, custom_ops):
        for name, build in group():
            keras.backend.clear_session()
            keras.utils.set_random_seed(0)
            try:
                model, shape, batch = build()
            except ValueError as error:  # a model this backend cannot build (NASNet on torch)
                results[name] = f"not built: {error}"
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cost = nns_callbacks.estimate(model, batch_size=batch, input_shape=shape, optimizer="adam")
            results[name] = cost.to_dict()
    return results


if __name__ == "__main__":
    with open(sys.argv[1], "w", encoding="utf-8") as handle:
        json.dump(snapshot(), handle, indent=1, sort_keys=True)
