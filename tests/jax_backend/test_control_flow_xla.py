"""Keras's control-flow ops inside a layer's call: each body is counted times its trip count, against XLA's count of
the same computation unrolled in Python (XLA counts a loop's body once), forward within 5%, training within 15%."""

import keras
import pytest
from keras import layers, ops

import nns_callbacks
from tests.jax_backend.test_keras_io_xla import xla_counts

STEPS, WIDTH, BATCH = 6, 16, 4


class Loop(layers.Layer):
    """``kind`` of loop over ``STEPS`` steps of (B, STEPS, WIDTH) inputs: h <- tanh(h W + x_t); ``looped``: with the
    control-flow op, else unrolled in Python."""

    def __init__(self, kind, looped, **kwargs):
        super().__init__(**kwargs)
        self.kind, self.looped = kind, looped

    def build(self, input_shape):
        self.w = self.add_weight(shape=(WIDTH, WIDTH))

    def step(self, h, x):
        return ops.tanh(ops.matmul(h, self.w) + x)

    def call(self, x):
        steps = ops.transpose(x, (1, 0, 2))  # (STEPS, B, WIDTH)
        h = ops.zeros_like(steps[0])
        if not self.looped:
            if self.kind in ("map", "vectorized_map"):
                return ops.stack([ops.tanh(ops.matmul(steps[t], self.w)) for t in range(STEPS)])
            for t in range(STEPS):
                h = self.step(h, steps[t])
            return h
        if self.kind == "scan":
            return ops.scan(lambda h, x: (self.step(h, x), h), h, steps)[0]
        if self.kind == "fori_loop":
            return ops.fori_loop(0, STEPS, lambda t, h: self.step(h, ops.take(steps, t, axis=0)), h)
        if self.kind == "map":
            return ops.map(lambda x: ops.tanh(ops.matmul(x, self.w)), steps)
        return ops.vectorized_map(lambda x: ops.tanh(ops.matmul(x, self.w)), steps)


class Branches(layers.Layer):
    """``cond`` or ``switch`` between a costly branch (a product) and a cheap one; the costly one is counted."""

    def __init__(self, kind, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind

    def build(self, input_shape):
        self.w = self.add_weight(shape=(WIDTH, WIDTH))

    def call(self, x):
        costly, cheap = (lambda: ops.matmul(x, self.w)), (lambda: x * 2.0)
        if self.kind == "cond":
            return ops.cond(ops.sum(x) > 0, costly, cheap)
        return ops.switch(ops.cast(ops.sum(x) > 0, "int32"), [lambda x: x * 2.0, lambda x: ops.matmul(x, self.w)], x)


def model_of(layer, shape):
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize("kind", ["scan", "fori_loop", "map", "vectorized_map"])
def test_a_loop_counts_its_body_times_its_trip_count(kind):
    looped = model_of(Loop(kind, looped=True), (STEPS, WIDTH))
    unrolled = model_of(Loop(kind, looped=False), (STEPS, WIDTH))
    cost = nns_callbacks.estimate(looped, batch_size=BATCH)
    forward, training = xla_counts(unrolled, (STEPS, WIDTH), BATCH)
    assert cost.unsupported == {}
    assert cost.forward_flops == pytest.approx(forward, rel=0.05)
    assert cost.forward_flops + cost.backward_flops == pytest.approx(training, rel=0.15)
    assert any(f"/{kind}/matmul" in name for name in cost.layers["name"])  # rows under the op's name


@pytest.mark.parametrize("kind", ["cond", "switch"])
def test_a_branch_counts_its_costliest_branch(kind):
    cost = nns_callbacks.estimate(model_of(Branches(kind), (WIDTH,)), batch_size=BATCH)
    product = BATCH * WIDTH * WIDTH
    assert cost.forward_macs == product  # the product's branch, not the doubling's
    assert cost.unsupported == {}


def test_a_while_loop_counts_its_body_once_and_says_so():
    class Halving(layers.Layer):
        def call(self, x):
            return ops.while_loop(lambda v: ops.sum(v) > 1.0, lambda v: (v * 0.5,), (x,))[0]

    with pytest.warns(nns_callbacks.NNSWarning, match="counted once"):
        cost = nns_callbacks.estimate(model_of(Halving(), (WIDTH,)), batch_size=BATCH)
    assert cost.forward_flops == BATCH * WIDTH  # one halving
    assert list(cost.unsupported) == ["ops.WhileLoop (trip count unknown: body counted once)"]


def test_associative_scan_follows_xla_count_of_the_jax_implementation():
    class Cumulative(layers.Layer):
        def call(self, x):
            return ops.associative_scan(lambda a, b: a + b, x, axis=1)

    for steps in (16, 48, 64):
        looped = model_of(Cumulative(), (steps, WIDTH))
        cost = nns_callbacks.estimate(looped, batch_size=BATCH)
        # as lowered: the CPU compiler adds elementwise work of its own to the interleaving
        forward, _ = xla_counts(looped, (steps, WIDTH), BATCH, compiled=False)
        assert cost.forward_flops == pytest.approx(forward, rel=0.05)
