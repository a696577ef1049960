"""The keras-io examples' custom ``train_step``s written for JAX (``train_step(state, data)``), and the same
steps written independently as plain JAX functions of arrays (layers as ``keras.ops`` on explicit weights,
Adam by hand, the WGAN-GP critic loop unrolled in Python), whose XLA count the callback's count is held to."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras
from keras import ops

from tests.custom_steps import (
    BATCH,
    D_STEPS,
    GP_WEIGHT,
    LATENT,
    VAEShell,
    bce_logits,
    discriminator,
    generator,
    merge,
    split,
)

KEY = jax.random.PRNGKey(0)


class GAN(keras.Model):
    """DCGAN: a discriminator update on real and generated images, then a generator update through it."""

    def __init__(self):
        super().__init__()
        self.generator, self.discriminator = generator(), discriminator()
        self.built = True  # its weights are its networks'; its call takes latent vectors, not the images it trains on

    def call(self, z):
        return self.discriminator(self.generator(z))

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        real = data[0] if isinstance(data, (tuple, list)) else data
        every, g, d = self.trainable_variables, self.generator, self.discriminator
        batch = real.shape[0]
        z1, z2 = jax.random.normal(KEY, (2, batch, LATENT))
        g_vars = split(trainable, every, g.trainable_variables)

        def d_loss(d_vars):
            fake = jax.lax.stop_gradient(g.stateless_call(g_vars, [], z1)[0])
            logits = d.stateless_call(d_vars, [], jnp.concatenate([fake, real]))[0]
            return bce_logits(jnp.concatenate([jnp.ones((batch, 1)), jnp.zeros((batch, 1))]), logits)

        d_value, d_grads = jax.value_and_grad(d_loss)(split(trainable, every, d.trainable_variables))
        grads = merge(every, [(d.trainable_variables, d_grads)])
        trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, grads, trainable)
        d_vars = split(trainable, every, d.trainable_variables)

        def g_loss(g_vars):
            logits = d.stateless_call(d_vars, [], g.stateless_call(g_vars, [], z2)[0])[0]
            return bce_logits(jnp.zeros((batch, 1)), logits)

        g_value, g_grads = jax.value_and_grad(g_loss)(split(trainable, every, g.trainable_variables))
        grads = merge(every, [(g.trainable_variables, g_grads)])
        trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, grads, trainable)
        return {"d_loss": d_value, "g_loss": g_value}, (trainable, non_trainable, optimizer_variables, metrics_variables)


class WGANGP(GAN):
    """WGAN-GP: ``D_STEPS`` critic updates in a ``fori_loop`` (Wasserstein loss and a gradient penalty on
    interpolated images), then a generator update."""

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        real = data[0] if isinstance(data, (tuple, list)) else data
        every, g, d = self.trainable_variables, self.generator, self.discriminator
        batch = real.shape[0]

        def critic_step(i, carry):
            trainable, optimizer_variables = carry
            g_vars = split(trainable, every, g.trainable_variables)
            z = jax.random.normal(jax.random.fold_in(KEY, i), (batch, LATENT))
            alpha = jax.random.uniform(jax.random.fold_in(KEY, 100 + i), (batch, 1, 1, 1))

            def d_loss(d_vars):
                def critic(x):
                    return d.stateless_call(d_vars, [], x)[0]

                fake = jax.lax.stop_gradient(g.stateless_call(g_vars, [], z)[0])
                return wasserstein_gp(critic, real, fake, alpha)

            d_grads = jax.grad(d_loss)(split(trainable, every, d.trainable_variables))
            grads = merge(every, [(d.trainable_variables, d_grads)])
            return self.optimizer.stateless_apply(optimizer_variables, grads, trainable)

        trainable, optimizer_variables = jax.lax.fori_loop(0, D_STEPS, critic_step, (trainable, optimizer_variables))
        d_vars = split(trainable, every, d.trainable_variables)
        z = jax.random.normal(jax.random.fold_in(KEY, 999), (batch, LATENT))

        def g_loss(g_vars):
            return -jnp.mean(d.stateless_call(d_vars, [], g.stateless_call(g_vars, [], z)[0])[0])

        g_value, g_grads = jax.value_and_grad(g_loss)(split(trainable, every, g.trainable_variables))
        grads = merge(every, [(g.trainable_variables, g_grads)])
        trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, grads, trainable)
        return {"g_loss": g_value}, (trainable, non_trainable, optimizer_variables, metrics_variables)


def wasserstein_gp(critic, real, fake, alpha):
    """mean(critic(fake)) - mean(critic(real)) + GP_WEIGHT x mean((|grad of critic at an interpolation| - 1)^2)."""
    interpolated = real + alpha * (fake - real)
    slopes = jax.grad(lambda x: jnp.sum(critic(x)))(interpolated)
    norm = jnp.sqrt(jnp.sum(jnp.square(slopes), axis=(1, 2, 3)))
    return jnp.mean(critic(fake)) - jnp.mean(critic(real)) + GP_WEIGHT * jnp.mean(jnp.square(norm - 1.0))


class VAE(VAEShell):
    """VAE: the reconstruction (binary cross-entropy summed over pixels) and KL losses, one update."""

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x = data[0] if isinstance(data, (tuple, list)) else data
        every, e, d = self.trainable_variables, self.encoder, self.decoder

        def loss(values):
            def encode(inputs):
                return e.stateless_call(split(values, every, e.trainable_variables), [], inputs)[0]

            def decode(z):
                return d.stateless_call(split(values, every, d.trainable_variables), [], z)[0]

            return vae_loss(encode, decode, x)

        value, grads = jax.value_and_grad(loss)(trainable)
        trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, grads, trainable)
        return {"loss": value}, (trainable, non_trainable, optimizer_variables, metrics_variables)


def vae_loss(encode, decode, x):
    z_mean, z_log_var = encode(x)
    z = z_mean + jnp.exp(0.5 * z_log_var) * jax.random.normal(KEY, z_mean.shape)
    reconstruction = jnp.clip(decode(z), 1e-7, 1 - 1e-7)
    bce = -(x * jnp.log(reconstruction) + (1 - x) * jnp.log(1 - reconstruction))
    kl = -0.5 * (1 + z_log_var - jnp.square(z_mean) - jnp.exp(z_log_var))
    return jnp.mean(jnp.sum(bce, axis=(1, 2, 3))) + jnp.mean(jnp.sum(kl, axis=1))


# The same steps, written independently: the networks as functions of their weight arrays.
def _weights(model) -> list:
    return [v.value for v in model.trainable_variables]


def _network(model):
    """A plain function of (weights, x) that computes ``model`` with ``keras.ops`` on explicit weights."""
    plan = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Dense", "Conv2D", "Conv2DTranspose"):
            plan.append((kind, layer.strides if kind != "Dense" else None, layer.activation.__name__))
        elif kind == "LeakyReLU":
            plan.append(("leaky", None, None))
        elif kind == "Reshape":
            plan.append(("reshape", layer.target_shape, None))
        elif kind in ("Flatten", "GlobalMaxPooling2D"):
            plan.append((kind, None, None))

    def apply(weights, x):
        weights = list(weights)
        for kind, option, activation in plan:
            if kind == "Dense":
                x = ops.matmul(x, weights.pop(0)) + weights.pop(0)
            elif kind == "Conv2D":
                x = ops.conv(x, weights.pop(0), strides=option, padding="same") + weights.pop(0)
            elif kind == "Conv2DTranspose":
                x = ops.conv_transpose(x, weights.pop(0), strides=option, padding="same") + weights.pop(0)
            elif kind == "leaky":
                x = jnp.where(x > 0, x, 0.2 * x)
            elif kind == "reshape":
                x = jnp.reshape(x, (x.shape[0], *option))
            elif kind == "Flatten":
                x = jnp.reshape(x, (x.shape[0], -1))
            elif kind == "GlobalMaxPooling2D":
                x = jnp.max(x, axis=(1, 2))
            if activation in ("relu", "sigmoid"):
                x = jax.nn.relu(x) if activation == "relu" else jax.nn.sigmoid(x)
        return x

    return apply


def adam(weights, grads, moments, step, rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-7):
    """One Adam update of every weight, as Keras writes it."""
    m, v = moments
    scaled = rate * jnp.sqrt(1 - beta2 ** (step + 1)) / (1 - beta1 ** (step + 1))
    m = [mi + (gi - mi) * (1 - beta1) for mi, gi in zip(m, grads)]
    v = [vi + (jnp.square(gi) - vi) * (1 - beta2) for vi, gi in zip(v, grads)]
    weights = [w - scaled * mi / (jnp.sqrt(vi) + epsilon) for w, mi, vi in zip(weights, m, v)]
    return weights, (m, v)


def reference_gan(model):
    """(step function, example arguments) of the DCGAN step written as a plain JAX function."""
    g_net, d_net = _network(model.generator), _network(model.discriminator)
    n_g = len(model.generator.trainable_variables)

    def step(weights, moments, real):
        batch = real.shape[0]
        z1, z2 = jax.random.normal(KEY, (2, batch, LATENT))
        g_w, d_w = weights[:n_g], weights[n_g:]

        def d_loss(d_w):
            fake = jax.lax.stop_gradient(g_net(g_w, z1))
            labels = jnp.concatenate([jnp.ones((batch, 1)), jnp.zeros((batch, 1))])
            return bce_logits(labels, d_net(d_w, jnp.concatenate([fake, real])))

        d_grads = jax.grad(d_loss)(d_w)
        weights, moments = adam(weights, [jnp.zeros_like(w) for w in g_w] + d_grads, moments, 0)
        g_w, d_w = weights[:n_g], weights[n_g:]
        g_grads = jax.grad(lambda g_w: bce_logits(jnp.zeros((batch, 1)), d_net(d_w, g_net(g_w, z2))))(g_w)
        return adam(weights, g_grads + [jnp.zeros_like(w) for w in d_w], moments, 1)

    return step, _arguments(_weights(model.generator) + _weights(model.discriminator))


def reference_wgan(model):
    """The WGAN-GP step as a plain JAX function, its critic loop unrolled (XLA counts every iteration)."""
    g_net, d_net = _network(model.generator), _network(model.discriminator)
    n_g = len(model.generator.trainable_variables)

    def step(weights, moments, real):
        batch = real.shape[0]
        for i in range(D_STEPS):
            g_w, d_w = weights[:n_g], weights[n_g:]
            z = jax.random.normal(jax.random.fold_in(KEY, i), (batch, LATENT))
            alpha = jax.random.uniform(jax.random.fold_in(KEY, 100 + i), (batch, 1, 1, 1))
            fake = jax.lax.stop_gradient(g_net(g_w, z))
            d_grads = jax.grad(lambda d_w, fake=fake, alpha=alpha: wasserstein_gp(
                lambda x: d_net(d_w, x), real, fake, alpha))(d_w)
            weights, moments = adam(weights, [jnp.zeros_like(w) for w in g_w] + d_grads, moments, i)
        g_w, d_w = weights[:n_g], weights[n_g:]
        z = jax.random.normal(jax.random.fold_in(KEY, 999), (batch, LATENT))
        g_grads = jax.grad(lambda g_w: -jnp.mean(d_net(d_w, g_net(g_w, z))))(g_w)
        return adam(weights, g_grads + [jnp.zeros_like(w) for w in d_w], moments, D_STEPS)

    return step, _arguments(_weights(model.generator) + _weights(model.discriminator))


def reference_vae(model):
    """The VAE step as a plain JAX function."""
    e_model, d_net = model.encoder, _network(model.decoder)
    n_e = len(e_model.trainable_variables)
    body = _network(keras.Sequential(e_model.layers[1:5]))  # the convolutions, flatten and dense before the heads

    def step(weights, moments, x):
        def loss(weights):
            e_w, d_w = weights[:n_e], weights[n_e:]

            def encode(inputs):
                hidden = body(e_w[:6], inputs)
                return hidden @ e_w[6] + e_w[7], hidden @ e_w[8] + e_w[9]

            return vae_loss(encode, lambda z: d_net(d_w, z), x)

        return adam(weights, jax.grad(loss)(weights), moments, 0)

    return step, _arguments(_weights(model.encoder) + _weights(model.decoder))


def _arguments(weights):
    shapes = [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in weights]
    real = jax.ShapeDtypeStruct((BATCH, 16, 16, 1), "float32")
    return shapes, (shapes, shapes), real
