"""Preprocessing layers: resizing, cropping, upsampling, lookups and random augmentation.

Resizing follows XLA's count of ``jax.image`` (the same rule as ``keras.ops.image.resize``:
dense per-axis products, so the cost per output element depends on the scale).  Random
augmentations are identities at inference (what the forward figures count); the work they
do in training mode goes into ``training_only_flops``, from XLA's count of the layer called
with ``training=True`` under JAX (``benchmarks/measure_op_costs.py``): FLOPs per input
element plus, where it matters, per pixel and per image.  Lookups, hashing and encodings
cost nothing.
"""

from __future__ import annotations

import math

import keras

from ..keras_compat import layer_classes
from ..registry import FREE, LayerCall, LayerCost, register_builtin_rule, register_cost_rule
from .ops_image import aspect_crop, resize_cost


def _hw(layer, shape) -> tuple[tuple[int, int], int]:
    """((height, width), other elements per image pixel position) of an image batch or one image."""
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
    height, width = (shape[-2], shape[-1]) if channels_first else (shape[-3], shape[-2])
    return (height, width), math.prod(shape) // max(height * width, 1)


def _resized(layer, call: LayerCall, target, interpolation: str, crop: bool = False, pad: bool = False) -> LayerCost:
    (height, width), other = _hw(layer, call.input_shape)
    source = aspect_crop((height, width), tuple(target), crop, pad)
    forward, backward = resize_cost(source, tuple(target), other, interpolation)
    return LayerCost(elementwise_flops=forward, input_grad_flops=backward, saved_elements=0)


@register_cost_rule(keras.layers.Resizing)
def resizing(layer, call: LayerCall) -> LayerCost:
    """``resize_cost`` of the layer's interpolation (after its crop or pad to the target's aspect ratio)."""
    return _resized(layer, call, (layer.height, layer.width), layer.interpolation,
                    getattr(layer, "crop_to_aspect_ratio", False), getattr(layer, "pad_to_aspect_ratio", False))


@register_cost_rule(keras.layers.CenterCrop)
def center_crop(layer, call: LayerCall) -> LayerCost:
    """A crop is free; an input smaller than the target is cropped to its aspect ratio and resized (bilinear)."""
    (height, width), _ = _hw(layer, call.input_shape)
    if height >= layer.height and width >= layer.width:
        return FREE
    return _resized(layer, call, (layer.height, layer.width), "bilinear", crop=True)


@register_cost_rule(keras.layers.UpSampling1D, keras.layers.UpSampling2D, keras.layers.UpSampling3D)
def upsampling(layer, call: LayerCall) -> LayerCost:
    """Nearest: a copy, no FLOPs, backward sums the copies (outputs - inputs).  Other interpolations (2-D):
    ``keras.ops.image.resize`` to the upsampled size, ``resize_cost``."""
    interpolation = getattr(layer, "interpolation", "nearest")
    if interpolation == "nearest" or len(call.output_shape) != 4:
        return LayerCost(input_grad_flops=call.output_elements - call.input_elements, saved_elements=0)
    (height, width), _ = _hw(layer, call.output_shape)
    return _resized(layer, call, (height, width), interpolation)


@register_cost_rule(*layer_classes(
    "TextVectorization StringLookup IntegerLookup Hashing HashedCrossing CategoryEncoding Discretization RandomCrop"))
def lookup(layer, call: LayerCall) -> LayerCost:
    """Lookups, hashing and encodings of inputs, and a random crop (a slice): no FLOPs."""
    return FREE


AUGMENTATION_FLOPS = {
    "RandomFlip": (2, 0, 0), "RandomContrast": (5, 0, 0), "RandomBrightness": (2, 0, 0),
    "RandomGrayscale": (3, 0, 0), "RandomHue": (31.7, 0, 0), "RandomSaturation": (26, 0, 0),
    "RandomSharpness": (21.4, 0, 0), "RandomPosterization": (4, 0, 0), "RandomInvert": (2, 0, 0),
    "RandomColorDegeneration": (6, 0, 0), "RandomErasing": (102, 4.5, 0), "RandomGaussianBlur": (19.4, 0, 0),
    "RandomPerspective": (12, 57, 0), "Solarization": (5, 0, 0), "MixUp": (4, 0, 1600), "CutMix": (4.3, 0, 1800),
}
"""Training-mode FLOPs of each random augmentation: (per input element, per pixel, per image), XLA's count
of the layer called with ``training=True`` (JAX backend, CPU)."""

GEOMETRIC_FLOPS = {("bilinear", "reflect"): 253.4, ("bilinear", "constant"): 120.5, ("nearest", "constant"): 49.5,
                   ("nearest", "reflect"): 182.4}
"""Random rotation, zoom, translation and shear resample every element through ``affine_transform``:
FLOPs per element by (interpolation, fill mode), plus 15 per pixel for the transform's coordinates; a
reflecting or wrapping fill folds the coordinates back (about 133 more)."""

_COLOR_JITTER = {"brightness_factor": "RandomBrightness", "contrast_factor": "RandomContrast",
                 "saturation_factor": "RandomSaturation", "hue_factor": "RandomHue"}


def training_flops(layer, shape) -> int:
    """FLOPs of one training-mode call of a random augmentation layer on a batch of ``shape``."""
    name = type(layer).__name__
    n = math.prod(shape)
    (height, width), _ = _hw(layer, shape)
    images = shape[0] if len(shape) == 4 else 1
    pixels = images * height * width
    if name in ("RandomRotation", "RandomZoom", "RandomTranslation", "RandomShear"):
        interpolation = "nearest" if getattr(layer, "interpolation", "bilinear") == "nearest" else "bilinear"
        fill = "constant" if getattr(layer, "fill_mode", "reflect") in ("constant", "nearest") else "reflect"
        return round(GEOMETRIC_FLOPS[(interpolation, fill)] * n + 15 * pixels)
    if name == "RandomColorJitter":
        enabled = [cls for attr, cls in _COLOR_JITTER.items() if getattr(layer, attr, None) is not None]
        return round(sum(AUGMENTATION_FLOPS[cls][0] + 2 for cls in enabled) * n)
    per_element, per_pixel, per_image = AUGMENTATION_FLOPS[name]
    return round(per_element * n + per_pixel * pixels + per_image * images)


@register_builtin_rule(*layer_classes(" ".join(AUGMENTATION_FLOPS) + " RandomRotation RandomZoom RandomTranslation "
                                      "RandomShear RandomColorJitter"))
def random_augmentation(layer, call: LayerCall) -> LayerCost:
    """Identity at inference (no forward FLOPs); ``training_flops`` in the training step."""
    return LayerCost(saved_elements=0, training_only_flops=training_flops(layer, call.input_shape))


@register_builtin_rule(*layer_classes("AutoContrast"))
def auto_contrast(layer, call: LayerCall) -> LayerCost:
    """Per-image minimum and maximum, then (x - min) / (max - min) rescaled and clipped: 7 FLOPs per element at
    inference and in training (XLA); its gradient through the per-image extremes: 40 per element."""
    n = call.input_elements
    return LayerCost(elementwise_flops=7 * n, input_grad_flops=40 * n, saved_elements=0)
