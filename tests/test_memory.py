"""Tests for the memory figures: weights, gradients, optimizer state and activations."""

import warnings

import keras
import pytest

from nns_callbacks import estimate

# Model: 10 -> Dense a (20) -> BatchNormalization -> ReLU -> Dense b (5).
A_PARAMS = 10 * 20 + 20  # 220
BN_TRAINABLE = 2 * 20  # gamma, beta
BN_MOVING = 2 * 20  # moving mean and variance, never trainable
B_PARAMS = 20 * 5 + 5  # 105
PARAMS = A_PARAMS + BN_TRAINABLE + BN_MOVING + B_PARAMS  # 405
TRAINABLE = PARAMS - BN_MOVING  # 365


def small_model():
    x = keras.Input((10,))
    y = keras.layers.Dense(20, name="a")(x)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.ReLU(name="relu")(y)
    return keras.Model(x, keras.layers.Dense(5, name="b")(y))


@pytest.fixture
def policy(request):
    """Set the global dtype policy named by the test's parameter, and restore the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(previous)


def test_float32_weights_take_four_bytes_each():
    model = small_model()
    cost = estimate(model)
    assert model.count_params() == cost.params == PARAMS
    assert cost.trainable_params == TRAINABLE
    assert cost.non_trainable_params == BN_MOVING
    assert cost.weight_bytes == PARAMS * 4  # 1620
    assert cost.layers["weight_bytes"].sum() == cost.weight_bytes


def test_gradients_take_four_bytes_per_trainable_parameter():
    assert estimate(small_model()).gradient_bytes == TRAINABLE * 4  # 1460


def test_training_bytes_adds_the_four_parts():
    cost = estimate(small_model(), optimizer="adam")
    assert cost.training_bytes == cost.weight_bytes + cost.gradient_bytes + cost.optimizer_bytes + cost.activation_bytes
    assert cost.training_bytes == PARAMS * 4 + TRAINABLE * 4 + 2 * TRAINABLE * 4 + cost.activation_bytes


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"], indirect=True)
def test_mixed_precision_keeps_float32_weights_and_halves_activations(policy):
    mixed = estimate(small_model(), batch_size=4)
    keras.config.set_dtype_policy("float32")
    full = estimate(small_model(), batch_size=4)
    assert mixed.dtype_policy == policy
    assert full.dtype_policy == "float32"
    assert mixed.weight_bytes == full.weight_bytes == PARAMS * 4
    assert mixed.gradient_bytes == full.gradient_bytes == TRAINABLE * 4
    assert full.activation_bytes > 0
    assert 2 * mixed.activation_bytes == full.activation_bytes
    assert list(2 * mixed.layers["activation_bytes"]) == list(full.layers["activation_bytes"])


def test_activation_bytes_follow_a_layers_own_dtype():
    x = keras.Input((10,))
    y = keras.layers.Dense(20, name="half", dtype="mixed_float16")(x)
    model = keras.Model(x, keras.layers.Dense(20, name="full")(y))
    r = {row["name"]: row for row in estimate(model).layers.to_dict("records")}
    assert 2 * r["half"]["activation_bytes"] == r["full"]["activation_bytes"] > 0


@pytest.mark.parametrize(
    ("optimizer", "slots"),
    [
        (lambda: keras.optimizers.SGD(), 0),
        (lambda: keras.optimizers.SGD(momentum=0.9), 1),
        (lambda: keras.optimizers.SGD(momentum=0.9, nesterov=True), 1),
        (lambda: keras.optimizers.RMSprop(), 1),
        (lambda: keras.optimizers.RMSprop(momentum=0.9, centered=True), 3),
        (lambda: keras.optimizers.Adam(), 2),
        (lambda: keras.optimizers.AdamW(), 2),
        (lambda: keras.optimizers.Adam(amsgrad=True), 3),
        (lambda: keras.optimizers.Adagrad(), 1),
    ],
)
def test_optimizer_slots(optimizer, slots):
    cost = estimate(small_model(), optimizer=optimizer())
    assert cost.optimizer_bytes == slots * TRAINABLE * 4


@pytest.mark.parametrize(
    ("name", "label", "slots"),
    [("sgd", "SGD", 0), ("adam", "Adam", 2), ("adamw", "AdamW", 2), ("rmsprop", "RMSprop", 1)],
)
def test_optimizer_by_name(name, label, slots):
    cost = estimate(small_model(), optimizer=name)
    assert cost.optimizer == label
    assert cost.optimizer_bytes == slots * TRAINABLE * 4


def test_unknown_optimizer_name_raises():
    with pytest.raises(ValueError, match="not_an_optimizer"):
        estimate(small_model(), optimizer="not_an_optimizer")


def test_no_optimizer_counts_no_state():
    cost = estimate(small_model())
    assert cost.optimizer == "none"
    assert cost.optimizer_bytes == cost.optimizer_flops == 0


def test_compiled_optimizer_is_used_when_none_is_given():
    model = small_model()
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9), loss="mse")
    cost = estimate(model)
    assert cost.optimizer == "SGD"
    assert cost.optimizer_bytes == 1 * TRAINABLE * 4
    assert estimate(model, optimizer="adam").optimizer_bytes == 2 * TRAINABLE * 4  # the argument wins


@pytest.mark.parametrize("policy", ["mixed_float16"], indirect=True)
def test_loss_scale_optimizer_is_unwrapped(policy):
    model = small_model()
    model.compile(optimizer="adam", loss="mse")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    cost = estimate(model)
    assert cost.optimizer == "Adam"
    assert cost.optimizer_bytes == 2 * TRAINABLE * 4
    wrapped = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(momentum=0.9))
    assert estimate(model, optimizer=wrapped).optimizer_bytes == 1 * TRAINABLE * 4


def test_frozen_weights_have_no_gradient_or_optimizer_bytes():
    model = small_model()
    model.get_layer("a").trainable = False
    cost = estimate(model, optimizer="adam")
    trainable = TRAINABLE - A_PARAMS  # 145
    assert cost.trainable_params == trainable
    assert cost.weight_bytes == PARAMS * 4
    assert cost.gradient_bytes == trainable * 4
    assert cost.optimizer_bytes == 2 * trainable * 4


class Plain(keras.optimizers.Optimizer):
    """An optimizer the cost table does not know."""

    def update_step(self, gradient, variable, learning_rate):
        variable.assign_sub(gradient * learning_rate)


class MyAdam(keras.optimizers.Adam):
    """A subclass of a known optimizer: costed as its parent."""


def test_unknown_optimizer_warns_and_counts_zero():
    with pytest.warns(UserWarning, match="no cost entry for optimizer Plain") as caught:
        cost = estimate(small_model(), optimizer=Plain(learning_rate=0.1))
    assert caught[0].filename == __file__
    assert cost.optimizer == "Plain"
    assert cost.optimizer_bytes == cost.optimizer_flops == 0
    assert cost.training_flops == cost.forward_flops + cost.backward_flops


def test_subclass_of_known_optimizer_costs_as_its_parent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost = estimate(small_model(), optimizer=MyAdam())
    assert cost.optimizer == "MyAdam"
    assert cost.optimizer_bytes == 2 * TRAINABLE * 4
    assert cost.optimizer_flops == 12 * TRAINABLE


def test_gradient_and_optimizer_bytes_follow_each_weights_dtype():
    x = keras.Input((10,))
    y = keras.layers.Dense(20, name="half", dtype="float16")(x)  # float16 variables: 2 bytes
    model = keras.Model(x, keras.layers.Dense(5, name="full")(y))
    cost = estimate(model, optimizer="adam")
    half, full = 10 * 20 + 20, 20 * 5 + 5  # 220, 105
    assert cost.weight_bytes == cost.gradient_bytes == half * 2 + full * 4  # 860
    assert cost.optimizer_bytes == 2 * (half * 2 + full * 4)
