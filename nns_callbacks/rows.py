"""The rows of the per-layer table: one per layer call or op that adds something, built from the model walk.

A ``Row``'s fields are the table's columns, in order (``layer_table`` adds the shares); ``Figures`` are a row's
fields after its name, type and call, which replays of a block share.
"""

from __future__ import annotations

import collections
from typing import NamedTuple

from . import notices
from .call_costs import (
    CallCost,
    Kept,
    OwnedWeights,
    ReplayRows,
    StepRow,
    WeightSizes,
    adds_nothing,
    backward_flops,
    call_cost,
    newly_kept,
    saved_bytes,
)
from .replay import Replay
from .traffic import Traffic, call_traffic, layer_operands, op_operands
from .walk import LeafCall, ModelWalk


class Owned(NamedTuple):
    """The weights a row owns: parameters, trainable parameters, bytes, bytes of the trainable ones."""

    params: int = 0
    trainable: int = 0
    nbytes: int = 0
    trainable_bytes: int = 0


def intensity(flops: int, nbytes: int) -> float:
    """FLOPs per byte moved; NaN where no byte is moved."""
    return flops / nbytes if nbytes else float("nan")


class Figures(NamedTuple):
    """A row's figures after its name, type and call: MACs and FLOPs of the whole batch, bytes.

    ``*_bytes_moved``: device-memory traffic (see ``traffic``) of the forward pass, the backward pass and the
    optimizer's update of the row's own weights, and their sum; ``arithmetic_intensity``: training FLOPs per
    training byte moved (NaN where nothing is moved).
    """

    output_shape: str
    params: int
    trainable_params: int
    forward_macs: int
    forward_flops: int
    backward_flops: int
    training_flops: int
    weight_bytes: int
    activation_bytes: int
    forward_bytes_moved: int
    backward_bytes_moved: int
    optimizer_bytes_moved: int
    training_bytes_moved: int
    arithmetic_intensity: float
    counted: bool


Row = NamedTuple("Row", [("name", str), ("type", str), ("call", int), *Figures.__annotations__.items()])
Row.__doc__ = "One row of the per-layer table; its fields are the table's columns: name, type, call, then ``Figures``."


