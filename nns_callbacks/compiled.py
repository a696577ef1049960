"""XLA's figures for one jitted training step of a model (JAX backend), lowered and compiled from shapes alone:
its memory, and under a distribution one device's memory and FLOPs (the partitioned program's)."""

from __future__ import annotations

from typing import NamedTuple


class CompiledStep(NamedTuple):
    """XLA's analysis of the compiled step, for one device: arguments + outputs not aliased to them + temporaries
    (bytes), and its cost analysis's FLOPs (``None`` where XLA gives none)."""

    training_bytes: int
    flops: int | None


def compiled_figures(model, batch_size: int = 1, optimizer=None, input_shape=None,
                     distribution=None) -> CompiledStep | None:
    """XLA's memory and FLOPs of one jitted training step on one device; ``None`` off the JAX backend.

    The step is lowered from shapes alone (nothing is allocated): the model's forward pass in training mode, a
    mean-square loss of its outputs, the gradients, and the optimizer's update (default: the compiled one; none:
    the step ends at the gradients), the state donated as ``fit`` does.  Under a Keras ``distribution`` the state
    and the batch carry its layouts, so that XLA partitions the program and reports one device's share.
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    from .input_specs import input_specs
    from .optimizers import resolve_optimizer

    optimizer = resolve_optimizer(model, optimizer)
    fresh = None if optimizer is None else optimizer.__class__.from_config(optimizer.get_config())
    shard = _Sharding(distribution)
    inputs = keras.tree.map_structure(shard.data, input_specs(model, batch_size, input_shape))
    state = (
        [shard.variable(v) for v in model.trainable_variables],
        [shard.variable(v) for v in model.non_trainable_variables],
        _slots(fresh, model, shard),
    )
    compiled = jax.jit(_training_step(model, fresh), donate_argnums=0).lower(state, inputs).compile()
    analysis = compiled.memory_analysis()
    outputs = analysis.output_size_in_bytes - analysis.alias_size_in_bytes
    return CompiledStep(int(analysis.argument_size_in_bytes + outputs + analysis.temp_size_in_bytes),
                        _flops(compiled))


def compiled_training_bytes(model, batch_size: int = 1, optimizer=None, input_shape=None) -> int | None:
    """XLA's memory for one jitted training step on the device it will run on; ``None`` off the JAX backend."""
    figures = compiled_figures(model, batch_size, optimizer, input_shape)
    return None if figures is None else figures.training_bytes


def _training_step(model, optimizer):
    import jax
    import jax.numpy as jnp
    import keras

    def loss(trainable, non_trainable, x):
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        value = sum(jnp.mean(jnp.square(y.astype("float32"))) for y in keras.tree.flatten(outputs))
        return value, non_trainable

    def step(state, x):
        trainable, non_trainable, optimizer_variables = state
        (value, non_trainable), grads = jax.value_and_grad(loss, has_aux=True)(trainable, non_trainable, x)
        if optimizer is not None:
            trainable, optimizer_variables = optimizer.stateless_apply(optimizer_variables, grads, trainable)
        else:
            trainable = grads
        return value, (trainable, non_trainable, optimizer_variables)

    return step


def _slots(optimizer, model, shard) -> list:
    """The fresh optimizer's variables as shapes (built under ``eval_shape``), each laid out as Keras lays it out
    (like the variable it belongs to)."""
    import jax

    if optimizer is None:
        return []
    layouts = []

    def slots():
        optimizer.build(model.trainable_variables)
        layouts.extend(getattr(v, "_layout", None) for v in optimizer.variables)
        return [v.value for v in optimizer.variables]

    shapes = jax.eval_shape(slots)
    return [shard.struct(shape.shape, shape.dtype, layout) for shape, layout in zip(shapes, layouts)]


class _Sharding:
    """Abstract arrays, laid out as a Keras distribution says (none: one device)."""

    def __init__(self, distribution):
        self.distribution = distribution

    def struct(self, shape, dtype, layout=None):
        import jax
        import keras

        sharding = None
        if self.distribution is not None:
            sharding = layout.backend_layout if layout is not None else self._replicated()
        return jax.ShapeDtypeStruct(tuple(shape), keras.backend.standardize_dtype(dtype), sharding=sharding)

    def _replicated(self):
        import jax

        return jax.sharding.NamedSharding(self.distribution.device_mesh.backend_mesh, jax.sharding.PartitionSpec())

    def variable(self, variable):
        layout = self.distribution.get_variable_layout(variable) if self.distribution is not None else None
        return self.struct(variable.shape, variable.dtype, layout)

    def data(self, spec):
        layout = self.distribution.get_data_layout(tuple(spec.shape)) if self.distribution is not None else None
        return self.struct(spec.shape, spec.dtype, layout)


def _flops(compiled) -> int | None:
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) and analysis else analysis
    flops = (analysis or {}).get("flops")
    return int(flops) if flops is not None and flops >= 0 else None
