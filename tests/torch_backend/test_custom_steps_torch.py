"""Custom ``train_step``s (the keras-io DCGAN, WGAN-GP and VAE, written for torch) fitted with NNSCallback: the first
step is counted with torch's ``FlopCounterMode`` (matrix products, convolutions: the step's own passes, whatever
they are), which gives FLOP/s and HFU; stated model FLOPs win and give MFU."""

import pytest

from nns_callbacks import NNSCallback
from tests import custom_steps
from tests.custom_steps import BATCH, images
from tests.torch_backend import custom_steps_torch as torch_steps

CASES = {
    "DCGAN": (torch_steps.GAN, custom_steps.gan_parts),
    "WGAN-GP": (torch_steps.WGANGP, custom_steps.wgan_parts),
    "VAE": (torch_steps.VAE, custom_steps.vae_parts),
}


@pytest.mark.parametrize("name", CASES)
def test_a_custom_train_step_is_counted_as_it_runs(name):
    build, parts = CASES[name]
    model = build()
    model.compile(optimizer="adam")
    callback = NNSCallback(log_dir=None, peak_flops=1e12)
    history = model.fit(images(), batch_size=BATCH, epochs=2, callbacks=[callback], verbose=0).history
    counted = callback.run.counted
    assert counted.flops == pytest.approx(parts(model), rel=0.15)  # the sum of the parts' estimates
    assert any("elementwise" in what for what in counted.left_out)  # and what it does not count, said
    assert {"tflops_per_sec", "hfu"} <= set(history) and "mfu" not in history


def test_stated_model_flops_win_and_give_mfu():
    model = torch_steps.GAN()
    model.compile(optimizer="adam")
    callback = NNSCallback(log_dir=None, peak_flops=1e12, flops_per_step=4e6)
    history = model.fit(images(), batch_size=BATCH, epochs=2, callbacks=[callback], verbose=0).history
    assert history["tflops_per_sec"] == pytest.approx([4e6 * s / 1e12 for s in history["steps_per_sec"]])
    assert history["mfu"] == pytest.approx(history["tflops_per_sec"])
