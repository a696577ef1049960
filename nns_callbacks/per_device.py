"""What one device holds and does in a training step of a model spread over a mesh of devices.

State: each variable's shard on device 0 (its layout's sharded dimensions divided, rounded up, by the devices
along their axes); gradients and optimizer slots follow their variable.  A gradient that is summed over the
batch axis (data parallel) needs one more buffer of its size for the collective.

Activations, as XLA's sharding propagation would place them: every tensor's batch dimension is split over the
batch axis; a call whose weights are sharded over another axis splits its work over it, and its outputs are
sharded over the axes of its weights' output dimensions (attention heads, an MLP's intermediate units); a call
without sharded weights keeps the sharding of its inputs.  Back the other way, a call whose weight's contracted
dimension is sharded over a model axis splits its input along it, and so the calls without weights before it,
unless a weight put that tensor's dimensions on the batch axis (XLA's propagation runs both ways).  A tensor whose sharding cannot be told (no call of the
walk made it) is counted replicated over the model axes: an upper bound, said in ``notes``.

Communication each device sends per step, with ring collectives over ``n`` devices: an all-reduce sends
``2 (n - 1) / n`` of the buffer, an all-gather or a reduce-scatter ``(n - 1) / n``.  Gradients of variables
replicated over the batch axis are all-reduced; of variables sharded over it (FSDP), reduce-scattered, and
their weights all-gathered once.  A product whose weight's contracted dimension is sharded over a model axis
all-reduces its output; one whose output dimension is, its input's gradient (tensor parallelism).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from .call_costs import CallCost, backward_flops, call_cost, itemsize, kept_bytes, newly_kept, own_saved_bytes
from .mesh import Mesh, Placement, shard_elements
from .replay import Replay


@dataclasses.dataclass
class PerDeviceCost:
    """One device's share of a training step: bytes it holds, FLOPs it does, bytes it sends."""

    weight_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    gradient_buffer_bytes: int
    training_flops: int
    communication_bytes: int
    notes: list[str] = dataclasses.field(default_factory=list)
    compiled_training_bytes: int | None = None
    """XLA's memory analysis of the sharded, jitted training step, for one device (``compiled_memory=True``)."""
    compiled_training_flops: int | None = None
    """XLA's cost analysis of the partitioned training step: one device's FLOPs (``compiled_memory=True``)."""

    @property
    def training_bytes(self) -> int:
        """Weights + gradients + optimizer state + activations + the gradient collective's buffer, in bytes."""
        return (self.weight_bytes + self.gradient_bytes + self.optimizer_bytes + self.activation_bytes
                + self.gradient_buffer_bytes)


def ring_all_reduce(nbytes: float, devices: int) -> float:
    """Bytes each device sends to all-reduce ``nbytes`` over ``devices``: 2 (n - 1) / n x bytes."""
    return 2 * (devices - 1) / devices * nbytes


def ring_gather(nbytes: float, devices: int) -> float:
    """Bytes each device sends to all-gather (or reduce-scatter) a buffer of ``nbytes``: (n - 1) / n x bytes."""
    return (devices - 1) / devices * nbytes


@dataclasses.dataclass
class _State:
    weights: int = 0
    gradients: int = 0
    buffer: int = 0
    trainable_params: int = 0
    communication: float = 0.0


def _state(weights: list, placement: Placement) -> _State:
    """Weights, gradients and the gradient collectives of one device."""
    mesh, state = placement.mesh, _State()
    data = mesh.data_parallel
    for weight in weights:
        axes = placement.variable_axes(weight)
        elements = shard_elements(weight.shape, axes, mesh)
        size = itemsize(weight.dtype)
        state.weights += elements * size
        if not weight.trainable:
            continue
        state.gradients += elements * size
        state.trainable_params += elements
        if data > 1:
            local = elements * size * (data if any(mesh.batch_axis in dim for dim in axes) else 1)
            state.buffer += local
            if any(mesh.batch_axis in dim for dim in axes):  # FSDP: reduce-scatter gradients, gather weights
                state.communication += 2 * ring_gather(local, data)
            else:
                state.communication += ring_all_reduce(local, data)
    return state


