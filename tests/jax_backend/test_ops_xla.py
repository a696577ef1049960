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
import math
import re

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from xla_reference import compiled_flops

import nns_callbacks
from nns_callbacks.registry import fitting_rule
from nns_callbacks.symbolic import tensors as _tensors
from nns_callbacks.walk import ModelWalk

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
    "resize_crop_to_aspect": Case(lambda x: I.resize(x, (24, 16), crop_to_aspect_ratio=True), [IMAGES]),
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


# ---------------------------------------------------------------- free ops

_ARITHMETIC = ["add", "subtract", "multiply", "divide", "exponential", "exponential-minus-one", "log", "log-plus-one", "sqrt", "rsqrt", "cbrt", "power", "tanh", "logistic", "dot", "convolution", "negate", "abs", "maximum", "minimum", "sine", "cosine", "tan", "atan2", "erf", "remainder", "floor", "ceil", "round-nearest-afz", "round-nearest-even", "sign", "clamp", "reduce", "reduce-window", "select-and-scatter"]
_FLOAT_ARITHMETIC = re.compile(
    r"=\s*(?:bf16|f16|f32|f64|c64|c128)\[[^\]]*\][^ ]*\s+(" + "|".join(re.escape(a) for a in _ARITHMETIC) + r")\("
)


def float_arithmetic(program) -> list[str]:
    """The instructions of a compiled program that compute a floating-point value arithmetically."""
    return [m.group(0) for m in _FLOAT_ARITHMETIC.finditer(program.as_text())]


FREE_OPS = {
    "reshape": Case(lambda x: ops.reshape(x, (-1, 8)), [S]),
    "transpose": Case(lambda x: ops.transpose(x), [S]),
    "expand_dims": Case(lambda x: ops.expand_dims(x, 1), [S]),
    "squeeze": Case(lambda x: ops.squeeze(x[:, :1], 1), [S]),
    "concatenate": Case(lambda x, y: ops.concatenate([x, y], axis=-1), [S, S]),
    "stack": Case(lambda x, y: ops.stack([x, y]), [S, S]),
    "get_item": Case(lambda x: x[2:20, ::2], [S]),
    "split": Case(lambda x: ops.split(x, 4, axis=-1)[1], [S]),
    "array_split": Case(lambda x: ops.array_split(x, 3, axis=0)[0], [S]),
    "hstack": Case(lambda x, y: ops.hstack([x, y]), [S, S]),
    "vstack": Case(lambda x, y: ops.vstack([x, y]), [S, S]),
    "append": Case(lambda x, y: ops.append(x, y, axis=0), [S, S]),
    "flip": Case(lambda x: ops.flip(x, 0), [S]),
    "rot90": Case(lambda x: ops.rot90(x), [S]),
    "pad": Case(lambda x: ops.pad(x, ((1, 1), (2, 2))), [S]),
    "moveaxis": Case(lambda x: ops.moveaxis(x, 0, 1), [S]),
    "swapaxes": Case(lambda x: ops.swapaxes(x, 0, 1), [S]),
    "ravel": Case(lambda x: ops.ravel(x), [S]),
    "copy": Case(lambda x: ops.copy(x), [S]),
    "cast": Case(lambda x: ops.cast(x, "float16"), [S]),
    "slice": Case(lambda x: ops.slice(x, (1, 1), (8, 8)), [S]),
    "slice_update": Case(lambda x, y: ops.slice_update(x, (1, 1), y[:8, :8]), [S, S]),
    "stop_gradient": Case(lambda x: ops.stop_gradient(x), [S], wrt=[]),
    "unstack": Case(lambda x: ops.unstack(x)[0], [S]),
    "real": Case(lambda x: ops.real(x), [S]),
    "conjugate": Case(lambda x: ops.conjugate(x), [S]),
    "depth_to_space": Case(lambda x: ops.depth_to_space(x, 2), [(2, 8, 8, 16)]),
    "space_to_depth": Case(lambda x: ops.space_to_depth(x, 2), [(2, 8, 8, 16)]),
    "rearrange": Case(lambda x: ops.rearrange(x, "a b -> b a"), [S]),
    "crop_images": Case(lambda x: ops.image.crop_images(x, 2, 2, target_height=24, target_width=24), [IMAGES]),
    "pad_images": Case(lambda x: ops.image.pad_images(x, 2, 2, target_height=36, target_width=36), [IMAGES]),
    "zeros_like": Case(lambda x: ops.zeros_like(x), [S]),
    "ones_like": Case(lambda x: ops.ones_like(x), [S]),
    "full_like": Case(lambda x: ops.full_like(x, 2.0), [S]),
    "bitwise_and": Case(lambda x, y: ops.bitwise_and(x, y), [S, S], ["int32", "int32"]),
    "left_shift": Case(lambda x, y: ops.left_shift(x, y), [S, S], ["int32", "int32"]),
    "gcd": Case(lambda x, y: ops.gcd(x, y), [S, S], ["int32", "int32"]),
    "unravel_index": Case(lambda x: ops.unravel_index(x, (2, 2)), [S], ["int32"]),
}


