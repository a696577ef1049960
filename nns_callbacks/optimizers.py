"""Optimizer state and update cost per trainable parameter."""

from __future__ import annotations

import dataclasses

import keras

from . import notices


@dataclasses.dataclass(frozen=True)
class OptimizerCost:
    """``slots``: state variables per parameter; ``update_flops``: FLOPs per parameter per step."""

    name: str
    slots: float
    update_flops: int
    known: bool = True

    @property
    def update_traffic(self) -> float:
        """Bytes the update moves per byte of trainable weight: it reads the weight, its gradient and the slots
        and writes the weight and the slots: 3 + 2 x slots; 0 where no update is counted (none, or unknown)."""
        return 3 + 2 * self.slots if self.update_flops else 0


def _sgd(opt):
    momentum = float(getattr(opt, "momentum", 0.0) or 0.0)
    if not momentum:
        return 0, 2
    return 1, 6 if getattr(opt, "nesterov", False) else 4


def _rmsprop(opt):
    momentum = float(getattr(opt, "momentum", 0.0) or 0.0)
    slots = 1 + (1 if momentum else 0) + (1 if getattr(opt, "centered", False) else 0)
    return slots, 8 + (2 if momentum else 0) + (2 if getattr(opt, "centered", False) else 0)


def _adam(opt):
    return (3, 14) if getattr(opt, "amsgrad", False) else (2, 12)


_TABLE = {
    "SGD": _sgd,
    "RMSprop": _rmsprop,
    "Adam": _adam,
    "AdamW": lambda opt: (_adam(opt)[0], _adam(opt)[1] + 2),
    "Adamax": lambda opt: (2, 10),
    "Nadam": lambda opt: (2, 16),
    "Adagrad": lambda opt: (1, 6),
    "Adadelta": lambda opt: (2, 12),
    "Ftrl": lambda opt: (2, 16),
    "Lion": lambda opt: (1, 8),
    "Lamb": lambda opt: (2, 16),
}
"""Per optimizer: (state slots, update FLOPs) per parameter as functions of its settings.

Update FLOPs count the elementwise work of one step as Keras writes it, for example
Adam: m += (g - m)(1 - b1): 3; v += (g^2 - v)(1 - b2): 4; w -= m a / (sqrt(v) + eps): 5.
"""


def resolve_optimizer(model, optimizer):
    """The optimizer to cost: the argument (instance or name), else the compiled one, else ``None``."""
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    elif isinstance(optimizer, str):
        try:
            optimizer = keras.optimizers.get(optimizer)
        except ValueError as error:
            raise ValueError(f"unknown optimizer {optimizer!r}: {error}") from None
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def _entry(optimizer):
    """The table entry of the optimizer's class or of its nearest listed ancestor (a subclass of Adam is Adam)."""
    for cls in type(optimizer).__mro__:
        if cls.__name__ in _TABLE:
            return _TABLE[cls.__name__]
    return None


def optimizer_cost(optimizer) -> OptimizerCost:
    """State slots and update FLOPs of ``optimizer``; an unknown one warns and counts 0."""
    if optimizer is None:
        return OptimizerCost("none", 0, 0)
    name = type(optimizer).__name__
    entry = _entry(optimizer)
    if entry is None:
        notices.warn(
            f"no cost entry for optimizer {name}; its state and update are left out (counted as 0) of the "
            "training figures",
            cause=("optimizer", name),
            stacklevel=5,
        )
        return OptimizerCost(name, 0, 0, known=False)
    slots, flops = entry(optimizer)
    return OptimizerCost(name, slots, flops)
