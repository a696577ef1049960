"""``estimate(model)``: walk the model, apply the cost rules, add up memory and optimizer cost."""

from __future__ import annotations

import collections
import functools
import math
import warnings

import keras
import numpy as np
import pandas as pd

from . import keras_compat as compat
from . import rules as _builtin_rules  # noqa: F401  (registers the built-in rules)
from .cost import ModelCost
from .keras_compat import type_name
from .optimizers import optimizer_cost, resolve_optimizer
from .registry import FREE, LayerCost, collecting_unsupported, fitting_rule, overriding_rules
from .walk import LeafCall, ModelWalk

_warned_unsupported: set[str] = set()


def estimate(
    model, batch_size: int = 1, input_shape=None, optimizer=None, rules=None, compiled_memory: bool = False
) -> ModelCost:
    """Estimate parameters, MACs, FLOPs and memory of one training step of ``model``.

    ``batch_size`` samples per step; ``input_shape`` (without the batch axis; a list
    or dict for several inputs) is needed when the model is not built or has
    dimensions of unknown size; ``optimizer`` (instance or name) defaults to the
    compiled one; ``rules`` (``{layer class: rule}``) replace or add cost rules for
    this call only; ``compiled_memory`` adds XLA's memory analysis of the jitted
    training step on the JAX backend (it compiles the step: seconds for a large model).
    All figures are for the whole batch: see ``ModelCost``.
    """
    _check_batch_size(batch_size)
    with overriding_rules(rules):
        specs = input_specs(model, batch_size, input_shape)
        walk = ModelWalk()
        walk.run(model, specs)
        optimizer = resolve_optimizer(model, optimizer)
        cost = _model_cost(model, batch_size, walk, optimizer)
    if compiled_memory:
        from .memory import compiled_training_bytes

        cost.compiled_training_bytes = compiled_training_bytes(model, batch_size, optimizer, input_shape)
    return cost


def _check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def input_specs(model, batch_size: int, input_shape=None):
    """Symbolic inputs with concrete shapes, building the model from ``input_shape`` if needed."""
    if input_shape is not None:
        shapes = _normalise_input_shape(input_shape)
        if not model.built:
            _build(model, shapes)
        _check_given_shapes(model, shapes)
        return _specs_like(model, shapes, batch_size)
    if not model.built:
        raise ValueError(
            f"model {model.name!r} is not built, so its input shape is unknown: call "
            "estimate(model, input_shape=(...)) with the shape of one sample, or build the "
            "model first (model.build(...) or call it on data)"
        )
    shapes = _known_input_shapes(model)
    return _specs_like(model, shapes, batch_size)


def _normalise_input_shape(input_shape):
    if isinstance(input_shape, dict):
        return {name: _as_shape(shape) for name, shape in input_shape.items()}
    if isinstance(input_shape, (list, tuple)) and input_shape and all(
        isinstance(s, (list, tuple)) for s in input_shape
    ):
        return [_as_shape(s) for s in input_shape]
    return _as_shape(input_shape)


def _as_shape(shape) -> tuple[int, ...]:
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise ValueError(
            f"input_shape must hold positive integers for one sample (no batch axis), got {shape!r}"
        )
    return tuple(int(d) for d in shape)


def _with_batch(shapes, batch):
    if isinstance(shapes, dict):
        return {name: (batch, *s) for name, s in shapes.items()}
    if isinstance(shapes, list):
        return [(batch, *s) for s in shapes]
    return (batch, *shapes)


def _build(model, shapes) -> None:
    """Build ``model`` for per-sample ``shapes``: its own ``build``, else one symbolic call."""
    if compat.has_own_build(model):
        model.build(_with_batch(shapes, None))
        return
    specs = _specs_like(model, shapes, None)
    try:
        model(specs)
    except Exception as error:
        raise ValueError(
            f"could not build model {model.name!r} by calling it on inputs of shape {shapes}: {error}"
        ) from error


