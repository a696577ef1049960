"""What the ``nns`` plugin's summaries look like: JSON documents in string tensors of the ``train`` run.

- ``nns/cost``: the cost model (``ModelCost.to_dict()`` fields and ``peak``);
- ``nns/run``: the run's status, written when ``fit`` starts (``"running"``) and ends (``"finished"``):
  ``{"version", "state", "cost": "ok" | "missing", "cost_error", "writer": {"host", "pid", "id"}, "backend"}``.
"""

from __future__ import annotations

import json

PLUGIN_NAME = "nns"
COST_TAG = "nns/cost"
"""Tag of the cost document in a run (the ``train`` run of the callback's ``log_dir``)."""
STATUS_TAG = "nns/run"
"""Tag of the run-status document in the same run: state (running, finished), the cost's fate, the writer,
the work behind FLOP/s, MFU and HFU.  Its step counts its writes."""
FORMAT_VERSION = 1
LOCK_NAME = ".nns-writer.lock"
"""The lock file a writer holds (``fcntl.flock``, exclusive) in ``log_dir``, the parent folder of ``train/``,
while it writes; the N-th writer on one ``log_dir`` holds ``.nns-writer-N.lock`` and writes under
``log_dir/writer-N/``."""


def create_summary_metadata(display_name: str = "cost model", description: str | None = None):
    """``SummaryMetadata`` that marks a string tensor as one of our JSON documents (its ``content``: the
    format version)."""
    from tensorboard.compat.proto import summary_pb2

    content = json.dumps({"version": FORMAT_VERSION}).encode("utf-8")
    return summary_pb2.SummaryMetadata(
        display_name=display_name,
        summary_description=description or "nns_callbacks: the model's per-layer costs (JSON)",
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=content),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def parse_document(value) -> dict:
    """The cost document from a tensor's bytes (or text)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return json.loads(value)


RATE_NAMES = (
    "samples_per_sec",
    "steps_per_sec",
    "tflops_per_sec",
    "mfu",
    "hfu",
    "steady_samples_per_sec",
    "startup_seconds",
    "compile_seconds",
    "tokens_per_sec",
)
"""Suffixes of the ``batch_`` / ``epoch_`` scalar tags the Cost tab reads (Keras ``logs`` keys for the first
four); a run holds those its callback measured."""
MEMORY_NAMES = ("peak_memory_bytes", "peak_memory_over_estimate")
"""Suffixes of the ``epoch_`` scalar tags of the measured device memory."""
ROOFLINE_NAMES = ("roofline_step_seconds", "roofline_fraction")
"""Suffixes of the ``epoch_`` scalar tags of the roofline: the predicted step time (s) and predicted / measured."""
