"""TensorBoard event files in the layout ``keras.callbacks.TensorBoard`` uses: ``log_dir/<run>``.

Written with TensorBoard's own event writer and protos, so TensorFlow is not
needed (and not imported) to write summaries.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
import time
import weakref

import numpy as np


def check_writable(log_dir: str) -> None:
    """Create ``log_dir`` and prove a file can be written there, else raise ``ValueError``."""
    try:
        os.makedirs(log_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=log_dir, prefix=".nns_write_check"):
            pass
    except OSError as error:
        raise ValueError(f"log_dir {log_dir!r} cannot be written: {error}") from None


class SummaryWriters:
    """One lazily created event-file writer per run (``train``, ``validation``), thread-safe."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self._writers: dict = {}
        self._lock = threading.Lock()
        _OPEN.add(self)

    def _writer(self, run: str):
        with self._lock:
            writer = self._writers.get(run)
            if writer is None:
                from tensorboard.summary.writer.event_file_writer import EventFileWriter

                writer = EventFileWriter(os.path.join(self.log_dir, run), filename_suffix=".nns")
                self._writers[run] = writer
            return writer

    def _add(self, run: str, value, step: int) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(value=[value])
        self._writer(run).add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def scalar(self, run: str, tag: str, value: float, step: int) -> None:
        """A scalar in the Scalars dashboard."""
        from tensorboard.compat.proto import summary_pb2

        self._add(run, summary_pb2.Summary.Value(tag=tag, simple_value=float(value)), step)

    def text(self, run: str, tag: str, markdown: str, step: int) -> None:
        """Markdown in the Text dashboard."""
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.text import metadata
        from tensorboard.util import tensor_util

        tensor = tensor_util.make_tensor_proto(np.array(markdown.encode("utf-8"), dtype=object))
        meta = metadata.create_summary_metadata(display_name=tag, description="")
        self._add(run, summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor), step)

    def document(self, run: str, tag: str, document: dict, step: int) -> None:
        """A JSON document for the ``nns`` TensorBoard plugin (the Cost tab)."""
        import json

        from tensorboard.compat.proto import summary_pb2
        from tensorboard.util import tensor_util

        from .tensorboard_plugin import metadata

        text = json.dumps(document, allow_nan=False).encode("utf-8")
        tensor = tensor_util.make_tensor_proto(np.array(text, dtype=object))
        value = summary_pb2.Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(), tensor=tensor)
        self._add(run, value, step)

    def image(self, run: str, tag: str, png: bytes, width: int, height: int, step: int) -> None:
        """A PNG image in the Images dashboard."""
        from tensorboard.compat.proto import summary_pb2

        image = summary_pb2.Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
        self._add(run, summary_pb2.Summary.Value(tag=tag, image=image), step)

    def custom_scalars(self, run: str, layout, step: int = 0) -> None:
        """A Custom Scalars layout (a ``layout_pb2.Layout``); TensorBoard shows the latest."""
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.custom_scalar import metadata
        from tensorboard.util import tensor_util

        tensor = tensor_util.make_tensor_proto(np.array(layout.SerializeToString(), dtype=object))
        value = summary_pb2.Summary.Value(
            tag=metadata.CONFIG_SUMMARY_TAG, metadata=metadata.create_summary_metadata(), tensor=tensor
        )
        self._add(run, value, step)

    def flush(self) -> None:
        """Write everything queued so far to disk."""
        with self._lock:
            writers = list(self._writers.values())
        for writer in writers:
            writer.flush()

    def close(self) -> None:
        """Flush and close the files; a later write opens new ones."""
        with self._lock:
            writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.close()


_OPEN: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Flush what is queued when the interpreter exits (after Ctrl-C in ``fit``)."""
    for writers in list(_OPEN):
        writers.close()


def last_steps(log_dir: str) -> dict[str, int]:
    """The last step already written under ``log_dir`` for each kind of tag, -1 where none is.

    ``cost``: the cost panels (``cost/*`` in ``train``); ``batch``: the windows (``batch_*``);
    ``epoch``: ``epoch_*``; ``evaluation`` and ``prediction``: ``evaluation_*``, ``prediction_*`` in ``validation``.
    """
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    last = NO_STEPS.copy()
    for run in ("train", "validation"):
        folder = os.path.join(log_dir, run)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.startswith("events.out.tfevents."):
                continue
            try:
                events = list(LegacyEventFileLoader(os.path.join(folder, name)).Load())
            except Exception:  # noqa: BLE001, S112  (a torn or foreign file: nothing of ours to continue)
                continue
            for event in events:
                for value in event.summary.value:
                    axis = _axis(run, value.tag)
                    if axis is not None:
                        last[axis] = max(last[axis], event.step)
    return last


NO_STEPS = {"cost": -1, "batch": -1, "epoch": -1, "evaluation": -1, "prediction": -1}


def _axis(run: str, tag: str) -> str | None:
    if tag.startswith("epoch_"):
        return "epoch"
    if run == "train" and tag.startswith("batch_"):
        return "batch"
    if run == "train" and tag.startswith("cost/"):
        return "cost"
    if run == "validation" and tag.startswith(("evaluation_", "prediction_")):
        return tag.split("_", 1)[0]
    return None