def _known_input_shapes(model):
    """Per-sample input shapes of a built model; a ``None`` dimension is an error."""
    inputs = _input_tensors(model)
    if inputs is None:
        build_shapes = compat.build_shapes(model)
        if not build_shapes:
            raise ValueError(
                f"cannot tell the input shape of model {model.name!r}: pass "
                "estimate(model, input_shape=(...)) with the shape of one sample"
            )
        named = {f"input {i}": tuple(s) for i, s in enumerate(build_shapes.values())}
    else:
        items = inputs.items() if isinstance(inputs, dict) else ((_input_name(x, i), x) for i, x in enumerate(inputs))
        named = {name: tuple(x.shape) for name, x in items}
    for name, shape in named.items():
        _check_known(model, name, shape)
    shapes = {name: shape[1:] for name, shape in named.items()}
    if isinstance(inputs, dict):
        return shapes
    shapes = list(shapes.values())
    return shapes[0] if len(shapes) == 1 else shapes


def _check_given_shapes(model, shapes) -> None:
    """``input_shape`` must match the rank and the known sizes of the model's inputs."""
    inputs = _input_tensors(model)
    if inputs is None:
        return
    if isinstance(inputs, dict) != isinstance(shapes, dict):
        return  # matched by position or by name inside Keras; nothing to compare here
    if isinstance(inputs, dict):
        pairs = [(name, inputs[name], shapes[name]) for name in shapes if name in inputs]
    else:
        given = shapes if isinstance(shapes, list) else [shapes]
        if len(given) != len(inputs):
            raise ValueError(f"model {model.name!r} takes {len(inputs)} input(s); input_shape gives {len(given)}")
        pairs = [(_input_name(x, i), x, shape) for i, (x, shape) in enumerate(zip(inputs, given))]
    for name, tensor, shape in pairs:
        expected = tuple(tensor.shape)[1:]
        if len(shape) != len(expected) or any(e is not None and e != g for e, g in zip(expected, shape)):
            raise ValueError(
                f"input_shape {shape} does not fit input {name!r} of model {model.name!r}, "
                f"whose shape is {expected} per sample (None: any size)"
            )


def _check_known(model, name: str, shape: tuple) -> None:
    for axis, size in enumerate(shape[1:], start=1):
        if size is None:
            raise ValueError(
                f"input {name!r} of model {model.name!r} has unknown size along dimension "
                f"{axis} (shape {shape}): pass estimate(model, input_shape=...) with concrete "
                "sizes, e.g. the sequence length you train with"
            )


def _input_name(tensor, index: int) -> str:
    """The name of the Input layer that made ``tensor``, else the tensor's name."""
    return compat.producer_name(tensor) or getattr(tensor, "name", None) or f"input {index}"


def _input_tensors(model):
    """The symbolic inputs of a model: a dict by name for dict inputs, a list, or ``None``."""
    struct = compat.inputs_struct(model)
    if isinstance(struct, dict):
        return struct
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return list(inputs) if inputs else None


def _specs_like(model, shapes, batch_size):
    """KerasTensors of ``shapes`` (plus the batch axis) in the dtypes of the model's inputs."""
    inputs = _input_tensors(model)

    def spec(shape, key):
        try:
            dtype = inputs[key].dtype
        except (TypeError, KeyError, IndexError):
            dtype = "float32"
        return keras.KerasTensor((batch_size, *shape), dtype=dtype)

    if isinstance(shapes, dict):
        return {name: spec(shape, name) for name, shape in shapes.items()}
    if isinstance(shapes, list):
        return [spec(s, i) for i, s in enumerate(shapes)]
    return spec(shapes, 0)


_RULE_FAILED = " (rule failed)"


def _leaf_cost(leaf: LeafCall, unsupported) -> LayerCost | None:
    """The rule's cost of one call; ``None`` (and an ``unsupported`` entry) when there is none."""
    if leaf.kind == "traced":
        return FREE
    if leaf.kind == "untraceable":
        return None  # listed by the walk
    rule = fitting_rule(leaf.layer)
    if rule is None:
        unsupported[type_name(leaf.layer)] += 1
        return None
    try:
        return rule(leaf.layer, leaf.call)
    except Exception as error:  # noqa: BLE001  (a broken rule must not stop training)
        warnings.warn(
            f"nns_callbacks: cost rule {rule.__name__} failed on {leaf.path} "
            f"({type_name(leaf.layer)}): {error!r}; counted as 0",
            stacklevel=6,
        )
        unsupported[type_name(leaf.layer) + _RULE_FAILED] += 1
        return None


@functools.cache
def _itemsize(dtype) -> int:
    return np.dtype(keras.backend.standardize_dtype(dtype)).itemsize if dtype else 4


