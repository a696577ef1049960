"""One registry of cost rules: a rule per layer type, registered by a decorator.

Units: a MAC is one multiply-add; a FLOP is one floating-point operation, so
one MAC is 2 FLOPs.  A rule returns a :class:`LayerCost` for one call of a
layer, for the whole batch that call sees.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import inspect
import math
from collections.abc import Callable

from .keras_compat import is_layer_class

__all__ = [
    "LayerCall", "LayerCost", "fitting_rule", "matmul_cost", "register_cost_rule", "report_unsupported", "rule_for",
]


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """Cost of one layer call.

    ``macs`` are multiply-adds of matrix products and convolutions (2 FLOPs each);
    ``elementwise_flops`` are all other forward FLOPs.  The backward pass is split
    into ``input_grad_flops`` (skipped where nothing upstream needs a gradient),
    ``weight_grad_flops`` (skipped for frozen layers) and ``internal_grad_flops``
    (back-propagation inside the layer that either of them needs: activation
    derivatives, attention scores, recurrent steps).  What the call keeps for
    the backward pass: ``saved_elements`` activation elements of its own (attention
    scores, recurrent gates, dropout masks), or, when that is ``None``, the tensors
    ``keeps`` names: ``"outputs"``, ``"inputs"`` (a product with a weight needs its
    input for the weight gradient), ``"inputs+outputs"`` or ``"nothing"`` (an add),
    plus ``buffers`` elements of intermediate values of its own (a pre-activation).
    A tensor kept by several calls (a ReLU's output that the next convolution also
    keeps) is counted once.

    ``operand_grad_flops``: for an op, the FLOPs of the gradient of each of its tensor
    operands (in the order of ``LayerCall.input_shapes``), each counted only where that
    operand needs a gradient, as autodiff does (a product of an ``Input`` and a weight
    computes the weight's gradient alone).  ``training_only_flops``: forward work done in
    training mode only (random augmentation), counted in the training step whether or
    not a gradient flows; the forward figures are the inference pass's.

    ``intermediate_elements``: elements of the tensors the call writes and reads back inside itself, where
    it runs as several kernels (attention: its projections, scores and probabilities); each is written and
    read once in the forward pass, and its gradient once each in the backward pass (``traffic``).
    """

    macs: int = 0
    elementwise_flops: int = 0
    input_grad_flops: int = 0
    weight_grad_flops: int = 0
    internal_grad_flops: int = 0
    saved_elements: int | None = None
    keeps: str = "outputs"
    buffers: int = 0
    operand_grad_flops: tuple[int, ...] | None = None
    training_only_flops: int = 0
    intermediate_elements: int = 0

    @property
    def forward_flops(self) -> int:
        """FLOPs of the forward pass: 2 x MACs + elementwise FLOPs."""
        return 2 * self.macs + self.elementwise_flops

    def __add__(self, other: LayerCost) -> LayerCost:
        saved = None
        if self.saved_elements is not None or other.saved_elements is not None:
            saved = (self.saved_elements or 0) + (other.saved_elements or 0)
        operands = _summed_operands(self.operand_grad_flops, other.operand_grad_flops)
        return LayerCost(
            self.macs + other.macs,
            self.elementwise_flops + other.elementwise_flops,
            self.input_grad_flops + other.input_grad_flops,
            self.weight_grad_flops + other.weight_grad_flops,
            self.internal_grad_flops + other.internal_grad_flops,
            saved,
            self.keeps,
            self.buffers + other.buffers,
            operands,
            self.training_only_flops + other.training_only_flops,
            self.intermediate_elements + other.intermediate_elements,
        )

    def scaled(self, factor: int) -> LayerCost:
        """The cost of ``factor`` repetitions of this call (RNN time steps, a loop's iterations)."""
        saved = None if self.saved_elements is None else self.saved_elements * factor
        operands = None if self.operand_grad_flops is None else tuple(f * factor for f in self.operand_grad_flops)
        return LayerCost(
            self.macs * factor,
            self.elementwise_flops * factor,
            self.input_grad_flops * factor,
            self.weight_grad_flops * factor,
            self.internal_grad_flops * factor,
            saved,
            self.keeps,
            self.buffers * factor,
            operands,
            self.training_only_flops * factor,
            self.intermediate_elements * factor,
        )


def _summed_operands(first: tuple | None, second: tuple | None) -> tuple | None:
    """Per-operand gradient FLOPs of two costs of the same call added up; ``None`` where neither has them."""
    if first is None or second is None:
        return first if second is None else second
    longer, shorter = (first, second) if len(first) >= len(second) else (second, first)
    return tuple(a + (shorter[i] if i < len(shorter) else 0) for i, a in enumerate(longer))


def matmul_cost(macs: int, weight_macs: int | None = None, elementwise: int = 0) -> LayerCost:
    """Products and elementwise work: backward costs 2 FLOPs per MAC per operand gradient.

    ``weight_macs`` are the MACs whose second operand is a weight (default: all of
    them): their backward is one input-gradient product and one weight-gradient
    product.  The other MACs multiply two activations (attention scores) and
    need a gradient product for each operand.  Elementwise work costs as much
    backward as forward.
    """
    weight_macs = macs if weight_macs is None else weight_macs
    activation_macs = macs - weight_macs
    return LayerCost(
        macs=macs,
        elementwise_flops=elementwise,
        input_grad_flops=2 * weight_macs,
        weight_grad_flops=2 * weight_macs,
        internal_grad_flops=4 * activation_macs + elementwise,
    )


def elementwise_cost(flops: int, saved_elements: int | None = None) -> LayerCost:
    """Elementwise work only; its backward costs as much as its forward."""
    return LayerCost(elementwise_flops=flops, input_grad_flops=flops, saved_elements=saved_elements)


FREE = LayerCost(saved_elements=0)
"""A layer that only moves or views data: no FLOPs, nothing extra kept."""


def broadcast(shape: tuple, batch: int | None) -> tuple:
    """``shape`` with a leading 1 read as ``batch`` (rank 2 and more: a batch axis), where one is given."""
    if batch is None or len(shape) < 2 or shape[0] != 1:
        return shape
    return (batch, *shape[1:])


def _shape_of(x) -> tuple[int, ...]:
    return tuple(int(d) if d is not None else None for d in x.shape)


@dataclasses.dataclass
class LayerCall:
    """One call of a layer: the layer, its call arguments and the output shapes."""

    layer: object
    args: tuple
    kwargs: dict
    output_shapes: list[tuple[int, ...]]
    input_shapes: list[tuple[int, ...]]
    output_dtypes: list[str] = dataclasses.field(default_factory=list)
    batch: int | None = None
    """Where a batch-1 operand is broadcast against batch-``batch`` ones (a query made from a weight against
    keys made from the data): the batch every operand's shape is read with."""

    def argument(self, name: str, default=None):
        """The call argument ``name`` as bound to the layer's ``call`` signature."""
        try:
            bound = _call_signature(self.layer.call).bind(*self.args, **self.kwargs)
        except TypeError:
            return default
        return bound.arguments.get(name, default)

    def shape_of(self, name: str) -> tuple[int, ...] | None:
        """The shape of the tensor passed as call argument ``name`` (its batch broadcast), or ``None``."""
        value = self.argument(name)
        return None if value is None or not hasattr(value, "shape") else broadcast(_shape_of(value), self.batch)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.input_shapes[0]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output_shapes[0]

    @property
    def output_elements(self) -> int:
        return sum(math.prod(s) for s in self.output_shapes)

    @property
    def input_elements(self) -> int:
        return sum(math.prod(s) for s in self.input_shapes)


_SIGNATURES: dict = {}


def _call_signature(call) -> inspect.Signature:
    """``inspect.signature(call)``, worked out once per method (``layer.call`` is a new bound method each time)."""
    function = getattr(call, "__func__", None)
    if function is None:
        return inspect.signature(call)
    signature = _SIGNATURES.get(function)
    if signature is None:
        signature = _SIGNATURES[function] = inspect.signature(call)
    return signature


Rule = Callable[[object, LayerCall], LayerCost]

_UNSUPPORTED: contextvars.ContextVar[collections.Counter | None] = contextvars.ContextVar(
    "nns_unsupported", default=None
)


def report_unsupported(what: str) -> None:
    """Count ``what`` (a layer type, a cell, an activation) as not costed in the estimate under way."""
    counter = _UNSUPPORTED.get()
    if counter is not None:
        counter[what] += 1


@contextlib.contextmanager
def collecting_unsupported(counter: collections.Counter):
    """Send ``report_unsupported`` calls made in this block to ``counter``."""
    token = _UNSUPPORTED.set(counter)
    try:
        yield counter
    finally:
        _UNSUPPORTED.reset(token)

ATTENTION_KERNELS = ("auto", "fused", "materialized")
_ATTENTION: contextvars.ContextVar[str] = contextvars.ContextVar("nns_attention_kernel", default="auto")


@contextlib.contextmanager
def attention_kernel(kind: str = "auto"):
    """Cost attention in this block as ``kind`` runs: ``"fused"`` (flash: keeps O(seq) per head, not the scores),
    ``"materialized"`` (keeps the scores and the softmax), or ``"auto"`` (as the backend and device would run it)."""
    if kind not in ATTENTION_KERNELS:
        raise ValueError(f"attention must be one of {', '.join(ATTENTION_KERNELS)}, got {kind!r}")
    token = _ATTENTION.set(kind)
    try:
        yield
    finally:
        _ATTENTION.reset(token)


def attention_kernel_kind() -> str:
    """The attention kernel asked for in this block (see ``attention_kernel``)."""
    return _ATTENTION.get()


_RULES: dict[type, Rule] = {}
"""The rules by class: the built-in ones (``rules``, registered on import) and the users' (``custom_rules``)."""


def register_cost_rule(*layer_types: type, replace: bool = False):
    """Register the decorated ``rule(layer, call) -> LayerCost`` for ``layer_types``.

    Subclasses inherit their nearest registered ancestor's rule.  Registering a
    type twice raises ``ValueError`` unless ``replace=True``.
    """
    if not layer_types:
        raise ValueError("register_cost_rule needs at least one layer type")
    for layer_type in layer_types:
        if not isinstance(layer_type, type):
            raise TypeError(f"register_cost_rule takes classes, got {layer_type!r}")

    def decorator(rule: Rule) -> Rule:
        if not callable(rule):
            raise TypeError(f"a cost rule must be callable, got {rule!r}")
        for layer_type in layer_types:
            if layer_type in _RULES and not replace:
                raise ValueError(
                    f"a cost rule for {layer_type.__name__} is already registered "
                    f"({_RULES[layer_type].__name__}); pass replace=True to override it"
                )
            _RULES[layer_type] = rule
        return rule

    return decorator


def register_builtin_rule(*layer_types):
    """``register_cost_rule`` for the types this Keras has; ``None`` stands for one it lacks."""
    present = tuple(t for t in layer_types if t is not None)
    if not present:
        return lambda rule: rule
    return register_cost_rule(*present)


_OVERRIDES: contextvars.ContextVar[dict | None] = contextvars.ContextVar("nns_rule_overrides", default=None)


@contextlib.contextmanager
def overriding_rules(rules: dict | None):
    """Use ``rules`` (``{layer or op class: rule}``) before the registry's in this block; the registry is untouched."""
    rules = dict(rules or {})
    for layer_type, rule in rules.items():
        if not isinstance(layer_type, type) or not callable(rule):
            raise ValueError(f"rules must map classes to callables rule(layer, call), got {layer_type!r}: {rule!r}")  # noqa: TRY004
    token = _OVERRIDES.set({**(_OVERRIDES.get() or {}), **rules})
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def _rule_of(cls) -> Rule | None:
    overrides = _OVERRIDES.get()
    return (overrides and overrides.get(cls)) or _RULES.get(cls)


def rule_for(layer) -> Rule | None:
    """The rule registered for ``type(layer)`` or its nearest ancestor, else ``None``."""
    for cls in type(layer).__mro__:
        rule = _rule_of(cls)
        if rule is not None:
            return rule
    return None


def fitting_rule(layer) -> Rule | None:
    """The inherited rule, where it fits: no class below the registered one overrides ``call``.

    A subclass that overrides ``call`` (``ReversibleEmbedding``,
    ``CachedMultiHeadAttention``) does something the rule does not know, and is
    traced op by op instead, unless a rule is registered for it (the built-in
    rules register Keras's own subclasses that they fit, such as ``LSTM``).
    Keras ops (not layers) take their class's rule.
    """
    for cls in type(layer).__mro__:
        rule = _rule_of(cls)
        if rule is not None:
            return rule
        if "call" in vars(cls) and is_layer_class(cls):
            return None
    return None
