"""``keras.ops.image``: resizing, patches, geometric transforms, filters and colour conversions.

Each follows XLA's count of the JAX implementation (CPU), on every backend.  ``jax.image``
resizes (bilinear, bicubic, Lanczos) as one dense product per resized axis with an
(input size x output size) weight matrix, in the cheaper order, so the cost per output
element depends on the scale (about 97 FLOPs for a 2x bilinear upsampling, 328 for a 4x
downsampling); JAX extracts patches as a convolution with an identity kernel.  The other
constants are per element, measured by ``benchmarks/measure_op_costs.py``.
"""

from __future__ import annotations

import itertools
import math

from ..keras_compat import OPS_IMAGE as image
from ..registry import LayerCall, LayerCost, register_builtin_rule
from .ops import elements, single_operand_cost

RESIZE_WEIGHT_FLOPS = {"bilinear": 12.7, "bicubic": 38.7, "lanczos3": 29.8, "lanczos5": 29.8}
"""FLOPs per entry of each (input size x output size) weight matrix that ``jax.image`` computes (once per
distinct pair of sizes: XLA shares equal matrices)."""


def _layout(shape, data_format: str | None) -> tuple[tuple[int, ...], int]:
    """(spatial sizes, the product of the other axes) of an image batch (or one image)."""
    rank = len(shape)
    if data_format == "channels_first":
        spatial = tuple(shape[-2:]) if rank in (3, 4) else tuple(shape[-3:])
    else:
        spatial = tuple(shape[-3:-1]) if rank in (3, 4) else tuple(shape[-4:-1])
    return spatial, elements(shape) // max(elements(spatial), 1)


def resize_macs(in_sizes, out_sizes, other: int) -> int:
    """MACs of the per-axis products of a separable resize, in the cheapest order (opt_einsum's choice); axes
    whose size does not change are left alone."""
    axes = [i for i, (a, b) in enumerate(zip(in_sizes, out_sizes)) if a != b]
    best = None
    for order in itertools.permutations(axes):
        sizes = list(in_sizes)
        macs = 0
        for axis in order:
            sizes[axis] = out_sizes[axis]
            macs += other * math.prod(sizes) * in_sizes[axis]
        best = macs if best is None else min(best, macs)
    return best or 0


def resize_cost(in_sizes, out_sizes, other: int, interpolation: str) -> tuple[int, int]:
    """(forward, backward) FLOPs of resizing ``other`` images (batch x channels) from ``in_sizes`` to ``out_sizes``.

    Nearest: a gather, 3.5 FLOPs per output index per resized axis (the source index); its gradient adds into
    the gathered positions (XLA: 1.5 per output element and 0.25 per input element).
    Otherwise 2 FLOPs per MAC of ``resize_macs`` plus the weight matrices; the gradient is the transposed
    products (2 per MAC)."""
    out_elements = other * math.prod(out_sizes)
    if interpolation == "nearest" or interpolation not in RESIZE_WEIGHT_FLOPS and interpolation != "area":
        index = round(3.5 * sum(b for a, b in zip(in_sizes, out_sizes) if a != b))
        return index, round(1.5 * out_elements + 0.25 * other * math.prod(in_sizes))
    macs = resize_macs(in_sizes, out_sizes, other)
    pairs = {(a, b) for a, b in zip(in_sizes, out_sizes) if a != b}
    weights = RESIZE_WEIGHT_FLOPS.get(interpolation, RESIZE_WEIGHT_FLOPS["bilinear"]) * sum(a * b for a, b in pairs)
    return round(2 * macs + weights), 2 * macs


def aspect_crop(in_sizes, out_sizes, crop: bool, pad: bool) -> tuple[int, int]:
    """The (height, width) resized after cropping (or padding) to the target's aspect ratio, as Keras does."""
    height, width = in_sizes
    target_height, target_width = out_sizes
    if crop:
        crop_height = min(height, int(float(width * target_height) / target_width))
        crop_width = min(width, int(float(height * target_width) / target_height))
        return max(crop_height, 1), max(crop_width, 1)
    if pad:
        pad_height = max(height, int(float(width * target_height) / target_width))
        pad_width = max(width, int(float(height * target_width) / target_height))
        return pad_height, pad_width
    return height, width


