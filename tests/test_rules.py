"""The built-in cost rules, one family at a time, on tiny shapes with the arithmetic written out.

Every expected value is computed here by hand from the layer's shapes (a MAC is
one multiply-add, 2 FLOPs).  Per-element constants of elementwise work
(activations, normalisation, softmax) are XLA's counts, restated next to the
assertion; tests/jax_backend/test_xla_differential.py checks them against XLA.

Backward conventions: a layer fed by the model input needs no input gradient (its
backward is its weight gradient plus the work shared with it); a frozen layer has no
weight gradient.  ``row(..., after_dense=True)`` puts a Dense in front of the layer so
that it does compute an input gradient.
"""

from __future__ import annotations

import warnings

import keras
import pytest

from nns_callbacks import LayerCost, estimate, register_cost_rule, registry

L = keras.layers


def newer(name: str):
    """A ``keras.layers`` class that older Keras releases lack: the test is skipped there."""
    if not hasattr(L, name):
        pytest.skip(f"Keras {keras.__version__} has no keras.layers.{name}")
    return getattr(L, name)


def build(layer, shape, dtype="float32", after_dense=False):
    inputs = keras.Input(shape, dtype=dtype)
    x = L.Dense(shape[-1], name="pre")(inputs) if after_dense else inputs
    return keras.Model(inputs, layer(x))


def row(layer, shape, batch=2, dtype="float32", after_dense=False) -> dict:
    """The estimate's table row of ``layer`` called on a ``(batch, *shape)`` input."""
    cost = estimate(build(layer, shape, dtype, after_dense), batch_size=batch)
    return cost.layers.set_index("name").loc[layer.name].to_dict()


def multi_row(layer, shapes, batch=2, after_dense=False, call=None) -> dict:
    """The row of ``layer`` called on several inputs (each behind its own Dense if asked)."""
    inputs = [keras.Input(shape) for shape in shapes]
    xs = [L.Dense(s[-1])(x) if after_dense else x for s, x in zip(shapes, inputs)]
    outputs = call(layer, xs) if call else layer(xs)
    cost = estimate(keras.Model(inputs, outputs), batch_size=batch)
    return cost.layers.set_index("name").loc[layer.name].to_dict()


def assert_costs(r: dict, macs=None, forward=None, backward=None, params=None):
    if macs is not None:
        assert r["forward_macs"] == macs
    if forward is not None:
        assert r["forward_flops"] == forward
    if backward is not None:
        assert r["backward_flops"] == backward
    if params is not None:
        assert r["params"] == params
    assert r["training_flops"] == r["forward_flops"] + r["backward_flops"]  # no optimizer given


# ---------------------------------------------------------------- Dense, EinsumDense, Embedding


@pytest.mark.parametrize(
    ("kwargs", "forward", "backward", "params"),
    [
        # batch 3 x 8 outputs x 4 inputs = 96 MACs; bias: 1 per output element (24)
        ({}, 2 * 96 + 24, 2 * 96 + 24, 4 * 8 + 8),
        ({"use_bias": False}, 2 * 96, 2 * 96, 4 * 8),
        # relu: 1 FLOP per output element forward, 2 backward (shared, so counted here)
        ({"activation": "relu"}, 2 * 96 + 24 + 24, 2 * 96 + 24 + 2 * 24, 40),
        # sigmoid: 4 forward, 3 backward per element
        ({"activation": "sigmoid", "use_bias": False}, 2 * 96 + 4 * 24, 2 * 96 + 3 * 24, 32),
    ],
)
def test_dense_first_layer(kwargs, forward, backward, params):
    r = row(L.Dense(8, **kwargs), (4,), batch=3)
    assert_costs(r, macs=3 * 4 * 8, forward=forward, backward=backward, params=params)


def test_dense_after_dense_adds_its_input_gradient():
    r = row(L.Dense(8), (4,), batch=3, after_dense=True)
    assert r["backward_flops"] == 2 * 96 + (2 * 96 + 24)  # input gradient + weight gradient


def test_dense_on_a_sequence_applies_to_every_step():
    r = row(L.Dense(8), (5, 4), batch=2)
    assert r["forward_macs"] == 2 * 5 * 4 * 8  # 80 rows x 4 inputs x 8 outputs = 320
    assert r["forward_flops"] == 2 * 320 + 2 * 5 * 8


def test_unknown_activation_is_counted_zero():
    model = build(L.Dense(8, activation=lambda x: x * 2, name="odd"), (4,))
    cost = estimate(model, batch_size=1)
    assert cost.forward_flops == 2 * 32 + 8  # the product and the bias, nothing for the lambda


