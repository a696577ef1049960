"""The nns plugin's pieces that need no server: run pairing, tags, the strict JSON document."""

import json
import math

import keras
import pytest

from nns_callbacks import estimate, panels
from nns_callbacks.hardware import Peak
from nns_callbacks.panels import cost_document
from nns_callbacks.tensorboard_plugin import metadata, plugin


@pytest.mark.parametrize(
    ("run", "validation"),
    [("train", "validation"), ("quickstart/train", "quickstart/validation"), ("a/b/train", "a/b/validation"),
     ("validation", None), ("train_old", None), ("a/train/x", None)],
)
def test_sibling_validation_run(run, validation):
    assert plugin.sibling_validation_run(run) == validation


def test_throughput_tags_are_the_callbacks():
    tags = plugin.throughput_tags()
    assert {"epoch_samples_per_sec", "epoch_tflops_per_sec", "epoch_mfu", "batch_mfu"} <= set(tags)
    assert {"epoch_peak_memory_bytes", "epoch_peak_memory_over_estimate"} <= set(tags)
    assert len(tags) == len(set(tags)) == 2 * len(metadata.RATE_NAMES) + len(metadata.MEMORY_NAMES)


def small_cost():
    inputs = keras.Input((8,))
    return estimate(keras.Model(inputs, keras.layers.Dense(4)(inputs)), batch_size=2)


def test_cost_document_is_strict_json_with_the_peak():
    cost = small_cost()
    peak = Peak(flops_per_sec=1e12, source="peak_flops argument", device="cpu", precision="float32", devices=1)
    document = cost_document(cost, peak)
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert document["peak"] == {"flops_per_sec": 1e12, "source": "peak_flops argument", "device": "cpu",
                                "precision": "float32", "devices": 1}
    assert {key: document[key] for key in cost.to_dict()} == json.loads(cost.to_json())
    assert cost_document(cost)["peak"] is None


def test_non_finite_numbers_become_null():
    document = {"a": [math.inf, 1.0, "x"], "b": {"c": math.nan, "d": 2}}
    assert panels._finite(document) == {"a": [None, 1.0, "x"], "b": {"c": None, "d": 2}}


def test_summary_metadata_marks_our_tensor():
    summary = metadata.create_summary_metadata()
    assert summary.plugin_data.plugin_name == "nns"
    assert json.loads(summary.plugin_data.content) == {"version": metadata.FORMAT_VERSION}
    assert metadata.parse_document(b'{"a": 1}') == {"a": 1}