def _backward(leaf: LeafCall, cost: LayerCost) -> int:
    flops = cost.input_grad_flops if leaf.needs_input_grad else 0
    flops += cost.weight_grad_flops if leaf.trains else 0
    flops += cost.internal_grad_flops if (leaf.trains or leaf.needs_input_grad) else 0
    return flops


_KEPT = {"outputs": ("outputs",), "inputs": ("inputs",), "inputs+outputs": ("inputs", "outputs"), "nothing": ()}


def _saved_bytes(leaf: LeafCall, cost: LayerCost, kept: set) -> int:
    """Bytes the call keeps for the backward pass that no earlier call keeps already (``kept``: their keys)."""
    if not (leaf.trains or leaf.needs_input_grad):
        return 0
    dtype = getattr(leaf.layer, "compute_dtype", None)
    if cost.saved_elements is not None:
        dtype = dtype or (leaf.call.output_dtypes[0] if leaf.call.output_dtypes else None)
        return cost.saved_elements * _itemsize(dtype or keras.config.floatx())
    total = cost.buffers * _itemsize(dtype or keras.config.floatx())
    for side in _KEPT[cost.keeps]:
        for key, elements, tensor_dtype in getattr(leaf, side):
            if elements is None or key in kept:
                continue  # a size Keras can't tell, or a tensor already counted
            kept.add(key)
            total += elements * _itemsize(dtype if side == "inputs" and dtype else tensor_dtype)
    return total


def _new_weights(layer, seen: set[int]) -> list:
    fresh = []
    for weight in getattr(layer, "weights", []):
        if id(weight) not in seen:
            seen.add(id(weight))
            fresh.append(weight)
    return fresh


def _weights_params(weights) -> tuple[int, int, int]:
    """(parameters, trainable parameters, bytes) of ``weights``."""
    params = sum(math.prod(w.shape) for w in weights)
    trainable = sum(math.prod(w.shape) for w in weights if w.trainable)
    nbytes = sum(math.prod(w.shape) * _itemsize(w.dtype) for w in weights)
    return params, trainable, nbytes


def _layer_rows(model, walk: ModelWalk, update_flops: int, unsupported) -> list[dict]:
    seen: set[int] = set()
    rows = []
    costs: dict[int, tuple[LayerCost | None, collections.Counter]] = {}
    kept: set = set()
    for leaf in walk.leaves:
        cost, reported = _cached_cost(leaf, costs)
        unsupported.update(reported)
        counted = cost is not None
        if not counted:
            cost = LayerCost(saved_elements=0)
        params, trainable, weight_bytes = _weights_params(_new_weights(leaf.layer, seen))
        backward = _backward(leaf, cost)
        saved_bytes = _saved_bytes(leaf, cost, kept)
        if _adds_nothing(leaf, counted, params, cost, backward, saved_bytes):
            continue
        shapes = leaf.call.output_shapes
        rows.append(
            {
                "name": leaf.path,
                "type": type_name(leaf.layer),
                "call": leaf.call_index,
                "output_shape": str(shapes[0][1:] if len(shapes) == 1 else [s[1:] for s in shapes]),
                "params": params,
                "trainable_params": trainable,
                "forward_macs": cost.macs,
                "forward_flops": cost.forward_flops,
                "backward_flops": backward,
                "training_flops": cost.forward_flops + backward + update_flops * trainable,
                "weight_bytes": weight_bytes,
                "activation_bytes": saved_bytes,
                "counted": counted,
            }
        )
    rows += _unattributed_rows(model, seen, update_flops)
    return rows


def _cached_cost(leaf: LeafCall, costs: dict) -> tuple[LayerCost | None, collections.Counter]:
    """The leaf's cost and what it reported unsupported; a replayed leaf reuses its template's."""
    template = leaf.template or leaf
    if id(template) not in costs:
        reported = collections.Counter()
        with collecting_unsupported(reported):
            costs[id(template)] = (_leaf_cost(template, reported), reported)
    return costs[id(template)]


def _adds_nothing(leaf: LeafCall, counted: bool, params: int, cost: LayerCost, backward: int, saved: int) -> bool:
    """A free op inside a traced call, or a traced layer's own row with no weights of its own: not a row."""
    if leaf.in_call:
        return counted and not (cost.forward_flops or backward or saved)
    return leaf.kind == "traced" and leaf.children > 0 and params == 0


