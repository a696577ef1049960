"""XLA's own FLOP count of a Keras model (JAX backend, CPU), and ours to compare with it.

XLA's HLO cost analysis counts 2 FLOPs per multiply-add and 1 per elementwise
operation; a transcendental (exp, log, tanh) is reported apart and added here
as 1 FLOP, the convention of ``nns_callbacks``.  Reference cases:

* forward: ``model.stateless_call(..., training=False)``, jitted and compiled;
* training: a VJP of ``stateless_call(..., training=True)`` with a cotangent
  passed in as an argument, so that the loss adds no FLOPs and the compiler
  cannot fold a constant gradient.  The VJP is taken with respect to the
  trainable variables and, with ``input_grad=True``, the model's inputs too.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import keras
import numpy as np

import nns_callbacks
from nns_callbacks.input_specs import input_specs
from nns_callbacks.registry import rule_for
from nns_callbacks.walk import ModelWalk


def compiled_flops(compiled) -> float:
    """FLOPs + transcendentals of a compiled (or lowered) JAX computation."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float(analysis.get("flops", 0.0)) + max(float(analysis.get("transcendentals", 0.0)), 0.0)


def sample_inputs(model, batch: int) -> list:
    rng = np.random.default_rng(0)
    inputs = []
    for spec in model.inputs:
        shape = (batch, *spec.shape[1:])
        if "int" in str(spec.dtype):
            inputs.append(jnp.asarray(rng.integers(0, 5, shape), dtype="int32"))
        else:
            inputs.append(jnp.asarray(rng.standard_normal(shape), dtype="float32"))
    return inputs


def _variables(model):
    return [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]


def _function(model, training: bool):
    def call(trainable, non_trainable, inputs):
        return model.stateless_call(
            trainable, non_trainable, inputs if len(inputs) > 1 else inputs[0], training=training
        )[0]

    return call


def xla_forward(model, batch: int) -> float:
    """XLA's FLOPs for one inference call of ``model`` on ``batch`` samples."""
    trainable, non_trainable = _variables(model)
    inputs = sample_inputs(model, batch)
    lowered = jax.jit(_function(model, training=False)).lower(trainable, non_trainable, inputs)
    return compiled_flops(lowered.compile())


def xla_training(model, batch: int, input_grad: bool = False, weights: bool = True, optimized: bool = True) -> float:
    """XLA's FLOPs for a training-mode forward pass and its VJP (no loss, no optimizer): of the compiled
    program, or with ``optimized=False`` of the program as lowered, before XLA's fusion passes."""
    trainable, non_trainable = _variables(model)
    inputs = sample_inputs(model, batch)
    call = _function(model, training=True)
    outputs = jax.eval_shape(call, trainable, non_trainable, inputs)
    cotangents = jax.tree_util.tree_map(lambda o: jnp.full(o.shape, 0.5, o.dtype), outputs)

    def step(trainable, non_trainable, inputs, cotangents):
        if weights and input_grad:
            out, pullback = jax.vjp(lambda t, x: call(t, non_trainable, x), trainable, inputs)
        elif weights:
            out, pullback = jax.vjp(lambda t: call(t, non_trainable, inputs), trainable)
        else:
            out, pullback = jax.vjp(lambda x: call(trainable, non_trainable, x), inputs)
        return out, pullback(cotangents)

    lowered = jax.jit(step).lower(trainable, non_trainable, inputs, cotangents)
    return compiled_flops(lowered.compile() if optimized else lowered)


def ours(model, batch: int, input_grad: bool = False):
    """Our estimate and our training FLOPs (without optimizer) for the same reference case.

    With ``input_grad=True`` the layers fed by the model's inputs also compute an
    input gradient (as XLA's VJP with respect to the inputs does).
    """
    cost = nns_callbacks.estimate(model, batch_size=batch)
    training = cost.forward_flops + cost.backward_flops
    if input_grad:
        walk = ModelWalk()
        walk.run(model, input_specs(model, batch))
        for leaf in walk.leaves:
            rule = rule_for(leaf.layer)
            if leaf.needs_input_grad or rule is None:
                continue
            extra = rule(leaf.layer, leaf.call)
            trains = bool(leaf.layer.trainable_weights) and leaf.layer.trainable
            training += extra.input_grad_flops + (0 if trains else extra.internal_grad_flops)
    return cost, training


def relative_error(ours_value: float, reference: float) -> float:
    if reference == 0:
        return 0.0 if ours_value == 0 else math.inf
    return (ours_value - reference) / reference


def single_layer_model(layer, shape, dtype="float32"):
    inputs = keras.Input(shape, dtype=dtype)
    return keras.Model(inputs, layer(inputs))


def multi_input_model(layer, shapes, call=None):
    inputs = [keras.Input(shape) for shape in shapes]
    outputs = call(layer, inputs) if call else layer(inputs)
    return keras.Model(inputs, outputs)


# Padding taps: XLA skips the multiply-adds that fall on zero padding (and, for a
# transposed convolution, on the holes between dilated inputs); we count them,
# as published figures do.  These helpers count them independently of the rules.


def same_padding_inbound(size: int, kernel: int, stride: int, dilation: int, causal: bool = False) -> tuple[int, int]:
    """(all taps, taps on real inputs) along one axis of a 'same' (or 'causal') convolution."""
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    left = max((out - 1) * stride + effective - size, 0) // 2
    if causal:
        out, left = size, effective - 1
    inbound = sum(1 for o in range(out) for j in range(kernel) if 0 <= o * stride - left + j * dilation < size)
    return out * kernel, inbound


def conv_padding_fraction(spatial, kernel, strides, dilation, padding: str) -> float:
    """The share of a convolution's taps that fall on zero padding (0 for 'valid')."""
    if padding not in ("same", "causal"):
        return 0.0
    total = inbound = 1
    for size, k, s, d in zip(spatial, kernel, strides, dilation):
        t, i = same_padding_inbound(size, k, s, d, causal=padding == "causal")
        total, inbound = total * t, inbound * i
    return 1 - inbound / total


def transpose_inbound(size: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """(all taps, taps landing inside the output) along one axis of a transposed convolution.

    Keras (JAX backend) crops ``left`` positions of the full scatter for 'same':
    left = min(ceil((stride + effective kernel - 2) / 2), effective kernel - 1).
    """
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        return size * kernel, size * kernel
    out = size * stride
    pad = stride + effective - 2
    left = min(pad // 2 + pad % 2, effective - 1)
    crop = effective - 1 - left
    inbound = sum(1 for i in range(size) for j in range(kernel) if 0 <= i * stride + j * dilation - crop < out)
    return size * kernel, inbound
