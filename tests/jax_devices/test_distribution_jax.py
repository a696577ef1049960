"""Per-device figures under Keras distributions on eight virtual CPU devices, against the arrays and XLA.

Weights and optimizer state: the bytes of each array's shard on device 0 (``addressable_shards``), exactly.
Memory and FLOPs: XLA's memory and cost analyses of the training step jitted with the distribution's shardings
(written here, apart from the package's own compiled figure), within 25% and 5%.
"""

import jax
import jax.numpy as jnp
import keras
import keras_hub
import numpy as np
import pytest

import nns_callbacks

SEQ, BATCH = 128, 8
DEVICES = keras.distribution.list_devices()


def gemma():
    return keras_hub.models.GemmaBackbone(vocabulary_size=1000, num_layers=2, num_query_heads=8,
                                          num_key_value_heads=8, hidden_dim=128, intermediate_dim=256, head_dim=32)


def llama():
    return keras_hub.models.LlamaBackbone(vocabulary_size=1000, num_layers=2, num_query_heads=8,
                                          num_key_value_heads=8, hidden_dim=128, intermediate_dim=256)


def mlp():
    return keras.Sequential([keras.Input((256,)), keras.layers.Dense(512, activation="relu"),
                             keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10)])


TOKENS = {"token_ids": (SEQ,), "padding_mask": (SEQ,)}
MODEL_PARALLEL = [(build, mesh) for build in (gemma, llama) for mesh in ((2, 4), (1, 8))]


def model_parallel(build, mesh_shape):
    mesh = keras.distribution.DeviceMesh(mesh_shape, ["batch", "model"], DEVICES)
    backbone = {gemma: keras_hub.models.GemmaBackbone, llama: keras_hub.models.LlamaBackbone}[build]
    return keras.distribution.ModelParallel(layout_map=backbone.get_layout_map(mesh), batch_dim_name="batch")


def built(build, distribution):
    with distribution.scope():
        model = build()
        optimizer = keras.optimizers.Adam()
        optimizer.build(model.trainable_variables)
    return model, optimizer


def device0_bytes(variables) -> int:
    """Bytes of the variables' shards on device 0, read from the arrays."""
    device = jax.devices()[0]
    total = 0
    for variable in variables:
        shard = next(s for s in variable.value.addressable_shards if s.device == device)
        total += shard.data.size * shard.data.dtype.itemsize
    return total


def xla_step(model, optimizer, distribution, inputs):
    """XLA's memory (arguments + unaliased outputs + temporaries) and FLOPs of one device's partitioned step."""
    replicated = jax.sharding.NamedSharding(distribution.device_mesh.backend_mesh, jax.sharding.PartitionSpec())

    def struct(array_like, sharding):
        return jax.ShapeDtypeStruct(tuple(array_like.shape), array_like.dtype, sharding=sharding)

    def of_variable(variable):
        sharding = variable.value.sharding
        return struct(variable.value, sharding if isinstance(sharding, jax.sharding.NamedSharding) else replicated)

    state = ([of_variable(v) for v in model.trainable_variables],
             [of_variable(v) for v in model.non_trainable_variables],
             [of_variable(v) for v in optimizer.variables])
    batch = keras.tree.map_structure(
        lambda value: struct(value, distribution.get_data_layout(value.shape).backend_layout), inputs)

    def loss(trainable, non_trainable, x):
        y, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return jnp.mean(jnp.square(y.astype("float32"))), non_trainable

    def step(state, x):
        trainable, non_trainable, slots = state
        (value, non_trainable), grads = jax.value_and_grad(loss, has_aux=True)(trainable, non_trainable, x)
        trainable, slots = optimizer.stateless_apply(slots, grads, trainable)
        return value, (trainable, non_trainable, slots)

    compiled = jax.jit(step, donate_argnums=0).lower(state, batch).compile()
    memory = compiled.memory_analysis()
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    total = memory.argument_size_in_bytes + memory.output_size_in_bytes - memory.alias_size_in_bytes
    return total + memory.temp_size_in_bytes, analysis["flops"]


