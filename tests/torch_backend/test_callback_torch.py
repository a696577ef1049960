"""NNSCallback and estimate under the torch backend: the same rates, panels and counts as on the others."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from nns_callbacks import NNSCallback, estimate
from tests import hub_models
from tests.events import read_events
from tests.fake_time import FakeTime, Ticker
from tests.test_callback import dense_model

HERE = pathlib.Path(__file__).parent


def test_fit_under_torch_writes_panels_and_exact_rates(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((300, 8), dtype=np.float32), rng.random((300, 4), dtype=np.float32)
    clock = FakeTime()
    callback = NNSCallback(log_dir=str(tmp_path), peak_flops=1000.0, clock=clock)
    history = dense_model().fit(x, y, batch_size=32, epochs=2, callbacks=[Ticker(clock), callback], verbose=0)
    # 10 steps (the last of 12), 1 s each: 300 samples in 10 s, from the epoch's begin to its last step
    assert history.history["samples_per_sec"] == pytest.approx([30.0, 30.0])
    events = read_events(tmp_path)
    assert events[("train", "cost/params")] == [(0, 36.0)]
    assert ("train", "epoch_tflops_per_sec") in events


def test_estimate_under_torch_equals_the_tensorflow_count():
    """keras-hub models estimated here and in a TensorFlow-backend process: the same counts."""
    ours = hub_models.estimate_all()
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, str(HERE.parent / "hub_models.py")], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    theirs = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (params, forward, backward, _) in theirs.items():
        assert ours[name][0] == params, name
        assert ours[name][1] == pytest.approx(forward, rel=0.02), name
        assert ours[name][2] == pytest.approx(backward, rel=0.02), name


def test_dense_model_counts_like_the_arithmetic():
    cost = estimate(dense_model(), batch_size=4)
    assert cost.forward_flops == 4 * (2 * 8 * 4 + 4)  # 272
