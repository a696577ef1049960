"""``estimate(model)``: walk the model, apply the cost rules, add up memory and optimizer cost."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import gc
import math

import keras
import numpy as np
import pandas as pd

from . import keras_compat as compat
from . import notices
from . import rules as _builtin_rules  # noqa: F401  (registers the built-in rules)
from .cost import ModelCost
from .keras_compat import type_name
from .optimizers import optimizer_cost, resolve_optimizer
from .registry import FREE, LayerCost, collecting_unsupported, fitting_rule, overriding_rules
from .replay import Replay
from .walk import LeafCall, ModelWalk


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
    with overriding_rules(rules), _collector_paused(), notices.once_per_cause():
        specs = input_specs(model, batch_size, input_shape)
        optimizer = resolve_optimizer(model, optimizer)
        cost = _walked_cost(model, batch_size, specs, optimizer)
    if compiled_memory:
        from .memory import compiled_training_bytes

        cost.compiled_training_bytes = compiled_training_bytes(model, batch_size, optimizer, input_shape)
    return cost


def _walked_cost(model, batch_size: int, specs, optimizer) -> ModelCost:
    """Walk the model called on ``specs`` and cost the walk, which is gone (freed at once) when this returns."""
    walk = ModelWalk()
    walk.run(model, specs)
    return _model_cost(model, batch_size, walk, optimizer)


@contextlib.contextmanager
def _collector_paused():
    """Python's cyclic garbage collector paused: the walk makes thousands of short-lived objects, which the
    collector would otherwise scan several times over while they live."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
        _check_same_names(model, set(inputs), set(shapes))
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


