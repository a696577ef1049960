"""What the ``nns`` plugin's summaries look like: one JSON document of the cost model per run."""

from __future__ import annotations

import json

PLUGIN_NAME = "nns"
COST_TAG = "nns/cost"
"""Tag of the cost document in a run (the ``train`` run of the callback's ``log_dir``)."""
STATUS_TAG = "nns/run"
"""Tag of the run-status document in the same run: state (running, finished), the cost's fate, the writer,
the work behind FLOP/s, MFU and HFU.  Its step counts its writes."""
FORMAT_VERSION = 1


def create_summary_metadata():
    """``SummaryMetadata`` that marks a string tensor as our cost document (its ``content``: the format version)."""
    from tensorboard.compat.proto import summary_pb2

    content = json.dumps({"version": FORMAT_VERSION}).encode("utf-8")
    return summary_pb2.SummaryMetadata(
        display_name="cost model",
        summary_description="nns_callbacks: the model's per-layer costs (JSON)",
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=content),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def parse_document(value) -> dict:
    """The cost document from a tensor's bytes (or text)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return json.loads(value)

RATE_NAMES = ("samples_per_sec", "steps_per_sec", "tflops_per_sec", "mfu", "hfu")
"""Keys in Keras ``logs`` and suffixes of the ``batch_`` / ``epoch_`` scalar tags."""
TIME_NAMES = ("steady_samples_per_sec", "startup_seconds", "compile_seconds")
"""Suffixes of the ``epoch_`` scalar tags that say where a pass's time went (TensorBoard only)."""
MEMORY_NAMES = ("peak_memory_bytes", "peak_memory_over_estimate")
"""Suffixes of the ``epoch_`` scalar tags of the measured device memory."""
