"""Bytes moved per row against hand arithmetic: the forward pass reads a call's inputs and weights and writes
its outputs; the backward pass reads output gradients, kept tensors and (for an input gradient) the weights,
and writes the gradients it computes; the optimizer reads weights, gradients and slots and writes weights and
slots.  float32 is 4 bytes, bfloat16 2, int32 4.  B is the batch."""

import keras
import pytest
from keras import ops

from nns_callbacks import estimate

B = 2


def row(cost, name: str) -> dict:
    """The first row named ``name``."""
    return next(r for r in cost.layers.to_dict("records") if r["name"] == name)


def moved(cost, name: str) -> tuple[int, int, int]:
    found = row(cost, name)
    return found["forward_bytes_moved"], found["backward_bytes_moved"], found["optimizer_bytes_moved"]


def after_dense(layer, shape, width=None):
    """``layer`` after a Dense layer, so that its input needs a gradient (a first layer's does not)."""
    inputs = keras.Input(shape)
    hidden = keras.layers.Dense(width or shape[-1], name="pre")(inputs)
    return keras.Model(inputs, layer(hidden))


def first(layer, shape, dtype="float32"):
    inputs = keras.Input(shape, dtype=dtype)
    return keras.Model(inputs, layer(inputs))


# Each case: (model, row name, (forward, backward) bytes), the bytes written out term by term.
CASES = {
    # Dense 16 -> 8 fed by the input: no input gradient, so backward reads dy and the kept x, writes dW.
    "dense, first layer": (
        lambda: first(keras.layers.Dense(8, name="d"), (16,)), "d",
        (4 * (B * 16 + 16 * 8 + 8 + B * 8), 4 * (B * 8 + B * 16 + 16 * 8 + 8)),
    ),
    # ... after another layer: backward also reads W (for dx) and writes dx.
    "dense, inner": (
        lambda: after_dense(keras.layers.Dense(8, name="d"), (16,)), "d",
        (4 * (B * 16 + 16 * 8 + 8 + B * 8), 4 * (B * 8 + B * 16 + (16 * 8 + 8) + B * 16 + (16 * 8 + 8))),
    ),
    # relu: keeps its output too (the derivative follows from it), no pre-activation buffer.
    "dense with relu": (
        lambda: after_dense(keras.layers.Dense(8, activation="relu", name="d"), (16,)), "d",
        (4 * (B * 16 + 136 + B * 8), 4 * (B * 8 + (B * 16 + B * 8) + 136 + B * 16 + 136)),
    ),
    # gelu: keeps input, output and the pre-activation (a buffer of B x 8).
    "dense with gelu": (
        lambda: after_dense(keras.layers.Dense(8, activation="gelu", name="d"), (16,)), "d",
        (4 * (B * 16 + 136 + B * 8), 4 * (B * 8 + (B * 16 + B * 8 + B * 8) + 136 + B * 16 + 136)),
    ),
    # Conv2D 3x3, 4 -> 6 channels on 5x5, 'same': weights 3*3*4*6 + 6 = 222.
    "conv2d": (
        lambda: after_dense(keras.layers.Conv2D(6, 3, padding="same", name="c"), (5, 5, 4)), "c",
        (4 * (B * 100 + 222 + B * 150), 4 * (B * 150 + B * 100 + 222 + B * 100 + 222)),
    ),
    # Depthwise 3x3 on 4 channels, no bias: 36 weights; 'valid' on 5x5 -> 3x3.
    "depthwise conv2d": (
        lambda: after_dense(keras.layers.DepthwiseConv2D(3, use_bias=False, name="c"), (5, 5, 4)), "c",
        (4 * (B * 100 + 36 + B * 36), 4 * (B * 36 + B * 100 + 36 + B * 100 + 36)),
    ),
    # BatchNormalization over 6 features: gamma, beta, moving mean and variance (4 x 6 weights); keeps its
    # input; writes the gradients of gamma and beta only (the moving statistics are not trainable).
    "batch normalization": (
        lambda: after_dense(keras.layers.BatchNormalization(name="n"), (6,)), "n",
        (4 * (B * 6 + 24 + B * 6), 4 * (B * 6 + B * 6 + 24 + B * 6 + 12)),
    ),
    "layer normalization": (
        lambda: after_dense(keras.layers.LayerNormalization(name="n"), (3, 6)), "n",
        (4 * (B * 18 + 12 + B * 18), 4 * (B * 18 + B * 18 + 12 + B * 18 + 12)),
    ),
    # ReLU keeps its output; no weights.
    "relu": (
        lambda: after_dense(keras.layers.ReLU(name="r"), (7,)), "r",
        (4 * (B * 7 + B * 7), 4 * (B * 7 + B * 7 + B * 7)),
    ),
    # Add of two inputs keeps nothing: dy read, two input gradients written.
    "add": (
        lambda: _two_branch_add(), "sum",
        (4 * (2 * B * 5 + B * 5), 4 * (B * 5 + 2 * B * 5)),
    ),
    # Dropout keeps its mask (B x 9 elements, in the output dtype); no weights.
    "dropout": (
        lambda: after_dense(keras.layers.Dropout(0.5, name="drop"), (9,)), "drop",
        (4 * (B * 9 + B * 9), 4 * (B * 9 + B * 9 + B * 9)),
    ),
    # Embedding of 50 x 8 on 6 int32 ids: the gather reads only the 6 x 8 rows it gathers (fewer than the table)
    # and the ids, writes 6 x 8 outputs; backward reads dy and writes the gathered rows' gradient, no id gradient.
    "embedding": (
        lambda: first(keras.layers.Embedding(50, 8, name="e"), (6,), dtype="int32"), "e",
        (4 * B * 6 + 4 * B * 6 * 8 + 4 * B * 6 * 8, 4 * B * 6 * 8 + 4 * B * 6 * 8),
    ),
    # ... a table of 3 x 8 smaller than what is gathered: read (and its gradient written) once at most.
    "embedding, small table": (
        lambda: first(keras.layers.Embedding(3, 8, name="e"), (6,), dtype="int32"), "e",
        (4 * B * 6 + 4 * 3 * 8 + 4 * B * 6 * 8, 4 * B * 6 * 8 + 4 * 3 * 8),
    ),
}