@pytest.mark.parametrize("name", [n for n in FREE_OPS if _available(ops, n) or _available(ops.image, n)])
def test_free(name):
    """No floating-point arithmetic in XLA's program, forward or backward; XLA's count (index arithmetic,
    conversions) at most FREE_BOUND per output element; our count 0."""
    case = FREE_OPS[name]
    model = model_of(case)
    forward, total = ours(model, case)
    assert forward == total == 0
    reference_forward, reference_total, forward_program, training_program = xla(model, case)
    outputs = sum(math.prod(o.shape) for o in jax.tree_util.tree_leaves(jax.eval_shape(_jitted(model, False),
                                                                                      *arrays(case))))
    assert float_arithmetic(forward_program) == []
    if all("int" in d for d in case.dtypes):  # integer bookkeeping: XLA counts integer operations, not FLOPs
        return
    assert reference_forward <= FREE_BOUND * outputs
    if training_program is not None:
        assert float_arithmetic(training_program) == []
        assert reference_total <= FREE_BOUND * outputs + FREE_BOUND * sum(math.prod(case.shapes[i]) for i in case.wrt)


GATHERS = {
    "take": Case(lambda x, i: ops.take(x, i, axis=0), [S, (16,)], ["float32", "int32"]),
    "take_along_axis": Case(lambda x, i: ops.take_along_axis(x, i, axis=1), [S, S], ["float32", "int32"]),
    "diagonal": Case(lambda x: ops.diagonal(x), [S]),
    "diag": Case(lambda x: ops.diag(x), [S]),
    "roll": Case(lambda x: ops.roll(x, 3, axis=1), [S]),
}


@pytest.mark.parametrize("name", [n for n in GATHERS if _available(ops, n)])
def test_gather(name):
    """A gather: no floating-point arithmetic forward (XLA counts its integer index arithmetic); the gradient
    adds into the gathered positions, as XLA's program does: 1 per output element."""
    case = GATHERS[name]
    model = model_of(case)
    forward, total = ours(model, case)
    _, _, forward_program, training_program = xla(model, case)
    outputs = math.prod(jax.eval_shape(_jitted(model, False), *arrays(case)).shape)
    assert forward == 0 and float_arithmetic(forward_program) == []
    assert total == outputs and float_arithmetic(training_program) != []


@pytest.mark.parametrize(
    "case", [Case(lambda x: ops.diag(x), [(64,)]), Case(lambda x: ops.diagflat(x), [(64,)])], ids=["diag", "diagflat"])
def test_diagonal_matrices(case):
    check(case)


# ---------------------------------------------------------------- GELU inside a training step


def _gelu_model(activation):
    inputs = keras.Input((16, 64))
    hidden = L.Dense(256)(inputs)
    return keras.Model(inputs, L.Dense(32)(activation(hidden) if activation else hidden))