def _unattributed_rows(model, seen: set[int], update_flops: int) -> list[dict]:
    """Weights that no costed call owns (a subclassed model's own variables), as one row."""
    rest = [w for w in model.weights if id(w) not in seen]
    if not rest:
        return []
    params, trainable, nbytes = _weights_params(rest)
    return [
        {
            "name": f"{model.name} (own weights)",
            "type": "weights",
            "call": 1,
            "output_shape": "",
            "params": params,
            "trainable_params": trainable,
            "forward_macs": 0,
            "forward_flops": 0,
            "backward_flops": 0,
            "training_flops": update_flops * trainable,
            "weight_bytes": nbytes,
            "activation_bytes": 0,
            "counted": False,
        }
    ]


_COLUMN_ORDER = [
    "name", "type", "call", "output_shape", "params", "trainable_params", "forward_macs",
    "forward_flops", "backward_flops", "training_flops", "weight_bytes", "activation_bytes",
    "forward_flops_share", "training_flops_share", "activation_bytes_share", "counted",
]


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[c for c in _COLUMN_ORDER if not c.endswith("_share")])
    for column in ("forward_flops", "training_flops", "activation_bytes"):
        total = frame[column].sum()
        frame[f"{column}_share"] = frame[column] / total if total else 0.0
    return frame[_COLUMN_ORDER]


def _model_cost(model, batch_size: int, walk: ModelWalk, optimizer) -> ModelCost:
    opt_cost = optimizer_cost(optimizer)
    rows = _layer_rows(model, walk, opt_cost.update_flops, walk.unsupported)
    frame = _frame(rows)
    _warn_unsupported(walk.unsupported, walk.reasons)
    params, trainable, weight_bytes = _weights_params(model.weights)
    trainable_bytes = _trainable_bytes(model.weights)
    forward_flops = int(frame["forward_flops"].sum())
    backward_flops = int(frame["backward_flops"].sum())
    optimizer_flops = opt_cost.update_flops * trainable
    return ModelCost(
        model_name=model.name,
        batch_size=int(batch_size),
        dtype_policy=_policy_name(model),
        optimizer=opt_cost.name,
        params=params,
        trainable_params=trainable,
        non_trainable_params=params - trainable,
        forward_macs=int(frame["forward_macs"].sum()),
        forward_flops=forward_flops,
        backward_flops=backward_flops,
        optimizer_flops=optimizer_flops,
        training_flops=forward_flops + backward_flops + optimizer_flops,
        weight_bytes=weight_bytes,
        gradient_bytes=trainable_bytes,
        optimizer_bytes=int(opt_cost.slots * trainable_bytes),
        activation_bytes=int(frame["activation_bytes"].sum()),
        layers=frame,
        unsupported=dict(walk.unsupported),
    )


def _trainable_bytes(weights) -> int:
    """Bytes of the trainable weights: what their gradients, and each optimizer slot (step counters aside), take."""
    return sum(math.prod(w.shape) * _itemsize(w.dtype) for w in weights if w.trainable)


def _policy_name(model) -> str:
    """The dtype policy the model's layers compute with: theirs where they agree (a model loaded from a
    file keeps the policy it was saved with in its layers, not in itself), else the model's own."""
    names = collections.Counter(
        getattr(getattr(layer, "dtype_policy", None), "name", None)
        for layer in compat.sublayers(model)[1:]
        if getattr(layer, "weights", None)
    )
    names.pop(None, None)
    if len(names) == 1:
        return next(iter(names))
    policy = getattr(model, "dtype_policy", None)
    return getattr(policy, "name", None) or keras.config.dtype_policy().name


def _warn_unsupported(unsupported, reasons: dict[str, str]) -> None:
    """One warning per kind of uncounted call, the first time it is seen in this process."""
    for name, count in unsupported.items():
        if name in _warned_unsupported or name.endswith(_RULE_FAILED):
            continue
        _warned_unsupported.add(name)
        why = reasons.get(name, "no cost rule")
        warnings.warn(
            f"nns_callbacks: {name} ({count} call(s)) counted as 0: {why}. Listed in ModelCost.unsupported; "
            "register a cost rule with nns_callbacks.register_cost_rule.",
            stacklevel=4,
        )
