"""Products (matmul, einsum, tensordot, dot, inner, outer, vdot, kron, cross, trace, correlate, cdist) and
``keras.ops.linalg``.

Products are MACs (2 FLOPs each) where an index is summed over; a product with no summed
index (outer, kron) is a multiply per output element, as XLA counts it.  The gradient of
each operand is a product as large: 2 FLOPs per MAC, or 1 where nothing is summed in it.

Factorizations and solvers run as LAPACK (or cuSOLVER) calls that XLA's cost analysis
counts as about 0 FLOPs, so they follow textbook counts instead (Golub and Van Loan,
*Matrix Computations*, 4th ed., table 5.5.1 and sections 3.2, 4.2, 5.2, 8.3), 1 FLOP per
add or multiply, for an n x n (or m x n, m >= n) matrix and each of the batch.  Their
gradients are counted from the products and solves of the standard formulas (each said
below): again textbook counts, not XLA's.
"""

from __future__ import annotations

import math
import string

from ..keras_compat import OPS_LINALG as linalg
from ..keras_compat import OPS_MATH as kmath
from ..keras_compat import OPS_NUMPY as knp
from ..registry import LayerCall, LayerCost, register_builtin_rule
from .core import _expand_ellipsis as expand_ellipsis
from .core import einsum_sizes
from .ops import elements, pointwise_cost, single_operand_cost


def contraction_cost(sizes: dict, operands: list[str], output: str) -> LayerCost:
    """A product written as an einsum: MACs = the product of the sizes of all indices.

    With a summed index: 2 FLOPs per MAC, each operand's gradient 2 per MAC (1 where nothing
    is summed in it: the other operands' indices are all its own or the output's).  Without
    one, a multiply per output element per extra operand, each gradient 2 per MAC (1 if it
    sums nothing)."""
    indices = set("".join(operands)) | set(output)
    macs = math.prod(sizes.get(i, 1) for i in indices)
    summed = indices - set(output)
    grads = tuple(2 * macs if indices - set(spec) else macs for spec in operands)
    if summed:
        return LayerCost(macs=macs, operand_grad_flops=grads, keeps="inputs")
    return LayerCost(elementwise_flops=(len(operands) - 1) * macs, operand_grad_flops=grads, keeps="inputs")


def _letters(count: int, start: int = 0) -> str:
    """``count`` distinct index letters from ``start``; batch axes take 26 and up (upper case and beyond)."""
    return (string.ascii_letters + "".join(chr(0x100 + i) for i in range(64)))[start:start + count]


def _einsum(equation: str, *shapes) -> LayerCost:
    sizes, output = einsum_sizes(equation, *shapes)
    inputs = equation.replace(" ", "").split("->")[0].split(",")
    specs = [expand_ellipsis(spec, len(shape)) for spec, shape in zip(inputs, shapes)]
    return contraction_cost(sizes, specs, output)


def _sized(specs: list[str], shapes) -> dict:
    sizes: dict = {}
    for spec, shape in zip(specs, shapes):
        for letter, size in zip(spec, shape):
            sizes[letter] = max(sizes.get(letter, 1), int(size or 1))
    return sizes


def _product(specs: list[str], output: str, shapes) -> LayerCost:
    return contraction_cost(_sized(specs, shapes), specs, output)


@register_builtin_rule(getattr(knp, "Einsum", None))
def einsum_op(op, call: LayerCall) -> LayerCost:
    """MACs = the product of the sizes of all distinct indices; each operand's gradient 2 FLOPs per MAC."""
    return _einsum(op.subscripts, *call.input_shapes)


