"""Keras ops against XLA's count of their JAX implementation (CPU), one op per model.

Each costed op: forward within 5% of XLA's count of the jitted inference call, and forward +
gradient (a VJP with respect to the listed float inputs, cotangent passed in) within 15%.
Each free op: no floating-point arithmetic in XLA's compiled program, forward or VJP (copies,
selects and conversions only; XLA's count there is integer index arithmetic and conversions,
at most ``FREE_BOUND`` per output element).  Linear algebra runs as LAPACK calls that XLA counts
as about 0, so those ops are compared with their textbook formulas in ``tests/test_rules.py``
instead.  Also here: GELU inside a jitted training step, the resizing layers and the random
augmentation layers in training mode.
"""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from xla_reference import compiled_flops

import nns_callbacks
from nns_callbacks.registry import fitting_rule
from nns_callbacks.walk import ModelWalk, _tensors

ops = keras.ops
L = keras.layers
FORWARD_TOLERANCE = 0.05
TRAINING_TOLERANCE = 0.15
FREE_BOUND = 2.0
"""XLA's count of a free op, per output element, at most (index arithmetic of gathers, conversions)."""


@dataclasses.dataclass
class Case:
    fn: object
    shapes: list
    dtypes: list | None = None
    wrt: list | None = None  # float inputs whose gradient the VJP takes (default: all float inputs)
    forward_only: str | None = None  # why the gradient is not compared
    direct: object = None  # XLA's reference from this function of arrays, where the op fails in a model

    def __post_init__(self):
        self.dtypes = self.dtypes or ["float32"] * len(self.shapes)
        if self.wrt is None:
            self.wrt = [i for i, d in enumerate(self.dtypes) if "float" in d]


def arrays(case: Case, low=0.1, high=0.9):
    rng = np.random.default_rng(0)
    out = []
    for shape, dtype in zip(case.shapes, case.dtypes):
        if "int" in dtype:
            out.append(jnp.asarray(rng.integers(0, 4, shape), dtype=dtype))
        elif dtype == "bool":
            out.append(jnp.asarray(rng.integers(0, 2, shape).astype(bool)))
        else:
            out.append(jnp.asarray(rng.uniform(low, high, shape), dtype=dtype))
    return out


def model_of(case: Case):
    inputs = [keras.Input(batch_shape=s, dtype=d) for s, d in zip(case.shapes, case.dtypes)]
    return keras.Model(inputs, case.fn(*inputs))


def ours(model, case: Case, training: bool = True) -> tuple[int, int]:
    """(forward, forward + the gradients of the ``wrt`` inputs and training-only work) from the rules."""
    specs = [keras.KerasTensor(s, dtype=d) for s, d in zip(case.shapes, case.dtypes)]
    walk = ModelWalk()
    walk.run(model, specs)
    assert not walk.unsupported, walk.unsupported
    needs = {id(specs[i]): True for i in case.wrt}
    forward = total = 0
    for leaf in walk.leaves:
        cost = fitting_rule(leaf.layer)(leaf.layer, leaf.call)
        operands = [needs.get(id(x), False) for x in _tensors((leaf.call.args, leaf.call.kwargs))]
        flows = any(operands)
        backward = cost.training_only_flops if training else 0
        if flows:
            backward += cost.input_grad_flops + cost.internal_grad_flops
            backward += sum(g for g, n in zip(cost.operand_grad_flops or (), operands) if n)
        forward += cost.forward_flops
        total += cost.forward_flops + backward
        for tensor_id, _, _ in leaf.outputs:
            needs[tensor_id] = flows
    return forward, total


def _jitted(model, training: bool):
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def call(*xs):
        return model.stateless_call(trainable, non_trainable, list(xs) if len(xs) > 1 else xs[0], training=training)[0]

    return call


def xla(model, case: Case, training: bool = False, gradient: bool = True):
    """XLA's compiled (forward, forward + VJP w.r.t. ``case.wrt``) and the two compiled programs."""
    xs = arrays(case)
    call = case.direct or _jitted(model, training)
    forward_program = jax.jit(call).lower(*xs).compile()
    if not gradient or not case.wrt:
        return compiled_flops(forward_program), None, forward_program, None
    outputs = jax.eval_shape(call, *xs)
    cotangents = jax.tree_util.tree_map(lambda o: jnp.full(o.shape, 0.5, o.dtype), outputs)

    def step(xs, cotangents):
        def partial(*values):
            full = list(xs)
            for i, v in zip(case.wrt, values):
                full[i] = v
            return call(*full)

        out, pullback = jax.vjp(partial, *[xs[i] for i in case.wrt])
        return out, pullback(cotangents)

    training_program = jax.jit(step).lower(xs, cotangents).compile()
    return compiled_flops(forward_program), compiled_flops(training_program), forward_program, training_program