@register_builtin_rule(getattr(image, "Resize", None))
def resize_op(op, call: LayerCall) -> LayerCost:
    """``resize_cost``: per-axis products with dense weight matrices (bilinear, bicubic, Lanczos); nearest a gather."""
    in_sizes, other = _layout(call.input_shape, op.data_format)
    out_sizes, _ = _layout(call.output_shape, op.data_format)
    if len(in_sizes) == 2:
        in_sizes = aspect_crop(in_sizes, out_sizes, getattr(op, "crop_to_aspect_ratio", False),
                               getattr(op, "pad_to_aspect_ratio", False))
    forward, backward = resize_cost(in_sizes, out_sizes, other, op.interpolation)
    return single_operand_cost(call, forward, backward, keeps="nothing")


@register_builtin_rule(getattr(image, "ScaleAndTranslate", None))
def scale_and_translate_op(op, call: LayerCall) -> LayerCost:
    """As ``resize_cost`` over ``spatial_dims``: dense per-axis products; the weights are computed from tensors."""
    dims = [d % len(call.input_shape) for d in op.spatial_dims]
    in_sizes = [call.input_shape[d] for d in dims]
    out_sizes = [call.output_shape[d] for d in dims]
    other = elements(call.input_shape) // max(elements(in_sizes), 1)
    method = {"linear": "bilinear", "cubic": "bicubic"}.get(op.method, op.method)
    forward, backward = resize_cost(in_sizes, [o + (o == i) * 0 for o, i in zip(out_sizes, in_sizes)], other, method)
    if forward == 0 and method != "nearest":  # every axis kept its size: JAX still applies the weights
        forward, backward = resize_cost(in_sizes, out_sizes, other, method)
    return single_operand_cost(call, forward, backward, keeps="nothing")


@register_builtin_rule(getattr(image, "ExtractPatches", None))
def extract_patches_op(op, call: LayerCall) -> LayerCost:
    """JAX runs a convolution with an identity kernel of (patch x channels) outputs: output elements x patch
    elements MACs, plus building the identity (2 per entry); the gradient is the transposed convolution."""
    features = call.output_shape[-1] if op.data_format == "channels_last" else call.output_shape[-3 - op.is_3d]
    macs = elements(call.output_shape) * features
    return single_operand_cost(call, 2 * macs + 2 * features * features, 2 * macs, keeps="nothing")


_PER_ELEMENT = {
    "RGBToGrayscale": (2, 1), "RGBToHSV": (38 / 3, 125 / 3), "HSVToRGB": (29 / 3, 107 / 3),
    "SobelEdges": (34, 35),
}
"""(forward, backward) FLOPs per input element (a grayscale pixel is a 3-term weighted sum: 6 per pixel)."""


@register_builtin_rule(*(getattr(image, name, None) for name in _PER_ELEMENT))
def per_element_image_op(op, call: LayerCall) -> LayerCost:
    """_PER_ELEMENT[op] per input element."""
    forward, backward = _PER_ELEMENT[type(op).__name__]
    n = elements(call.input_shape)
    return single_operand_cost(call, round(forward * n), round(backward * n))


@register_builtin_rule(getattr(image, "GaussianBlur", None))
def gaussian_blur_op(op, call: LayerCall) -> LayerCost:
    """A depthwise convolution with the Gaussian kernel: 2 per tap on real (not padding) pixels per element;
    the gradient as much."""
    spatial, other = _layout(call.input_shape, op.data_format)
    kernel = op.kernel_size if isinstance(op.kernel_size, (tuple, list)) else (op.kernel_size,) * 2
    taps = other * math.prod(_inbound_taps(size, k) for size, k in zip(spatial, kernel))
    return single_operand_cost(call, 2 * taps, 2 * taps)


def _inbound_taps(size: int, kernel: int) -> int:
    """Taps of a 'same' stride-1 convolution along one axis that fall on the input (XLA skips the others)."""
    left = (kernel - 1) // 2
    return sum(1 for o in range(size) for j in range(kernel) if 0 <= o - left + j < size)