def _matmul_specs(a: tuple, b: tuple) -> tuple[list[str], str]:
    """Einsum specs of ``a @ b`` with numpy's rules for vectors and broadcast batch axes."""
    if len(a) == 1 and len(b) == 1:
        return ["k", "k"], ""
    if len(b) == 1:
        batch = _letters(len(a) - 1, 26)
        return [batch + "k", "k"], batch
    if len(a) == 1:
        batch = _letters(len(b) - 2, 26)
        return ["k", batch + "kn"], batch + "n"
    rank = max(len(a), len(b)) - 2
    batch = _letters(rank, 26)
    return [batch[rank - len(a) + 2:] + "mk", batch[rank - len(b) + 2:] + "kn"], batch + "mn"


@register_builtin_rule(getattr(knp, "Matmul", None))
def matmul_op(op, call: LayerCall) -> LayerCost:
    """MACs = output elements x the contracted size; each operand's gradient 2 FLOPs per MAC (1 for an outer product)."""
    a, b = call.input_shapes[:2]
    specs, output = _matmul_specs(a, b)
    return _product(specs, output, [a, b])


@register_builtin_rule(getattr(knp, "Dot", None))
def dot_op(op, call: LayerCall) -> LayerCost:
    """numpy.dot: a scalar operand multiplies; else the last axis of a with b's last (vector) or second-to-last."""
    if len(call.input_shapes) < 2 or not call.input_shapes[0] or not call.input_shapes[1]:
        return pointwise_cost(call, 1, (1, 1))
    a, b = call.input_shapes[:2]
    a_spec = _letters(len(a) - 1) + "z"
    if len(b) == 1:
        return _product([a_spec, "z"], a_spec[:-1], [a, b])
    b_spec = _letters(len(b) - 2, 20) + "z" + _letters(1, 30)
    return _product([a_spec, b_spec], a_spec[:-1] + b_spec[:-2] + b_spec[-1], [a, b])


@register_builtin_rule(getattr(knp, "Inner", None))
def inner_op(op, call: LayerCall) -> LayerCost:
    """The last axes of both operands summed: MACs = output elements x that size."""
    a, b = call.input_shapes[:2]
    if not a or not b:
        return pointwise_cost(call, 1, (1, 1))
    a_spec, b_spec = _letters(len(a) - 1) + "z", _letters(len(b) - 1, 20) + "z"
    return _product([a_spec, b_spec], a_spec[:-1] + b_spec[:-1], [a, b])


@register_builtin_rule(getattr(knp, "Outer", None))
def outer_op(op, call: LayerCall) -> LayerCost:
    """One multiply per output element; each gradient sums over the other operand: 2 per output element."""
    a, b = (elements(s) for s in call.input_shapes[:2])
    return _product(["i", "j"], "ij", [(a,), (b,)])


@register_builtin_rule(getattr(knp, "Vdot", None))
def vdot_op(op, call: LayerCall) -> LayerCost:
    """Both operands flattened and summed: 2 FLOPs per element; each gradient a multiply: 1 per element."""
    n = elements(call.input_shapes[0])
    return _product(["i", "i"], "", [(n,), (n,)])


@register_builtin_rule(getattr(knp, "Kron", None))
def kron_op(op, call: LayerCall) -> LayerCost:
    """A multiply per output element; each operand's gradient sums over the other's elements: 2 per output element."""
    a, b = call.input_shapes[:2]
    rank = max(len(a), len(b))
    a = (1,) * (rank - len(a)) + tuple(a)
    b = (1,) * (rank - len(b)) + tuple(b)
    a_spec, b_spec = _letters(rank), _letters(rank, 20)
    return _product([a_spec, b_spec], a_spec + b_spec, [a, b])


