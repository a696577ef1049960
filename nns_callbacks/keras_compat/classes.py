"""Keras's internal classes the cost rules and the walk need, looked up by name: an older Keras lacks some, and
only loses the rules it cannot have."""

from __future__ import annotations

import importlib


def internal_class(module: str, name: str) -> type | None:
    """A class from one of Keras's private modules, or ``None`` where this Keras has no such class."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


# Internal classes, looked up by name so that an older Keras only loses the rules it cannot have.
# The class of graph models.  Public alternative: none (``keras.Model`` is also subclassed models').
Functional = internal_class("keras.src.models.functional", "Functional")
# The op behind ``keras.ops.dot_product_attention``, for its rule.  Public alternative: none.
DotProductAttention = internal_class("keras.src.ops.nn", "DotProductAttention")
# Base classes of the built-in layer families: one rule covers every rank.  Public alternative: the
# concrete classes, one by one.
BasePooling = internal_class("keras.src.layers.pooling.base_pooling", "BasePooling")
BaseGlobalPooling = internal_class("keras.src.layers.pooling.base_global_pooling", "BaseGlobalPooling")
BaseAdaptivePooling = internal_class("keras.src.layers.pooling.base_adaptive_pooling", "BaseAdaptivePooling")
BaseConv = internal_class("keras.src.layers.convolutional.base_conv", "BaseConv")
BaseConvTranspose = internal_class("keras.src.layers.convolutional.base_conv_transpose", "BaseConvTranspose")
BaseDepthwiseConv = internal_class("keras.src.layers.convolutional.base_depthwise_conv", "BaseDepthwiseConv")
BaseSeparableConv = internal_class("keras.src.layers.convolutional.base_separable_conv", "BaseSeparableConv")
# The op ``keras.activations.relu`` runs on symbolic tensors (slope, cap, threshold).  Public alternative: none.
ReLUOp = internal_class("keras.src.activations.activations", "ReLU")
# ConvLSTM's cell, which keras.layers does not export.  Public alternative: none.
ConvLSTMCell = internal_class("keras.src.layers.rnn.conv_lstm", "ConvLSTMCell")
# Layers keras.applications defines for its own models.  Public alternative: none.
LayerScale = internal_class("keras.src.applications.convnext", "LayerScale")
CustomScaleLayer = internal_class("keras.src.applications.inception_resnet_v2", "CustomScaleLayer")
# The modules of Keras's op classes (``Add``, ``Einsum``, ...), which keras.ops exports as functions
# only.  Public alternative: none.
OPS_NUMPY = importlib.import_module("keras.src.ops.numpy")
OPS_NN = importlib.import_module("keras.src.ops.nn")
OPS_MATH = importlib.import_module("keras.src.ops.math")
OPS_CORE = importlib.import_module("keras.src.ops.core")
OPS_IMAGE = importlib.import_module("keras.src.ops.image")
OPS_LINALG = importlib.import_module("keras.src.ops.linalg")
# The op behind ``keras.ops.rearrange`` (Keras 3.9 and later), which moves data: its free rule.
# Public alternative: none.
Rearrange = internal_class("keras.src.ops.einops", "Rearrange")

# Internal: the base class of every Keras variable, whose arithmetic dunders (``variable * x``) call the backend
# directly (so that a weight times a symbolic tensor fails inside a traced call) and which keeps its shape and
# dtype.  Public alternative: none.
VariableBase = internal_class("keras.src.backend.common.variables", "Variable")