class RowBuilder:
    """The table's rows, added leaf by leaf: a row per leaf that adds something.

    Leaves that share a template share its ``CallCost``; a replayed op has its ``StepRow``'s figures, and a
    replay whose weights are all new has the rows of its trace's ``ReplayRows``.
    """

    def __init__(self, update_flops: int, unsupported, sizes: WeightSizes, update_traffic: float = 0,
                 plans: dict[int, CallCost] | None = None):
        self.rows: list[Row] = []
        self.claimed = OwnedWeights()
        self.failures: list[str] = []
        self._update_flops = update_flops
        self._update_traffic = update_traffic
        self._unsupported = unsupported
        self._sizes = sizes
        self._plans = {} if plans is None else plans  # by id of the leaf or template they cost
        self._places: dict[int, list[tuple]] = {}  # by trace: (step, plan, place) of each step
        self._fresh: dict[int, ReplayRows] = {}  # by trace
        self._kept: set[int] = set()

    def add_replay(self, replay: Replay) -> None:
        """The rows of a replay: its trace's fresh rows where all its weights are new, else step by step."""
        fresh = self._fresh.get(id(replay.trace)) or self._fresh_replay(replay.trace)
        if self._all_new(replay):
            own = replay.own
            self._unsupported.update(fresh.reported)
            self.rows += [
                Row(own[:-1] if suffix is None else own + suffix, type_, call_index, *row)
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
                self.rows.append(Row(replay.own + step.suffix, plan.type, call_index, *place.row))

    def add(self, leaf: LeafCall) -> None:
        """The row of a leaf the walk recorded (not a replayed one)."""
        plan = self._plans.get(id(leaf)) or self._plan(leaf)
        if plan.reported:
            self._unsupported.update(plan.reported)
        self._add(leaf, leaf.layer, leaf.path, leaf.call_index, plan, newly_kept(leaf, plan.cost, self._kept))

    def _add(self, leaf: LeafCall, layer, path: str, call_index: int, plan: CallCost, newly_kept: list[Kept]) -> None:
        """The row of ``layer``'s call, which ``leaf`` records (or the leaf a replay repeats for it)."""
        row = self._call_row(leaf, layer, plan, newly_kept, self.claimed)
        if row is not None:
            self.rows.append(Row(path, plan.type, call_index, *row))

    def _call_row(self, leaf: LeafCall, layer, plan: CallCost, newly_kept: list[Kept], claimed: OwnedWeights):
        """The row after name and call of ``layer``'s call (``None``: no row); a layer's weights that
        ``claimed`` does not hold yet are its own."""
        if plan.is_layer:
            weights = claimed.new(layer)
            owned = Owned(*self._sizes.total(weights), self._sizes.trainable_bytes(weights))
            if not leaf.in_call and adds_nothing(leaf, plan.counted, owned.params, plan.cost, 0, 0):
                return None  # a layer's row is decided by its weights: no need for its backward pass
            dtype = getattr(layer, "compute_dtype", None)
        else:
            owned, dtype = Owned(), plan.dtype
        return self._row(leaf, plan, owned, saved_bytes(leaf, plan.cost, dtype, newly_kept), layer, dtype)

    def _row(self, leaf, plan: CallCost, owned: Owned, saved, layer=None, dtype=None) -> Figures | None:
        """The row after name, type and call; ``None`` where it adds nothing.  ``layer``: the layer whose call
        ``leaf`` records (``None`` for an op); ``dtype``: its compute dtype."""
        cost = plan.cost
        backward = backward_flops(leaf, cost)
        if adds_nothing(leaf, plan.counted, owned.params, cost, backward, saved):
            return None
        forward = cost.forward_flops
        training = forward + backward + self._update_flops * owned.trainable
        moved = self._traffic(leaf, plan, layer, dtype)
        update = int(self._update_traffic * owned.trainable_bytes)
        total = moved.forward + moved.backward + update
        return Figures(plan.output_shape, owned.params, owned.trainable, cost.macs, forward, backward, training,
                       owned.nbytes, saved, moved.forward, moved.backward, update, total, intensity(training, total),
                       plan.counted)

    def _traffic(self, leaf: LeafCall, plan: CallCost, layer, dtype) -> Traffic:
        """The call's bytes moved; the tensors it reads are worked out once per template."""
        if plan.operands is None:
            plan.operands = layer_operands(leaf, layer, self._sizes) if plan.is_layer else op_operands(leaf)
        return call_traffic(leaf, plan, plan.operands, dtype)

    def _plan(self, template: LeafCall) -> CallCost:
        plan = self._plans.get(id(template))
        if plan is None:
            plan = self._plans[id(template)] = call_cost(template, self.failures)
        return plan

    def _place_trace(self, trace) -> list[tuple]:
        """``(step, plan, place)`` of each of a trace's steps; its place: what it keeps anew, as if the trace's
        tensors were all new."""
        kept: set[int] = set()
        places = self._places[id(trace)] = []
        for step in trace.steps:
            plan = self._plan(step.template)
            place = StepRow(newly_kept(step.leaf, plan.cost, kept))
            if not plan.is_layer:
                saved = saved_bytes(step.leaf, plan.cost, plan.dtype, place.newly_kept)
                place.row = self._row(step.leaf, plan, Owned(), saved, None, plan.dtype)
            places.append((step, plan, place))
        return places

    def _fresh_replay(self, trace) -> ReplayRows:
        """The rows of a replay of ``trace`` whose weights are all new: the traced layer's, as if no weight
        had a row yet."""
        claimed, rows, reported = OwnedWeights(), [], collections.Counter()
        for step, plan, place in self._places.get(id(trace)) or self._place_trace(trace):
            reported.update(plan.reported)
            row = place.row
            if plan.is_layer:
                row = self._call_row(step.leaf, step.leaf.layer, plan, place.newly_kept, claimed)
            rows.append((step.suffix, plan.type, row))
        fresh = self._fresh[id(trace)] = ReplayRows(rows, reported)
        return fresh

    def _all_new(self, replay: Replay) -> bool:
        """Whether none of the replay's weights has a row yet; they have then."""
        return self.claimed.all_new(replay.weights, replay.mapping.values())


def layer_columns(
    model, weights: list, walk: ModelWalk, optimizer, unsupported, sizes: WeightSizes, plans=None
) -> dict[str, list]:
    """The table's columns (``weights``: the model's; ``optimizer``: an ``OptimizerCost``); warns of the rules
    that failed.  ``plans``: a dict that keeps each call's ``CallCost`` by the id of its leaf or template, for a
    caller that needs them again."""
    rows = RowBuilder(optimizer.update_flops, unsupported, sizes, optimizer.update_traffic, plans)
    for entry in walk.entries:
        if isinstance(entry, Replay):
            rows.add_replay(entry)
        else:
            rows.add(entry)
    for message in rows.failures:
        notices.warn(message, stacklevel=5)
    table = rows.rows + own_weights_rows(model, weights, rows.claimed.ids, optimizer, sizes)
    if not table:
        return {name: [] for name in Row._fields}
    return {name: list(column) for name, column in zip(Row._fields, zip(*table))}


def own_weights_rows(model, weights: list, seen: set[int], optimizer, sizes: WeightSizes) -> list[Row]:
    """The model's ``weights`` that no costed call owns (a subclassed model's own variables), as one row; it
    moves only what the optimizer's update of them moves (its ops' rows read them)."""
    rest = [w for w in weights if id(w) not in seen]
    if not rest:
        return []
    params, trainable, nbytes = sizes.total(rest)
    training = optimizer.update_flops * trainable
    update = int(optimizer.update_traffic * sizes.trainable_bytes(rest))
    return [Row(
        name=f"{model.name} (own weights)", type="weights", call=1, output_shape="", params=params,
        trainable_params=trainable, forward_macs=0, forward_flops=0, backward_flops=0,
        training_flops=training, weight_bytes=nbytes, activation_bytes=0, forward_bytes_moved=0,
        backward_bytes_moved=0, optimizer_bytes_moved=update, training_bytes_moved=update,
        arithmetic_intensity=intensity(training, update), counted=False,
    )]