class _Call(NamedTuple):
    """A call of the walk with its plan, what it keeps anew, and its weights' layouts sharded over a model axis."""

    leaf: object
    plan: CallCost
    newly: list
    weights: list


class ActivationFlow:
    """Each walk tensor's split over the model axes, and one device's share of the calls.

    A tensor is split as its producer leaves it (the output dimensions of a sharded weight; else its inputs'
    split) or as a consumer wants it (a product whose weight's contracted dimension is sharded over a model axis
    reads its input split along it), whichever splits it more: XLA's propagation runs both ways.
    """

    def __init__(self, placement: Placement, calls: list[_Call]):
        self.placement, self.mesh = placement, placement.mesh
        self.split: dict[int, int] = {}  # tensor id -> devices along the model axes it is sharded over
        self.fixed: set[int] = set()  # tensors whose dimensions a weight puts on the batch axis: no consumer moves them
        self.activation_bytes = self.flops = self.communication = 0.0
        self.unknown = 0
        for call in calls:
            self._forward(call)
        for call in reversed(calls):
            self._backward(call)
        for call in calls:
            self._add(call)

    def _forward(self, call: _Call) -> None:
        inputs = max((self.split.get(tensor[0], 1) for tensor in call.leaf.inputs), default=1)
        out = self.mesh.size(_output_axes(call.leaf.layer, call.weights[-1], self.mesh)) if call.weights else inputs
        if call.weights:
            axes = _output_axes(call.leaf.layer, call.weights[-1], self.mesh, with_batch=True)
            fixed = self.mesh.data_parallel > 1 and self.mesh.batch_axis in axes
        else:
            fixed = any(tensor[0] in self.fixed for tensor in call.leaf.inputs)
        for tensor in call.leaf.outputs:
            self.split[tensor[0]] = out
            if fixed:
                self.fixed.add(tensor[0])

    def _backward(self, call: _Call) -> None:
        if call.weights:
            every, out = self._axes(call)
            wanted = self.mesh.size(every - out)
        else:
            wanted = max((self.split.get(tensor[0], 1) for tensor in call.leaf.outputs), default=1)
        for tensor in call.leaf.inputs:
            if (tensor[0] in self.split or call.weights) and tensor[0] not in self.fixed:
                self.split[tensor[0]] = max(self.split.get(tensor[0], 1), wanted)

    def _axes(self, call: _Call) -> tuple[set[str], set[str]]:
        """The model axes of all the call's sharded weights, and of its output dimensions."""
        every = {axis for axes in call.weights for dim in axes for axis in self.mesh.model_axes(dim)}
        return every, _output_axes(call.leaf.layer, call.weights[-1], self.mesh)

    def _add(self, call: _Call) -> None:
        """One call's kept bytes, FLOPs and tensor-parallel traffic on one device."""
        leaf, cost, data = call.leaf, call.plan.cost, self.mesh.data_parallel
        inputs = max((self._split_of(tensor[0]) for tensor in leaf.inputs), default=1)
        if call.weights:
            every, out = self._axes(call)
            work = self.mesh.size(every)
            self._tensor_parallel(leaf, self.mesh.size(every - out), self.mesh.size(out), inputs)
        else:
            work = inputs
        self.flops += (cost.forward_flops + backward_flops(leaf, cost)) / (data * work)
        if leaf.trains or leaf.needs_input_grad:
            dtype = getattr(leaf.layer, "compute_dtype", None) if call.plan.is_layer else call.plan.dtype
            self.activation_bytes += own_saved_bytes(leaf, cost, dtype) / (data * work)
            for kept in call.newly:
                self.activation_bytes += kept_bytes(kept, dtype, leaf.repeats) / (data * self._split_of(kept.tensor_id))

    def _split_of(self, tensor_id: int) -> int:
        split = self.split.get(tensor_id)
        if split is None:
            self.unknown += 1
            self.split[tensor_id] = split = 1
        return split

    def _tensor_parallel(self, leaf, contracted: int, out_split: int, in_split: int) -> None:
        data = self.mesh.data_parallel
        if contracted > 1:
            outputs = sum(elements * itemsize(dtype) for _, elements, dtype in leaf.outputs if elements)
            self.communication += ring_all_reduce(outputs / data / out_split, contracted)
        if out_split > 1 and leaf.needs_input_grad:
            inputs = sum(elements * itemsize(dtype) for _, elements, dtype in leaf.inputs if elements)
            self.communication += ring_all_reduce(inputs / data / in_split, out_split)