def check(case: Case, training_mode: bool = False):
    model = model_of(case)
    forward, total = ours(model, case)
    reference_forward, reference_total, _, _ = xla(model, case, training_mode, gradient=not case.forward_only)
    assert forward == pytest.approx(reference_forward, rel=FORWARD_TOLERANCE, abs=8), (forward, reference_forward)
    if reference_total is not None:
        assert total == pytest.approx(reference_total, rel=TRAINING_TOLERANCE, abs=8), (total, reference_total)


# ---------------------------------------------------------------- elementwise, reductions, scans

def _names(text: str) -> list[str]:
    return text.split()


S = (32, 64)  # XLA's CPU reductions count rows of other lengths as if padded to a power of two
UNARY = _names("absolute negative square sqrt exp exp2 log log2 log10 log1p expm1 sin cos tan arcsin arccos arctan sinh "
         "cosh tanh arcsinh arctanh reciprocal sign round floor ceil trunc fabs cbrt deg2rad rad2deg sinc i0 erf "
         "erfc erfinv rsqrt nan_to_num signbit isnan isinf isfinite isneginf isposinf")
BINARY = _names("add subtract multiply divide true_divide divide_no_nan maximum minimum fmax fmin fmod power mod "
          "floor_divide hypot arctan2 logaddexp logaddexp2 heaviside equal not_equal greater greater_equal less "
          "less_equal isclose")
REDUCTIONS = _names("sum mean max min amax amin prod var std average ptp count_nonzero argmax argmin nanargmax nanargmin "
              "nanmax nanmin nanmean nanprod nansum nanvar nanstd logsumexp cumsum cumprod nancumsum trapezoid "
              "median nanmedian sort argsort")  # quantile: Keras 3.15 on JAX fails with an axis
ACTIVATIONS = _names("relu relu6 sigmoid softplus softsign silu leaky_relu hard_sigmoid hard_silu elu selu gelu softmax "
               "log_softmax log_sigmoid celu glu sparse_plus sparse_sigmoid squareplus hard_tanh hard_shrink "
               "soft_shrink tanh_shrink sparsemax")


def _available(namespace, case: str) -> bool:
    """Whether the function a case is named after (its longest prefix of ``_``-separated words) exists here."""
    words = case.split("_")
    return any(hasattr(namespace, "_".join(words[:i])) for i in range(len(words), 0, -1)) and (
        not case.endswith("_3d") or hasattr(namespace, case))


def _present(names):
    return [n for n in names if hasattr(ops, n)]


@pytest.mark.parametrize("name", _present(UNARY))
def test_unary(name):
    check(Case(lambda x: getattr(ops, name)(x), [S]))


@pytest.mark.parametrize("name", _present(BINARY))
def test_binary(name):
    check(Case(lambda x, y: getattr(ops, name)(x, y), [S, S]))


@pytest.mark.parametrize(
    "fn",
    [lambda x, y: x + y, lambda x, y: x * y, lambda x, y: x - y, lambda x, y: x / y, lambda x, y: ops.maximum(x, y)],
    ids=["add", "multiply", "subtract", "divide", "maximum"],
)
def test_binary_broadcast(fn):
    check(Case(fn, [S, S[-1:]]))


@pytest.mark.parametrize(
    "fn", [lambda x: x**2, lambda x: x**3, lambda x: x**0.5, lambda x: 2.0**x, lambda x: x / 3.0, lambda x: 3.0 / x,
           lambda x: 3.0 - x, lambda x: ops.clip(x, 0.2, 0.7), lambda x: ops.arccosh(x + 1.0)],
    ids=["square", "cube", "root", "exp2", "divide_by", "divide_into", "rsubtract", "clip", "arccosh"])
def test_with_a_number(fn):
    check(Case(fn, [S]))


@pytest.mark.parametrize("name", _present(REDUCTIONS))
def test_reduction(name):
    fn = getattr(ops, name)
    extra = {"quantile": (0.3,), "percentile": (30.0,)}.get(name, ())
    check(Case(lambda x: fn(x, *extra, axis=-1), [S]))


@pytest.mark.parametrize("name", _present(ACTIVATIONS))
def test_activation(name):
    check(Case(lambda x: getattr(ops, name)(x), [S]))


