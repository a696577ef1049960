"""TensorBoard event files in the layout ``keras.callbacks.TensorBoard`` uses: ``log_dir/<run>``.

Written with TensorBoard's protos and no TensorFlow (``event_files``).  Summaries are
queued in memory (a scalar is a tuple: the hot path of a training step), taken every
``WRITE_INTERVAL`` by a thread that writes them (or at once by ``flush``), and on disk
after ``close``.  A run that cannot be written (a full disk, a folder made read-only)
keeps its queue and is tried again at the next epoch's end; it never stops the other run.
While it writes, a ``SummaryWriters`` holds an exclusive lock on
``<log_dir>/.nns-writer.lock``: a second writer on the same ``log_dir`` (another
process, another callback) takes ``.nns-writer-2.lock`` and writes its runs under
``log_dir/writer-2/``, so that no two writers ever share a (run, tag, step).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import socket
import tempfile
import threading
import time
import uuid
import weakref

import numpy as np

from . import event_files, notices
from .tensorboard_plugin import metadata

try:
    import fcntl
except ImportError:  # no advisory locks on this platform: two writers are not detected
    fcntl = None

SUFFIX = ".nns"
"""Our event files' name suffix: only our own files decide where our axes continue."""
LOCK_NAME = metadata.LOCK_NAME
WRITE_INTERVAL = 0.25
"""Seconds between the writing thread's takes of what is queued (at once when woken): a hook that queues
summaries wakes no thread, and the training loop's next steps run while the thread writes (the frameworks
release Python's lock while they compute)."""
QUIET_SECONDS = 30.0
"""The writing thread ends after this long with nothing to write; the next summary queued starts another."""
MAX_QUEUED = 200_000
"""Summaries a run keeps while it cannot be written; older ones are dropped beyond this."""


def check_writable(log_dir: str) -> None:
    """``log_dir`` and its ``train`` and ``validation`` folders (where they exist) accept files, else ``ValueError``."""
    folders = [log_dir] + [os.path.join(log_dir, run) for run in ("train", "validation")]
    for folder in folders:
        if folder != log_dir and not os.path.lexists(folder):
            continue
        if folder != log_dir and not os.path.isdir(folder):
            raise ValueError(f"log_dir {log_dir!r} cannot be written: {folder!r} exists and is not a folder")
        try:
            os.makedirs(folder, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".nns_write_check"):
                pass
        except OSError as error:
            raise ValueError(f"log_dir {log_dir!r} cannot be written: {folder!r}: {error.strerror or error}") from None


class WriterLock:
    """The exclusive lock a writer holds on ``<log_dir>/.nns-writer[-N].lock`` while it writes there."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.number: int | None = None
        self._handle = None

    @property
    def prefix(self) -> str:
        """Where this writer's runs go: ``""`` for the first writer, ``writer-N/`` for the N-th."""
        return "" if self.number in (None, 1) else f"writer-{self.number}/"

    def claim(self, preferred: int | None = None) -> int:
        """Take the first free lock (``preferred`` first); its number.  Without ``fcntl``: always 1."""
        if self._handle is not None:
            return self.number
        if fcntl is None:
            self.number = 1
            return 1
        order = ([preferred] if preferred else []) + [n for n in range(1, 65) if n != preferred]
        for number in order:
            if self._try(number) or self._try_again(number):
                self.number = number
                return number
        raise OSError(f"no free writer lock in {self.log_dir!r}")

    def _try_again(self, number: int, tries: int = 3, pause: float = 0.02) -> bool:
        """The lock once more after a moment: the Cost tab probes a lock for an instant to tell a running run
        from an interrupted one, and a writer that came at that instant is not a second writer."""
        for _ in range(tries):
            time.sleep(pause)
            if self._try(number):
                return True
        return False

    def _try(self, number: int) -> bool:
        name = LOCK_NAME if number == 1 else LOCK_NAME.replace(".lock", f"-{number}.lock")
        path = os.path.join(self.log_dir, name)
        handle = open(path, "a+")  # noqa: SIM115  (held open while the lock is held)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        marker = {"host": socket.gethostname(), "pid": os.getpid(), "id": uuid.uuid4().hex, "started": time.time()}
        handle.write(json.dumps(marker))
        handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        """Let the lock go (the marker file stays: an unlocked marker means nobody writes there now)."""
        if self._handle is not None:
            try:
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            finally:
                self._handle.close()
                self._handle = None


