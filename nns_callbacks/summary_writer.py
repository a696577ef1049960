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

    def image(self, run: str, tag: str, png: bytes, width: int, height: int, step: int) -> None:
        """A PNG image in the Images dashboard."""
        from tensorboard.compat.proto import summary_pb2

        image = summary_pb2.Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
        self._add(run, summary_pb2.Summary.Value(tag=tag, image=image), step)

    def custom_scalars(self, run: str, layout) -> None:
        """A Custom Scalars layout (a ``layout_pb2.Layout``)."""
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.custom_scalar import metadata
        from tensorboard.util import tensor_util

        tensor = tensor_util.make_tensor_proto(np.array(layout.SerializeToString(), dtype=object))
        value = summary_pb2.Summary.Value(
            tag=metadata.CONFIG_SUMMARY_TAG, metadata=metadata.create_summary_metadata(), tensor=tensor
        )
        self._add(run, value, 0)

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