def _two_branch_add():
    inputs = keras.Input((5,))
    left = keras.layers.Dense(5, name="left")(inputs)
    right = keras.layers.Dense(5, name="right")(inputs)
    return keras.Model(inputs, keras.layers.Add(name="sum")([left, right]))


@pytest.mark.parametrize("case", CASES)
def test_bytes_moved_of_each_family(case):
    make, name, (forward, backward) = CASES[case]
    cost = estimate(make(), batch_size=B)
    assert moved(cost, name)[:2] == (forward, backward)


def test_multi_head_attention_writes_and_reads_its_intermediates():
    """Self-attention of 2 heads of size 3 over 4 positions of 6 features (projections with bias):
    intermediates q, k, v and the context (4 x 2 x 3 each per sample), scores, probabilities and dropped
    probabilities (2 x 4 x 4 each per sample), each written and read forward, and their gradients backward."""
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, name="mha")
    inputs = keras.Input((4, 6))
    hidden = keras.layers.Dense(6, name="pre")(inputs)
    cost = estimate(keras.Model(inputs, layer(hidden, hidden)), batch_size=B)
    weights = 3 * (6 * 2 * 3 + 2 * 3) + (2 * 3 * 6 + 6)  # q, k, v kernels and biases; the output projection
    intermediate = B * (4 * 4 * 2 * 3 + 3 * 2 * 4 * 4)
    x, y = B * 4 * 6, B * 4 * 6
    forward = 4 * (2 * x + weights + y + 2 * intermediate)  # query and value are the same tensor, read twice
    # backward: dy, the kept intermediates, the weights (an input gradient), dx of query and of value, dW
    backward = 4 * (y + intermediate + weights + 2 * x + weights + 2 * intermediate)
    assert moved(cost, "mha")[:2] == (forward, backward)


def test_views_move_nothing():
    inputs = keras.Input((4, 6))
    hidden = keras.layers.Dense(6, name="pre")(inputs)
    cost = estimate(keras.Model(inputs, keras.layers.Flatten(name="flat")(keras.layers.Reshape((6, 4), name="re")(hidden))))
    assert moved(cost, "re") == moved(cost, "flat") == (0, 0, 0)


def test_a_frozen_layer_writes_no_weight_gradient_and_a_first_one_no_input_gradient():
    inputs = keras.Input((16,))
    frozen = keras.layers.Dense(8, name="frozen", trainable=False)
    cost = estimate(keras.Model(inputs, keras.layers.Dense(4, name="top")(frozen(inputs))), batch_size=B,
                    optimizer="sgd")
    # nothing upstream of the frozen layer needs a gradient, and it trains nothing: no backward pass at all
    assert moved(cost, "frozen") == (4 * (B * 16 + 136 + B * 8), 0, 0)
    # the top layer: no input gradient either (nothing upstream trains): dy and kept x read, dW written;
    # SGD reads w and g and writes w: 3 x 36 x 4 bytes
    assert moved(cost, "top") == (4 * (B * 8 + 36 + B * 4), 4 * (B * 4 + B * 8 + 36), 3 * 4 * 36)


def test_frozen_layer_between_trained_ones_passes_gradients_on_without_weight_gradients():
    inputs = keras.Input((16,))
    hidden = keras.layers.Dense(8, name="first")(inputs)
    hidden = keras.layers.Dense(8, name="frozen", trainable=False)(hidden)
    cost = estimate(keras.Model(inputs, keras.layers.Dense(4, name="top")(hidden)), batch_size=B)
    # dy, kept x, W (for dx), dx; no dW
    assert moved(cost, "frozen")[1] == 4 * (B * 8 + B * 8 + 72 + B * 8)


