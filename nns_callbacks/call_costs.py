"""What one recorded call costs and keeps: its rule's ``LayerCost`` (times its repeats), its backward FLOPs as
autodiff computes them, the tensors it keeps for the backward pass, and the weights it owns.

Shared by the leaves of a trace and every replay of it (``CallCost``, ``StepRow``, ``ReplayRows``).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from typing import NamedTuple

import keras
import numpy as np

from . import keras_compat as compat
from .keras_compat import type_name
from .registry import FREE, LayerCost, collecting_unsupported, fitting_rule
from .walk import LeafCall

RULE_FAILED = " (rule failed)"


def rule_cost(leaf: LeafCall, unsupported, failures: list[str]) -> LayerCost | None:
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
        unsupported[type_name(leaf.layer) + RULE_FAILED] += 1
        return None


@functools.cache
def itemsize(dtype) -> int:
    return np.dtype(keras.backend.standardize_dtype(dtype)).itemsize if dtype else 4


def backward_flops(leaf: LeafCall, cost: LayerCost) -> int:
    """The call's share of the training step beyond its forward pass: the gradients it computes (each
    operand's only where that operand needs one) and its training-only forward work."""
    flops = cost.input_grad_flops if leaf.needs_input_grad else 0
    flops += cost.weight_grad_flops if leaf.trains else 0
    flops += cost.internal_grad_flops if (leaf.trains or leaf.needs_input_grad) else 0
    if cost.operand_grad_flops is not None:
        needs = leaf.operand_grads or (True,) * len(cost.operand_grad_flops)
        flops += sum(f for f, needed in zip(cost.operand_grad_flops, needs) if needed)
    return flops + cost.training_only_flops


KEPT_SIDES = {"outputs": ("outputs",), "inputs": ("inputs",), "inputs+outputs": ("inputs", "outputs"), "nothing": ()}


class Kept(NamedTuple):
    """A tensor a call keeps for the backward pass: its walk id, elements and dtype, and whether it is an input."""

    tensor_id: int
    elements: int
    dtype: object
    is_input: bool


def newly_kept(leaf: LeafCall, cost: LayerCost, kept: set) -> list[Kept]:
    """The tensors the call keeps for the backward pass that no earlier call keeps already (``kept``: their ids,
    to which theirs are added)."""
    if not (leaf.trains or leaf.needs_input_grad) or cost.saved_elements is not None:
        return []
    newly = []
    for side in KEPT_SIDES[cost.keeps]:
        for tensor_id, elements, tensor_dtype in getattr(leaf, side):
            if elements is None or tensor_id in kept:
                continue  # a size Keras can't tell, or a tensor already counted
            kept.add(tensor_id)
            newly.append(Kept(tensor_id, elements, tensor_dtype, side == "inputs"))
    return newly


def own_saved_bytes(leaf: LeafCall, cost: LayerCost, dtype) -> int:
    """Bytes a call keeps of its own (not tensors of the walk): its rule's saved elements, else its buffers;
    ``dtype``: its layer's compute dtype, or ``None``."""
    if cost.saved_elements is not None:
        dtype = dtype or (leaf.call.output_dtypes[0] if leaf.call.output_dtypes else None)
        return cost.saved_elements * itemsize(dtype or keras.config.floatx())
    return cost.buffers * itemsize(dtype or keras.config.floatx())


def kept_bytes(kept: Kept, dtype, repeats: int) -> int:
    """Bytes of a kept tensor: an input in the call's compute dtype ``dtype`` (it casts its inputs), else in its
    own; a loop body's tensors are kept for each of its ``repeats`` iterations."""
    return kept.elements * itemsize(dtype if kept.is_input and dtype else kept.dtype) * repeats


def saved_bytes(leaf: LeafCall, cost: LayerCost, dtype, newly: list[Kept]) -> int:
    """Bytes the call keeps for the backward pass: ``newly`` (see ``newly_kept``) and buffers of its own."""
    if not (leaf.trains or leaf.needs_input_grad):
        return 0
    return own_saved_bytes(leaf, cost, dtype) + sum(kept_bytes(kept, dtype, leaf.repeats) for kept in newly)


class WeightSizes(dict):
    """``{id(weight): (parameters, trainable parameters, bytes)}``, filled as weights are looked up."""

    def of(self, weight) -> tuple[int, int, int]:
        sizes = self.get(id(weight))
        if sizes is None:
            params = math.prod(compat.variable_shape(weight))
            nbytes = params * itemsize(compat.variable_dtype(weight))
            sizes = self[id(weight)] = (params, params if weight.trainable else 0, nbytes)
        return sizes

    def total(self, weights) -> tuple[int, int, int]:
        """(parameters, trainable parameters, bytes) of ``weights``."""
        params = trainable = nbytes = 0
        for weight in weights:
            p, t, b = self.of(weight)
            params, trainable, nbytes = params + p, trainable + t, nbytes + b
        return params, trainable, nbytes

    def trainable_bytes(self, weights) -> int:
        """Bytes of the trainable ones of ``weights``: what their gradients, and each optimizer slot, take."""
        return sum(self.of(weight)[2] for weight in weights if self.of(weight)[1])


class OwnedWeights:
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
class CallCost:
    """What every leaf that shares a template (the call a replay repeats) shares: its rule's cost and how it reads
    in a row."""

    cost: LayerCost
    counted: bool
    reported: collections.Counter
    type: str
    output_shape: str
    is_layer: bool
    dtype: str | None  # an op's compute dtype (a layer's is its own)
    operands: tuple | None = None  # the ``traffic.Operand`` tensors its call reads, worked out once


def call_cost(template: LeafCall, failures: list[str]) -> CallCost:
    reported = collections.Counter()
    with collecting_unsupported(reported):
        cost = rule_cost(template, reported, failures)
    shapes = template.call.output_shapes
    is_layer = isinstance(template.layer, keras.layers.Layer)
    return CallCost(
        cost=LayerCost(saved_elements=0) if cost is None else cost,
        counted=cost is not None,
        reported=reported,
        type=type_name(template.layer),
        output_shape=str(shapes[0][1:] if len(shapes) == 1 else [s[1:] for s in shapes]),
        is_layer=is_layer,
        dtype=None if is_layer else getattr(template.layer, "compute_dtype", None),
    )


@dataclasses.dataclass
class StepRow:
    """A trace step as every replay repeats it: what it keeps anew for the backward pass (a replay's tensors are
    its own), and for an op its ``rows.Figures`` (``None``: no row)."""

    newly_kept: list[Kept]
    row: tuple | None = None


@dataclasses.dataclass
class ReplayRows:
    """The rows of a replay none of whose weights has a row yet, which depend on its trace alone.

    ``rows``: ``(suffix, type, figures or None)`` per step; ``reported``: the
    unsupported calls of all steps.  (A replay's layers have its trace's classes, weights and dtype policy.)
    """

    rows: list[tuple]
    reported: collections.Counter


def adds_nothing(leaf: LeafCall, counted: bool, params: int, cost: LayerCost, backward: int, saved: int) -> bool:
    """A free op inside a traced call, or a traced layer's own row with no weights of its own: not a row."""
    if leaf.in_call:
        return counted and not (cost.forward_flops or backward or saved)
    return leaf.kind == "traced" and leaf.children > 0 and params == 0
