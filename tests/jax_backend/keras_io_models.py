"""Models of the official Keras examples (keras-io), shrunk to run in seconds, for checks against XLA: each
``build()`` returns (model, one sample's input shape)."""

from __future__ import annotations

import keras
from keras import layers, ops


class Patches(layers.Layer):
    """Non-overlapping square patches of an image, flattened (the Perceiver's and ViT's patching, in keras.ops)."""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, images):
        batch, height, width, channels = ops.shape(images)
        rows, cols = height // self.size, width // self.size
        patches = ops.reshape(images, (batch, rows, self.size, cols, self.size, channels))
        patches = ops.transpose(patches, (0, 1, 3, 2, 4, 5))
        return ops.reshape(patches, (batch, rows * cols, self.size * self.size * channels))


def _ffn(units, name):
    return keras.Sequential([layers.Dense(units[0], activation="gelu"), layers.Dense(units[1])], name=name)


def cross_attention_module(latent_dim, data_dim, dim):
    """The Perceiver example's cross-attention: a query from the latent array against the encoded image."""
    inputs = {"latent_array": layers.Input((latent_dim, dim)), "data_array": layers.Input((data_dim, dim))}
    latent = layers.LayerNormalization(epsilon=1e-6)(inputs["latent_array"])
    data = layers.LayerNormalization(epsilon=1e-6)(inputs["data_array"])
    query, key, value = layers.Dense(dim)(latent), layers.Dense(dim)(data), layers.Dense(dim)(data)
    attended = layers.Add()([layers.Attention(use_scale=True)([query, key, value]), latent])
    attended = layers.LayerNormalization(epsilon=1e-6)(attended)
    return keras.Model(inputs, layers.Add()([_ffn((dim, dim), "cross_ffn")(attended), attended]), name="cross")


def transformer_module(latent_dim, dim, heads):
    inputs = layers.Input((latent_dim, dim))
    x1 = layers.LayerNormalization(epsilon=1e-6)(inputs)
    x2 = layers.Add()([layers.MultiHeadAttention(heads, dim)(x1, x1), inputs])
    x3 = _ffn((dim, dim), "transformer_ffn")(layers.LayerNormalization(epsilon=1e-6)(x2))
    return keras.Model(inputs, layers.Add()([x3, x2]), name="transformer")


class Perceiver(keras.Model):
    """The Perceiver of perceiver_image_classification.py: a latent array (a weight, batch 1) attends to the
    encoded patches of a batch of images, twice with shared weights."""

    def __init__(self, image=16, patch=4, latent_dim=8, dim=16, heads=2, iterations=2, classes=10):
        super().__init__()
        data_dim = (image // patch) ** 2
        self.latent_dim, self.dim, self.iterations = latent_dim, dim, iterations
        self.patcher = Patches(patch)
        self.projection = layers.Dense(dim)
        self.position_embedding = layers.Embedding(data_dim, dim)
        self.cross_attention = cross_attention_module(latent_dim, data_dim, dim)
        self.transformer = transformer_module(latent_dim, dim, heads)
        self.pooling = layers.GlobalAveragePooling1D()
        self.head = layers.Dense(classes)
        self.data_dim = data_dim

    def build(self, input_shape):
        self.latent_array = self.add_weight(shape=(self.latent_dim, self.dim), initializer="random_normal")
        super().build(input_shape)

    def call(self, images, training=None):
        patches = self.patcher(images)
        encoded = self.projection(patches) + self.position_embedding(ops.arange(self.data_dim))
        inputs = {"latent_array": ops.expand_dims(self.latent_array, 0), "data_array": encoded}
        for _ in range(self.iterations):
            latent = self.transformer(self.cross_attention(inputs))
            inputs["latent_array"] = latent
        return self.head(self.pooling(latent))


def perceiver():
    model = Perceiver()
    model.build((None, 16, 16, 3))
    return model, (16, 16, 3)


class GatedMLP(layers.Layer):
    """A gated MLP on its own weights (add_weight), the first layer after the Input: silu(x W1) * (x W2), then W3."""

    def __init__(self, hidden, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        features = input_shape[-1]
        self.w1 = self.add_weight(shape=(features, self.hidden))
        self.w2 = self.add_weight(shape=(features, self.hidden))
        self.w3 = self.add_weight(shape=(self.hidden, features))

    def call(self, x):
        return ops.matmul(ops.silu(ops.matmul(x, self.w1)) * ops.matmul(x, self.w2), self.w3)


def gated_mlp():
    inputs = keras.Input((16, 32))
    return keras.Model(inputs, GatedMLP(64)(inputs)), (16, 32)