def _step_flops(model, batch: int) -> tuple[float, float]:
    """XLA's (inference call, jitted SGD training step with a mean-squared loss) FLOPs."""
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    x, y = jnp.ones((batch, 16, 64)), jnp.ones((batch, 16, 32))

    def loss(trainable, x, y):
        return jnp.mean((model.stateless_call(trainable, non_trainable, x, training=True)[0] - y) ** 2)

    def step(trainable, x, y):
        value, grads = jax.value_and_grad(loss)(trainable, x, y)
        return [w - 0.01 * g for w, g in zip(trainable, grads)], value

    def forward(trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    return (compiled_flops(jax.jit(forward).lower(trainable, x).compile()),
            compiled_flops(jax.jit(step).lower(trainable, x, y).compile()))


@pytest.mark.parametrize(
    "activation",
    [keras.ops.gelu, lambda h: keras.ops.gelu(h, approximate=False), L.Activation("gelu"),
     L.Activation(keras.ops.gelu), "dense_exact", "dense_ops_gelu"],
    ids=["ops.gelu", "ops.gelu_exact", "Activation(gelu)", "Activation(ops.gelu)", "Dense(gelu)",
         "Dense(ops.gelu)"],
)
def test_gelu_in_a_training_step(activation):
    """GELU's share of the step (the model less the same model without it): forward within 5%, training
    step within 15% of XLA's count of a jitted SGD step, where the derivative reuses the forward's erf."""
    batch = 8
    if isinstance(activation, str):
        inputs = keras.Input((16, 64))
        gelu = "gelu" if activation == "dense_exact" else keras.ops.gelu
        model = keras.Model(inputs, L.Dense(32)(L.Dense(256, activation=gelu)(inputs)))
    else:
        model = _gelu_model(activation)
    baseline = _gelu_model(None)
    forward, step = _step_flops(model, batch)
    base_forward, base_step = _step_flops(baseline, batch)
    cost = nns_callbacks.estimate(model, batch_size=batch, optimizer="sgd")
    base = nns_callbacks.estimate(baseline, batch_size=batch, optimizer="sgd")
    assert cost.forward_flops - base.forward_flops == pytest.approx(forward - base_forward, rel=FORWARD_TOLERANCE)
    assert cost.training_flops - base.training_flops == pytest.approx(step - base_step, rel=TRAINING_TOLERANCE)


# ---------------------------------------------------------------- resizing layers


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (lambda: L.Resizing(16, 16), (2, 32, 32, 3)),
        (lambda: L.Resizing(64, 48), (2, 32, 32, 3)),
        (lambda: L.Resizing(20, 30, interpolation="bicubic"), (2, 32, 24, 3)),
        (lambda: L.Resizing(16, 32, crop_to_aspect_ratio=True), (2, 32, 32, 3)),
        (lambda: L.CenterCrop(40, 40), (2, 32, 32, 3)),
        (lambda: L.UpSampling2D(2, interpolation="bilinear"), (2, 16, 16, 8)),
        (lambda: L.UpSampling2D((2, 3), interpolation="bicubic"), (2, 16, 16, 8)),
        (lambda: L.AutoContrast(), (2, 32, 32, 3)),
    ],
    ids=["down", "up", "bicubic", "crop_to_aspect", "center_crop_up", "upsampling_bilinear", "upsampling_bicubic",
         "auto_contrast"],
)
def test_resizing_layers(layer, shape):
    check(Case(lambda x: layer()(x), [shape]))


# ---------------------------------------------------------------- random augmentation in training mode

AUGMENTATIONS = {
    "RandomFlip": lambda: L.RandomFlip(),
    "RandomRotation": lambda: L.RandomRotation(0.2),
    "RandomRotation_constant_nearest": lambda: L.RandomRotation(0.2, fill_mode="constant", interpolation="nearest"),
    "RandomZoom": lambda: L.RandomZoom(0.2),
    "RandomTranslation": lambda: L.RandomTranslation(0.1, 0.1),
    "RandomShear": lambda: L.RandomShear(0.2),
    "RandomContrast": lambda: L.RandomContrast(0.2),
    "RandomBrightness": lambda: L.RandomBrightness(0.2),
    "RandomGrayscale": lambda: L.RandomGrayscale(),
    "RandomHue": lambda: L.RandomHue(0.2),
    "RandomSaturation": lambda: L.RandomSaturation(0.2),
    "RandomSharpness": lambda: L.RandomSharpness(0.2),
    "RandomPosterization": lambda: L.RandomPosterization(4, value_range=(0, 255)),
    "RandomInvert": lambda: L.RandomInvert(),
    "RandomColorDegeneration": lambda: L.RandomColorDegeneration(0.2),
    "RandomColorJitter": lambda: L.RandomColorJitter(brightness_factor=0.2, contrast_factor=0.2,
                                                     saturation_factor=0.2, hue_factor=0.2),
    "RandomErasing": lambda: L.RandomErasing(),
    "RandomGaussianBlur": lambda: L.RandomGaussianBlur(),
    "RandomPerspective": lambda: L.RandomPerspective(),
    "Solarization": lambda: L.Solarization(0.5),
    "MixUp": lambda: L.MixUp(),
    "CutMix": lambda: L.CutMix(),
}


@pytest.mark.parametrize("name", [n for n in AUGMENTATIONS if hasattr(L, n.split("_")[0])])
def test_augmentation_in_training_mode(name):
    """Inference: free (an identity, as XLA's program is); training mode: ``training_only_flops`` within 15% of
    XLA's count of the layer called with ``training=True`` (no gradient)."""
    shape = (4, 48, 40, 3)
    case = Case(lambda x: AUGMENTATIONS[name]()(x), [shape], wrt=[])
    model = model_of(case)
    forward, total = ours(model, case)
    inference, _, _, _ = xla(model, case, training=False)
    training, _, _, _ = xla(model, case, training=True)
    assert forward == 0 and inference <= FREE_BOUND * math.prod(shape)
    assert total == pytest.approx(training, rel=TRAINING_TOLERANCE)
