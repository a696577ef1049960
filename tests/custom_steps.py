"""Custom ``train_step``s of the official Keras examples (keras-io: DCGAN ``dcgan_overriding_train_step.py``,
``wgan_gp.py``, ``vae.py``), shrunk to run in seconds, written for JAX and for torch, and the parts their steps
are made of, estimated one by one.

Each step updates every weight with the model's one optimizer (Adam), once per update the example makes (the
GAN 2, the WGAN-GP 3 critic steps and 1 generator step, the VAE 1), with zero gradients for the network an
update leaves alone: the examples' separate optimizers would do the same arithmetic on fewer weights, and a
Keras model's training state under JAX holds one optimizer's variables.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from nns_callbacks import estimate

IMAGE, LATENT, BATCH = 16, 16, 8
D_STEPS, GP_WEIGHT = 3, 10.0
ADAM_FLOPS = 12  # per parameter per update (nns_callbacks.optimizers)


def generator(name="generator"):
    """Latent vector -> 16 x 16 x 1 image (the DCGAN example's, shrunk)."""
    return keras.Sequential([
        keras.Input((LATENT,)),
        layers.Dense(4 * 4 * 16), layers.LeakyReLU(0.2), layers.Reshape((4, 4, 16)),
        layers.Conv2DTranspose(16, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2DTranspose(16, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2D(1, 5, padding="same", activation="sigmoid"),
    ], name=name)


def discriminator(name="discriminator"):
    """Image -> one logit (the DCGAN example's, shrunk)."""
    return keras.Sequential([
        keras.Input((IMAGE, IMAGE, 1)),
        layers.Conv2D(16, 3, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2D(32, 3, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.GlobalMaxPooling2D(), layers.Dense(1),
    ], name=name)


def encoder():
    inputs = keras.Input((IMAGE, IMAGE, 1))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Dense(16, activation="relu")(layers.Flatten()(x))
    return keras.Model(inputs, [layers.Dense(2, name="z_mean")(x), layers.Dense(2, name="z_log_var")(x)], name="encoder")


def decoder():
    return keras.Sequential([
        keras.Input((2,)),
        layers.Dense(4 * 4 * 16, activation="relu"), layers.Reshape((4, 4, 16)),
        layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid"),
    ], name="decoder")


class VAEShell(keras.Model):
    """A VAE's encoder and decoder, called as a reconstruction; each backend's test writes its ``train_step``."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = encoder(), decoder()
        self.built = True

    def call(self, x):
        return self.decoder(self.encoder(x)[0])


def images(n: int = 4 * BATCH):
    return keras.random.uniform((n, IMAGE, IMAGE, 1), seed=0)


# The parts of each step, estimated one by one (training FLOPs of each pass, Adam per update).
def _train(model, batch, frozen=()):
    for layer in frozen:
        layer.trainable = False
    try:
        cost = estimate(model, batch_size=batch)
    finally:
        for layer in frozen:
            layer.trainable = True
    return cost.forward_flops + cost.backward_flops


def _chain(first, second):
    inputs = keras.Input(first.input_shape[1:])
    return keras.Model(inputs, second(first(inputs)))


def gan_parts(model) -> float:
    """G forward (B); D forward and weight gradients on 2B; G -> D with D frozen (B); 2 Adam updates."""
    g, d = model.generator, model.discriminator
    params = g.count_params() + d.count_params()
    g_forward = estimate(g, batch_size=BATCH).forward_flops
    return g_forward + _train(d, 2 * BATCH) + _train(_chain(g, d), BATCH, frozen=[d]) + 2 * ADAM_FLOPS * params


def wgan_parts(model) -> float:
    """Per critic step: G forward; D forward and weight gradients on fake and on real; the gradient penalty: D
    forward on the interpolation and its input gradient (a product as large as the forward's, each), and the
    gradient of both by D's weights (as much again): 4 D forwards.  Then the generator step."""
    g, d = model.generator, model.discriminator
    params = g.count_params() + d.count_params()
    d_train = _train(d, BATCH)
    d_forward = estimate(d, batch_size=BATCH).forward_flops
    critic = estimate(g, batch_size=BATCH).forward_flops + 2 * d_train + 4 * d_forward
    return D_STEPS * critic + _train(_chain(g, d), BATCH, frozen=[d]) + (D_STEPS + 1) * ADAM_FLOPS * params


def vae_parts(model) -> float:
    """Encoder and decoder, forward and backward; 1 Adam update."""
    e, d = model.encoder, model.decoder
    return _train(e, BATCH) + _train(d, BATCH) + ADAM_FLOPS * (e.count_params() + d.count_params())


def bce_logits(labels, logits):
    return ops.mean(ops.maximum(logits, 0) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits))))


def split(values, variables, part) -> list:
    """The entries of ``values`` (aligned with ``variables``) that belong to ``part``'s variables."""
    ids = {id(v) for v in part}
    return [value for value, variable in zip(values, variables) if id(variable) in ids]


def merge(variables, parts: list[tuple]) -> list:
    """Values for ``variables`` from ``(part's variables, their values)`` pairs; zeros for the rest."""
    by_id = {id(v): value for part, values in parts for v, value in zip(part, values)}
    return [by_id.get(id(v), ops.zeros(v.shape, v.dtype)) for v in variables]
