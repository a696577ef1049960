"""Cost rules for the built-in Keras 3 layers; importing this package registers them."""

from . import activations, applications, attention, conv, core, normalization, ops, pooling, recurrent, wrappers

__all__ = ["activations", "applications", "attention", "conv", "core", "normalization", "ops", "pooling", "recurrent", "wrappers"]