class Summaries:
    """The kinds of summary, each made into a protocol buffer value and handed to the subclass's ``_queue``."""

    # A scalar stays a tuple until it is written: the one kind written every few steps.
    def scalar(self, run: str, tag: str, value: float, step: int) -> None:
        """A scalar in the Scalars dashboard."""
        self._queue(run, (tag, float(value), int(step), time.time()))

    def scalars(self, run: str, prefix: str, values: dict, step: int) -> None:
        """Scalars ``prefix + name`` at one step, as one event (NaN and infinite values are left out)."""
        self._queue(run, (prefix, dict(values), int(step), time.time(), None))

    def text(self, run: str, tag: str, markdown: str, step: int) -> None:
        """Markdown in the Text dashboard."""
        from tensorboard.plugins.text import metadata

        meta = metadata.create_summary_metadata(display_name=tag, description="")
        self._queue(run, _string_value(tag, markdown.encode("utf-8"), meta), step)

    def document(self, run: str, tag: str, document: dict, metadata, step: int) -> None:
        """A JSON document (strict JSON) under a plugin's ``metadata``."""
        text = json.dumps(document, allow_nan=False).encode("utf-8")
        self._queue(run, _string_value(tag, text, metadata), step)

    def image(self, run: str, tag: str, png: bytes, width: int, height: int, step: int) -> None:
        """A PNG image in the Images dashboard."""
        from tensorboard.compat.proto import summary_pb2

        image = summary_pb2.Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
        self._queue(run, summary_pb2.Summary.Value(tag=tag, image=image), step)

    def custom_scalars(self, run: str, layout, step: int = 0) -> None:
        """A Custom Scalars layout (a ``layout_pb2.Layout``); TensorBoard shows the latest."""
        from tensorboard.plugins.custom_scalar import metadata

        value = _string_value(metadata.CONFIG_SUMMARY_TAG, layout.SerializeToString(), metadata.create_summary_metadata())
        self._queue(run, value, step)

    def restart(self, run: str, step: int) -> None:
        """Mark a restart at ``step`` (``SessionLog.START``): TensorBoard drops this run's events at ``step`` and
        later, which a resumed run writes anew.  TensorBoard takes a run's first START for the start of a
        session and acts on the ones after it, so the marker is written twice."""
        from tensorboard.compat.proto import event_pb2

        for _ in range(2):
            self._queue(run, event_pb2.SessionLog(status=event_pb2.SessionLog.START), step)



