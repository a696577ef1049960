"""The keras-io examples' custom ``train_step``s written for torch (``train_step(data)`` with autograd), doing the
work of the JAX ones in ``tests/jax_backend/custom_steps_jax.py``: each update takes the gradients of the network it
trains only (``torch.autograd.grad``), with zeros for the other."""

from __future__ import annotations

import keras
import torch
from keras import ops

from tests.custom_steps import (
    D_STEPS,
    GP_WEIGHT,
    LATENT,
    VAEShell,
    bce_logits,
    discriminator,
    generator,
)

GENERATOR = torch.Generator().manual_seed(0)


def _update(model, loss, part, create_graph=False):
    """One optimizer update of every weight: ``loss``'s gradients for ``part``'s weights, zeros for the rest."""
    grads = torch.autograd.grad(loss, [v.value for v in part.trainable_variables], create_graph=create_graph)
    by_id = {id(v): g for v, g in zip(part.trainable_variables, grads)}
    every = model.trainable_variables
    with torch.no_grad():
        model.optimizer.apply([by_id.get(id(v), torch.zeros_like(v.value)) for v in every], every)


class GAN(keras.Model):
    """DCGAN: a discriminator update on real and generated images, then a generator update through it."""

    def __init__(self):
        super().__init__()
        self.generator, self.discriminator = generator(), discriminator()
        self.built = True

    def call(self, z):
        return self.discriminator(self.generator(z))

    def train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        batch = real.shape[0]
        g, d = self.generator, self.discriminator
        fake = ops.stop_gradient(g(torch.randn(batch, LATENT, generator=GENERATOR)))
        labels = ops.concatenate([ops.ones((batch, 1)), ops.zeros((batch, 1))])
        d_loss = bce_logits(labels, d(ops.concatenate([fake, real])))
        _update(self, d_loss, d)
        g_loss = bce_logits(ops.zeros((batch, 1)), d(g(torch.randn(batch, LATENT, generator=GENERATOR))))
        _update(self, g_loss, g)
        return {"d_loss": d_loss, "g_loss": g_loss}


class WGANGP(GAN):
    """WGAN-GP: ``D_STEPS`` critic updates (Wasserstein loss and a gradient penalty), then a generator update."""

    def train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        batch = real.shape[0]
        g, d = self.generator, self.discriminator
        for _ in range(D_STEPS):
            fake = ops.stop_gradient(g(torch.randn(batch, LATENT, generator=GENERATOR)))
            alpha = torch.rand(batch, 1, 1, 1, generator=GENERATOR)
            interpolated = (real + alpha * (fake - real)).requires_grad_(True)
            [slopes] = torch.autograd.grad(ops.sum(d(interpolated)), [interpolated], create_graph=True)
            norm = ops.sqrt(ops.sum(ops.square(slopes), axis=(1, 2, 3)))
            d_loss = ops.mean(d(fake)) - ops.mean(d(real)) + GP_WEIGHT * ops.mean(ops.square(norm - 1.0))
            _update(self, d_loss, d)
        g_loss = -ops.mean(d(g(torch.randn(batch, LATENT, generator=GENERATOR))))
        _update(self, g_loss, g)
        return {"g_loss": g_loss}


class VAE(VAEShell):
    """VAE: the reconstruction and KL losses, one update."""

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        z_mean, z_log_var = self.encoder(x)
        z = z_mean + ops.exp(0.5 * z_log_var) * torch.randn(z_mean.shape, generator=GENERATOR)
        reconstruction = ops.clip(self.decoder(z), 1e-7, 1 - 1e-7)
        bce = -(x * ops.log(reconstruction) + (1 - x) * ops.log(1 - reconstruction))
        kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
        loss = ops.mean(ops.sum(bce, axis=(1, 2, 3))) + ops.mean(ops.sum(kl, axis=1))
        _update(self, loss, self)
        return {"loss": loss}
