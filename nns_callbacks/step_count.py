"""The FLOPs of one training step as it runs, counted by the backend's own means (the HFU side).

* JAX: XLA's cost analysis of the model's ``train_step`` lowered (not compiled, not run) from
  the shapes of the first step's state and data, with what XLA counts wrongly put right: the
  body of a loop with a static trip count (``scan``, ``fori_loop``, ``ops.scan``, unrolled or not)
  is counted once by XLA, so it is multiplied by its trip count; library calls (LAPACK on the
  CPU) count about nothing, so they are costed from textbook formulas; a ``while_loop`` whose
  trip count is not known before it runs is counted once and listed.
* torch: ``torch.utils.flop_counter.FlopCounterMode`` around one real step: matrix products,
  convolutions and attention; elementwise work is left out, and said so.
* TensorFlow: not counted (no cheap counter); the callback asks for ``flops_per_step=``.

A FLOP is one floating-point operation (a multiply-add is 2); a transcendental counts as 1.
"""

from __future__ import annotations

import dataclasses
import itertools
import math


@dataclasses.dataclass(frozen=True)
class CountedStep:
    """``flops`` of one training step as counted by ``source``; ``left_out``: what the count misses."""

    flops: float
    source: str
    left_out: tuple[str, ...] = ()


JAX_SOURCE = "XLA cost analysis of the lowered train_step (loop bodies x trip count, library calls by formula)"
TORCH_SOURCE = "torch FlopCounterMode over one step (matrix products, convolutions, attention)"
TORCH_LEFT_OUT = "elementwise work (activations, normalisation, optimizer update): FlopCounterMode counts none"


def xla_flops(stage) -> float | None:
    """FLOPs + transcendentals of a lowered or compiled JAX computation; ``None`` where XLA cannot tell."""
    analysis = stage.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    flops = float((analysis or {}).get("flops", -1.0))
    if flops < 0:
        return None
    return flops + max(float(analysis.get("transcendentals", 0.0) or 0.0), 0.0)


def count_jax_step(step_function, state, data) -> CountedStep:
    """XLA's count of ``step_function(state, data)`` lowered from their shapes, loops and library calls put right."""
    import jax

    def spec(x):
        return jax.ShapeDtypeStruct(tuple(x.shape), x.dtype) if hasattr(x, "shape") and hasattr(x, "dtype") else x

    state, data = jax.tree_util.tree_map(spec, (state, data))
    traced = jax.jit(step_function).trace(state, data)
    left_out: set[str] = set()
    total = xla_flops(traced.lower())
    if total is None:
        left_out.add("XLA could not count the whole step (an op of unknown cost): the parts it could are summed")
        total = 0.0
    total += _corrections(traced.jaxpr.jaxpr, left_out)
    return CountedStep(total, JAX_SOURCE, tuple(sorted(left_out)))


def _corrections(jaxpr, left_out: set) -> float:
    """FLOPs XLA's count of ``jaxpr`` misses: loop bodies beyond their first iteration, library calls."""
    extra = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "scan":
            body = eqn.params["jaxpr"]
            length = int(eqn.params["length"])
            extra += (length - 1) * _body_flops(body, left_out) + length * _corrections(body.jaxpr, left_out)
        elif name == "while":
            left_out.add("while_loop bodies, whose trip count is unknown before they run: counted once")
            extra += sum(_corrections(sub, left_out) for sub in _sub_jaxprs(eqn.params))
        elif name in LIBRARY_FLOPS:
            extra += LIBRARY_FLOPS[name](eqn)
        else:
            extra += sum(_corrections(sub, left_out) for sub in _sub_jaxprs(eqn.params))
    return extra


def _body_flops(closed, left_out: set) -> float:
    """XLA's count of a loop body lowered alone."""
    import jax
    from jax.extend import core

    args = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in closed.jaxpr.invars]
    flops = xla_flops(jax.jit(core.jaxpr_as_fun(closed)).lower(*args))
    if flops is None:
        left_out.add("a loop body XLA could not count")
        return 0.0
    return flops


def _sub_jaxprs(params: dict) -> list:
    """The jaxprs nested in an equation's parameters (jit, custom derivatives, cond branches, remat)."""
    found = []
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            inner = getattr(item, "jaxpr", item)
            if hasattr(inner, "eqns"):
                found.append(inner)
            elif hasattr(getattr(inner, "jaxpr", None), "eqns"):
                found.append(inner.jaxpr)
    return found


