"""nns_callbacks: what a Keras model costs, and how much of the hardware a run uses.

Units: a MAC is one multiply-add; a FLOP is one floating-point operation (a MAC
is 2 FLOPs).  Peak hardware rates and MFU are in FLOPs.

Public names are imported on first use, so that ``import nns_callbacks`` (and the
``nns-summary`` command) can quiet TensorFlow before Keras is loaded.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "CONVENTIONS": "cost",
    "ModelCost": "cost",
    "estimate": "estimation",
    "NNSCallback": "callback",
    "LayerCall": "registry",
    "LayerCost": "registry",
    "register_cost_rule": "custom_rules",
    "max_batch_size": "memory",
    "NNSWarning": "notices",
    "quiet_startup": "quiet",
    "Throughput": "loop_throughput",
}
__all__ = [
    "CONVENTIONS",
    "LayerCall",
    "LayerCost",
    "ModelCost",
    "NNSCallback",
    "NNSWarning",
    "Throughput",
    "estimate",
    "max_batch_size",
    "quiet_startup",
    "register_cost_rule",
]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nns_callbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
