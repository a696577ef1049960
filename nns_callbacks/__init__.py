"""nns_callbacks: what a Keras model costs, and how much of the hardware a run uses.

Units: a MAC is one multiply-add; a FLOP is one floating-point operation (a MAC
is 2 FLOPs).  Peak hardware rates and MFU are in FLOPs.
"""

from .callback import NNSCallback
from .cost import CONVENTIONS, ModelCost
from .estimate import estimate
from .registry import LayerCall, LayerCost, register_cost_rule

__all__ = [
    "CONVENTIONS",
    "LayerCall",
    "LayerCost",
    "ModelCost",
    "NNSCallback",
    "estimate",
    "register_cost_rule",
]
__version__ = "0.1.0"