@pytest.mark.parametrize(
    ("fn", "shapes", "dtypes", "wrt"),
    [
        (lambda c, x, y: ops.where(c > 0.5, x, y), [S, S, S], None, [1, 2]),
        (lambda x, y: ops.logical_and(x > 0.5, y > 0.5), [S, S], None, []),
        (lambda x: ops.logical_not(x > 0.5), [S], None, []),
        (lambda x: ops.all(x > 0.5, axis=-1), [S], None, []),
        (lambda x: ops.tril(x), [S], None, None),
        (lambda x: ops.diff(x), [S], None, None),
        (lambda x: ops.one_hot(x, 16), [S], ["int32"], []),
        (lambda x: ops.multi_hot(x, 16), [S], ["int32"], []),
        (lambda x, b: ops.digitize(x, b), [S, (3,)], None, []),
        (lambda x, y: ops.isin(x, y), [S, (16,)], ["int32", "int32"], []),
        (lambda x, s: ops.segment_sum(x, s[:, 0], num_segments=8), [S, S], ["float32", "int32"], None),
        (lambda x, w: ops.average(x, axis=-1, weights=w), [S, S], None, None),
        (lambda a, b: ops.linspace(a, b, 16), [(64,), (64,)], None, None),
        (lambda x: ops.saturate_cast(x * 300.0, "uint8"), [S], None, []),
        (lambda x: ops.tile(x, (2, 3)), [S], None, None),
        (lambda x: ops.repeat(x, 3, axis=0), [S], None, None),
        (lambda x: ops.broadcast_to(x, (8, *S)), [S], None, None),
        (lambda x, y: ops.select([x > 0.5], [y]), [S, S], None, [1]),
    ],
    ids=["where", "logical_and", "logical_not", "all", "tril", "diff", "one_hot", "multi_hot", "digitize", "isin",
         "segment_sum", "weighted_average", "linspace", "saturate_cast", "tile", "repeat", "broadcast_to", "select"],
)
def test_other_elementwise(fn, shapes, dtypes, wrt):
    check(Case(fn, shapes, dtypes, wrt))


# ---------------------------------------------------------------- products

PRODUCTS = {
    "matmul": (lambda a, b: ops.matmul(a, b), [(4, 24, 32), (4, 32, 16)]),
    "matmul_vector": (lambda a, b: ops.matmul(a, b), [(24, 32), (32,)]),
    "einsum": (lambda a, b: ops.einsum("bij,bjk->bik", a, b), [(4, 24, 32), (4, 32, 16)]),
    "einsum_outer": (lambda a, b: ops.einsum("bi,bj->bij", a, b), [(4, 32), (4, 24)]),
    "tensordot": (lambda a, b: ops.tensordot(a, b, axes=2), [(4, 8, 16), (8, 16, 12)]),
    "tensordot_pairs": (lambda a, b: ops.tensordot(a, b, axes=([0, 2], [1, 0])), [(8, 6, 16), (16, 8, 12)]),
    "dot": (lambda a, b: ops.dot(a, b), [(3, 8, 16), (2, 16, 12)]),
    "dot_vector": (lambda a, b: ops.dot(a, b), [(8, 16), (16,)]),
    "inner": (lambda a, b: ops.inner(a, b), [(8, 32), (12, 32)]),
    "outer": (lambda a, b: ops.outer(a, b), [(64,), (48,)]),
    "vdot": (lambda a, b: ops.vdot(a, b), [(256,), (256,)]),
    "kron": (lambda a, b: ops.kron(a, b), [(8, 8), (4, 6)]),
    "cross": (lambda a, b: ops.cross(a, b), [(256, 3), (256, 3)]),
    "trace": (lambda a: ops.trace(a, axis1=1, axis2=2), [(4, 32, 32)]),
    "correlate": (lambda a, b: ops.correlate(a, b, mode="valid"), [(256,), (16,)]),
    "cdist": (lambda a, b: ops.cdist(a, b), [(32, 16), (24, 16)]),
    "vander": (lambda a: ops.vander(a, 8), [(64,)]),
    "corrcoef": (lambda a: ops.corrcoef(a), [(32, 64)]),
}


@pytest.mark.parametrize("name", [n for n in PRODUCTS if _available(ops, n)])
def test_product(name):
    fn, shapes = PRODUCTS[name]
    check(Case(fn, shapes))


# ---------------------------------------------------------------- nn ops