def _check_same_names(model, expected: set, given: set) -> None:
    """An ``input_shape`` dict names each of the model's inputs, and nothing else."""
    missing, extra = sorted(expected - given), sorted(given - expected)
    if missing or extra:
        said = "; ".join(part for part in (
            f"no shape for input(s) {', '.join(map(repr, missing))}" if missing else "",
            f"{', '.join(map(repr, extra))} not input(s) of the model" if extra else "",
        ) if part)
        raise ValueError(
            f"input_shape does not match the inputs of model {model.name!r} ({said}): give a shape for each of "
            f"{', '.join(map(repr, sorted(expected)))}"
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


def _leaf_cost(leaf: LeafCall, unsupported, failures: list[str]) -> LayerCost | None:
    """The rule's cost of one call; ``None`` (and an ``unsupported`` entry, and for a failing rule a
    message in ``failures``) when there is none."""
    if leaf.kind == "traced":
        return FREE
    if leaf.kind == "untraceable":
        return None  # listed by the walk
    rule = fitting_rule(leaf.layer)
    if rule is None:
        unsupported[type_name(leaf.layer)] += 1
        return None
    try:
        cost = rule(leaf.layer, leaf.call)
        return cost if leaf.repeats == 1 else cost.scaled(leaf.repeats)
    except Exception as error:  # noqa: BLE001  (a broken rule must not stop training)
        failures.append(
            f"cost rule {rule.__name__} failed on {leaf.path} "
            f"({type_name(leaf.layer)}): {error!r}; counted as 0"
        )
        unsupported[type_name(leaf.layer) + _RULE_FAILED] += 1
        return None


@functools.cache
def _itemsize(dtype) -> int:
    return np.dtype(keras.backend.standardize_dtype(dtype)).itemsize if dtype else 4


def _backward(leaf: LeafCall, cost: LayerCost) -> int:
    """The call's share of the training step beyond its forward pass: the gradients it computes (each
    operand's only where that operand needs one) and its training-only forward work."""
    flops = cost.input_grad_flops if leaf.needs_input_grad else 0
    flops += cost.weight_grad_flops if leaf.trains else 0
    flops += cost.internal_grad_flops if (leaf.trains or leaf.needs_input_grad) else 0
    if cost.operand_grad_flops is not None:
        needs = leaf.operand_grads or (True,) * len(cost.operand_grad_flops)
        flops += sum(f for f, needed in zip(cost.operand_grad_flops, needs) if needed)
    return flops + cost.training_only_flops


_KEPT = {"outputs": ("outputs",), "inputs": ("inputs",), "inputs+outputs": ("inputs", "outputs"), "nothing": ()}


def _newly_kept(leaf: LeafCall, cost: LayerCost, kept: set) -> list[tuple]:
    """``(elements, dtype, is an input)`` of the tensors the call keeps for the backward pass that no earlier
    call keeps already (``kept``: their ids, to which theirs are added)."""
    if not (leaf.trains or leaf.needs_input_grad) or cost.saved_elements is not None:
        return []
    newly = []
    for side in _KEPT[cost.keeps]:
        for tensor_id, elements, tensor_dtype in getattr(leaf, side):
            if elements is None or tensor_id in kept:
                continue  # a size Keras can't tell, or a tensor already counted
            kept.add(tensor_id)
            newly.append((elements, tensor_dtype, side == "inputs"))
    return newly


def _saved_bytes(leaf: LeafCall, cost: LayerCost, dtype, newly: list[tuple]) -> int:
    """Bytes the call keeps for the backward pass: ``newly`` (see ``_newly_kept``) and buffers of its own;
    ``dtype``: its layer's compute dtype, or ``None``."""
    if not (leaf.trains or leaf.needs_input_grad):
        return 0
    if cost.saved_elements is not None:
        dtype = dtype or (leaf.call.output_dtypes[0] if leaf.call.output_dtypes else None)
        return cost.saved_elements * _itemsize(dtype or keras.config.floatx())
    total = cost.buffers * _itemsize(dtype or keras.config.floatx())
    for elements, tensor_dtype, is_input in newly:  # a loop body's tensors are kept for each of its iterations
        total += elements * _itemsize(dtype if is_input and dtype else tensor_dtype) * leaf.repeats
    return total


class _WeightSizes(dict):
    """``{id(weight): (parameters, trainable parameters, bytes)}``, filled as weights are looked up."""

    def of(self, weight) -> tuple[int, int, int]:
        sizes = self.get(id(weight))
        if sizes is None:
            params = math.prod(compat.variable_shape(weight))
            nbytes = params * _itemsize(compat.variable_dtype(weight))
            sizes = self[id(weight)] = (params, params if weight.trainable else 0, nbytes)
        return sizes

    def total(self, weights) -> tuple[int, int, int]:
        """(parameters, trainable parameters, bytes) of ``weights``."""
        params = trainable = nbytes = 0
        for weight in weights:
            p, t, b = self.of(weight)
            params, trainable, nbytes = params + p, trainable + t, nbytes + b
        return params, trainable, nbytes


class _Claimed:
    """The weights that have a row already (``ids``), and the layers all of whose weights do (``settled``)."""

    def __init__(self):
        self.ids: set[int] = set()
        self.settled: set[int] = set()

    def new(self, layer) -> list:
        """The weights of ``layer`` without a row yet; they have one now."""
        return compat.unseen_weights(layer, self.ids, self.settled)

    def all_new(self, weights: list, sublayers) -> bool:
        """Claim ``weights`` (those of a layer; ``sublayers``: it and the layers in it) if none has a row yet;
        whether it did."""
        if any(id(weight) in self.ids for weight in weights):
            return False
        self.ids.update(id(weight) for weight in weights)
        self.settled.update(id(sublayer) for sublayer in sublayers)
        return True


@dataclasses.dataclass
class _Plan:
    """What every leaf that shares a template shares: its cost and how it reads in a row."""

    cost: LayerCost
    counted: bool
    reported: collections.Counter
    type: str
    output_shape: str
    is_layer: bool
    dtype: str | None  # an op's compute dtype (a layer's is its own)


def _plan(template: LeafCall, failures: list[str]) -> _Plan:
    reported = collections.Counter()
    with collecting_unsupported(reported):
        cost = _leaf_cost(template, reported, failures)
    shapes = template.call.output_shapes
    is_layer = isinstance(template.layer, keras.layers.Layer)
    return _Plan(
        cost=LayerCost(saved_elements=0) if cost is None else cost,
        counted=cost is not None,
        reported=reported,
        type=type_name(template.layer),
        output_shape=str(shapes[0][1:] if len(shapes) == 1 else [s[1:] for s in shapes]),
        is_layer=is_layer,
        dtype=None if is_layer else getattr(template.layer, "compute_dtype", None),
    )


@dataclasses.dataclass
class _Place:
    """A leaf's place in a trace, as every replay repeats it: what it keeps anew for the backward pass
    (a replay's tensors are its own), and for an op its row after name and call (``None``: no row)."""

    newly_kept: list[tuple]
    row: tuple | None = None


@dataclasses.dataclass
class _FreshReplay:
    """The rows of a replay none of whose weights has a row yet, which depend on its trace alone.

    ``rows``: ``(suffix, type, row after name and call or None)`` per step; ``reported``: the
    unsupported calls of all steps.  (A replay's layers have its trace's classes, weights and dtype policy.)
    """

    rows: list[tuple]
    reported: collections.Counter


_ROW_COLUMNS = (
    "name", "type", "call", "output_shape", "params", "trainable_params", "forward_macs", "forward_flops",
    "backward_flops", "training_flops", "weight_bytes", "activation_bytes", "counted",
)


class _Rows:
    """The table's rows, added leaf by leaf: a row per leaf that adds something.

    Leaves that share a template share its plan; a replayed op has its place's row, and a replay
    whose weights are all new has the rows of its trace's fresh replay.
    """

    def __init__(self, update_flops: int, unsupported, sizes: _WeightSizes):
        self.rows: list[tuple] = []
        self.claimed = _Claimed()
        self.failures: list[str] = []
        self._update_flops = update_flops
        self._unsupported = unsupported
        self._sizes = sizes
        self._plans: dict[int, _Plan] = {}
        self._places: dict[int, list[tuple]] = {}  # by trace: (step, plan, place) of each step
        self._fresh: dict[int, _FreshReplay] = {}  # by trace
        self._kept: set[int] = set()

    def add_replay(self, replay: Replay) -> None:
        """The rows of a replay: its trace's fresh rows where all its weights are new, else step by step."""
        fresh = self._fresh.get(id(replay.trace)) or self._fresh_replay(replay.trace)
        if self._all_new(replay):
            own = replay.own
            self._unsupported.update(fresh.reported)
            self.rows += [
                (own[:-1] if suffix is None else own + suffix, type_, call_index, *row)
                for (suffix, type_, row), call_index in zip(fresh.rows, replay.call_indices)
                if row is not None
            ]
            return
        for (step, plan, place), call_index in zip(self._places[id(replay.trace)], replay.call_indices):
            if plan.reported:
                self._unsupported.update(plan.reported)
            if plan.is_layer:
                path = replay.own[:-1] if step.suffix is None else replay.own + step.suffix
                self._add(step.leaf, replay.mapping[step.layer_id], path, call_index, plan, place.newly_kept)
            elif place.row is not None:
                self.rows.append((replay.own + step.suffix, plan.type, call_index, *place.row))

    def add(self, leaf: LeafCall) -> None:
        """The row of a leaf the walk recorded (not a replayed one)."""
        plan = self._plans.get(id(leaf)) or self._plan(leaf)
        if plan.reported:
            self._unsupported.update(plan.reported)
        self._add(leaf, leaf.layer, leaf.path, leaf.call_index, plan, _newly_kept(leaf, plan.cost, self._kept))

    def _add(self, leaf: LeafCall, layer, path: str, call_index: int, plan: _Plan, newly_kept: list[tuple]) -> None:
        """The row of ``layer``'s call, which ``leaf`` records (or the leaf a replay repeats for it)."""
        row = self._call_row(leaf, layer, plan, newly_kept, self.claimed)
        if row is not None:
            self.rows.append((path, plan.type, call_index, *row))

    def _call_row(self, leaf: LeafCall, layer, plan: _Plan, newly_kept: list[tuple], claimed: _Claimed):
        """The row after name and call of ``layer``'s call (``None``: no row); a layer's weights that
        ``claimed`` does not hold yet are its own."""
        if plan.is_layer:
            params, trainable, weight_bytes = self._sizes.total(claimed.new(layer))
            if not leaf.in_call and _adds_nothing(leaf, plan.counted, params, plan.cost, 0, 0):
                return None  # a layer's row is decided by its weights: no need for its backward pass
            dtype = getattr(layer, "compute_dtype", None)
        else:
            params = trainable = weight_bytes = 0
            dtype = plan.dtype
        return self._row(leaf, plan, params, trainable, weight_bytes, _saved_bytes(leaf, plan.cost, dtype, newly_kept))

    def _row(self, leaf, plan: _Plan, params, trainable, weight_bytes, saved_bytes) -> tuple | None:
        """The row after name, type and call; ``None`` where it adds nothing."""
        cost = plan.cost
        backward = _backward(leaf, cost)
        if _adds_nothing(leaf, plan.counted, params, cost, backward, saved_bytes):
            return None
        forward = cost.forward_flops
        training = forward + backward + self._update_flops * trainable
        return (plan.output_shape, params, trainable, cost.macs, forward, backward, training, weight_bytes,
                saved_bytes, plan.counted)

    def _plan(self, template: LeafCall) -> _Plan:
        plan = self._plans.get(id(template))
        if plan is None:
            plan = self._plans[id(template)] = _plan(template, self.failures)
        return plan

    def _place_trace(self, trace) -> list[tuple]:
        """``(step, plan, place)`` of each of a trace's steps; its place: what it keeps anew, as if the trace's
        tensors were all new."""
        kept: set[int] = set()
        places = self._places[id(trace)] = []
        for step in trace.steps:
            plan = self._plan(step.template)
            place = _Place(_newly_kept(step.leaf, plan.cost, kept))
            if not plan.is_layer:
                saved_bytes = _saved_bytes(step.leaf, plan.cost, plan.dtype, place.newly_kept)
                place.row = self._row(step.leaf, plan, 0, 0, 0, saved_bytes)
            places.append((step, plan, place))
        return places

    def _fresh_replay(self, trace) -> _FreshReplay:
        """The rows of a replay of ``trace`` whose weights are all new: the traced layer's, as if no weight
        had a row yet."""
        claimed, rows, reported = _Claimed(), [], collections.Counter()
        for step, plan, place in self._places.get(id(trace)) or self._place_trace(trace):
            reported.update(plan.reported)
            row = place.row
            if plan.is_layer:
                row = self._call_row(step.leaf, step.leaf.layer, plan, place.newly_kept, claimed)
            rows.append((step.suffix, plan.type, row))
        fresh = self._fresh[id(trace)] = _FreshReplay(rows, reported)
        return fresh

    def _all_new(self, replay: Replay) -> bool:
        """Whether none of the replay's weights has a row yet; they have then."""
        return self.claimed.all_new(replay.weights, replay.mapping.values())


def _layer_rows(
    model, weights: list, walk: ModelWalk, update_flops: int, unsupported, sizes: _WeightSizes
) -> dict[str, list]:
    """The table's columns (``weights``: the model's); warns of the rules that failed."""
    rows = _Rows(update_flops, unsupported, sizes)
    for entry in walk.entries:
        if isinstance(entry, Replay):
            rows.add_replay(entry)
        else:
            rows.add(entry)
    for message in rows.failures:
        notices.warn(message, stacklevel=5)
    table = rows.rows + [
        tuple(row[name] for name in _ROW_COLUMNS)
        for row in _unattributed_rows(model, weights, rows.claimed.ids, update_flops, sizes)
    ]
    if not table:
        return {name: [] for name in _ROW_COLUMNS}
    return {name: list(column) for name, column in zip(_ROW_COLUMNS, zip(*table))}


def _adds_nothing(leaf: LeafCall, counted: bool, params: int, cost: LayerCost, backward: int, saved: int) -> bool:
    """A free op inside a traced call, or a traced layer's own row with no weights of its own: not a row."""
    if leaf.in_call:
        return counted and not (cost.forward_flops or backward or saved)
    return leaf.kind == "traced" and leaf.children > 0 and params == 0


def _unattributed_rows(model, weights: list, seen: set[int], update_flops: int, sizes: _WeightSizes) -> list[dict]:
    """The model's ``weights`` that no costed call owns (a subclassed model's own variables), as one row."""
    rest = [w for w in weights if id(w) not in seen]
    if not rest:
        return []
    params, trainable, nbytes = sizes.total(rest)
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


_SHARED_COLUMNS = ("forward_flops", "training_flops", "activation_bytes")
_COUNT_COLUMNS = (
    "call", "params", "trainable_params", "forward_macs", "forward_flops", "backward_flops", "training_flops",
    "weight_bytes", "activation_bytes",
)


def _int64_arrays(columns: dict[str, list]) -> dict[str, np.ndarray]:
    """The count columns that are 64-bit integers whose sum cannot wrap, as arrays (pandas makes the same of
    them, slower); a larger column (a batch of 2**40, a 175B-parameter model over millions of tokens) stays
    Python integers, exact."""
    arrays = {name: np.array(columns[name]) for name in _COUNT_COLUMNS}
    return {name: values for name, values in arrays.items() if values.dtype == np.int64 and _sum_fits(values)}


def _sum_fits(values: np.ndarray) -> bool:
    """Whether no sum of these 64-bit integers can pass 2**63 - 1."""
    return not len(values) or int(np.abs(values).max()) * len(values) < 2**63


def _frame(columns: dict[str, list], arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """The table, with each row's share of the shared columns' totals; ``arrays``: see ``_int64_arrays``."""
    data = {**columns, **arrays}
    for column in _SHARED_COLUMNS:
        total = data[column].sum()
        values = np.asarray(data[column], dtype=np.float64)
        data[f"{column}_share"] = values / float(total) if total else np.zeros(len(values))
    return pd.DataFrame({name: data[name] for name in _COLUMN_ORDER})


def _frame_inferred(columns: dict[str, list]) -> pd.DataFrame:
    """``_frame`` where pandas tells the columns' types (no rows, figures beyond 64-bit integers, fractions)."""
    rows = [dict(zip(columns, row)) for row in zip(*columns.values())]
    frame = pd.DataFrame(rows, columns=list(columns))
    return _frame({name: frame[name] for name in frame.columns}, {})


def _model_cost(model, batch_size: int, walk: ModelWalk, optimizer) -> ModelCost:
    opt_cost = optimizer_cost(optimizer)
    sizes = _WeightSizes()
    weights = compat.weights(model)
    columns = _layer_rows(model, weights, walk, opt_cost.update_flops, walk.unsupported, sizes)
    layers, sums = _table(columns)
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
        layers=layers,
        unsupported=dict(walk.unsupported),
    )


_SUMMED_COLUMNS = ("forward_macs", "forward_flops", "backward_flops", "activation_bytes")


def _table(columns: dict[str, list]) -> tuple:
    """The per-layer table and the totals of its summed columns (from 64-bit integer arrays where they fit)."""
    arrays = _int64_arrays(columns)
    if columns["name"] and all(name in arrays for name in _SHARED_COLUMNS + _SUMMED_COLUMNS):
        return _frame(columns, arrays), {name: int(arrays[name].sum()) for name in _SUMMED_COLUMNS}
    frame = _frame_inferred(columns)
    return frame, {name: int(frame[name].sum()) for name in _SUMMED_COLUMNS}


def _trainable_bytes(weights, sizes: _WeightSizes) -> int:
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
        if name.endswith(_RULE_FAILED):
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