def test_unknown_activation_is_reported():
    model = build(L.Dense(8, activation=lambda x: x * 2, name="odd"), (4,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = estimate(model, batch_size=1)
    assert any("<lambda>" in name for name in cost.unsupported)


@pytest.mark.parametrize(
    ("equation", "shape", "output_shape", "bias_axes", "macs", "bias"),
    [
        # a=batch 2, b=4, c=8: 2*4*8 = 64 MACs; bias on c: 2*8
        ("ab,bc->ac", (4,), 8, "c", 2 * 4 * 8, 2 * 8),
        # a=2, b=5, c=4, d=8: 320 MACs; bias over the (2, 5, 8) output
        ("abc,cd->abd", (5, 4), (5, 8), "d", 2 * 5 * 4 * 8, 2 * 5 * 8),
        # a=2, b=5, c=4, d=2, e=3: 240 MACs, no bias
        ("abc,cde->abde", (5, 4), (5, 2, 3), None, 2 * 5 * 4 * 2 * 3, 0),
        # ellipsis: ... = (2, 5), b=4, c=8
        ("...b,bc->...c", (5, 4), 8, "c", 2 * 5 * 4 * 8, 2 * 5 * 8),
        # output_shape with None (Keras reports the output as (2, None, 8)): sizes come from the equation
        ("abc,cd->abd", (5, 4), (None, 8), "d", 2 * 5 * 4 * 8, 2 * 5 * 8),
    ],
)
def test_einsum_dense(equation, shape, output_shape, bias_axes, macs, bias):
    r = row(L.EinsumDense(equation, output_shape=output_shape, bias_axes=bias_axes), shape)
    assert_costs(r, macs=macs, forward=2 * macs + bias, backward=2 * macs + bias)


def test_embedding_is_a_gather_with_a_scatter_add_gradient():
    r = row(L.Embedding(10, 4), (5,), batch=3, dtype="int32")
    # no FLOPs forward; weight gradient: one add per gathered value, 3 x 5 x 4 = 60
    assert_costs(r, macs=0, forward=0, backward=60, params=40)
    assert r["activation_bytes"] == 0


# ---------------------------------------------------------------- convolutions


@pytest.mark.parametrize(
    ("make", "shape", "batch", "macs", "outputs"),
    [
        # valid: 10 - 3 + 1 = 8 steps; 2 x 8 x 6 outputs x (4 channels x 3 taps)
        (lambda: L.Conv1D(6, 3), (10, 4), 2, 2 * 8 * 6 * 4 * 3, 2 * 8 * 6),
        # same, stride 2: ceil(10 / 2) = 5 steps (taps on the zero padding are counted)
        (lambda: L.Conv1D(6, 3, strides=2, padding="same"), (10, 4), 2, 2 * 5 * 6 * 4 * 3, 2 * 5 * 6),
        # dilation 2: effective kernel 5, 10 - 5 + 1 = 6 steps
        (lambda: L.Conv1D(6, 3, dilation_rate=2), (10, 4), 2, 2 * 6 * 6 * 4 * 3, 2 * 6 * 6),
        # causal: output as long as the input, 10 steps
        (lambda: L.Conv1D(6, 3, padding="causal", dilation_rate=2), (10, 4), 2, 2 * 10 * 6 * 12, 2 * 10 * 6),
        # groups 2: each output sees 4 / 2 = 2 channels; 5 x 5 positions
        (lambda: L.Conv2D(8, 3, groups=2), (7, 7, 4), 2, 2 * 25 * 8 * 2 * 9, 2 * 25 * 8),
        # same, stride 2: ceil(7 / 2) = 4 per side
        (lambda: L.Conv2D(8, 3, strides=2, padding="same"), (7, 7, 4), 2, 2 * 16 * 8 * 4 * 9, 2 * 16 * 8),
        # channels_first: input (4 channels, 7, 7), output (8, 5, 5)
        (lambda: L.Conv2D(8, 3, data_format="channels_first"), (4, 7, 7), 2, 2 * 8 * 25 * 4 * 9, 2 * 8 * 25),
        # (2, 3) kernel, dilation (1, 2): effective (2, 5); output 6 x 3
        (lambda: L.Conv2D(2, (2, 3), dilation_rate=(1, 2)), (7, 7, 1), 1, 18 * 2 * 6, 18 * 2),
        # 3D valid: 4 x 4 x 4 positions, 3 channels x 8 taps
        (lambda: L.Conv3D(4, 2), (5, 5, 5, 3), 1, 64 * 4 * 3 * 8, 64 * 4),
        # 3D same, stride 2: 3 x 3 x 3 positions
        (lambda: L.Conv3D(4, 2, strides=2, padding="same"), (5, 5, 5, 3), 1, 27 * 4 * 3 * 8, 27 * 4),
    ],
)
def test_convolution(make, shape, batch, macs, outputs):
    layer = make()
    r = row(layer, shape, batch=batch)
    # forward: 2 per MAC + a bias add per output; backward (first layer): the weight
    # gradient, 2 per MAC + the bias gradient
    assert_costs(r, macs=macs, forward=2 * macs + outputs, backward=2 * macs + outputs)


def test_convolution_after_dense_adds_the_input_gradient():
    r = row(L.Conv1D(6, 3, use_bias=False), (10, 4), after_dense=True)
    macs = 2 * 8 * 6 * 4 * 3  # 1152
    assert_costs(r, macs=macs, forward=2 * macs, backward=2 * macs + 2 * macs)


@pytest.mark.parametrize(
    ("make", "shape", "batch", "macs", "outputs"),
    [
        # every input value scatters a whole kernel: 2 x 7 x 3 inputs x 5 filters x 3 taps;
        # output length (7 - 1) x 2 + 3 = 15
        (lambda: L.Conv1DTranspose(5, 3, strides=2), (7, 3), 2, 2 * 7 * 3 * 5 * 3, 2 * 15 * 5),
        # same: output 12 x 12
        (lambda: L.Conv2DTranspose(5, 3, strides=2, padding="same"), (6, 6, 3), 1, 36 * 3 * 5 * 9, 144 * 5),
        # output 6 x 6 x 6
        (lambda: L.Conv3DTranspose(2, 2, strides=2), (3, 3, 3, 2), 1, 27 * 2 * 2 * 8, 216 * 2),
    ],
)
def test_transposed_convolution(make, shape, batch, macs, outputs):
    r = row(make(), shape, batch=batch)
    assert_costs(r, macs=macs, forward=2 * macs + outputs, backward=2 * macs + outputs)


@pytest.mark.parametrize(
    ("make", "shape", "macs", "outputs"),
    [
        # valid 3 x 3 on 6 x 6: 4 x 4 positions, 3 x 2 output channels, 9 taps each
        (lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (6, 6, 3), 2 * 16 * 6 * 9, 2 * 16 * 6),
        # same: 8 steps x 4 channels x 3 taps
        (lambda: L.DepthwiseConv1D(3, padding="same"), (8, 4), 2 * 8 * 4 * 3, 2 * 8 * 4),
        # depthwise 2 x 16 positions x 6 channels x 9 taps + pointwise 2 x 16 x 8 outputs x 6
        (lambda: L.SeparableConv2D(8, 3, depth_multiplier=2), (6, 6, 3), 2 * 16 * 6 * 9 + 2 * 16 * 8 * 6, 2 * 16 * 8),
        # depthwise 2 x 6 steps x 2 channels x 3 taps + pointwise 2 x 6 x 4 outputs x 2
        (lambda: L.SeparableConv1D(4, 3), (8, 2), 2 * 6 * 2 * 3 + 2 * 6 * 4 * 2, 2 * 6 * 4),
    ],
)
def test_depthwise_and_separable(make, shape, macs, outputs):
    r = row(make(), shape)
    assert_costs(r, macs=macs, forward=2 * macs + outputs, backward=2 * macs + outputs)


# ---------------------------------------------------------------- recurrent

# batch 2, 5 steps, 3 features, 4 units: n = 2 x 4 = 8 unit values per step
SIMPLE_MACS = 5 * (2 * 4 * 3 + 2 * 4 * 4)  # input 24 + recurrent 32 per step: 280
SIMPLE_ELEMENTWISE = 5 * (2 * 8 + 8)  # two adds (x W + h U + b) and tanh (1) per unit: 120
LSTM_MACS = 5 * (2 * 4 * 4 * 3 + 2 * 4 * 4 * 4)  # 4 gates: input 96 + recurrent 128 per step: 1120
# per unit: 2 adds x 4 gates, 3 sigmoids (4 each), 2 tanh (1 each), c = f*c + i*g (3), h = o*tanh(c) (1): 26
LSTM_ELEMENTWISE = 5 * 8 * 26  # 1040
GRU_MACS = 5 * (2 * 3 * 4 * 3 + 2 * 3 * 4 * 4)  # 3 gates: input 72 + recurrent 96 per step: 840
# per unit: 6 bias adds (input and recurrent), 3 adds, 2 sigmoids (8), tanh (1), r * h (1), z*h + (1-z)*hh (4): 23
GRU_ELEMENTWISE = 5 * 8 * 23  # 920
GRU_V1_ELEMENTWISE = 5 * 8 * 20  # reset_after=False: 3 bias adds instead of 6: 800
# Backward elementwise per unit (bias gradient apart, 1 add per bias element per unit):
# SimpleRNN: dh sum (1), tanh' (4): 5
SIMPLE_BACKWARD = (5 * 8 * (1 + 4), 5 * 8 * 1)  # (elementwise, bias gradient): (200, 40)
# LSTM: dh sum (1), do and d tanh(c) (2), tanh'(c) (4) + dc add (1), df dc_prev di dg (4), 3 sigmoid' (3 each),
# tanh'(g) (4): 25; bias 4 gates
LSTM_BACKWARD = (5 * 8 * (1 + 2 + 4 + 1 + 4 + 3 * 3 + 4), 5 * 8 * 4)  # (1000, 160)
# GRU: dh sum (1), h update (5), tanh' (4), r * (h U_h): dr, d(h U_h) (2), 2 sigmoid' (3 each), dh z add (1): 19;
# reset_after=False: r * h: dr, d(r h) r, its add (3): 20; bias 6 (3)
GRU_BACKWARD = (5 * 8 * (1 + 5 + 4 + 2 + 2 * 3 + 1), 5 * 8 * 6)  # (760, 240)
GRU_V1_BACKWARD = (5 * 8 * (1 + 5 + 4 + 3 + 2 * 3 + 1), 5 * 8 * 3)  # (800, 120)


def rnn_backward(macs, recurrent_macs, backward, steps=5):
    """First layer: weight gradient 2 x all MACs + the bias gradient; through time: the state gradient,
    2 x recurrent MACs of all steps but the first (the zero initial state needs none), + the elementwise backward."""
    elementwise, bias_grad = backward
    return 2 * macs + bias_grad + 2 * (recurrent_macs - recurrent_macs // steps) + elementwise


@pytest.mark.parametrize(
    ("make", "macs", "elementwise", "recurrent_macs", "backward", "params"),
    [
        (lambda: L.SimpleRNN(4), SIMPLE_MACS, SIMPLE_ELEMENTWISE, 5 * 32, SIMPLE_BACKWARD, 3 * 4 + 4 * 4 + 4),
        (lambda: L.SimpleRNN(4, return_sequences=True), SIMPLE_MACS, SIMPLE_ELEMENTWISE, 5 * 32, SIMPLE_BACKWARD, 32),
        (lambda: L.SimpleRNN(4, go_backwards=True), SIMPLE_MACS, SIMPLE_ELEMENTWISE, 5 * 32, SIMPLE_BACKWARD, 32),
        (lambda: L.LSTM(4), LSTM_MACS, LSTM_ELEMENTWISE, 5 * 128, LSTM_BACKWARD, 4 * (3 * 4 + 4 * 4 + 4)),
        (
            lambda: L.LSTM(4, return_sequences=True, go_backwards=True),
            LSTM_MACS, LSTM_ELEMENTWISE, 5 * 128, LSTM_BACKWARD, 128,
        ),
        (lambda: L.GRU(4), GRU_MACS, GRU_ELEMENTWISE, 5 * 96, GRU_BACKWARD, 3 * (3 * 4 + 4 * 4 + 2 * 4)),
        (
            lambda: L.GRU(4, reset_after=False),
            GRU_MACS, GRU_V1_ELEMENTWISE, 5 * 96, GRU_V1_BACKWARD, 3 * (3 * 4 + 4 * 4 + 4),
        ),
        (lambda: L.RNN(L.LSTMCell(4)), LSTM_MACS, LSTM_ELEMENTWISE, 5 * 128, LSTM_BACKWARD, 128),
        (lambda: L.RNN(L.GRUCell(4), return_sequences=True), GRU_MACS, GRU_ELEMENTWISE, 5 * 96, GRU_BACKWARD, 108),
    ],
)
def test_recurrent(make, macs, elementwise, recurrent_macs, backward, params):
    r = row(make(), (5, 3))
    expected = rnn_backward(macs, recurrent_macs, backward)
    assert_costs(r, macs=macs, forward=2 * macs + elementwise, backward=expected, params=params)


def test_stacked_cells_feed_each_other():
    cells = L.StackedRNNCells([L.SimpleRNNCell(4), L.SimpleRNNCell(2)])
    r = row(L.RNN(cells), (5, 3))
    # cell 1: 3 -> 4 units (24 + 32 MACs, 24 FLOPs); cell 2: 4 -> 2 units, batch 2:
    # input 2 x 2 x 4 = 16, recurrent 2 x 2 x 2 = 8 MACs, n = 4: 2 adds + tanh = 12 FLOPs
    macs = 5 * (24 + 32 + 16 + 8)  # 400
    elementwise = 5 * (24 + 12)  # 180
    assert_costs(r, macs=macs, forward=2 * macs + elementwise)
    # backward per unit: dh sum and tanh' (5), bias gradient (1), for 8 + 4 units; the second
    # cell's input projection gradient (2 x 16 MACs a step) feeds the first cell: always computed
    backward = rnn_backward(macs, 5 * (32 + 8), (5 * 12 * 5, 5 * 12 * 1)) + 2 * 5 * 16
    assert r["backward_flops"] == backward


@pytest.mark.parametrize(
    ("make", "shape", "macs", "elementwise"),
    [
        # 3 steps; valid 3 x 3 on 5 x 5: 9 positions; 4 gates x 2 filters; input 1 channel, recurrent 2
        (lambda: L.ConvLSTM2D(2, 3), (3, 5, 5, 1), 3 * (9 * 8 * 1 * 9 + 9 * 8 * 2 * 9), 3 * 18 * 26),
        # same padding keeps 6 positions; 2 input channels, 2 filters
        (lambda: L.ConvLSTM1D(2, 3, padding="same"), (3, 6, 2), 3 * (6 * 8 * 2 * 3 + 6 * 8 * 2 * 3), 3 * 12 * 26),
        # 2 steps; 2 x 2 x 2 kernel on 3 x 3 x 3: 8 positions; 1 filter
        (lambda: L.ConvLSTM3D(1, 2), (2, 3, 3, 3, 1), 2 * (8 * 4 * 1 * 8 + 8 * 4 * 1 * 8), 2 * 8 * 26),
    ],
)
def test_conv_lstm(make, shape, macs, elementwise):
    # n = positions x filters unit values per step, 26 FLOPs each as in an LSTM
    r = row(make(), shape, batch=1)
    assert_costs(r, macs=macs, forward=2 * macs + elementwise)


@pytest.mark.parametrize(
    ("merge_mode", "return_sequences", "merge_forward", "merge_backward"),
    [
        ("concat", False, 0, 0),
        ("sum", False, 2 * 4, 0),  # one add per output element (batch 2 x 4 units); gradient passes through
        ("mul", False, 2 * 4, 2 * 2 * 4),  # one product; each side's gradient is a product
        ("ave", False, 2 * 2 * 4, 2 * 4),  # add and halve; the gradient is halved once
        ("ave", True, 2 * 2 * 5 * 4, 2 * 5 * 4),  # over 5 returned steps
        (None, False, 0, 0),  # two outputs, no merge
    ],
)
def test_bidirectional(merge_mode, return_sequences, merge_forward, merge_backward):
    layer = L.Bidirectional(L.LSTM(4, return_sequences=return_sequences), merge_mode=merge_mode)
    r = row(layer, (5, 3))
    one_direction = rnn_backward(LSTM_MACS, 5 * 128, LSTM_BACKWARD)
    assert_costs(
        r,
        macs=2 * LSTM_MACS,
        forward=2 * (2 * LSTM_MACS + LSTM_ELEMENTWISE) + merge_forward,
        backward=2 * one_direction + merge_backward,
        params=2 * 128,
    )


@pytest.mark.parametrize(
    ("make", "shape", "macs", "outputs"),
    [
        # Dense(6) on 2 x 5 steps of 4 features
        (lambda: L.Dense(6), (5, 4), 2 * 5 * 4 * 6, 2 * 5 * 6),
        # Conv2D(2, 3) on 2 x 3 steps of 5 x 5 x 1: 3 x 3 positions, 9 taps
        (lambda: L.Conv2D(2, 3), (3, 5, 5, 1), 2 * 3 * 9 * 2 * 9, 2 * 3 * 9 * 2),
    ],
)
def test_time_distributed(make, shape, macs, outputs):
    r = row(L.TimeDistributed(make()), shape)
    assert_costs(r, macs=macs, forward=2 * macs + outputs, backward=2 * macs + outputs)


# ---------------------------------------------------------------- attention


def test_multi_head_attention_self():
    layer = L.MultiHeadAttention(num_heads=2, key_dim=3)
    r = multi_row(layer, [(4, 6)], call=lambda layer, xs: layer(xs[0], xs[0]))
    # batch 2, T = 4, features 6, 2 heads of 3: Q, K, V projections 2 x 4 x 6 x 6 = 288 MACs
    # each, output projection 2 x 4 x 6 x 6 = 288; scores 2 x 2 x 4 x 4 = 64, q.k and
    # scores.v 3 MACs each per score and head dimension: 64 x 6 = 384
    macs = 4 * 288 + 384
    softmax = 5 * 64  # max, subtract, exp, sum, divide
    scaling = 2 * 4 * 2 * 3  # the query is scaled by 1/sqrt(key_dim)
    bias = 3 * (2 * 4 * 6) + 2 * 4 * 6  # Q, K, V biases and the output bias
    assert_costs(r, macs=macs, forward=2 * macs + softmax + scaling + bias, params=4 * (6 * 6 + 6))


def test_multi_head_attention_cross_and_causal():
    layer = L.MultiHeadAttention(num_heads=2, key_dim=3)
    r = multi_row(layer, [(4, 6), (5, 6)], call=lambda layer, xs: layer(xs[0], xs[1]))
    # Tq = 4, Tv = 5: Q and output projections 288 MACs each, K and V 2 x 5 x 6 x 6 = 360;
    # scores 2 x 2 x 4 x 5 = 80, x 6 = 480 MACs
    macs = 2 * 288 + 2 * 360 + 480
    bias = 2 * 4 * 6 + 2 * (2 * 5 * 6) + 2 * 4 * 6
    assert r["forward_macs"] == macs
    assert r["forward_flops"] == 2 * macs + 5 * 80 + 48 + bias
    causal = L.MultiHeadAttention(num_heads=2, key_dim=3)
    rc = multi_row(causal, [(4, 6)], call=lambda layer, xs: layer(xs[0], xs[0], use_causal_mask=True))
    plain_forward = 2 * (4 * 288 + 384) + 5 * 64 + 48 + 192
    assert rc["forward_flops"] == plain_forward + 2 * 64  # the mask: 2 FLOPs per score


def test_group_query_attention():
    layer = keras.layers.GroupQueryAttention(head_dim=3, num_query_heads=4, num_key_value_heads=2)
    r = multi_row(layer, [(4, 6), (5, 6)], call=lambda layer, xs: layer(xs[0], xs[1]))
    # batch 2, Tq 4, Tv 5, features 6; 4 query heads, 2 key/value heads of 3
    query = 2 * 4 * 6 * (4 * 3)  # 576
    key = value = 2 * 5 * 6 * (2 * 3)  # 360 each
    output = 2 * 4 * (4 * 3) * 6  # 576
    scores = 2 * 4 * 4 * 5  # 160: every query head against its shared key head
    macs = query + key + value + output + 2 * scores * 3
    bias = 2 * 4 * 12 + 2 * (2 * 5 * 6) + 2 * 4 * 6  # 96 + 120 + 48
    assert_costs(r, macs=macs, forward=2 * macs + 5 * scores + 2 * 4 * 12 + bias)


@pytest.mark.parametrize(
    ("make", "extra_forward"),
    [
        (lambda: L.Attention(), 0),
        (lambda: L.Attention(use_scale=True), 30),  # the scores are scaled: 1 per score
        (lambda: L.Attention(score_mode="concat"), 3 * 30 * 4),  # add, tanh, sum per (Tq, Tv, d)
        (lambda: L.AdditiveAttention(), 4 * 30 * 4),  # add, tanh, scale, sum per (Tq, Tv, d)
        (lambda: L.AdditiveAttention(use_scale=False), 3 * 30 * 4),
    ],
)
def test_attention_score_modes(make, extra_forward):
    layer = make()
    r = multi_row(layer, [(3, 4), (5, 4)])
    # batch 2, Tq 3, Tv 5, dim 4: 30 scores; scores.v 30 x 4 = 120 MACs; softmax 5 per score
    dot_scores = 120 if type(layer) is L.Attention and layer.score_mode == "dot" else 0
    macs = dot_scores + 120
    assert_costs(r, macs=macs, forward=2 * macs + 5 * 30 + extra_forward)


def test_causal_attention_masks_every_score():
    r = multi_row(L.Attention(), [(3, 4), (3, 4)], call=lambda layer, xs: layer(xs, use_causal_mask=True))
    # 2 x 3 x 3 = 18 scores: q.k and scores.v 18 x 4 MACs each; the mask: not, subtract, select
    assert_costs(r, macs=2 * 18 * 4, forward=2 * 144 + 5 * 18 + 3 * 18)


@pytest.mark.parametrize(("normalize", "extra"), [(False, 0), (True, 3 * (24 + 40))])
def test_dot(normalize, extra):
    r = multi_row(L.Dot(axes=(2, 2), normalize=normalize), [(3, 4), (5, 4)])
    # output (2, 3, 5) = 30 values, each a 4-long dot product; L2 normalisation of both
    # inputs (2 x 3 x 4 + 2 x 5 x 4 = 64 values): square, sum, scale, 3 per value
    assert_costs(r, macs=30 * 4, forward=2 * 120 + extra)


def test_attention_backward_counts_both_operands_of_activation_products():
    r = multi_row(L.Attention(), [(3, 4), (5, 4)], after_dense=True)
    # 240 MACs between activations: a gradient product for each operand (4 per MAC);
    # softmax backward 6 per score
    assert r["backward_flops"] == 4 * 240 + 6 * 30


# ---------------------------------------------------------------- normalisation

# batch 2, input (3, 4): n = 24 values, 6 rows of 4 features
N, ROWS = 24, 6


@pytest.mark.parametrize(
    ("make", "forward", "backward"),
    [
        # inference x * a + b: 2 per value; training (first layer): batch statistics and
        # the weight gradients, 7 per value (shared with the input gradient)
        (lambda: L.BatchNormalization(), 2 * N, 7 * N),
        # mean, variance, normalise: 6 per value, +2 scale, +1 offset, + 4 per row;
        # scale gradient 2n + offset n, 3n shared
        (lambda: L.LayerNormalization(), 9 * N + 4 * ROWS, 3 * N + 3 * N),
        # 2 groups of 2 features x batch 2 = 4 groups: 6n + 4 per group;
        # weights 2 per group + 3n shared
        (lambda: L.GroupNormalization(groups=2), 6 * N + 4 * 4, 2 * 4 + 3 * N),
        # square, sum, rsqrt, multiply: 3n + 1 per row; no weights, no gradient here
        (lambda: L.UnitNormalization(), 3 * N + ROWS, 0),
        # 4n + 2 per row; the scale's gradient 3n
        (lambda: newer("RMSNormalization")(), 4 * N + 2 * ROWS, 3 * N),
    ],
)
def test_normalization_first_layer(make, forward, backward):
    r = row(make(), (3, 4))
    assert_costs(r, macs=0, forward=forward, backward=backward)


@pytest.mark.parametrize(
    ("make", "backward"),
    [
        (lambda: L.BatchNormalization(), 9 * N + 7 * N),  # + the input gradient, 9 per value
        (lambda: L.LayerNormalization(), 3 * N + 13 * N + 3 * N),
        (lambda: L.UnitNormalization(), 5 * N + 11 * ROWS),
    ],
)
def test_normalization_after_dense(make, backward):
    assert row(make(), (3, 4), after_dense=True)["backward_flops"] == backward


def test_frozen_batch_normalization_runs_in_inference_mode():
    layer = L.BatchNormalization()
    model = build(layer, (3, 4), after_dense=True)
    layer.trainable = False
    r = estimate(model, batch_size=2).layers.set_index("name").loc[layer.name]
    # the gradient of x * a + b with fixed a: 1 multiply per value; no weight gradient
    assert r["backward_flops"] == N
    assert r["trainable_params"] == 0


# ---------------------------------------------------------------- pooling


@pytest.mark.parametrize(
    ("make", "shape", "forward", "backward"),
    [
        # 2 x 2 x 2 x 3 = 24 outputs; max of 4: 3 compares; backward: find the max again and add (4)
        (lambda: L.MaxPooling2D(2), (4, 4, 3), 3 * 24, 4 * 24),
        # stride 1: 3 x 3 x 2 x 2 = 36 outputs; 8 adds and a divide each
        (lambda: L.AveragePooling2D(3, strides=1), (5, 5, 2), 9 * 36, 9 * 36),
        # same, stride 2 on 7: 4 steps x 2 channels x 2 = 16 outputs
        (lambda: L.MaxPooling1D(3, strides=2, padding="same"), (7, 2), 2 * 16, 3 * 16),
        # 2 x 2 x 2 x 1 x 2 = 16 outputs of 8 values
        (lambda: L.AveragePooling3D(2), (4, 4, 4, 1), 8 * 16, 8 * 16),
        # 96 inputs summed; backward: one divide per output (6), broadcast free
        (lambda: L.GlobalAveragePooling2D(), (4, 4, 3), 96, 6),
        # 30 inputs into 6 outputs: 24 compares; backward 1 per input
        (lambda: L.GlobalMaxPooling1D(), (5, 3), 30 - 6, 30),
        (lambda: L.GlobalMaxPooling3D(), (2, 2, 2, 3), 48 - 6, 48),
        # 2 x 2 x 2 x 1 x 2 = 16 outputs of 8: 7 compares
        (lambda: L.MaxPooling3D(2), (4, 4, 4, 1), 7 * 16, 8 * 16),
        # 3 steps x 3 channels x 2 = 18 outputs of 2
        (lambda: L.AveragePooling1D(2), (6, 3), 2 * 18, 2 * 18),
        (lambda: L.GlobalAveragePooling1D(), (5, 3), 30, 6),
        (lambda: L.GlobalAveragePooling3D(), (2, 2, 2, 3), 48, 6),
        (lambda: L.GlobalMaxPooling2D(), (4, 4, 3), 96 - 6, 96),
    ],
)
def test_pooling(make, shape, forward, backward):
    layer = make()
    assert_costs(row(layer, shape), macs=0, forward=forward)
    assert row(make(), shape, after_dense=True)["backward_flops"] == backward


@pytest.mark.parametrize(
    ("make", "shape", "forward"),
    [
        # 8 -> 3 windows [0, 3), [2, 6), [5, 8): 3 + 4 + 3 = 10 per axis; 10 x 10 x 2 channels
        (lambda: newer("AdaptiveAveragePooling2D")(3), (8, 8, 2), 10 * 10 * 2),
        (lambda: newer("AdaptiveMaxPooling2D")(3), (8, 8, 2), 10 * 10 * 2 - 3 * 3 * 2),  # less one per output
        # 8 -> 4: windows of 2: 8 per axis, 2 channels
        (lambda: newer("AdaptiveAveragePooling1D")(4), (8, 2), 8 * 2),
        # 4 -> 2: 4 per axis; 64 values reduced into 8 outputs
        (lambda: newer("AdaptiveMaxPooling3D")(2), (4, 4, 4, 1), 64 - 8),
        (lambda: newer("AdaptiveAveragePooling3D")(2), (4, 4, 4, 1), 64),
        # 7 -> 3 windows [0, 3), [2, 5), [4, 7): 9 per channel, 2 channels, less the 6 outputs
        (lambda: newer("AdaptiveMaxPooling1D")(3), (7, 2), 9 * 2 - 6),
    ],
)
def test_adaptive_pooling_counts_each_window(make, shape, forward):
    assert_costs(row(make(), shape, batch=1), macs=0, forward=forward)


# ---------------------------------------------------------------- activations

ELEMENTS = 2 * 4 * 5  # batch 2 x (4, 5)


@pytest.mark.parametrize(
    ("activation", "forward", "backward"),
    [
        ("relu", 1, 2),  # max; backward compare and select
        ("sigmoid", 4, 3),  # negate, exp, add, divide; backward s * (1 - s) * g
        ("tanh", 1, 4),
        ("gelu", 65, 16),  # the erf polynomial; backward reuses its erf (XLA, inside a training step)
        ("softmax", 5, 6),
        ("linear", 0, 0),
        ("silu", 5, 6),
    ],
)
def test_activation_layer(activation, forward, backward):
    layer = L.Activation(activation)
    assert_costs(row(layer, (4, 5)), macs=0, forward=forward * ELEMENTS, backward=0)
    after = row(L.Activation(activation), (4, 5), after_dense=True)
    assert after["backward_flops"] == backward * ELEMENTS


@pytest.mark.parametrize(
    ("make", "forward", "backward"),
    [
        (lambda: L.ReLU(), 1, 2),
        (lambda: L.ReLU(negative_slope=0.1), 3, 5),  # leaky: compare, multiply, select
        (lambda: L.ReLU(max_value=6.0), 1, 4),  # relu6 is one clamp
        (lambda: L.ReLU(max_value=4.0), 2, 4),  # relu, then a clip
        (lambda: L.ReLU(threshold=0.5), 2, 2),  # x * (x > t)
        (lambda: L.LeakyReLU(0.2), 3, 5),
        (lambda: L.ELU(), 4, 8),
        (lambda: L.ELU(alpha=0.5), 5, 9),  # alpha other than 1: one more multiply
        (lambda: L.Softmax(), 5, 6),
    ],
)
def test_activation_layers(make, forward, backward):
    assert_costs(row(make(), (4, 5)), forward=forward * ELEMENTS, backward=0)
    assert row(make(), (4, 5), after_dense=True)["backward_flops"] == backward * ELEMENTS


def test_prelu_has_a_weight_per_feature_position():
    r = row(L.PReLU(), (4, 5))
    # relu(x) - alpha * relu(-x): 5 per value; alpha's gradient 4 per value
    assert_costs(r, forward=5 * ELEMENTS, backward=4 * ELEMENTS, params=20)


def test_unknown_activation_layer_is_reported():
    model = build(L.Activation(lambda x: x), (4,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cost = estimate(model)
    assert cost.forward_flops == 0
    assert cost.unsupported


# ---------------------------------------------------------------- merging

VALUES = 2 * 3 * 4  # batch 2 x (3, 4)


@pytest.mark.parametrize(
    ("cls", "inputs", "forward", "backward"),
    [
        (L.Add, 2, VALUES, 0),  # one add per value; the gradient passes through
        (L.Add, 3, 2 * VALUES, 0),
        (L.Subtract, 2, VALUES, VALUES),  # backward: a negation
        (L.Multiply, 3, 2 * VALUES, 3 * 2 * VALUES),  # each input's gradient: g x the 2 others
        (L.Average, 3, 3 * VALUES, VALUES),  # 2 adds and a divide; backward a divide
        (L.Maximum, 2, VALUES, 3 * VALUES),  # a compare; backward compare and two selects
        (L.Minimum, 3, 2 * VALUES, 6 * VALUES),
        (L.Concatenate, 2, 0, 0),
    ],
)
def test_merging(cls, inputs, forward, backward):
    assert_costs(multi_row(cls(), [(3, 4)] * inputs), macs=0, forward=forward, backward=0)
    assert multi_row(cls(), [(3, 4)] * inputs, after_dense=True)["backward_flops"] == backward


# ---------------------------------------------------------------- data movement, preprocessing, noise


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: L.Flatten(), (4, 5, 3)),
        (lambda: L.Reshape((20, 3)), (4, 5, 3)),
        (lambda: L.Permute((2, 1)), (4, 5)),
        (lambda: L.RepeatVector(3), (5,)),
        (lambda: L.Cropping1D((1, 2)), (8, 3)),
        (lambda: L.Cropping2D(1), (6, 6, 3)),
        (lambda: L.Cropping3D(1), (4, 4, 4, 3)),
        (lambda: L.ZeroPadding1D(2), (8, 3)),
        (lambda: L.ZeroPadding2D(1), (6, 6, 3)),
        (lambda: L.ZeroPadding3D(1), (4, 4, 4, 3)),
        (lambda: L.Identity(), (5, 3)),
        (lambda: L.CenterCrop(3, 3), (4, 4, 3)),
    ],
)
def test_data_movement_is_free(make, shape):
    assert_costs(row(make(), shape), macs=0, forward=0, backward=0)


@pytest.mark.parametrize(
    ("make", "shape", "backward"),
    [
        (lambda: L.UpSampling1D(2), (3, 2), 2 * 6 * 2 - 2 * 3 * 2),  # summing 2 copies of each value: 12
        (lambda: L.UpSampling2D(2), (2, 2, 1), 2 * 16 - 2 * 4),  # 4 copies: 24
        (lambda: L.UpSampling3D(2), (2, 2, 2, 1), 2 * 64 - 2 * 8),  # 8 copies: 112
    ],
)
def test_nearest_upsampling_is_a_copy(make, shape, backward):
    assert_costs(row(make(), shape), forward=0)
    assert row(make(), shape, after_dense=True)["backward_flops"] == backward


@pytest.mark.parametrize(
    ("make", "shape", "forward"),
    [
        # bilinear as jax.image does it: a dense product per axis, 2 x 2 x (4 x 2 x 2 + 4 x 4 x 2) MACs for
        # batch 2, 1 channel, 2 x 2 -> 4 x 4; + the 2 x 4 weight matrix, 12.7 FLOPs per entry, shared by both axes
        (lambda: L.UpSampling2D(2, interpolation="bilinear"), (2, 2, 1), 2 * 2 * (16 + 32) + round(12.7 * 8)),
        (lambda: L.Resizing(6, 6), (4, 4, 3), 2 * 6 * (6 * 4 * 4 + 6 * 6 * 4) + round(12.7 * 24)),
        # a crop larger than the input resizes it first
        (lambda: L.CenterCrop(6, 6), (4, 4, 3), 2 * 6 * (6 * 4 * 4 + 6 * 6 * 4) + round(12.7 * 24)),
        # nearest: a gather; the source index of each output row and column, 3.5 FLOPs each (XLA)
        (lambda: L.Resizing(6, 6, interpolation="nearest"), (4, 4, 3), round(3.5 * 12)),
        # x * scale + offset, (x - mean) / std: 2 per value; 2 x 48 values
        (lambda: L.Rescaling(0.5, 0.1), (4, 4, 3), 2 * 96),
        (lambda: L.Normalization(mean=0.5, variance=2.0), (4, 4, 3), 2 * 96),
        # not-equal, any over the 4 features (3 per step), multiply: 3 x 40 - 10 steps
        (lambda: L.Masking(), (5, 4), 3 * 40 - 10),
    ],
)
def test_elementwise_data_layers(make, shape, forward):
    assert_costs(row(make(), shape), macs=0, forward=forward, backward=0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.Dropout(0.5),
        lambda: L.SpatialDropout1D(0.5),
        lambda: L.GaussianNoise(0.1),
        lambda: L.GaussianDropout(0.1),
        lambda: L.AlphaDropout(0.1),
    ],
)
def test_noise_is_free_forward_and_masks_the_gradient(make):
    assert_costs(row(make(), (5, 4)), forward=0, backward=0)
    # the training-time mask multiplies the gradient: 1 per value, 2 x 5 x 4
    assert row(make(), (5, 4), after_dense=True)["backward_flops"] == 40


def test_rescaling_passes_a_gradient_where_one_is_needed():
    assert row(L.Rescaling(0.5), (4,), after_dense=True)["backward_flops"] == 2 * 4  # one multiply per value


# ---------------------------------------------------------------- backward conventions


def test_backward_conventions_on_a_recurrent_layer():
    # first after the input: weight gradient and the work shared with it (through time)
    first = row(L.SimpleRNN(4), (5, 3))
    # weights 2 x MACs, bias gradient (40), state gradient for 4 of 5 steps, elementwise backward (200)
    assert first["backward_flops"] == 2 * SIMPLE_MACS + 40 + 2 * (4 * 32) + 200
    # after a Dense: + the input projection's gradient, 2 x input MACs
    after = row(L.SimpleRNN(4), (5, 3), after_dense=True)
    assert after["backward_flops"] == first["backward_flops"] + 2 * (5 * 24)
    # frozen after a Dense: no weight gradient, the rest stays
    layer = L.SimpleRNN(4)
    model = build(layer, (5, 3), after_dense=True)
    layer.trainable = False
    frozen = estimate(model, batch_size=2).layers.set_index("name").loc[layer.name]
    assert frozen["backward_flops"] == 2 * (5 * 24) + 2 * (4 * 32) + 200


def test_frozen_first_layer_has_no_backward():
    layer = L.Dense(8)
    model = build(layer, (4,))
    layer.trainable = False
    r = estimate(model, batch_size=3).layers.set_index("name").loc[layer.name]
    assert r["backward_flops"] == 0
    assert r["trainable_params"] == 0


# ---------------------------------------------------------------- register_cost_rule


class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


@pytest.fixture
def doubler_rule():
    """Remove the rule for Doubler after the test, whatever it registered."""
    yield
    registry._RULES.pop(Doubler, None)


def test_a_custom_layer_with_a_user_rule_is_counted(doubler_rule):
    @register_cost_rule(Doubler)
    def doubler(layer, call):
        return LayerCost(elementwise_flops=call.input_elements, input_grad_flops=call.input_elements)

    r = row(Doubler(name="doubler"), (4, 5))
    assert r["forward_flops"] == ELEMENTS  # one multiply per value
    assert bool(r["counted"])


def test_registering_twice_raises_and_replace_overrides(doubler_rule):
    @register_cost_rule(Doubler)
    def first(layer, call):
        return LayerCost(elementwise_flops=1)

    with pytest.raises(ValueError, match="already registered"):

        @register_cost_rule(Doubler)
        def second(layer, call):
            return LayerCost(elementwise_flops=2)

    @register_cost_rule(Doubler, replace=True)
    def third(layer, call):
        return LayerCost(elementwise_flops=3)

    assert row(Doubler(name="doubler"), (4,))["forward_flops"] == 3


def test_built_in_rules_cannot_be_registered_again_by_accident():
    with pytest.raises(ValueError, match="already registered"):

        @register_cost_rule(L.Dense)
        def dense(layer, call):
            return LayerCost()


def test_register_cost_rule_rejects_non_classes():
    with pytest.raises(TypeError, match="takes classes"):
        register_cost_rule("Dense")
    with pytest.raises(ValueError, match="at least one layer type"):
        register_cost_rule()
    with pytest.raises(TypeError, match="must be callable"):
        register_cost_rule(L.Dense, replace=True)("not a function")


# Keras ops used on symbolic tensors in a functional model, and the applications' own layers.


def op_rows(build_outputs, shapes, batch=2) -> list[dict]:
    """The table rows of the op nodes of a functional model built by ``build_outputs(*inputs)``."""
    inputs = [keras.Input(shape) for shape in shapes]
    cost = estimate(keras.Model(inputs, build_outputs(*inputs)), batch_size=batch)
    assert cost.unsupported == {}
    return [r for r in cost.layers.to_dict("records") if r["type"].startswith("ops.")]


@pytest.mark.parametrize(
    ("outputs", "shapes", "expected"),
    [
        (lambda a, b: a + b, [(3, 4), (3, 4)], [("ops.Add", 0, 2 * 12)]),  # 1 FLOP per output element
        (lambda a: a * 0.5, [(6,)], [("ops.Multiply", 0, 2 * 6)]),
        (lambda a: keras.ops.exp(a), [(5,)], [("ops.Exp", 0, 2 * 5)]),
        (lambda a: keras.ops.sum(a, axis=-1), [(3, 4)], [("ops.Sum", 0, 2 * 12)]),  # 1 per input element
        (lambda a: keras.ops.var(a, axis=-1), [(3, 4)], [("ops.Var", 0, 4 * 2 * 12)]),  # mean, subtract, square, sum
        (lambda a: keras.ops.reshape(a, (-1, 2)), [(3, 4)], [("ops.Reshape", 0, 0)]),
        (lambda a: keras.ops.transpose(a, (0, 2, 1)), [(3, 4)], [("ops.Transpose", 0, 0)]),
        (lambda a: keras.ops.sigmoid(a), [(5,)], [("ops.Sigmoid", 0, 4 * 2 * 5)]),  # 4 FLOPs per element
        # (2, 3, 4) @ (2, 4, 5): 2 x 3 x 5 outputs x 4 contracted = 120 MACs per sample
        (lambda a, b: keras.ops.matmul(a, b), [(3, 4), (4, 5)], [("ops.Matmul", 2 * 3 * 5 * 4, 2 * 2 * 3 * 5 * 4)]),
        (lambda a, b: keras.ops.einsum("bij,bjk->bik", a, b), [(3, 4), (4, 5)],
         [("ops.Einsum", 2 * 3 * 4 * 5, 2 * 2 * 3 * 4 * 5)]),
    ],
)
def test_keras_ops_in_a_functional_graph(outputs, shapes, expected):
    rows = op_rows(outputs, shapes)
    assert [(r["type"], r["forward_macs"], r["forward_flops"]) for r in rows] == expected


@pytest.mark.parametrize(
    ("outputs", "gradients"),
    [
        (lambda a, b: keras.ops.matmul(L.Dense(4)(a), L.Dense(5)(b)), 2),  # both operands depend on weights
        (lambda a, b: keras.ops.matmul(L.Dense(4)(a), b), 1),  # b is an Input: autodiff computes no gradient
        (lambda a, b: keras.ops.einsum("bij,bjk->bik", a, L.Dense(5)(b)), 1),
        (lambda a, b: keras.ops.matmul(a, b), 0),
    ],
)
def test_a_product_computes_the_gradient_of_each_operand_that_needs_one(outputs, gradients):
    [r] = op_rows(outputs, [(3, 4), (4, 5)])
    macs = 2 * 3 * 5 * 4
    assert r["backward_flops"] == gradients * 2 * macs  # 2 FLOPs per MAC for each operand's gradient


def test_layer_scale_and_custom_scale_layer():
    from keras.src.applications.convnext import LayerScale
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    scale = row(LayerScale(1e-6, 8, name="scale"), (5, 8), batch=2)
    assert (scale["forward_flops"], scale["params"]) == (2 * 5 * 8, 8)  # x * gamma: 1 per element
    custom = multi_row(CustomScaleLayer(0.17, name="custom"), [(5, 8), (5, 8)], batch=2)
    assert custom["forward_flops"] == 2 * 2 * 5 * 8  # a + b * scale: 2 per output element


# Layers that return their input keep nothing; preprocessing inside the model is free at inference, and a
# random augmentation's training-mode work is part of the training step


@pytest.mark.parametrize(
    ("make", "training"),
    [
        (lambda: L.Dropout(0.0), 0),
        (lambda: L.RandomFlip(), 2 * 2 * 8 * 8 * 3),  # a select per element: 2 (XLA)
        # affine resampling with a reflecting fill: 253.4 per element + 15 per pixel
        (lambda: L.RandomZoom(0.1), round(253.4 * 2 * 8 * 8 * 3 + 15 * 2 * 8 * 8)),
    ],
)
def test_layers_that_return_their_input_keep_nothing(make, training):
    layer = make()
    r = row(layer, (8, 8, 3), after_dense=True)
    assert r["counted"]
    assert r["forward_flops"] == r["activation_bytes"] == 0
    assert r["backward_flops"] == training


def test_dropout_with_a_rate_keeps_its_mask():
    r = row(L.Dropout(0.5), (6,), after_dense=True)
    assert r["activation_bytes"] == 2 * 6 * 4  # batch 2 x 6 float32 mask values
    assert r["backward_flops"] == 2 * 6


def test_string_inputs_through_text_vectorization_are_costed_downstream():
    vectorize = L.TextVectorization(max_tokens=50, output_sequence_length=8, name="vectorize")
    vectorize.adapt(["the cat sat", "a dog ran far away"])
    text = keras.Input((1,), dtype="string")
    pooled = L.GlobalAveragePooling1D(name="pool")(L.Embedding(50, 16, name="embed")(vectorize(text)))
    cost = estimate(keras.Model(text, L.Dense(4, name="fc")(pooled)), batch_size=3)
    r = cost.layers.set_index("name")
    assert cost.unsupported == {}
    assert r.loc["vectorize", "counted"] and r.loc["vectorize", "forward_flops"] == 0
    assert r.loc["embed", "output_shape"] == "(8, 16)"
    assert r.loc["pool", "forward_flops"] == 3 * 8 * 16  # one add per input element
    assert r.loc["fc", "forward_macs"] == 3 * 16 * 4  # 192


@pytest.mark.parametrize("name", ["sigmoid", "gelu", "silu", "softmax", "relu"])
def test_an_activation_op_costs_what_the_activation_layer_costs(name):
    op = L.Lambda(lambda x: keras.activations.get(name)(x), name="op")  # runs the keras.ops function
    layer = L.Activation(name, name="op")
    rows = estimate(build(op, (6,), after_dense=True), batch_size=2).layers
    [op_row] = [r for _, r in rows.iterrows() if r["name"].startswith("op/")]  # the op inside the Lambda
    layer_row = row(layer, (6,), after_dense=True)
    assert (op_row["forward_flops"], op_row["backward_flops"]) == (layer_row["forward_flops"], layer_row["backward_flops"])
    assert layer_row["backward_flops"] > 0


# Linear algebra: LAPACK calls that XLA counts as about 0 FLOPs; textbook counts instead (batch 2, n = 8)

N3 = 8**3


@pytest.mark.parametrize(
    ("outputs", "shapes", "forward"),
    [
        (lambda a: keras.ops.cholesky(a), [(8, 8)], round(2 * N3 / 3)),  # n^3 / 3
        (lambda a: keras.ops.inv(a), [(8, 8)], 2 * 2 * N3),  # LU 2n^3/3 + inverse from it 4n^3/3
        (lambda a: keras.ops.det(a), [(8, 8)], round(2 * (2 * N3 / 3 + 8))),  # LU + the diagonal's product
        (lambda a, b: keras.ops.solve(a, b), [(8, 8), (8, 3)], round(2 * (2 * N3 / 3 + 2 * 64 * 3))),
        (lambda a, b: keras.ops.solve_triangular(a, b), [(8, 8), (8, 3)], 2 * 64 * 3),  # n^2 per column
        (lambda a: keras.ops.qr(a)[0], [(8, 8)], round(2 * 2 * (2 * N3 - 2 * N3 / 3))),  # R, then Q as much
        (lambda a: keras.ops.svd(a)[1], [(8, 8)], 2 * (4 * N3 + 8 * N3 + 9 * N3)),  # 4m^2n + 8mn^2 + 9n^3
        (lambda a: keras.ops.eigh(a)[0], [(8, 8)], 2 * 9 * N3),
        (lambda a: keras.ops.eig(a)[0], [(8, 8)], 2 * 25 * N3),
        (lambda a: keras.ops.norm(a, axis=-1), [(8, 8)], 2 * 2 * 64),  # square and add per element
    ],
    ids=["cholesky", "inv", "det", "solve", "solve_triangular", "qr", "svd", "eigh", "eig", "norm"],
)
def test_linear_algebra_follows_textbook_counts(outputs, shapes, forward):
    rows = op_rows(outputs, shapes)
    costed = [r for r in rows if r["forward_flops"]]
    assert [r["forward_flops"] for r in costed] == [forward]
    assert costed[0]["backward_flops"] == 0  # the inputs need no gradient
