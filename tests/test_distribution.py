"""Per-device figures for data parallelism planned over N devices, tf.distribute, tokens, and the attention kernel.

Model parallelism and Keras's DataParallel against XLA run on eight virtual devices: tests/jax_devices.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import keras_hub
import numpy as np
import pytest

from nns_callbacks import NNSCallback, estimate, max_batch_size
from nns_callbacks.cli import main
from nns_callbacks.mesh import placement
from tests.events import read_events


def mlp():
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])


@pytest.mark.parametrize("distribution", [None, 1])
def test_one_device_has_no_placement(distribution):
    assert placement(distribution) is None


def test_a_number_of_devices_is_data_parallel():
    placed = placement(4)
    assert (placed.mesh.shape, placed.mesh.batch_axis, placed.mesh.devices) == ({"batch": 4}, "batch", 4)
    assert placed.variable_axes(keras.Variable(np.zeros((3, 5)))) == ((), ())


@pytest.mark.parametrize("wrong", ["everywhere", 0, -2, True, 2.5, object()])
def test_a_wrong_distribution_is_a_value_error(wrong):
    with pytest.raises(ValueError, match="distribution must be"):
        estimate(mlp(), batch_size=8, distribution=wrong)


@pytest.mark.parametrize("devices", [2, 4, 8])
def test_data_parallel_planning_splits_the_batch_and_replicates_the_state(devices):
    model = mlp()
    whole = estimate(model, batch_size=32, optimizer="adam", distribution=None)
    cost = estimate(model, batch_size=32, optimizer="adam", distribution=devices)
    assert (cost.devices, cost.mesh_shape) == (devices, {"batch": devices})
    for name in ("weight_bytes", "gradient_bytes", "optimizer_bytes"):
        assert getattr(cost, f"per_device_{name}") == getattr(whole, name)  # replicated
    assert cost.per_device_activation_bytes == whole.activation_bytes // devices
    assert cost.per_device.gradient_buffer_bytes == whole.gradient_bytes  # the all-reduce's buffer
    assert cost.per_device_training_bytes == (whole.weight_bytes + 2 * whole.gradient_bytes + whole.optimizer_bytes
                                              + whole.activation_bytes // devices)
    assert cost.per_device_training_flops == (whole.forward_flops + whole.backward_flops) // devices \
        + whole.optimizer_flops
    # a ring all-reduce of the gradients: 2 (n - 1) / n of their bytes sent by each device
    assert cost.per_device_communication_bytes == round(2 * (devices - 1) / devices * whole.gradient_bytes)


def test_one_device_figures_are_the_whole_ones():
    cost = estimate(mlp(), batch_size=8, optimizer="adam")
    assert (cost.devices, cost.per_device, cost.mesh_shape) == (1, None, {})
    assert cost.per_device_training_bytes == cost.training_bytes
    assert cost.per_device_communication_bytes == 0
    assert "devices" not in cost.to_dict()


def test_max_batch_size_per_device_is_a_multiple_of_the_devices():
    model = mlp()

    def per_device(batch):
        return estimate(model, batch_size=batch, optimizer="adam", distribution=4).per_device_training_bytes

    budget = per_device(40) + (per_device(44) - per_device(40)) // 2
    fits = max_batch_size(model, budget, optimizer="adam", distribution=4)
    assert fits == 40
    assert per_device(fits) <= budget < per_device(fits + 4)


def test_nns_summary_plans_devices(capsys):
    assert main(["MobileNetV2", "--batch-size", "16", "--devices", "4", "--format", "json", "--optimizer", "adam",
                 "--fit-memory", "1GiB"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["devices"], report["mesh_shape"]) == (4, {"batch": 4})
    assert report["per_device"]["activation_bytes"] == report["activation_bytes"] // 4
    assert report["max_batch_size"] % 4 == 0


MIRRORED = textwrap.dedent(
    """
    import json, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from nns_callbacks import NNSCallback, estimate
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32), keras.layers.Dense(4)])
        model.compile("adam", "mse")
    whole = estimate(model, batch_size=32, distribution=None)
    cost = estimate(model, batch_size=32)
    callback = NNSCallback(log_dir=None, peak_flops=1e9)
    model.fit(np.ones((64, 16), "float32"), np.ones((64, 4), "float32"), batch_size=32, epochs=1, verbose=0,
              callbacks=[callback])
    print(json.dumps({"devices": cost.devices, "mesh": cost.mesh_shape, "activations": cost.per_device_activation_bytes,
                      "whole_activations": whole.activation_bytes, "callback_devices": callback.cost.devices,
                      "peak_devices": callback.peak.devices}))
    """
)


def test_mirrored_strategy_over_two_logical_devices():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", MIRRORED], env=env, capture_output=True, text=True, timeout=300,
                          check=False, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["devices"], report["mesh"]) == (2, {"batch": 2})
    assert report["activations"] == report["whole_activations"] // 2
    assert (report["callback_devices"], report["peak_devices"]) == (2, 2)


def token_model(seq=12):
    inputs = keras.Input((seq,), dtype="int32")
    hidden = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(100, 16)(inputs))
    return keras.Model(inputs, keras.layers.Dense(3)(hidden))


def test_a_token_model_has_flops_per_token():
    cost = estimate(token_model(12), batch_size=8)
    assert cost.tokens_per_sample == 12
    assert cost.forward_flops_per_token == cost.forward_flops / (8 * 12)
    assert cost.training_flops_per_token == cost.training_flops / (8 * 12)
    assert cost.to_dict()["training_flops_per_token"] == cost.training_flops_per_token


def test_an_image_model_has_no_tokens():
    cost = estimate(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)]), batch_size=2)
    assert cost.tokens_per_sample is None and cost.forward_flops_per_token is None
    assert "tokens_per_sample" not in cost.to_dict()


def test_tokens_per_sec_is_samples_per_sec_times_the_sequence(tmp_path):
    model = token_model(12)
    model.compile("sgd", "mse")
    history = model.fit(np.ones((64, 12), "int32"), np.ones((64, 3), "float32"), batch_size=16, epochs=2, verbose=0,
                        callbacks=[NNSCallback(log_dir=str(tmp_path), peak_flops=1e12)])
    assert history.history["tokens_per_sec"] == pytest.approx([12 * s for s in history.history["samples_per_sec"]])
    written = [value for _, value in read_events(tmp_path)[("train", "epoch_tokens_per_sec")]]
    assert written == pytest.approx(history.history["tokens_per_sec"])


LAYERS, HEADS, SEQ, BATCH = 2, 4, 64, 2


def gpt2(dropout=0.0):
    return keras_hub.models.GPT2Backbone(vocabulary_size=1000, num_layers=LAYERS, num_heads=HEADS, hidden_dim=64,
                                         intermediate_dim=128, max_sequence_length=SEQ, dropout=dropout)


def activation_bytes(model, attention):
    shapes = {"token_ids": (SEQ,), "padding_mask": (SEQ,)}
    return estimate(model, batch_size=BATCH, input_shape=shapes, attention=attention).activation_bytes


def test_fused_attention_keeps_the_log_sum_exp_instead_of_the_scores_and_softmax():
    model = gpt2()
    scores = BATCH * HEADS * SEQ * SEQ  # one layer's attention logits; the softmax has as many
    log_sum_exp = BATCH * HEADS * SEQ
    saved = LAYERS * (2 * scores - log_sum_exp) * 4  # float32
    assert activation_bytes(model, "materialized") - activation_bytes(model, "fused") == saved
    assert activation_bytes(model, "auto") == activation_bytes(model, "materialized")  # TensorFlow: materialised


def test_attention_with_dropout_is_never_fused():
    model = gpt2(dropout=0.1)  # Keras computes the scores to drop them out
    assert activation_bytes(model, "fused") == activation_bytes(model, "materialized")


def test_multi_head_attention_layer_fused():
    inputs = keras.Input((SEQ, 32))
    model = keras.Model(inputs, keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=8)(inputs, inputs))
    scores = BATCH * HEADS * SEQ * SEQ  # logits, softmax and its dropout's output, kept materialised
    fused = estimate(model, batch_size=BATCH, attention="fused").activation_bytes
    materialized = estimate(model, batch_size=BATCH, attention="materialized").activation_bytes
    assert materialized - fused == (3 * scores - BATCH * HEADS * SEQ) * 4


def test_a_wrong_attention_kernel_is_a_value_error():
    with pytest.raises(ValueError, match="attention must be one of"):
        estimate(mlp(), attention="flash")
