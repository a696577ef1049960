"""keras-hub models and a custom layer written with keras.ops, against XLA's cost analysis (JAX backend, CPU).

Forward: the jitted inference call.  Training: the forward pass and its VJP with
respect to the trainable weights (no loss, no optimizer), as in xla_reference.
"""

import warnings

import jax
import jax.numpy as jnp
import keras
import pytest
from xla_reference import compiled_flops, conv_padding_fraction

import nns_callbacks
from tests import hub_models


def _call(model, training: bool):
    def call(trainable, non_trainable, inputs):
        return model.stateless_call(trainable, non_trainable, inputs, training=training)[0]

    return call


def _variables(model):
    return [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]


def xla_forward_and_training(model, inputs) -> tuple[float, float]:
    """XLA's FLOPs of one inference call, and of a training-mode call with its VJP."""
    trainable, non_trainable = _variables(model)
    inputs = jax.tree_util.tree_map(jnp.asarray, inputs)
    forward = compiled_flops(jax.jit(_call(model, False)).lower(trainable, non_trainable, inputs).compile())
    call = _call(model, True)
    outputs = jax.eval_shape(call, trainable, non_trainable, inputs)
    cotangents = jax.tree_util.tree_map(lambda o: jnp.full(o.shape, 0.5, o.dtype), outputs)

    def step(trainable, non_trainable, inputs, cotangents):
        out, pullback = jax.vjp(lambda t: call(t, non_trainable, inputs), trainable)
        return out, pullback(cotangents)

    training = compiled_flops(jax.jit(step).lower(trainable, non_trainable, inputs, cotangents).compile())
    return forward, training


def padding_tap_macs(model, batch: int) -> int:
    """Multiply-adds of the Conv2D taps on zero padding, which XLA skips and we count (as papers do).

    From each convolution's configuration and its input and output shapes in the model's graph.
    """
    total = 0
    for layer in model.layers:
        if type(layer) is not keras.layers.Conv2D:
            continue
        _, height, width, channels = layer.input.shape
        out_h, out_w, filters = layer.output.shape[1:]
        macs = batch * out_h * out_w * filters * channels * layer.kernel_size[0] * layer.kernel_size[1]
        fraction = conv_padding_fraction(
            (height, width), layer.kernel_size, layer.strides, layer.dilation_rate, layer.padding
        )
        total += round(macs * fraction)
    return total


def check_against_xla(model, shapes, data, batch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost = nns_callbacks.estimate(model, batch_size=batch, input_shape=shapes)
    forward, training = xla_forward_and_training(model, data)
    assert cost.unsupported == {}
    assert cost.params == model.count_params()
    padding = padding_tap_macs(model, batch)  # forward: 2 FLOPs each; backward: their input and weight gradients
    assert cost.forward_flops - 2 * padding == pytest.approx(forward, rel=0.05)
    assert cost.forward_flops + cost.backward_flops - 6 * padding == pytest.approx(training, rel=0.15)
    return cost


@pytest.mark.parametrize("name", list(hub_models.MODELS))
def test_keras_hub_model_against_xla(name):
    model, shapes = hub_models.build(name)
    data = hub_models.inputs(model, hub_models.MODELS[name][1])
    check_against_xla(model, shapes, data, hub_models.BATCH)


class RMSNorm(keras.layers.Layer):
    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        variance = keras.ops.mean(keras.ops.square(x), axis=-1, keepdims=True)
        return x * keras.ops.rsqrt(variance + 1e-6) * self.scale


class EinsumAttentionBlock(keras.layers.Layer):
    """Pre-norm self-attention written with keras.ops: projections, einsum scores, softmax, residual add."""

    def __init__(self, heads, head_dim, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.head_dim = heads, head_dim
        self.norm = RMSNorm(name="norm")

    def build(self, input_shape):
        width = input_shape[-1]
        self.qkv = self.add_weight(shape=(width, 3, self.heads, self.head_dim), name="qkv")
        self.out = self.add_weight(shape=(self.heads, self.head_dim, width), name="out")

    def call(self, x):
        ops = keras.ops
        qkv = ops.einsum("btd,dkhc->kbthc", self.norm(x), self.qkv)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = ops.einsum("bthc,bshc->bhts", q, k) / (self.head_dim**0.5)
        attended = ops.einsum("bhts,bshc->bthc", ops.softmax(scores, axis=-1), v)
        return x + ops.einsum("bthc,hcd->btd", attended, self.out)


def test_custom_layer_written_with_keras_ops_against_xla():
    inputs = keras.Input((64, 32))
    hidden = keras.layers.Dense(32, name="embed")(inputs)
    model = keras.Model(inputs, EinsumAttentionBlock(4, 8, name="block")(hidden))
    data = jax.random.normal(jax.random.PRNGKey(0), (2, 64, 32))
    cost = check_against_xla(model, None, data, 2)
    names = list(cost.layers["name"])
    for op in ("block/norm/mean", "block/norm/rsqrt", "block/einsum", "block/softmax", "block/add"):
        assert op in names, names
    # the three products of activations and weights, and the two of activations: 2 x 64 x ... multiply-adds
    scores = 2 * 4 * 64 * 64
    einsums = cost.layers[cost.layers["type"] == "ops.Einsum"]
    assert list(einsums["forward_macs"]) == [2 * 64 * 32 * 3 * 4 * 8, scores * 8, scores * 8, 2 * 64 * 4 * 8 * 32]
