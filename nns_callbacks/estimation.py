"""``estimate(model)``: walk the model, apply the cost rules, add up memory and optimizer cost.

The pieces: ``input_specs`` (the symbolic inputs), ``walk`` (every call, with its shapes), ``rows`` and
``call_costs`` (a row per call that adds something), ``layer_table`` (the DataFrame and its totals).
"""

from __future__ import annotations

import keras

from . import keras_compat as compat
from . import notices
from . import rules as _builtin_rules  # noqa: F401  (registers the built-in rules)
from .call_costs import RULE_FAILED, WeightSizes
from .cost import ModelCost
from .input_specs import check_batch_size, input_specs, tokens_per_sample
from .layer_table import layer_table
from .mesh import Placement, placement
from .optimizers import optimizer_cost, resolve_optimizer
from .per_device import per_device_cost
from .registry import attention_kernel, overriding_rules
from .rows import layer_columns
from .walk import ModelWalk


def estimate(
    model, batch_size: int = 1, input_shape=None, optimizer=None, rules=None, compiled_memory: bool = False,
    distribution="auto", attention="auto",
) -> ModelCost:
    """Estimate parameters, MACs, FLOPs and memory of one training step of ``model``.

    ``batch_size`` samples per step (the global batch, over all devices); ``input_shape``
    (without the batch axis; a list or dict for several inputs) is needed when the model
    is not built or has dimensions of unknown size; ``optimizer`` (instance or name)
    defaults to the compiled one; ``rules`` (``{layer class: rule}``) replace or add cost
    rules for this call only; ``compiled_memory`` adds XLA's memory analysis of the jitted
    training step on the JAX backend (it compiles the step: seconds for a large model);
    ``distribution``: the devices the step is spread over, for the ``per_device_*``
    figures: ``"auto"`` (the active ``keras.distribution``, else the model's
    ``tf.distribute`` strategy), a Keras distribution, a strategy, a number of devices
    (data parallel) or ``None`` (one device); ``attention``: the attention kernel whose
    memory to count, ``"fused"`` (flash: no scores kept), ``"materialized"`` or ``"auto"``
    (as this backend and device run it).  Figures are for the whole batch: see ``ModelCost``.
    """
    check_batch_size(batch_size)
    placed = placement(distribution, model)
    with overriding_rules(rules), attention_kernel(attention), compat.patches.collector_paused(), \
            notices.once_per_cause():
        specs = input_specs(model, batch_size, input_shape)
        optimizer = resolve_optimizer(model, optimizer)
        cost = _walked_cost(model, batch_size, specs, optimizer, placed)
    if compiled_memory:
        from .compiled import compiled_figures

        compiled = compiled_figures(model, batch_size, optimizer, input_shape, distribution if placed else None)
        if compiled is not None:
            cost.compiled_training_bytes = compiled.training_bytes
            if cost.per_device is not None:
                cost.per_device.compiled_training_bytes = compiled.training_bytes
                cost.per_device.compiled_training_flops = compiled.flops
    return cost


def _walked_cost(model, batch_size: int, specs, optimizer, placed: Placement | None) -> ModelCost:
    """Walk the model called on ``specs`` and cost the walk, which is gone (freed at once) when this returns."""
    walk = ModelWalk()
    walk.run(model, specs)
    cost = _model_cost(model, batch_size, walk, optimizer, placed)
    cost.tokens_per_sample = tokens_per_sample(specs)
    return cost


def _model_cost(model, batch_size: int, walk: ModelWalk, optimizer, placed: Placement | None) -> ModelCost:
    opt_cost = optimizer_cost(optimizer)
    sizes = WeightSizes()
    weights = compat.weights(model)
    plans: dict = {}
    columns = layer_columns(model, weights, walk, opt_cost, walk.unsupported, sizes, plans)
    layers, sums = layer_table(columns)
    _warn_unsupported(model.name, walk.unsupported, walk.reasons)
    params, trainable, weight_bytes = sizes.total(weights)
    trainable_bytes = _trainable_bytes(weights, sizes)
    forward_flops, backward_flops = sums["forward_flops"], sums["backward_flops"]
    optimizer_flops = opt_cost.update_flops * trainable
    return ModelCost(
        model_name=model.name,
        batch_size=int(batch_size),
        dtype_policy=_policy_name(model),
        optimizer=opt_cost.name,
        params=params,
        trainable_params=trainable,
        non_trainable_params=params - trainable,
        forward_macs=sums["forward_macs"],
        forward_flops=forward_flops,
        backward_flops=backward_flops,
        optimizer_flops=optimizer_flops,
        training_flops=forward_flops + backward_flops + optimizer_flops,
        weight_bytes=weight_bytes,
        gradient_bytes=trainable_bytes,
        optimizer_bytes=int(opt_cost.slots * trainable_bytes),
        activation_bytes=sums["activation_bytes"],
        forward_bytes_moved=sums["forward_bytes_moved"],
        backward_bytes_moved=sums["backward_bytes_moved"],
        optimizer_bytes_moved=sums["optimizer_bytes_moved"],
        layers=layers,
        unsupported=dict(walk.unsupported),
        devices=placed.mesh.devices if placed else 1,
        mesh_shape=dict(placed.mesh.shape) if placed else {},
        per_device=per_device_cost(weights, walk.entries, plans, placed, opt_cost.slots, opt_cost.update_flops)
        if placed else None,
    )


def _trainable_bytes(weights, sizes: WeightSizes) -> int:
    """Bytes of the trainable weights: what their gradients, and each optimizer slot (step counters aside), take."""
    return sizes.total(w for w in weights if w.trainable)[2]


def _policy_name(model) -> str:
    """The dtype policy the model's layers compute with: theirs where they agree (a model loaded from a
    file keeps the policy it was saved with in its layers, not in itself), else the model's own."""
    known: dict[int, bool] = {}
    names = {
        getattr(getattr(layer, "dtype_policy", None), "name", None)
        for layer in compat.sublayers(model)[1:]
        if compat.has_weights(layer, known)
    }
    names.discard(None)
    if len(names) == 1:
        return next(iter(names))
    policy = getattr(model, "dtype_policy", None)
    return getattr(policy, "name", None) or keras.config.dtype_policy().name


def _warn_unsupported(model_name: str, unsupported, reasons: dict[str, str]) -> None:
    """One warning per kind of uncounted call, in each estimate (or each fit of the callback)."""
    for name, count in unsupported.items():
        if name.endswith(RULE_FAILED):
            continue
        why = reasons.get(name, "no cost rule")
        counted = "counted once" if "counted once" in name else "counted as 0"
        notices.warn(
            f"model {model_name!r}: {name} ({count} call(s)) {counted}: {why}. Listed in ModelCost.unsupported; "
            "register a cost rule with nns_callbacks.register_cost_rule.",
            cause=("unsupported", name),
            stacklevel=5,
            category=notices.UncountedWarning,
        )
