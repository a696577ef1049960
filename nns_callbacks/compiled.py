"""XLA's memory for one jitted training step of a model (JAX backend), lowered and compiled from shapes alone.

``estimate(..., compiled_memory=True)`` records it as ``ModelCost.compiled_training_bytes``.
"""

from __future__ import annotations


def compiled_training_bytes(model, batch_size: int = 1, optimizer=None, input_shape=None) -> int | None:
    """XLA's memory for one jitted training step on the device it will run on; ``None`` off the JAX backend.

    The step is lowered from shapes alone (nothing is allocated): the model's
    forward pass in training mode, a mean-square loss of its outputs, the
    gradients, and the optimizer's update (default: the compiled one; none: the
    step ends at the gradients), the state donated as ``fit`` does.  The figure is
    XLA's memory analysis: arguments + outputs not aliased to them + temporaries.
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax
    import jax.numpy as jnp

    from .input_specs import input_specs
    from .optimizers import resolve_optimizer

    optimizer = resolve_optimizer(model, optimizer)
    fresh = None if optimizer is None else optimizer.__class__.from_config(optimizer.get_config())

    def abstract(x):
        return jax.ShapeDtypeStruct(tuple(x.shape), keras.backend.standardize_dtype(x.dtype))

    def slots():  # the fresh optimizer's variables, built under eval_shape: shapes only
        fresh.build(model.trainable_variables)
        return [v.value for v in fresh.variables]

    state = (
        [abstract(v) for v in model.trainable_variables],
        [abstract(v) for v in model.non_trainable_variables],
        jax.eval_shape(slots) if fresh is not None else [],
    )
    inputs = keras.tree.map_structure(abstract, input_specs(model, batch_size, input_shape))

    def loss(trainable, non_trainable, x):
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        value = sum(jnp.mean(jnp.square(y.astype("float32"))) for y in keras.tree.flatten(outputs))
        return value, non_trainable

    def step(state, x):
        trainable, non_trainable, optimizer_variables = state
        (value, non_trainable), grads = jax.value_and_grad(loss, has_aux=True)(trainable, non_trainable, x)
        if fresh is not None:
            trainable, optimizer_variables = fresh.stateless_apply(optimizer_variables, grads, trainable)
        else:
            trainable = grads
        return value, (trainable, non_trainable, optimizer_variables)

    analysis = jax.jit(step, donate_argnums=0).lower(state, inputs).compile().memory_analysis()
    outputs = analysis.output_size_in_bytes - analysis.alias_size_in_bytes
    return int(analysis.argument_size_in_bytes + outputs + analysis.temp_size_in_bytes)