@register_builtin_rule(getattr(knp, "Tensordot", None))
def tensordot_op(op, call: LayerCall) -> LayerCost:
    """The last ``axes`` of a against the first of b (or the listed pairs); each operand's gradient 2 per MAC."""
    a, b = call.input_shapes[:2]
    axes = op.axes
    if isinstance(axes, int):
        pairs = list(zip(range(len(a) - axes, len(a)), range(axes)))
    else:
        first, second = ([x] if isinstance(x, int) else list(x) for x in axes)
        pairs = list(zip((i % len(a) for i in first), (j % len(b) for j in second)))
    a_spec = list(_letters(len(a)))
    b_spec = list(_letters(len(b), 20))
    for i, j in pairs:
        b_spec[j] = a_spec[i]
    contracted = {a_spec[i] for i, _ in pairs}
    output = "".join(c for c in a_spec + b_spec if c not in contracted)
    return _product(["".join(a_spec), "".join(b_spec)], output, [a, b])


@register_builtin_rule(getattr(knp, "Cross", None))
def cross_op(op, call: LayerCall) -> LayerCost:
    """Two multiplies and a subtract per output component: 3 per output element; each gradient 6."""
    return pointwise_cost(call, 3, (6, 6))


@register_builtin_rule(getattr(knp, "Trace", None))
def trace_op(op, call: LayerCall) -> LayerCost:
    """XLA masks the diagonal and sums: 2 per input element + 1 per entry of one matrix (the mask); backward 1 + 1."""
    shape = call.input_shape
    n = elements(shape)
    matrix = shape[op.axis1] * shape[op.axis2] if len(shape) >= 2 else n
    return single_operand_cost(call, 2 * n + matrix, n + matrix)


@register_builtin_rule(getattr(knp, "Correlate", None))
def correlate_op(op, call: LayerCall) -> LayerCost:
    """A 1-D convolution: MACs = output length x kernel length (taps on padding included); gradients 2 per MAC."""
    kernel = elements(call.input_shapes[1]) if len(call.input_shapes) > 1 else 1
    macs = elements(call.output_shape) * kernel
    return LayerCost(macs=macs, operand_grad_flops=(2 * macs,) * len(call.input_shapes), keeps="inputs")


@register_builtin_rule(getattr(kmath, "CDist", None))
def cdist_op(op, call: LayerCall) -> LayerCost:
    """Euclidean distances: subtract, square, add per (pair, feature) = 3, a root per pair; gradients 2 each."""
    features = call.input_shapes[0][-1]
    pairs = elements(call.output_shape)
    work = pairs * features
    return LayerCost(elementwise_flops=3 * work + pairs, operand_grad_flops=(2 * work,) * len(call.input_shapes),
                     keeps="inputs")


@register_builtin_rule(getattr(knp, "Vander", None))
def vander_op(op, call: LayerCall) -> LayerCost:
    """Powers by repeated multiplication: 1 per output element; gradient 4 per output element."""
    return single_operand_cost(call, elements(call.output_shape), 4 * elements(call.output_shape))


# ---------------------------------------------------------------- linear algebra (textbook counts)


def _matrix(shape) -> tuple[int, int, int]:
    """(batch, rows, columns) of a stack of matrices."""
    if len(shape) < 2:
        return 1, shape[0] if shape else 1, 1
    return elements(shape[:-2]), shape[-2], shape[-1]


def _svd_flops(m: int, n: int, vectors: bool) -> float:
    """Golub-Kahan-Reinsch: values 4mn^2 - 4n^3/3; with U and V, 4m^2 n + 8mn^2 + 9n^3 (m >= n)."""
    m, n = max(m, n), min(m, n)
    return 4 * m * m * n + 8 * m * n * n + 9 * n ** 3 if vectors else 4 * m * n * n - 4 * n ** 3 / 3


def _linalg(call: LayerCall, forward: float, backward: float, operands: int | None = None) -> LayerCost:
    count = len(call.input_shapes) if operands is None else operands
    grads = (round(backward),) + (0,) * (max(count, 1) - 1)
    return LayerCost(elementwise_flops=round(forward), operand_grad_flops=grads, keeps="inputs+outputs")


def _n(call: LayerCall) -> tuple[int, int, int]:
    return _matrix(call.input_shapes[0])


