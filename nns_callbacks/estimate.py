"""``estimate(model)``: walk the model, apply the cost rules, add up memory and optimizer cost."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pandas as pd

from . import rules  # noqa: F401  (registers the built-in rules)
from .cost import ModelCost
from .optimizers import optimizer_cost, resolve_optimizer
from .registry import LayerCost, rule_for
from .walk import LeafCall, ModelWalk

_warned_unsupported: set[str] = set()


def estimate(model, batch_size: int = 1, input_shape=None, optimizer=None) -> ModelCost:
    """Estimate parameters, MACs, FLOPs and memory of one training step of ``model``.

    ``batch_size`` samples per step; ``input_shape`` (without the batch axis; a list
    or dict for several inputs) is needed when the model is not built or has
    dimensions of unknown size; ``optimizer`` (instance or name) defaults to the
    compiled one.  All figures are for the whole batch: see ``ModelCost``.
    """
    _check_batch_size(batch_size)
    specs = input_specs(model, batch_size, input_shape)
    walk = ModelWalk()
    walk.run(model, specs)
    optimizer = resolve_optimizer(model, optimizer)
    return _model_cost(model, batch_size, walk, optimizer)


def _check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def input_specs(model, batch_size: int, input_shape=None):
    """Symbolic inputs with concrete shapes, building the model from ``input_shape`` if needed."""
    if input_shape is not None:
        shapes = _normalise_input_shape(input_shape)
        if not model.built:
            model.build(_with_batch(shapes, None))
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


def _known_input_shapes(model):
    """Per-sample input shapes of a built model; a ``None`` dimension is an error."""
    inputs = _model_inputs(model)
    if inputs is None:
        build_shapes = getattr(model, "_build_shapes_dict", None)
        if not build_shapes:
            raise ValueError(
                f"cannot tell the input shape of model {model.name!r}: pass "
                "estimate(model, input_shape=(...)) with the shape of one sample"
            )
        shapes = list(build_shapes.values())
        named = [(f"input {i}", tuple(s)) for i, s in enumerate(shapes)]
    else:
        named = [(getattr(x, "name", f"input {i}"), tuple(x.shape)) for i, x in enumerate(inputs)]
    for name, shape in named:
        for axis, size in enumerate(shape[1:], start=1):
            if size is None:
                raise ValueError(
                    f"input {name!r} of model {model.name!r} has unknown size along dimension "
                    f"{axis} (shape {shape}): pass estimate(model, input_shape=...) with concrete "
                    "sizes, e.g. the sequence length you train with"
                )
    shapes = [s[1:] for _, s in named]
    if inputs is not None and isinstance(getattr(model, "_inputs_struct", None), dict):
        return dict(zip(model._inputs_struct, shapes))
    return shapes[0] if len(shapes) == 1 else shapes


def _model_inputs(model):
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return inputs or None


def _specs_like(model, shapes, batch_size: int):
    inputs = _model_inputs(model)
    dtypes = [x.dtype for x in inputs] if inputs else None

    def spec(shape, index):
        dtype = dtypes[index] if dtypes and index < len(dtypes) else "float32"
        return keras.KerasTensor((batch_size, *shape), dtype=dtype)

    if isinstance(shapes, dict):
        order = list(getattr(model, "_inputs_struct", shapes))
        return {name: spec(shapes[name], order.index(name) if name in order else 0) for name in shapes}
    if isinstance(shapes, list):
        return [spec(s, i) for i, s in enumerate(shapes)]
    return spec(shapes, 0)


def _leaf_cost(leaf: LeafCall) -> LayerCost | None:
    rule = rule_for(leaf.layer)
    if rule is None:
        return None
    try:
        return rule(leaf.layer, leaf.call)
    except Exception as error:  # a broken rule must not stop training
        warnings.warn(
            f"nns_callbacks: cost rule {rule.__name__} failed on {leaf.path} "
            f"({type(leaf.layer).__name__}): {error!r}; counted as 0",
            stacklevel=4,
        )
        return None


def _itemsize(dtype) -> int:
    return np.dtype(keras.backend.standardize_dtype(dtype)).itemsize if dtype else 4


def _backward(leaf: LeafCall, cost: LayerCost) -> int:
    trains = bool(getattr(leaf.layer, "trainable_weights", None)) and getattr(leaf.layer, "trainable", True)
    flops = cost.input_grad_flops if leaf.needs_input_grad else 0
    flops += cost.weight_grad_flops if trains else 0
    flops += cost.internal_grad_flops if (trains or leaf.needs_input_grad) else 0
    return flops


def _saved_bytes(leaf: LeafCall, cost: LayerCost) -> int:
    trains = bool(getattr(leaf.layer, "trainable_weights", None)) and getattr(leaf.layer, "trainable", True)
    if not (trains or leaf.needs_input_grad):
        return 0
    saved = leaf.call.output_elements if cost.saved_elements is None else cost.saved_elements
    dtype = getattr(leaf.layer, "compute_dtype", None) or keras.config.floatx()
    return saved * _itemsize(dtype)


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


def _layer_rows(walk: ModelWalk, update_flops: int, unsupported) -> list[dict]:
    seen: set[int] = set()
    rows = []
    for leaf in walk.leaves:
        cost = _leaf_cost(leaf)
        if cost is None:
            unsupported[type(leaf.layer).__name__] += 1
            cost = LayerCost(saved_elements=0)
        params, trainable, weight_bytes = _weights_params(_new_weights(leaf.layer, seen))
        backward = _backward(leaf, cost)
        shapes = leaf.call.output_shapes
        rows.append(
            {
                "name": leaf.path,
                "type": type(leaf.layer).__name__,
                "call": leaf.call_index,
                "output_shape": str(shapes[0][1:] if len(shapes) == 1 else [s[1:] for s in shapes]),
                "params": params,
                "trainable_params": trainable,
                "forward_macs": cost.macs,
                "forward_flops": cost.forward_flops,
                "backward_flops": backward,
                "training_flops": cost.forward_flops + backward + update_flops * trainable,
                "weight_bytes": weight_bytes,
                "activation_bytes": _saved_bytes(leaf, cost),
                "counted": rule_for(leaf.layer) is not None,
            }
        )
    rows += _unattributed_rows(walk, seen, update_flops)
    return rows


def _unattributed_rows(walk: ModelWalk, seen: set[int], update_flops: int) -> list[dict]:
    """Weights that no costed call owns (a subclassed model's own variables), as one row."""
    model = walk.model
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
    walk.model = model
    rows = _layer_rows(walk, opt_cost.update_flops, walk.unsupported)
    frame = _frame(rows)
    _warn_unsupported(walk.unsupported)
    params, trainable, weight_bytes = _weights_params(model.weights)
    variable_bytes = _itemsize(getattr(model, "variable_dtype", None) or keras.config.floatx())
    optimizer_bytes = _optimizer_bytes(optimizer, opt_cost, trainable, variable_bytes)
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
        gradient_bytes=trainable * variable_bytes,
        optimizer_bytes=optimizer_bytes,
        activation_bytes=int(frame["activation_bytes"].sum()),
        layers=frame,
        unsupported=dict(walk.unsupported),
    )


def _optimizer_bytes(optimizer, opt_cost, trainable: int, variable_bytes: int) -> int:
    """Slots x trainable parameters x variable bytes (an optimizer's step counters aside)."""
    return int(opt_cost.slots * trainable * variable_bytes)


def _policy_name(model) -> str:
    policy = getattr(model, "dtype_policy", None)
    return getattr(policy, "name", None) or keras.config.dtype_policy().name


def _warn_unsupported(unsupported) -> None:
    for name, count in unsupported.items():
        if name in _warned_unsupported:
            continue
        _warned_unsupported.add(name)
        warnings.warn(
            f"nns_callbacks: no cost rule for {name} ({count} call(s)); counted as 0 and listed "
            "in ModelCost.unsupported. Register one with nns_callbacks.register_cost_rule.",
            stacklevel=4,
        )