X = (2, 16, 16, 8)
NN = {
    "conv": Case(lambda x, k: ops.conv(x, k), [X, (3, 3, 8, 12)]),
    "conv_strided_dilated": Case(lambda x, k: ops.conv(x, k, strides=2, dilation_rate=1), [X, (3, 3, 8, 12)]),
    "conv_1d": Case(lambda x, k: ops.conv(x, k), [(2, 64, 8), (5, 8, 16)]),
    "depthwise_conv": Case(lambda x, k: ops.depthwise_conv(x, k), [X, (3, 3, 8, 2)]),
    "separable_conv": Case(lambda x, k, p: ops.separable_conv(x, k, p), [X, (3, 3, 8, 2), (1, 1, 16, 12)]),
    # Keras 3.15's ConvTranspose.call passes output_padding where the backend takes padding: XLA's count of
    # the function called on arrays instead
    "conv_transpose": Case(lambda x, k: ops.conv_transpose(x, k, strides=2), [(2, 8, 8, 8), (3, 3, 12, 8)],
                           direct=lambda x, k: ops.conv_transpose(x, k, strides=2)),
    "average_pool": Case(lambda x: ops.average_pool(x, 2, 2), [X], forward_only="the transposed window sum"),
    "max_pool": Case(lambda x: ops.max_pool(x, 3, 1), [X], forward_only="select-and-scatter index arithmetic"),
    "adaptive_average_pool": Case(lambda x: ops.adaptive_average_pool(x, (4, 4)), [(2, 32, 32, 8)]),
    "adaptive_max_pool": Case(lambda x: ops.adaptive_max_pool(x, (4, 4)), [(2, 32, 32, 8)],
                              forward_only="select-and-scatter index arithmetic"),
    "batch_normalization": Case(lambda x, m, v, b, g: ops.batch_normalization(x, m, v, axis=-1, offset=b, scale=g),
                                [X, (8,), (8,), (8,), (8,)], wrt=[0, 3, 4]),
    "layer_normalization": Case(lambda x, g, b: ops.layer_normalization(x, g, b, axis=-1), [(32, 64), (64,), (64,)]),
    "layer_normalization_plain": Case(lambda x: ops.layer_normalization(x, axis=-1), [(32, 64)]),
    "rms_normalization": Case(lambda x, g: ops.rms_normalization(x, g, axis=-1), [(32, 64), (64,)]),
    "moments": Case(lambda x: ops.moments(x, axes=[-1]), [(32, 64)]),
    "normalize": Case(lambda x: ops.normalize(x, axis=-1), [(32, 64)]),
    "binary_crossentropy": Case(lambda t, p: ops.binary_crossentropy(t, p), [(16, 256)] * 2, wrt=[1]),
    "binary_crossentropy_logits": Case(lambda t, p: ops.binary_crossentropy(t, p, from_logits=True), [(16, 256)] * 2),
    "categorical_crossentropy": Case(lambda t, p: ops.categorical_crossentropy(t, p), [(16, 256)] * 2, wrt=[1]),
    "categorical_crossentropy_logits": Case(
        lambda t, p: ops.categorical_crossentropy(t, p, from_logits=True), [(16, 256)] * 2, wrt=[1]),
    "sparse_categorical_crossentropy": Case(
        lambda t, p: ops.sparse_categorical_crossentropy(t, p), [(16,), (16, 256)], ["int32", "float32"]),
    "sparse_categorical_crossentropy_logits": Case(
        lambda t, p: ops.sparse_categorical_crossentropy(t, p, from_logits=True), [(16,), (16, 256)],
        ["int32", "float32"]),
    "psnr": Case(lambda a, b: ops.psnr(a, b, 1.0), [(16, 256)] * 2, wrt=[0]),
    "unfold": Case(lambda x: ops.unfold(x, 3), [(2, 8, 16, 16)]),
    "fold": Case(lambda x: ops.fold(x, (16, 16), 3), [(2, 72, 196)]),
    "dot_product_attention": Case(lambda q, k, v: ops.dot_product_attention(q, k, v), [(2, 16, 4, 8)] * 3),
}


@pytest.mark.parametrize("name", [n for n in NN if _available(ops, n)])
def test_nn(name):
    check(NN[name])


# ---------------------------------------------------------------- image and signal ops

