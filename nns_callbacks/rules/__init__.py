"""Cost rules for the built-in Keras 3 layers and ``keras.ops``; importing this package registers them."""

from . import (
    activations,
    applications,
    attention,
    conv,
    core,
    normalization,
    ops,
    ops_elementwise,
    ops_image,
    ops_linalg,
    ops_nn,
    ops_signal,
    pooling,
    preprocessing,
    recurrent,
    wrappers,
)

__all__ = [
    "activations", "applications", "attention", "conv", "core", "normalization", "ops", "ops_elementwise",
    "ops_image", "ops_linalg", "ops_nn", "ops_signal", "pooling", "preprocessing", "recurrent", "wrappers",
]