def slot_variables(optimizer):
    return [v for v in optimizer.variables if len(v.shape)]  # the moments, not the step counter


def check_against_arrays_and_xla(cost, model, optimizer, distribution, inputs):
    assert cost.per_device_weight_bytes == device0_bytes(model.weights)
    assert cost.per_device_optimizer_bytes == device0_bytes(slot_variables(optimizer))
    assert cost.per_device_gradient_bytes == device0_bytes(model.trainable_weights)
    memory, flops = xla_step(model, optimizer, distribution, inputs)
    assert cost.per_device_training_bytes == pytest.approx(memory, rel=0.25)
    assert cost.per_device_training_flops == pytest.approx(flops, rel=0.05)


@pytest.mark.parametrize("build, mesh_shape", MODEL_PARALLEL, ids=lambda x: getattr(x, "__name__", str(x)))
def test_model_parallel_per_device_figures(build, mesh_shape):
    distribution = model_parallel(build, mesh_shape)
    model, optimizer = built(build, distribution)
    cost = nns_callbacks.estimate(model, batch_size=BATCH, input_shape=TOKENS, optimizer=keras.optimizers.Adam(),
                                  distribution=distribution)
    assert cost.devices == 8 and cost.mesh_shape == dict(zip(("batch", "model"), mesh_shape))
    inputs = {name: np.zeros((BATCH, SEQ), "int32") for name in TOKENS}
    check_against_arrays_and_xla(cost, model, optimizer, distribution, inputs)


@pytest.mark.parametrize("devices", [2, 4, 8])
def test_data_parallel_per_device_figures(devices):
    distribution = keras.distribution.DataParallel(devices=DEVICES[:devices])
    model, optimizer = built(mlp, distribution)
    cost = nns_callbacks.estimate(model, batch_size=64, optimizer=keras.optimizers.Adam(), distribution=distribution)
    assert cost.devices == devices
    check_against_arrays_and_xla(cost, model, optimizer, distribution, np.zeros((64, 256), "float32"))
    # Each device all-reduces the whole gradient once, in a ring: 2 (n - 1) / n of its bytes.
    assert cost.per_device_communication_bytes == round(2 * (devices - 1) / devices * cost.gradient_bytes)


def test_the_active_distribution_is_the_default():
    distribution = keras.distribution.DataParallel(devices=DEVICES[:4])
    model, _ = built(mlp, distribution)
    assert nns_callbacks.estimate(model, batch_size=64).devices == 1
    with distribution.scope():
        assert nns_callbacks.estimate(model, batch_size=64).devices == 4


def test_compiled_memory_gives_one_devices_figures():
    distribution = model_parallel(gemma, (2, 4))
    model, optimizer = built(gemma, distribution)
    cost = nns_callbacks.estimate(model, batch_size=BATCH, input_shape=TOKENS, optimizer=keras.optimizers.Adam(),
                                  distribution=distribution, compiled_memory=True)
    memory, flops = xla_step(model, optimizer, distribution, {n: np.zeros((BATCH, SEQ), "int32") for n in TOKENS})
    assert cost.per_device_compiled_training_bytes == pytest.approx(memory, rel=0.01)
    assert cost.per_device.compiled_training_flops == pytest.approx(flops, rel=0.01)


def test_max_batch_size_brackets_its_own_per_device_estimate():
    distribution = model_parallel(llama, (2, 4))
    model, _ = built(llama, distribution)

    def per_device(batch):
        return nns_callbacks.estimate(model, batch_size=batch, input_shape=TOKENS, optimizer="adam",
                                      distribution=distribution).per_device_training_bytes

    budget = per_device(6) + (per_device(8) - per_device(6)) // 2  # between global batches 6 and 8
    fits = nns_callbacks.max_batch_size(model, budget, optimizer="adam", input_shape=TOKENS,
                                        distribution=distribution)
    assert fits == 6  # a multiple of the batch axis (2)
    assert per_device(fits) <= budget < per_device(fits + 2)
