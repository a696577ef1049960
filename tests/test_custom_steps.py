"""A custom ``train_step`` under TensorFlow (the keras-io DCGAN as written there, with ``tf.GradientTape`` and its
own two optimizers): no cheap counter exists, so the callback says so once and asks for the step's model FLOPs;
stated, they win and give MFU.  (JAX and torch count the step: tests/jax_backend, tests/torch_backend.)"""

import warnings

import keras
import pytest
import tensorflow as tf

from nns_callbacks import NNSCallback
from tests.custom_steps import BATCH, LATENT, bce_logits, discriminator, generator, images
from tests.events import read_events


class GAN(keras.Model):
    def __init__(self):
        super().__init__()
        self.generator, self.discriminator = generator(), discriminator()
        self.built = True

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def train_step(self, real):
        batch = tf.shape(real)[0]
        fake = self.generator(tf.random.normal((batch, LATENT)))
        labels = tf.concat([tf.ones((batch, 1)), tf.zeros((batch, 1))], axis=0)
        with tf.GradientTape() as tape:
            d_loss = bce_logits(labels, self.discriminator(tf.concat([fake, real], axis=0)))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(tf.random.normal((batch, LATENT))))
            g_loss = bce_logits(tf.zeros((batch, 1)), predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss}


def gan():
    model = GAN()
    model.compile(keras.optimizers.Adam(), keras.optimizers.Adam())
    return model


def test_a_custom_step_is_not_counted_on_tensorflow_and_the_fix_is_named(tmp_path):
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1e12, update_freq=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = gan().fit(images(), batch_size=BATCH, epochs=2, callbacks=[callback], verbose=0).history
    told = [str(w.message) for w in caught if "not counted on the tensorflow backend" in str(w.message)]
    assert len(told) == 1 and "flops_per_step=" in told[0]
    # no FLOPs known: steps and samples per second only, the same keys every epoch
    assert {"samples_per_sec", "steps_per_sec"} <= set(history) and not {"tflops_per_sec", "mfu", "hfu"} & set(history)
    # its own optimizers step, never model.optimizer: the step axis counts the steps run, across epochs
    events = read_events(tmp_path)
    assert [s for s, _ in events[("train", "batch_steps_per_sec")]] == [3, 7]  # 4 steps an epoch, windows of 2
    assert [s for s, _ in events[("train", "epoch_samples_per_sec")]] == [0, 1]


def test_stated_model_flops_win_and_give_mfu_on_tensorflow():
    callback = NNSCallback(log_dir=None, peak_flops=1e12, flops_per_step=4e6)
    history = gan().fit(images(), batch_size=BATCH, epochs=2, callbacks=[callback], verbose=0).history
    assert history["tflops_per_sec"] == pytest.approx([4e6 * s / 1e12 for s in history["steps_per_sec"]])
    assert history["mfu"] == pytest.approx(history["tflops_per_sec"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"flops_per_step": 1e9, "flops_per_sample": 1e6}, "not both"),
    ({"flops_per_step": -1}, "positive number of FLOPs"),
    ({"flops_per_sample": float("nan")}, "positive number of FLOPs"),
    ({"count_step": "yes"}, "count_step"),
])
def test_wrong_work_arguments_are_an_error_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NNSCallback(log_dir=None, **kwargs)
