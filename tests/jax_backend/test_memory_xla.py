"""Our memory model against XLA's memory analysis of a compiled JAX training step (loose bounds only).

Set NNS_MEMORY_FIGURES to a file path to have the comparison table written there as Markdown.
"""

import os

import jax
import keras
import numpy as np
import pytest

from nns_callbacks import estimate
from nns_callbacks.cost import format_bytes

BATCH = 64


def mlp():
    x = keras.Input((784,))
    y = keras.layers.Dense(512, activation="relu")(x)
    y = keras.layers.Dense(256, activation="relu")(y)
    return keras.Model(x, keras.layers.Dense(10)(y), name="mlp")


def cnn():
    x = keras.Input((32, 32, 3))
    y = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(10)(y), name="cnn")


def cnn_maxpool():
    """The CNN with a max pooling: XLA on CPU differentiates it through full-size index arrays and a scatter."""
    x = keras.Input((32, 32, 3))
    y = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.MaxPooling2D()(y)
    y = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(10)(y), name="cnn_maxpool")


def lstm():
    x = keras.Input((50, 32))
    y = keras.layers.LSTM(128)(x)
    return keras.Model(x, keras.layers.Dense(10)(y), name="lstm")


def transformer_block():
    x = keras.Input((64, 128))
    attended = keras.layers.MultiHeadAttention(num_heads=4, key_dim=32)(x, x)
    y = keras.layers.LayerNormalization()(keras.layers.Add()([x, attended]))
    ffn = keras.layers.Dense(512, activation="gelu")(y)
    ffn = keras.layers.Dense(128)(ffn)
    y = keras.layers.LayerNormalization()(keras.layers.Add()([y, ffn]))
    y = keras.layers.GlobalAveragePooling1D()(y)
    return keras.Model(x, keras.layers.Dense(10)(y), name="transformer_block")


MODELS = {"mlp": mlp, "cnn": cnn, "lstm": lstm, "transformer_block": transformer_block}
REPORTED_ONLY = {"cnn_maxpool": cnn_maxpool}  # in the table, not held to the factor of 3


def xla_memory(model, optimizer, batch: int):
    """XLA's memory analysis of one jitted training step (state donated, as Keras's fit does)."""
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.MeanSquaredError()

    def loss(trainable, non_trainable, x, y):
        prediction, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return loss_fn(y, prediction), non_trainable

    def step(state, x, y):
        trainable, non_trainable, slots = state
        (value, non_trainable), grads = jax.value_and_grad(loss, has_aux=True)(trainable, non_trainable, x, y)
        trainable, slots = optimizer.stateless_apply(slots, grads, trainable)
        return value, (trainable, non_trainable, slots)

    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )
    x = np.zeros((batch, *model.input_shape[1:]), "float32")
    y = np.zeros((batch, *model.output_shape[1:]), "float32")
    return jax.jit(step, donate_argnums=0).lower(state, x, y).compile().memory_analysis()


@pytest.fixture(scope="module")
def figures():
    """name -> (our ModelCost, XLA memory analysis), for Adam at batch BATCH."""
    found = {}
    for name, build in {**MODELS, **REPORTED_ONLY}.items():
        model = build()
        ours = estimate(model, batch_size=BATCH, optimizer="adam")
        found[name] = (ours, xla_memory(model, keras.optimizers.Adam(), BATCH))
    yield found
    _report(found)


def xla_total(analysis) -> int:
    """Arguments + outputs not aliased to arguments + temporaries: the step's peak, roughly."""
    outputs = analysis.output_size_in_bytes - analysis.alias_size_in_bytes
    return analysis.argument_size_in_bytes + outputs + analysis.temp_size_in_bytes


def _report(found) -> None:
    header = (
        f"Adam, float32, batch {BATCH}, JAX {jax.__version__} on {jax.devices()[0].platform}: "
        "ours = weights + gradients + optimizer state + activations; XLA = arguments + outputs "
        "(not aliased) + temporaries of the jitted training step.\n\n"
        "| model | params | ours: weights | gradients | optimizer | activations | total | "
        "XLA: arguments | outputs | aliased | temp | total | XLA / ours |\n" + "| --- " * 13 + "|"
    )
    lines = [header]
    for name, (cost, xla) in found.items():
        ours = [cost.weight_bytes, cost.gradient_bytes, cost.optimizer_bytes, cost.activation_bytes]
        theirs = [xla.argument_size_in_bytes, xla.output_size_in_bytes, xla.alias_size_in_bytes, xla.temp_size_in_bytes]
        cells = [format_bytes(b) for b in [*ours, cost.training_bytes, *theirs, xla_total(xla)]]
        ratio = xla_total(xla) / cost.training_bytes
        lines.append(f"| {name} | {cost.params:,} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    table = "\n".join(lines)
    print("\n" + table)
    path = os.environ.get("NNS_MEMORY_FIGURES")
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(table + "\n")


@pytest.mark.parametrize("name", list(MODELS))
def test_xla_arguments_hold_at_least_our_weights_and_optimizer_state(figures, name):
    cost, xla = figures[name]
    assert xla.argument_size_in_bytes >= cost.weight_bytes + cost.optimizer_bytes


@pytest.mark.parametrize("name", list(MODELS))
def test_totals_within_a_factor_of_three(figures, name):
    cost, xla = figures[name]
    assert cost.training_bytes / 3 <= xla_total(xla) <= 3 * cost.training_bytes


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer_block"])
def test_compiled_figure_is_xla_memory_analysis_of_the_training_step(name):
    """compiled_training_bytes against the step above: the same but for its targets argument."""
    model = MODELS[name]()
    cost = estimate(model, batch_size=BATCH, optimizer="adam", compiled_memory=True)
    reference = xla_total(xla_memory(model, keras.optimizers.Adam(), BATCH))
    targets = BATCH * int(np.prod(model.output_shape[1:])) * 4  # float32 y, which the step above also takes
    assert cost.compiled_training_bytes == reference - targets
    assert "compiled_training_bytes" in cost.to_dict()