@pytest.mark.parametrize(
    ("optimizer", "per_weight_byte"),
    [("sgd", 3), (keras.optimizers.SGD(momentum=0.9), 3 + 2 * 1), ("adam", 3 + 2 * 2),
     (keras.optimizers.Adam(amsgrad=True), 3 + 2 * 3), ("adagrad", 3 + 2 * 1), (None, 0)],
)
def test_optimizer_reads_weights_gradients_and_slots_and_writes_weights_and_slots(optimizer, per_weight_byte):
    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(4, name="d")(keras.layers.Dense(8, name="e")(inputs)))
    cost = estimate(model, batch_size=B, optimizer=optimizer)
    assert moved(cost, "e")[2] == per_weight_byte * 4 * (16 * 8 + 8)
    assert cost.optimizer_bytes_moved == per_weight_byte * cost.gradient_bytes


def test_mixed_precision_reads_activations_in_the_compute_dtype_and_weights_in_theirs():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = after_dense(keras.layers.Dense(8, name="d"), (16,))
    finally:
        keras.config.set_dtype_policy("float32")
    cost = estimate(model, batch_size=B, optimizer="adam")
    # bfloat16 activations (2 bytes), float32 weights (4 bytes); Adam's slots are float32 like the weights
    assert moved(cost, "d") == (
        2 * B * 16 + 4 * 136 + 2 * B * 8,
        2 * B * 8 + 2 * B * 16 + 4 * 136 + 2 * B * 16 + 4 * 136,
        7 * 4 * 136,
    )


def test_a_shared_layer_reads_its_weights_at_every_call_and_updates_them_once():
    inputs = keras.Input((6,))
    shared = keras.layers.Dense(6, name="shared")
    cost = estimate(keras.Model(inputs, shared(shared(inputs))), batch_size=B, optimizer="sgd")
    calls = [r for r in cost.layers.to_dict("records") if r["name"] == "shared"]
    assert [r["forward_bytes_moved"] for r in calls] == [4 * (B * 6 + 42 + B * 6)] * 2
    assert [r["optimizer_bytes_moved"] for r in calls] == [3 * 4 * 42, 0]


class Scale(keras.layers.Layer):
    """x @ w, traced op by op: the op reads its weight operand."""

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1], 3), name="w")

    def call(self, x):
        return ops.matmul(x, self.w)


def test_an_op_in_a_traced_layer_reads_its_weight_operand():
    cost = estimate(after_dense(Scale(name="scale"), (5,)), batch_size=B, optimizer="sgd")
    op = next(r for r in cost.layers.to_dict("records") if r["name"].startswith("scale/"))
    assert (op["forward_bytes_moved"], op["backward_bytes_moved"]) == (
        4 * (B * 5 + 15 + B * 3),
        4 * (B * 3 + B * 5 + 15 + B * 5 + 15),  # dy, kept x, w (for dx), dx, dw
    )
    assert row(cost, "scale")["optimizer_bytes_moved"] == 3 * 4 * 15  # the layer's row owns w


def test_totals_are_the_rows_sums_and_intensity_their_ratio():
    model = after_dense(keras.layers.Dense(8, activation="relu", name="d"), (16,))
    cost = estimate(model, batch_size=4, optimizer="adam")
    for name in ("forward_bytes_moved", "backward_bytes_moved", "optimizer_bytes_moved", "training_bytes_moved"):
        assert getattr(cost, name) == cost.layers[name].sum()
    assert cost.training_bytes_moved == cost.forward_bytes_moved + cost.backward_bytes_moved + cost.optimizer_bytes_moved
    layers = cost.layers
    assert list(layers["arithmetic_intensity"]) == pytest.approx(list(layers["training_flops"] / layers["training_bytes_moved"]))
    data = cost.to_dict()
    assert data["training_bytes_moved"] == cost.training_bytes_moved
    assert data["arithmetic_intensity"] == pytest.approx(cost.training_flops / cost.training_bytes_moved)
    assert cost.training_bytes == cost.weight_bytes + cost.gradient_bytes + cost.optimizer_bytes + cost.activation_bytes


def test_bytes_moved_grow_with_the_batch_but_the_optimizers_do_not():
    model = after_dense(keras.layers.Dense(8, name="d"), (16,))
    one, three = (estimate(model, batch_size=b, optimizer="adam") for b in (1, 3))
    assert one.optimizer_bytes_moved == three.optimizer_bytes_moved
    weights = one.weight_bytes  # read once per call whatever the batch
    assert three.forward_bytes_moved - weights == 3 * (one.forward_bytes_moved - weights)
