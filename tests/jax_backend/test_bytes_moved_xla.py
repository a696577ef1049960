"""Forward bytes moved against XLA's ``bytes accessed`` of the compiled inference call (JAX backend, CPU).

XLA fuses elementwise work into its neighbours (a convolution's bias, normalisation and activation become one
loop), so it reads and writes less than our count, which takes every call as a kernel of its own; it also
copies some weights into the layouts its kernels want, which we do not count.  Within 2x either way is the
contract (docs/roofline.md records the ratios); ``PYTHONPATH=. python tests/jax_backend/test_bytes_moved_xla.py`` prints
them.
"""

import warnings

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import nns_callbacks
from tests import hub_models

APPLICATIONS = {
    # name: (input shape, batch): small inputs keep the compilation quick
    "ResNet50": ((64, 64, 3), 4),
    "MobileNetV2": ((96, 96, 3), 4),
    "VGG16": ((64, 64, 3), 4),
    "DenseNet121": ((64, 64, 3), 4),
    "EfficientNetB0": ((64, 64, 3), 4),
}
TESTED = ("ResNet50", "MobileNetV2", "VGG16")
"""The applications tested (DenseNet121 and EfficientNetB0 take a minute more to compile: the script prints them)."""
HUB_MODELS = ("BertBackbone", "GPT2Backbone", "LlamaBackbone", "GemmaBackbone", "ViTBackbone", "ResNetBackbone")


def xla_bytes_accessed(model, inputs) -> float:
    """XLA's bytes accessed by the compiled inference call of ``model`` on ``inputs``."""
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def call(trainable, non_trainable, inputs):
        return model.stateless_call(trainable, non_trainable, inputs, training=False)[0]

    analysis = jax.jit(call).lower(trainable, non_trainable, inputs).compile().cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float(analysis["bytes accessed"])


def application(name):
    shape, batch = APPLICATIONS[name]
    model = getattr(keras.applications, name)(weights=None, input_shape=shape)
    inputs = jnp.asarray(np.random.default_rng(0).standard_normal((batch, *shape)), "float32")
    return model, inputs, batch, None


def hub_model(name):
    model, shapes = hub_models.build(name)
    inputs = jax.tree_util.tree_map(jnp.asarray, hub_models.inputs(model, hub_models.MODELS[name][1]))
    return model, inputs, hub_models.BATCH, shapes


def ratio(make, name) -> float:
    """Our forward bytes moved / XLA's bytes accessed."""
    model, inputs, batch, shapes = make(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = nns_callbacks.estimate(model, batch_size=batch, input_shape=shapes)
    return cost.forward_bytes_moved / xla_bytes_accessed(model, inputs)


@pytest.mark.parametrize("name", TESTED)
def test_applications_within_twice_xlas_bytes(name):
    assert 0.5 <= ratio(application, name) <= 2.0


@pytest.mark.parametrize("name", HUB_MODELS)
def test_keras_hub_backbones_within_twice_xlas_bytes(name):
    assert 0.5 <= ratio(hub_model, name) <= 2.0


if __name__ == "__main__":
    for make, names in ((application, APPLICATIONS), (hub_model, HUB_MODELS)):
        for model_name in names:
            print(f"| {model_name} | {ratio(make, model_name):.2f} |", flush=True)