@register_builtin_rule(getattr(linalg, "Cholesky", None))
def cholesky_op(op, call: LayerCall) -> LayerCost:
    """n^3 / 3; gradient (two triangular solves and a product with L): n^3 per matrix."""
    b, n, _ = _n(call)
    return _linalg(call, b * n ** 3 / 3, b * n ** 3)


@register_builtin_rule(getattr(linalg, "CholeskyInverse", None))
def cholesky_inverse_op(op, call: LayerCall) -> LayerCost:
    """Inverting the triangular factor (n^3 / 3) and multiplying its transpose by it (2n^3 / 3); gradient 4n^3."""
    b, n, _ = _n(call)
    return _linalg(call, b * n ** 3, 4 * b * n ** 3)


@register_builtin_rule(*(getattr(linalg, name, None) for name in ("Det", "Slogdet", "LuFactor")),
                       getattr(knp, "Slogdet", None), getattr(kmath, "Logdet", None))
def lu_op(op, call: LayerCall) -> LayerCost:
    """LU with partial pivoting: 2n^3 / 3 (+ n for a determinant); gradient: the inverse from the factors, 4n^3 / 3."""
    b, n, _ = _n(call)
    return _linalg(call, b * (2 * n ** 3 / 3 + n), b * 4 * n ** 3 / 3)


@register_builtin_rule(getattr(linalg, "Inv", None))
def inv_op(op, call: LayerCall) -> LayerCost:
    """LU (2n^3 / 3) and inverting from it (4n^3 / 3): 2n^3; gradient -A^-T G A^-T: two products, 4n^3."""
    b, n, _ = _n(call)
    return _linalg(call, 2 * b * n ** 3, 4 * b * n ** 3)


@register_builtin_rule(getattr(linalg, "Solve", None))
def solve_op(op, call: LayerCall) -> LayerCost:
    """LU (2n^3 / 3) and two triangular solves per right-hand side (2n^2 k); gradient: a solve with A^T (2n^2 k)
    for b, and its outer product with x (2n^2 k) for A."""
    b, n, _ = _n(call)
    rhs = call.input_shapes[1] if len(call.input_shapes) > 1 else (n, 1)
    k = rhs[-1] if len(rhs) == len(call.input_shapes[0]) else 1
    solves = 2 * n * n * k * b
    grads = (round(b * 2 * n ** 3 / 3 + 2 * solves), round(solves))[: len(call.input_shapes)]
    return LayerCost(elementwise_flops=round(b * 2 * n ** 3 / 3 + solves), operand_grad_flops=grads,
                     keeps="inputs+outputs")


@register_builtin_rule(getattr(linalg, "SolveTriangular", None))
def solve_triangular_op(op, call: LayerCall) -> LayerCost:
    """Substitution: n^2 per right-hand side; gradient: a solve with the transpose (n^2 k) and a product (2n^2 k)."""
    b, n, _ = _n(call)
    rhs = call.input_shapes[1] if len(call.input_shapes) > 1 else (n, 1)
    k = rhs[-1] if len(rhs) == len(call.input_shapes[0]) else 1
    grads = (2 * b * n * n * k, b * n * n * k)[: len(call.input_shapes)]
    return LayerCost(elementwise_flops=b * n * n * k, operand_grad_flops=grads, keeps="inputs+outputs")


@register_builtin_rule(getattr(linalg, "Qr", None))
def qr_op(op, call: LayerCall) -> LayerCost:
    """Householder QR of m x n: R 2mn^2 - 2n^3/3, forming Q as many again (reduced); gradient: 3 products, 6mn^2."""
    b, m, n = _n(call)
    k = min(m, n)
    return _linalg(call, b * 2 * (2 * m * n * k - 2 * k ** 3 / 3), b * 6 * m * n * k)


