"""Several workers: a real two-process job on 127.0.0.1 (Keras's DataParallel over JAX, on the CPU).

Only the chief writes; the rates count the whole job's samples; the peak is summed over every replica.
A two-process ``tf.distribute.MultiWorkerMirroredStrategy`` job cannot be tested: Keras 3's ``fit`` fails
under it on its own (keras-team/keras#20585, "Attempt to convert a value (PerReplica...)").
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.events import read_events

WORKER = textwrap.dedent(
    """
    import json, os, sys
    index, port, log_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras, numpy as np, tensorflow as tf
    keras.distribution.initialize(job_addresses=f"127.0.0.1:{port}", num_processes=2, process_id=index)
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    from nns_callbacks import NNSCallback
    inputs = keras.Input((6,), dtype="int32")  # sequences of 6 tokens
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(4)(pooled))
    model.compile("sgd", "mse")
    data = tf.data.Dataset.from_tensor_slices((np.ones((256, 6), "int32"), np.ones((256, 4), "float32")))
    callback = NNSCallback(log_dir=log_dir, peak_flops=1000.0)
    history = model.fit(data.batch(32), epochs=2, callbacks=[callback], verbose=0)  # global batches of 32
    cost = callback.cost
    print(json.dumps({"chief": callback.chief, "devices": callback.peak.devices, "peak": callback.peak.flops_per_sec,
                      "batch": cost.batch_size, "samples": history.history["samples_per_sec"],
                      "steps": history.history["steps_per_sec"], "iterations": int(model.optimizer.iterations),
                      "tokens": history.history["tokens_per_sec"], "tflops": history.history["tflops_per_sec"],
                      "mfu": history.history["mfu"], "cost_devices": cost.devices,
                      "step_flops": [cost.forward_flops, cost.backward_flops, cost.optimizer_flops],
                      "per_device_flops": cost.per_device_training_flops}))
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_jax_processes_write_once_and_count_the_whole_job(tmp_path):
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    port = str(free_port())
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(index), port, str(tmp_path / f"logs{index}")],
            env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for index in range(2)
    ]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["chief"] for r in reports] == [True, False]
    for report in reports:
        assert (report["devices"], report["peak"], report["batch"], report["iterations"]) == (2, 2000.0, 32, 16)
        # every timed step holds the job's global batch of 32, however the processes split it
        assert report["samples"] == pytest.approx([32 * s for s in report["steps"]])
        assert report["tokens"] == pytest.approx([6 * s for s in report["samples"]])  # 6 tokens a sample
        # MFU: the whole job's model FLOP/s over both devices' peaks (1000 FLOP/s each)
        assert report["mfu"] == pytest.approx([t * 1e12 / 2000.0 for t in report["tflops"]])
        # per device: half the batch's forward and backward, and the update of all (replicated) parameters
        forward, backward, optimizer = report["step_flops"]
        assert report["cost_devices"] == 2
        assert report["per_device_flops"] == round((forward + backward) / 2 + optimizer)
    assert ("train", "epoch_samples_per_sec") in read_events(tmp_path / "logs0")
    assert read_events(tmp_path / "logs1") == {}  # the other worker writes nothing