def _matrix(eqn, index: int = 0) -> tuple[int, int, int]:
    """(batch, rows, columns) of an equation's operand."""
    shape = tuple(eqn.invars[index].aval.shape)
    return math.prod(shape[:-2]), shape[-2], shape[-1]


def _lu(eqn) -> float:
    """LU (getrf) of an m x n matrix: about m n^2 - n^3 / 3 FLOPs (2 n^3 / 3 when square)."""
    batch, m, n = _matrix(eqn)
    k = min(m, n)
    return batch * (m * n * k - (m + n) * k * k / 2 + k**3 / 3)


def _cholesky(eqn) -> float:
    """Cholesky (potrf) of an n x n matrix: n^3 / 3 FLOPs."""
    batch, n, _ = _matrix(eqn)
    return batch * n**3 / 3


def _eigh(eqn) -> float:
    """Symmetric eigendecomposition with eigenvectors (syevd): about 9 n^3 FLOPs."""
    batch, n, _ = _matrix(eqn)
    return batch * 9 * n**3


def _svd(eqn) -> float:
    """SVD of an m x n matrix (m >= n) with singular vectors: about 4 m^2 n + 8 m n^2 + 9 n^3 FLOPs."""
    batch, m, n = _matrix(eqn)
    m, n = max(m, n), min(m, n)
    if not eqn.params.get("compute_uv", True):
        return batch * (4 * m * n * n - 4 * n**3 / 3)
    return batch * (4 * m * m * n + 8 * m * n * n + 9 * n**3)


def _qr(eqn) -> float:
    """QR of an m x n matrix (geqrf + orgqr): about 4 m n^2 - 4 n^3 / 3 FLOPs."""
    batch, m, n = _matrix(eqn)
    k = min(m, n)
    return batch * (4 * max(m, n) * k * k - 4 * k**3 / 3)


def _triangular_solve(eqn) -> float:
    """Triangular solve (trsm) of an m x m system with n right-hand sides: m^2 n FLOPs."""
    batch, m, _ = _matrix(eqn, 0)
    rhs = math.prod(eqn.invars[1].aval.shape) // max(batch * m, 1)
    return batch * m * m * rhs


LIBRARY_FLOPS = {
    "lu": _lu,
    "cholesky": _cholesky,
    "eigh": _eigh,
    "svd": _svd,
    "qr": _qr,
    "geqrf": _qr,
    "triangular_solve": _triangular_solve,
}
"""Primitives that run as library calls (LAPACK, cuSOLVER), which XLA counts as about nothing."""


class _Untracked:
    """A stand-in for ``FlopCounterMode``'s module tracker: every FLOP counts towards the total alone.

    The tracker's backward hooks fail on a step that differentiates by an input (a gradient penalty:
    ``torch.autograd.grad`` of a leaf) and cost time on every module; the total needs none of them."""

    parents = frozenset({"Global"})

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def count_torch_step(function, data, on_counted):
    """Run ``function(data)`` once under ``FlopCounterMode`` and hand the counted step to ``on_counted``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    if hasattr(counter, "mod_tracker"):  # private in torch: the per-module breakdown, which is not needed
        counter.mod_tracker = _Untracked()
    with counter:
        result = function(data)
    on_counted(CountedStep(float(counter.get_total_flops()), TORCH_SOURCE, (TORCH_LEFT_OUT,)))
    return result


def counting_first_step(model, backend: str, on_counted, on_failed):
    """Install a one-shot wrapper on ``model.train_function`` that counts the first step it runs and hands the
    ``CountedStep`` to ``on_counted`` (``on_failed(error)`` where counting fails; the step runs either way).
    Whether the backend can count."""
    original = getattr(model, "train_function", None)
    if original is None or backend not in ("jax", "torch"):
        return False

    def restore():
        if model.train_function is counting:
            model.train_function = original

    if backend == "jax":

        def counting(state, iterator):
            restore()
            data = next(iterator)
            try:
                on_counted(count_jax_step(model.train_step, state, data))
            except Exception as error:  # noqa: BLE001  (counting must never stop the step)
                on_failed(error)
            return original(state, itertools.chain([data], iterator))

    else:

        def counting(data):
            restore()
            before = _iterations(model)
            try:
                return count_torch_step(original, data, on_counted)
            except Exception as error:
                if _iterations(model) != before:
                    raise  # the step updated weights before it failed: running it again would update them twice
                on_failed(error)
                return original(data)  # the step's own errors come back here

    model.train_function = counting
    return True


def _iterations(model):
    try:
        return int(model.optimizer.iterations)
    except Exception:  # noqa: BLE001
        return None
