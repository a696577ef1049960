"""The nns plugin's pieces that need no server: run pairing, tags, the strict JSON document, documents that
cannot be read, and a run's state (its writer's lock, or the age of its last write)."""

import fcntl
import json
import math
import os
import re

import keras
import numpy as np
import pytest

from nns_callbacks import estimate, panels
from nns_callbacks.hardware import Peak
from nns_callbacks.panels import cost_document
from nns_callbacks.tensorboard_plugin import metadata, plugin
from tests.plugin_logs import holding_lock


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
    assert {"epoch_hfu", "epoch_steady_samples_per_sec", "epoch_startup_seconds", "epoch_compile_seconds",
            "epoch_tokens_per_sec", "batch_hfu"} <= set(tags)
    assert {"epoch_roofline_step_seconds", "epoch_roofline_fraction"} <= set(tags)
    assert len(tags) == len(set(tags)) == 2 * len(metadata.RATE_NAMES) + len(metadata.MEMORY_NAMES) + len(
        metadata.ROOFLINE_NAMES)


def small_cost():
    inputs = keras.Input((8,))
    return estimate(keras.Model(inputs, keras.layers.Dense(4)(inputs)), batch_size=2)


def test_cost_document_is_strict_json_with_the_peak():
    cost = small_cost()
    peak = Peak(flops_per_sec=1e12, source="peak_flops argument", device="cpu", precision="float32", devices=1)
    document = cost_document(cost, peak)
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert document["peak"] == {"flops_per_sec": 1e12, "source": "peak_flops argument", "device": "cpu",
                                "precision": "float32", "devices": 1, "spread": None}
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


# Documents that cannot be read: each is an error that says why, never an exception of another kind.


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (np.array(b"{not json", dtype=object), "not JSON"),
        (np.array(b"\xff\xfe{}", dtype=object), "not UTF-8 text"),
        (np.array([1.5, 2.0], np.float32), "a float32 tensor, not a JSON string"),
        (np.array(3.0), "a float64 tensor"),
        (np.array([b"{}", b"{}"], dtype=object), "a string tensor of shape [2], not one JSON string"),
        (np.array(b"[1, 2]", dtype=object), "a JSON list, not an object"),
        (np.array(b'"text"', dtype=object), "a JSON str, not an object"),
        (np.array(b'{"batch_size": 2}', dtype=object), "a JSON object without 'model'"),
        (np.array(b'{"model": "m", "layers": {"a": 1}}', dtype=object), "'layers' is not a list of objects"),
    ],
)
def test_unreadable_cost_documents(value, why):
    with pytest.raises(plugin.DocumentError, match=re.escape(why)):
        plugin.parse_cost_document(value)


def test_cost_document_with_unknown_and_missing_fields_is_read():
    document = {"model": "m", "hfu": 0.4, "mesh_shape": [2, 4], "per_device_training_bytes": 10}
    assert plugin.parse_cost_document(np.array(json.dumps(document).encode(), dtype=object)) == document
    assert plugin.parse_cost_document(np.array('{"model": "m"}', dtype=object)) == {"model": "m"}


def test_status_document_must_be_an_object():
    assert plugin.parse_status_document(np.array(b'{"state": "running"}', dtype=object)) == {"state": "running"}
    with pytest.raises(plugin.DocumentError, match="a JSON list"):
        plugin.parse_status_document(np.array(b"[]", dtype=object))


# A run's state.


def test_lock_path_of_first_and_second_writers(tmp_path):
    for folder in ("a/train", "a/writer-2/train", "train"):
        (tmp_path / folder).mkdir(parents=True)
    assert plugin.lock_path(str(tmp_path), "a/train") == str(tmp_path / "a" / ".nns-writer.lock")
    assert plugin.lock_path(str(tmp_path), "a/writer-2/train") == str(tmp_path / "a" / ".nns-writer-2.lock")
    assert plugin.lock_path(str(tmp_path), "train") == str(tmp_path / ".nns-writer.lock")
    assert plugin.lock_path(str(tmp_path), "b/train") is None  # not on this disk (a --logdir_spec name, say)
    assert plugin.lock_path("gs://bucket/logs", "a/train") is None
    assert plugin.lock_path("", "a/train") is None


def test_lock_held_absent_free_and_held(tmp_path):
    path = str(tmp_path / metadata.LOCK_NAME)
    assert plugin.lock_held(path) is False  # absent
    open(path, "w").close()
    assert plugin.lock_held(path) is False  # present, nobody holds it
    with holding_lock(str(tmp_path)):
        assert plugin.lock_held(path) is True
    assert plugin.lock_held(path) is False
    with open(path) as handle:  # the probe let its own lock go: a writer can take it
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


RUNNING = {"state": "running"}
NOW = 1_000_000.0


def test_run_state_by_document_and_lock(tmp_path):
    lock = str(tmp_path / metadata.LOCK_NAME)
    assert plugin.run_state(None, lock, NOW, NOW)["state"] == "unknown"
    assert plugin.run_state({"state": "finished"}, lock, NOW, NOW) == {
        "state": "finished", "rule": "document", "reason": "fit ended"}
    assert plugin.run_state({"state": "paused"}, lock, NOW, NOW)["state"] == "unknown"
    interrupted = plugin.run_state(RUNNING, lock, NOW, NOW)  # no lock file: the writer is gone
    assert (interrupted["state"], interrupted["rule"]) == ("interrupted", "lock")
    assert lock in interrupted["reason"]
    with holding_lock(str(tmp_path)):
        running = plugin.run_state(RUNNING, lock, NOW - 10 * plugin.STALE_AFTER_S, NOW)
    assert (running["state"], running["rule"]) == ("running", "lock")  # the lock decides, not the age


def test_run_state_by_age_where_the_lock_cannot_be_checked():
    recent = plugin.run_state(RUNNING, None, NOW - 60, NOW)
    assert (recent["state"], recent["rule"]) == ("running", "age")
    assert "60 s ago" in recent["reason"] and "not a local folder" in recent["reason"]
    stale = plugin.run_state(RUNNING, None, NOW - plugin.STALE_AFTER_S - 1, NOW)
    assert (stale["state"], stale["rule"]) == ("interrupted", "age")
    assert plugin.run_state(RUNNING, None, None, NOW)["state"] == "running"


def test_lock_rule_falls_back_to_age_without_fcntl(tmp_path, monkeypatch):
    monkeypatch.setattr(plugin, "fcntl", None)
    lock = str(tmp_path / metadata.LOCK_NAME)
    state = plugin.run_state(RUNNING, lock, NOW - plugin.STALE_AFTER_S - 1, NOW)
    assert (state["state"], state["rule"]) == ("interrupted", "age")
    assert os.path.basename(lock) in state["reason"]