_GEOMETRIC = {
    ("AffineTransform", "bilinear"): (120.5, 546), ("AffineTransform", "nearest"): (49.5, 49),
    ("PerspectiveTransform", "bilinear"): (12, 62), ("PerspectiveTransform", "nearest"): (5, 49),
}
"""(forward, image gradient) FLOPs per output element of resampling by a transform: the source coordinates,
the interpolation weights, the fill mode's masks and the weighted sum of the 4 (bilinear) or 1 (nearest)
gathered pixels; the gradient scatters the weighted cotangent back (XLA counts the affine scatter's index
arithmetic per element: 546).  A perspective transform also computes its coordinates per pixel (56 more per
pixel, whatever the channels)."""


@register_builtin_rule(getattr(image, "AffineTransform", None), getattr(image, "PerspectiveTransform", None))
def transform_op(op, call: LayerCall) -> LayerCost:
    """_GEOMETRIC[op, interpolation] per output element; the transform itself gets no gradient here."""
    key = (type(op).__name__, "nearest" if op.interpolation == "nearest" else "bilinear")
    forward, backward = _GEOMETRIC[key]
    n = elements(call.output_shape)
    channels = call.output_shape[-1] if op.data_format == "channels_last" else call.output_shape[-3]
    pixels = n // max(channels, 1)
    per_pixel = 56 * pixels if key[0] == "PerspectiveTransform" else 0
    grads = (round(backward * n),) + (0,) * (len(call.input_shapes) - 1)
    return LayerCost(elementwise_flops=round(forward * n) + per_pixel, operand_grad_flops=grads, keeps="inputs")


@register_builtin_rule(getattr(image, "MapCoordinates", None))
def map_coordinates_op(op, call: LayerCall) -> LayerCost:
    """Per output point and input dimension d: order 0 about 9 FLOPs (rounding, bounds), order 1 about 4 x 2^d
    (the 2^d corner weights and their sum) + 2 x d; gradients: the input's scatter (13 x d; order 1: 59 x 2^d,
    XLA counting the scatter's index arithmetic), the coordinates' 8 x 2^d."""
    rank = len(call.input_shapes[0])
    n = elements(call.output_shape)
    if op.order == 0:
        forward, grad_input, grad_coordinates = 9 * rank * n, 13 * rank * n, 0
    else:
        forward = (12 * 2 ** rank + 2 * rank) * n
        grad_input, grad_coordinates = 59 * 2 ** rank * n, 8 * 2 ** rank * n
    grads = (grad_input, grad_coordinates)[: len(call.input_shapes)]
    return LayerCost(elementwise_flops=forward, operand_grad_flops=grads, keeps="inputs")


@register_builtin_rule(getattr(image, "SSIM", None))
def ssim_op(op, call: LayerCall) -> LayerCost:
    """Five 'valid' Gaussian filterings per channel (means of x, y, x^2, y^2, xy: 2 per tap per output
    position), 3 products per input element and about 20 FLOPs per output position for the SSIM map; each
    image's gradient goes back through its filterings (XLA: 2.2 filterings' worth)."""
    spatial, other = _layout(call.input_shapes[0], op.data_format)
    k = op.filter_size
    positions = other * math.prod(max(size - k + 1, 0) for size in spatial)
    taps = 2 * k * k * positions
    n = elements(call.input_shapes[0])
    return LayerCost(elementwise_flops=5 * taps + 3 * n + 20 * positions,
                     operand_grad_flops=(round(2.2 * taps) + 20 * positions,) * len(call.input_shapes), keeps="inputs")


@register_builtin_rule(getattr(image, "ElasticTransform", None))
def elastic_transform_op(op, call: LayerCall) -> LayerCost:
    """Two random displacement fields (about 20 FLOPs per pixel each, for normal samples), each blurred by a
    Gaussian of 6 sigma taps per axis, and a bilinear resampling (as ``map_coordinates``, order 1, d = 3)."""
    spatial, other = _layout(call.input_shape, op.data_format)
    pixels = elements(call.input_shape) // max(other, 1) * (call.input_shape[0] if len(call.input_shape) == 4 else 1)
    sigma = float(op.sigma) if isinstance(op.sigma, (int, float)) else 5.0
    kernel = int(6 * sigma) | 1
    blur = 2 * 2 * pixels * math.prod(_inbound_taps(size, kernel) for size in spatial) // max(elements(spatial), 1)
    n = elements(call.input_shape)
    resample = (12 * 8 + 6) * n if op.interpolation != "nearest" else 27 * n
    return single_operand_cost(call, 2 * 20 * pixels + blur + resample, 64 * n)
