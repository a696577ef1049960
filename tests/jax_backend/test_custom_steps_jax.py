"""Custom ``train_step``s (the keras-io DCGAN, WGAN-GP and VAE, written for JAX) fitted with NNSCallback: the step's
FLOPs are XLA's count of the step as it runs, loops times their trip count, which gives HFU; MFU needs the model
FLOPs stated, and a stated figure wins."""

import jax
import pytest

from nns_callbacks import NNSCallback, step_count
from nns_callbacks.step_count import xla_flops
from tests import custom_steps
from tests.custom_steps import BATCH, images
from tests.events import read_events
from tests.jax_backend import custom_steps_jax as jax_steps

CASES = {
    "DCGAN": (jax_steps.GAN, custom_steps.gan_parts, jax_steps.reference_gan),
    "WGAN-GP": (jax_steps.WGANGP, custom_steps.wgan_parts, jax_steps.reference_wgan),
    "VAE": (jax_steps.VAE, custom_steps.vae_parts, jax_steps.reference_vae),
}


@pytest.mark.parametrize("name", CASES)
def test_a_custom_train_step_is_counted_as_it_runs(name, tmp_path):
    build, parts, reference = CASES[name]
    model = build()
    model.compile(optimizer="adam")
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1e12)
    history = model.fit(images(), batch_size=BATCH, epochs=2, callbacks=[callback], verbose=0).history
    counted = callback.run.counted.flops
    step, arguments = reference(model)
    independent = xla_flops(jax.jit(step).lower(*arguments))
    assert counted == pytest.approx(independent, rel=0.05)  # XLA's count of the same step, written apart
    assert counted == pytest.approx(parts(model), rel=0.15)  # the sum of its parts' estimates
    # FLOP/s of the counted step, and HFU against the peak given; no MFU without model FLOPs stated
    assert {"tflops_per_sec", "hfu"} <= set(history) and "mfu" not in history
    assert history["hfu"] == pytest.approx([t * 1e12 / 1e12 for t in history["tflops_per_sec"]])
    assert read_events(tmp_path)[("train", "cost/hardware_flops_per_step")] == [(0, pytest.approx(counted))]


def test_a_critic_loop_is_counted_times_its_trip_count(monkeypatch):
    model = jax_steps.WGANGP()
    model.compile(optimizer="adam")
    model.optimizer.build(model.trainable_variables)
    variables = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
                 model.metrics_variables)
    state = tuple([v.value for v in group] for group in variables)
    counted = step_count.count_jax_step(model.train_step, state, images(BATCH)).flops
    monkeypatch.setattr(step_count, "_corrections", lambda jaxpr, left_out: 0.0)  # XLA's count as it is
    once = step_count.count_jax_step(model.train_step, state, images(BATCH)).flops
    step, arguments = jax_steps.reference_wgan(model)
    unrolled = xla_flops(jax.jit(step).lower(*arguments))
    assert counted == pytest.approx(unrolled, rel=0.05)
    assert once < 0.6 * unrolled  # XLA counts the fori_loop's body once: 1 critic step of 3


@pytest.mark.parametrize("stated", [{"flops_per_step": 4e6}, {"flops_per_sample": 5e5}])
def test_stated_model_flops_win_and_give_mfu(stated):
    model = jax_steps.GAN()
    model.compile(optimizer="adam")
    callback = NNSCallback(log_dir=None, peak_flops=1e12, **stated)
    history = model.fit(images(), batch_size=BATCH, epochs=2, callbacks=[callback], verbose=0).history
    per_step = stated.get("flops_per_step") or stated["flops_per_sample"] * BATCH
    # MFU from the stated figure; tflops_per_sec is the stated work's rate
    assert history["mfu"] == pytest.approx([t * 1e12 / 1e12 for t in history["tflops_per_sec"]])
    assert history["tflops_per_sec"] == pytest.approx([per_step * s / 1e12 for s in history["steps_per_sec"]])
    assert "hfu" in history