def _sharded_weights(layer, placement: Placement, mesh: Mesh) -> list:
    """The layouts of a layer's weights of two or more dimensions sharded over a model axis (none for an op)."""
    layouts = []
    for weight in getattr(layer, "weights", ()) if hasattr(layer, "weights") else ():
        if len(weight.shape) < 2:
            continue
        axes = placement.variable_axes(weight)
        if any(mesh.model_axes(dim) for dim in axes):
            layouts.append(axes)
    return layouts


def _output_axes(layer, axes, mesh: Mesh, with_batch: bool = False) -> set[str]:
    """The model axes (``with_batch``: every axis) of a weight's output dimensions: those an einsum's output keeps,
    else the last one."""
    kept = (lambda dim: dim) if with_batch else mesh.model_axes
    equation = getattr(layer, "equation", None)
    if isinstance(equation, str) and "->" in equation:
        operands, output = equation.replace(" ", "").split("->")
        letters = operands.split(",")[-1].replace("...", "")
        if len(letters) == len(axes):
            return {axis for letter, dim in zip(letters, axes) if letter in output for axis in kept(dim)}
    return set(kept(axes[-1]))


def _walked(entries: list):
    """``(leaf, key of its plan, kept-set)`` of every call: a replay's calls keep their tensors anew, as its rows do."""
    kept: set[int] = set()
    for entry in entries:
        if isinstance(entry, Replay):
            replay_kept: set[int] = set()
            for leaf, step in zip(entry.leaves, entry.trace.steps):
                yield leaf, step.template, replay_kept
        else:
            yield entry, entry, kept


def per_device_cost(weights: list, entries: list, plans: dict, placement: Placement, slots: float,
                    update_flops: int) -> PerDeviceCost:
    """One device's share of a training step; ``plans``: the rows' ``CallCost`` by leaf or template id."""
    state = _state(weights, placement)
    failures: list[str] = []
    calls = []
    for leaf, template, kept in _walked(entries):
        plan = plans.get(id(template)) or plans.setdefault(id(template), call_cost(template, failures))
        if leaf.kind == "traced":
            continue  # a traced layer's own row: its calls are leaves of their own
        sharded = _sharded_weights(leaf.layer, placement, placement.mesh)
        calls.append(_Call(leaf, plan, newly_kept(leaf, plan.cost, kept), sharded))
    flow = ActivationFlow(placement, calls)
    notes = []
    if flow.unknown and any(axis != placement.mesh.batch_axis for axis in placement.mesh.shape):
        notes.append(f"{flow.unknown} activation tensor(s) of unknown sharding counted replicated over the model "
                     "axes (an upper bound)")
    return PerDeviceCost(
        weight_bytes=state.weights,
        gradient_bytes=state.gradients,
        optimizer_bytes=int(slots * state.gradients),
        activation_bytes=round(flow.activation_bytes),
        gradient_buffer_bytes=state.buffer,
        training_flops=round(flow.flops + update_flops * state.trainable_params),
        communication_bytes=round(state.communication + flow.communication),
        notes=notes,
    )