@register_builtin_rule(getattr(linalg, "SVD", None))
def svd_op(op, call: LayerCall) -> LayerCost:
    """Golub-Kahan-Reinsch: with U and V 4m^2 n + 8mn^2 + 9n^3, values only 4mn^2 - 4n^3/3; gradient 3 products of U, S, V."""
    b, m, n = _n(call)
    vectors = getattr(op, "compute_uv", True)
    k = min(m, n)
    return _linalg(call, b * _svd_flops(m, n, vectors), b * 6 * m * n * k)


@register_builtin_rule(getattr(linalg, "Pinv", None), getattr(linalg, "Lstsq", None))
def pinv_op(op, call: LayerCall) -> LayerCost:
    """An SVD with vectors and the product V S^-1 U^T (2mn^2); lstsq multiplies that by b; gradient 3 products, 6mn^2."""
    b, m, n = _n(call)
    k = min(m, n)
    flops = _svd_flops(m, n, True) + 2 * m * n * k
    if len(call.input_shapes) > 1:
        flops += 2 * m * n * call.input_shapes[1][-1] if len(call.input_shapes[1]) > 1 else 2 * m * n
    return _linalg(call, b * flops, b * 6 * m * n * k)


@register_builtin_rule(getattr(linalg, "MatrixRank", None))
def matrix_rank_op(op, call: LayerCall) -> LayerCost:
    """Singular values (4mn^2 - 4n^3/3) compared with a tolerance; no gradient."""
    b, m, n = _n(call)
    return single_operand_cost(call, round(b * _svd_flops(m, n, False)), None)


@register_builtin_rule(getattr(linalg, "Eigh", None))
def eigh_op(op, call: LayerCall) -> LayerCost:
    """Symmetric QR with vectors: 9n^3 (tridiagonalization 4n^3/3 and accumulating the rotations); gradient
    V (F o V^T G V) V^T: three products, 6n^3."""
    b, n, _ = _n(call)
    return _linalg(call, b * 9 * n ** 3, b * 6 * n ** 3)


@register_builtin_rule(getattr(linalg, "Eig", None))
def eig_op(op, call: LayerCall) -> LayerCost:
    """Francis QR with vectors of a general matrix: 25n^3; gradient: a solve and three products, 8n^3."""
    b, n, _ = _n(call)
    return _linalg(call, b * 25 * n ** 3, b * 8 * n ** 3)


@register_builtin_rule(getattr(linalg, "Norm", None))
def norm_op(op, call: LayerCall) -> LayerCost:
    """Vector and Frobenius norms: 2 per element (square and add, 1 root per result), gradient 2;
    other vector orders |x|^p: 4, gradient 7; a matrix 2-norm or nuclear norm: singular values."""
    order = getattr(op, "ord", None)
    n = elements(call.input_shape)
    axis = getattr(op, "axis", None)
    matrix = (axis is None and len(call.input_shape) == 2) or (isinstance(axis, (tuple, list)) and len(axis) == 2)
    if matrix and order in (2, -2, "nuc"):
        b, m, k = _n(call)
        return single_operand_cost(call, round(b * _svd_flops(m, k, False)), round(b * 6 * m * k * min(m, k)))
    if order in (None, "fro", 2, "euclidean"):
        return single_operand_cost(call, 2 * n, 2 * n)
    if order in (1, float("inf"), -float("inf")):
        return single_operand_cost(call, 2 * n, 5 * n)
    return single_operand_cost(call, 4 * n, 7 * n)


@register_builtin_rule(getattr(knp, "Corrcoef", None))
def corrcoef_op(op, call: LayerCall) -> LayerCost:
    """The covariance product (rows^2 x observations MACs) and normalising each entry: 6 per input element;
    gradient 2 products (4 per MAC) and 31 per input element."""
    shape = call.input_shape
    rows, observations = (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])
    macs = rows * rows * observations
    n = elements(shape)
    return LayerCost(elementwise_flops=2 * macs + 6 * n, operand_grad_flops=(4 * macs + 31 * n,), keeps="inputs")