I = ops.image
IMAGES = (2, 32, 32, 3)
IMAGE_OPS = {
    "resize_bilinear_up": Case(lambda x: I.resize(x, (64, 64)), [IMAGES]),
    "resize_bilinear_down4": Case(lambda x: I.resize(x, (8, 8)), [IMAGES]),
    "resize_bilinear_mixed": Case(lambda x: I.resize(x, (40, 20)), [(2, 32, 24, 4)]),
    "resize_bicubic": Case(lambda x: I.resize(x, (48, 48), interpolation="bicubic"), [IMAGES]),
    "resize_lanczos3": Case(lambda x: I.resize(x, (16, 24), interpolation="lanczos3"), [IMAGES]),
    "resize_lanczos5": Case(lambda x: I.resize(x, (48, 40), interpolation="lanczos5"), [IMAGES]),
    "resize_nearest": Case(lambda x: I.resize(x, (64, 64), interpolation="nearest"), [(2, 32, 32, 16)]),
    "resize_crop_to_aspect": Case(lambda x: I.resize(x, (16, 32), crop_to_aspect_ratio=True), [IMAGES]),
    "extract_patches": Case(lambda x: I.extract_patches(x, 4), [IMAGES]),
    "extract_patches_overlapping": Case(lambda x: I.extract_patches(x, 3, strides=1), [(2, 16, 16, 3)]),
    "extract_patches_3d": Case(lambda x: I.extract_patches_3d(x, 2), [(2, 8, 16, 16, 3)]),
    "rgb_to_grayscale": Case(lambda x: I.rgb_to_grayscale(x), [IMAGES]),
    "rgb_to_hsv": Case(lambda x: I.rgb_to_hsv(x), [IMAGES]),
    "hsv_to_rgb": Case(lambda x: I.hsv_to_rgb(x), [IMAGES]),
    "gaussian_blur": Case(lambda x: I.gaussian_blur(x), [IMAGES]),
    "gaussian_blur_5": Case(lambda x: I.gaussian_blur(x, kernel_size=(5, 5), sigma=(1.5, 1.5)), [IMAGES]),
    "sobel_edges": Case(lambda x: I.sobel_edges(x), [IMAGES]),
    "affine_transform": Case(lambda x, t: I.affine_transform(x, t), [IMAGES, (2, 8)], wrt=[0]),
    "affine_transform_nearest": Case(lambda x, t: I.affine_transform(x, t, interpolation="nearest"),
                                     [IMAGES, (2, 8)], wrt=[0]),
    "perspective_transform": Case(lambda x, s, e: I.perspective_transform(x, s, e), [IMAGES, (2, 4, 2), (2, 4, 2)],
                                  wrt=[0]),
    "map_coordinates": Case(lambda x, c: I.map_coordinates(x, c, order=1), [(16, 16, 3), (3, 16, 16, 3)], wrt=[0]),
    "map_coordinates_nearest": Case(lambda x, c: I.map_coordinates(x, c, order=0), [(16, 16, 3), (3, 16, 16, 3)],
                                    wrt=[0]),
    "ssim": Case(lambda a, b: I.ssim(a, b), [IMAGES, IMAGES]),
}


@pytest.mark.parametrize("name", [n for n in IMAGE_OPS if _available(I, n)])
def test_image(name):
    check(IMAGE_OPS[name])


SIGNAL_OPS = {
    "fft": Case(lambda r, i: ops.fft((r, i)), [(8, 64), (8, 64)]),
    "fft_100": Case(lambda r, i: ops.fft((r, i)), [(8, 100), (8, 100)]),
    "fft2": Case(lambda r, i: ops.fft2((r, i)), [(4, 32, 32), (4, 32, 32)]),
    "ifft2": Case(lambda r, i: ops.ifft2((r, i)), [(4, 16, 32), (4, 16, 32)]),
    "rfft": Case(lambda r: ops.rfft(r), [(8, 256)]),
    "irfft": Case(lambda r, i: ops.irfft((r, i)), [(8, 129), (8, 129)]),
    "stft": Case(lambda x: ops.stft(x, 64, 16, 64), [(2, 1024)]),
    "stft_no_center": Case(lambda x: ops.stft(x, 48, 16, 64, center=False), [(2, 1024)]),
    "istft": Case(lambda r, i: ops.istft((r, i), 64, 16, 64), [(2, 61, 33), (2, 61, 33)]),
    "extract_sequences": Case(lambda x: ops.extract_sequences(x, 64, 16), [(2, 1024)]),
}


@pytest.mark.parametrize("name", [n for n in SIGNAL_OPS if _available(ops, n)])
def test_signal(name):
    check(SIGNAL_OPS[name])
