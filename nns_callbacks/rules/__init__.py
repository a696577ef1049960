"""Cost rules for the built-in Keras 3 layers; importing this package registers them."""

from . import activations, attention, conv, core, normalization, pooling, recurrent, wrappers

__all__ = ["activations", "attention", "conv", "core", "normalization", "pooling", "recurrent", "wrappers"]