class SummaryWriters(Summaries):
    """One event file per run (``train``, ``validation``) under ``log_dir``, fed from in-memory queues."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.lock = WriterLock(log_dir)
        self._queues: dict[str, list] = {}
        self._retry: dict[str, list] = {}  # what could not be written, by run, in order
        self._files: dict[str, event_files.EventFile] = {}
        self._mutex = threading.Lock()
        self._warned: set = set()  # causes warned of since the last ``open``
        self._failures: list[tuple] = []  # (run, path, error) the writing thread met
        self._handed: list[dict] = []  # queues handed to the writing thread, oldest first
        self._unwritten = 0  # handed and not yet written (or failed)
        self._idle = threading.Condition(self._mutex)  # notified when nothing handed is left unwritten
        self._wake = threading.Event()  # wakes the writing thread before its interval is up
        self._thread: threading.Thread | None = None
        _OPEN.add(self)

    def run_folder(self, run: str) -> str:
        """The folder of ``run`` for this writer (``log_dir/train``, or ``log_dir/writer-2/train``)."""
        return os.path.join(self.log_dir, self.lock.prefix + run)

    def open(self) -> None:
        """Take this writer's place in ``log_dir`` (the same as before where it is free), warning when it is
        not the first writer there."""
        self._warned.clear()
        previous = self.lock.number
        number = self.lock.claim(preferred=previous)
        if number != 1 and number != previous:
            notices.warn(
                f"another writer is writing to {self.log_dir!r} (another process, or another NNSCallback in "
                f"this fit): this one writes to {os.path.join(self.log_dir, self.lock.prefix)!r} instead, so "
                "that no (run, tag, step) is written twice",
                cause=("second writer", self.log_dir), seen=self._warned,
            )
        _import_writing_modules()
        with self._mutex:  # the writing thread starts here, as the fit starts, not in the first epoch's hooks
            self._ensure_thread_locked()

    def _queue(self, run: str, item, step: int | None = None) -> None:
        self.queue_many([(run, item, step)])

    def queue_many(self, items) -> None:
        """Queue ``(run, item, step)`` triples (``step``: ``None`` for a scalar tuple, which carries its own)."""
        with self._mutex:
            for run, item, step in items:
                queue = self._queues.setdefault(run, [])
                queue.append(item if step is None else (item, int(step), time.time()))
                if len(queue) > MAX_QUEUED:
                    del queue[: len(queue) - MAX_QUEUED]
            if self._thread is None:
                self._start_thread_locked()

    # Writing, in a thread of its own: serializing and checksumming take a few microseconds per summary, which
    # the training loop does not wait for.  The thread takes what is queued every WRITE_INTERVAL: a hook that
    # queues summaries hands nothing over and wakes no thread.
    def flush(self, urgent: bool = False) -> None:
        """Hand every queued summary to the writing thread now, after what it could not write before
        (``urgent``: and wake it); warn, once per cause, of what it could not write (the path and the
        system's reason)."""
        with self._mutex:
            self._hand_over_locked(retry=True)
            failures, self._failures = self._failures, []
        if urgent:
            self._wake.set()
        for run, path, error in failures:
            fate = ("they are kept and tried again at the next epoch's end" if isinstance(error, OSError)
                    else "they are dropped")  # a summary that could not be made
            notices.warn(
                f"could not write {run!r} summaries to {path!r}: {getattr(error, 'strerror', None) or error!r}; "
                f"{fate}",
                cause=("write", self.run_folder(run)), seen=self._warned,
            )

    def retry_if_failed(self) -> None:
        """``flush`` where something could not be written (at an epoch's end: a full disk is tried again
        there, not every ``WRITE_INTERVAL``)."""
        if self._retry or self._failures:
            self.flush()

    def _hand_over_locked(self, retry: bool) -> None:
        """What is queued becomes a job of the writing thread (``retry``: after what could not be written)."""
        queues, self._queues = self._queues, {}
        if retry:
            for run, kept in self._retry.items():
                queues[run] = kept + queues.get(run, [])
            self._retry = {}
        if queues:
            self._handed.append(queues)
            self._unwritten += 1
            if self._thread is None:
                self._start_thread_locked()

    def _ensure_thread_locked(self) -> None:
        """The writing thread, started where it is not running (it ends when idle, and does not outlive a fork)."""
        if self._thread is None or not self._thread.is_alive():
            self._start_thread_locked()

    def _start_thread_locked(self) -> None:
        self._thread = threading.Thread(target=self._write_jobs, name="nns-summary-writer", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Until the writing thread has written (or failed to write) everything queued so far."""
        with self._mutex:
            self._hand_over_locked(retry=False)
            if not self._unwritten:
                return  # no thread started for nothing (at interpreter exit none can be)
            self._ensure_thread_locked()
            self._wake.set()
            self._idle.wait_for(lambda: not self._unwritten)

    def _write_jobs(self) -> None:
        """Take and write what is queued, every ``WRITE_INTERVAL`` or when woken; end after ``QUIET_SECONDS``
        with nothing to write."""
        quiet_since = time.monotonic()
        while True:
            self._wake.wait(WRITE_INTERVAL)
            self._wake.clear()
            with self._mutex:
                self._hand_over_locked(retry=False)
            if self._write_handed():
                quiet_since = time.monotonic()
                continue
            with self._mutex:
                if time.monotonic() - quiet_since > QUIET_SECONDS and not (self._handed or self._queues):
                    self._thread = None
                    return

    def _write_handed(self) -> bool:
        """Write every job handed over so far; whether there was any."""
        wrote = False
        while True:
            with self._mutex:
                if not self._handed:
                    return wrote
                queues = self._handed.pop(0)
            try:
                for run, items in queues.items():
                    self._write(run, items)
            finally:
                with self._mutex:
                    self._unwritten -= 1
                    if not self._unwritten:
                        self._idle.notify_all()
            wrote = True

    def _write(self, run: str, items: list) -> None:
        with self._mutex:
            if self._retry.get(run):  # an earlier job of this run failed: keep the order, retry together
                self._keep_for_retry(run, items)
                return
        file = self._file(run)
        try:
            file.write(event_files.records([_event(item) for item in items]))
        except OSError as error:
            with self._mutex:
                self._keep_for_retry(run, items)
                self._failures.append((run, file.path or self.run_folder(run), error))
        except Exception as error:  # noqa: BLE001  (a summary that cannot be made: dropped, said)
            with self._mutex:
                self._failures.append((run, file.path or self.run_folder(run), error))

    def _keep_for_retry(self, run: str, items: list) -> None:
        """Items that could not be written, in order, handed over again first at the next flush (mutex held)."""
        kept = self._retry.setdefault(run, [])
        kept.extend(items)
        if len(kept) > MAX_QUEUED:
            del kept[: len(kept) - MAX_QUEUED]

    def _file(self, run: str) -> event_files.EventFile:
        folder = self.run_folder(run)
        file = self._files.get(run)
        if file is None or file.folder != folder:
            file = self._files[run] = event_files.EventFile(folder, SUFFIX)
        return file

    def close(self) -> None:
        """Flush and wait for the writing, warn of what failed, let the writer lock go; a later write opens new
        files."""
        self.flush()
        self.wait()
        if self._failures:
            self.flush()
            self.wait()
        self._files = {}
        self.lock.release()


class Staged(Summaries):
    """Summaries made ahead (the cost panels, while ``fit`` starts: rendering them takes a while) and handed to
    a ``SummaryWriters`` by ``commit`` (at the first epoch: a fit of no epoch writes nothing)."""

    def __init__(self):
        self.items: list[tuple] = []

    def _queue(self, run: str, item, step: int | None = None) -> None:
        self.items.append((run, item, step))

    def commit(self, writers: SummaryWriters) -> None:
        writers.queue_many(self.items)
        self.items = []


def _import_writing_modules() -> None:
    """Import what writing needs now: at interpreter exit, where the summaries of an interrupted fit are written,
    modules that register exit handlers (``concurrent.futures``, which TensorBoard's imports reach) cannot be."""
    from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: F401
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow  # noqa: F401
    from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata  # noqa: F401
    from tensorboard.plugins.text import metadata as text_metadata  # noqa: F401
    from tensorboard.util import tensor_util  # noqa: F401


def _string_value(tag: str, data: bytes, metadata):
    """A summary value holding one string tensor (text, a JSON document, a layout)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.util import tensor_util

    tensor = tensor_util.make_tensor_proto(np.array(data, dtype=object))
    return summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor)


def _event(item) -> bytes:
    """The serialized event of a queued summary: a scalar tuple, scalars at one step (prefix, values, step, wall
    time, None), or (value or session log, step, wall time)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    if len(item) == 4:
        tag, value, step, wall_time = item
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        event = event_pb2.Event(wall_time=wall_time, step=step, summary=summary)
    elif len(item) == 5:
        prefix, values, step, wall_time, _ = item
        summary = summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag=prefix + name, simple_value=float(value))
            for name, value in values.items() if value is not None and math.isfinite(value)
        ])
        event = event_pb2.Event(wall_time=wall_time, step=step, summary=summary)
    else:
        value, step, wall_time = item
        if isinstance(value, event_pb2.SessionLog):
            event = event_pb2.Event(wall_time=wall_time, step=step, session_log=value)
        else:
            event = event_pb2.Event(wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=[value]))
    return event.SerializeToString()


_OPEN: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Write what is queued when the interpreter exits (after Ctrl-C in ``fit``, or a fit that raised)."""
    for writers in list(_OPEN):
        try:
            writers.close()
        except Exception:  # noqa: BLE001, S110  (nothing can be done at exit)
            pass
