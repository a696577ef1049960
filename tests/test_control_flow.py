"""Keras's control-flow ops inside a layer's call, on the TensorFlow backend: each body counted times its trip count
(the same layers as tests/jax_backend/test_control_flow_xla.py, which holds them to XLA's count)."""

import pytest

import nns_callbacks
from tests.jax_backend.test_control_flow_xla import BATCH, STEPS, WIDTH, Branches, Loop, model_of

PRODUCT = 2 * BATCH * WIDTH * WIDTH  # h W: 2 FLOPs per MAC
ELEMENTS = BATCH * WIDTH


@pytest.mark.parametrize(
    ("kind", "per_trip"),
    [
        ("scan", PRODUCT + ELEMENTS + ELEMENTS),  # h W + x, tanh (1 FLOP per element)
        ("fori_loop", PRODUCT + ELEMENTS + ELEMENTS),
        ("map", PRODUCT + ELEMENTS),  # tanh(x W)
        ("vectorized_map", PRODUCT + ELEMENTS),
    ],
)
def test_a_loop_body_is_counted_times_its_trip_count(kind, per_trip):
    cost = nns_callbacks.estimate(model_of(Loop(kind, looped=True), (STEPS, WIDTH)), batch_size=BATCH)
    assert cost.forward_flops == STEPS * per_trip
    assert cost.unsupported == {}


@pytest.mark.parametrize("kind", ["cond", "switch"])
def test_the_costliest_branch_is_counted(kind):
    cost = nns_callbacks.estimate(model_of(Branches(kind), (WIDTH,)), batch_size=BATCH)
    assert cost.forward_flops == PRODUCT + ELEMENTS + 1  # the product's branch; the predicate: a sum, a compare
