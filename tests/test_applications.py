"""keras.applications models: exact parameter counts, published multiply-adds, no unsupported layers."""

import functools
import math
import types
import warnings

import keras
import pytest

from nns_callbacks import estimate

IMAGE = (224, 224, 3)

APPLICATIONS = [
    "ResNet50",
    "ResNet50V2",
    "VGG16",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Small",
    "DenseNet121",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "InceptionV3",
    "Xception",
    "NASNetMobile",
    "ConvNeXtTiny",
]

# Multiply-adds at 224x224x3, 1000 classes, batch 1.
PUBLISHED_MACS = {
    "ResNet50": 3.86e9,  # He et al. 2016 (3.8 G); Keras builds the v1 layout
    "VGG16": 15.47e9,  # 15.3 G counting convolutions only
    "MobileNetV2": 0.300e9,  # Sandler et al. 2018, Table 4
    "MobileNet": 0.569e9,  # Howard et al. 2017, Table 8
}


@functools.cache
def application(name: str) -> types.SimpleNamespace:
    """name, model and cost of one application, built once with random weights."""
    model = getattr(keras.applications, name)(weights=None, input_shape=IMAGE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # test_no_unsupported_layers checks what is not counted
        cost = estimate(model)
    return types.SimpleNamespace(name=name, model=model, cost=cost)


@pytest.fixture(params=APPLICATIONS)
def app(request):
    return application(request.param)


def test_params_match_count_params(app):
    assert app.cost.params == app.model.count_params()
    assert app.cost.layers["params"].sum() == app.model.count_params()
    assert app.cost.trainable_params == sum(math.prod(w.shape) for w in app.model.trainable_weights)


def test_no_unsupported_layers(app):
    assert app.cost.unsupported == {}
    assert app.cost.layers["counted"].all()


@pytest.mark.parametrize("name", sorted(PUBLISHED_MACS))
def test_published_multiply_adds(name):
    assert application(name).cost.forward_macs == pytest.approx(PUBLISHED_MACS[name], rel=0.01)


def test_training_step_costs_about_three_forwards(app):
    """Input and weight gradients are each about one forward (the first layer needs no input gradient)."""
    assert 2.5 * app.cost.forward_flops < app.cost.forward_flops + app.cost.backward_flops < 3.5 * app.cost.forward_flops
