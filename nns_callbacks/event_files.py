"""TensorBoard event files, written and read without TensorFlow.

An event file is a sequence of records in TensorFlow's format: the length of the
data (uint64, little-endian), the masked CRC-32C of those 8 bytes, the data (one
serialized ``Event`` proto) and the masked CRC-32C of the data.  TensorBoard's own
``EventFileWriter`` and loader reach TensorFlow through ``tensorboard.compat.tf``
(2-3 s to import where it is installed); this module uses only TensorBoard's protos
and its pure-Python checksum, and leaves TensorBoard's behaviour alone.
"""

from __future__ import annotations

import itertools
import os
import socket
import stat
import struct
import time
from collections.abc import Iterator

FILE_VERSION = "brain.Event:2"
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_NAMES = itertools.count()


def _masked_crc32c(data: bytes) -> int:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    return masked_crc32c(data)


def record(data: bytes) -> bytes:
    """One record: length, its masked CRC-32C, the data, the data's masked CRC-32C."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked_crc32c(length)) + data + _FOOTER.pack(_masked_crc32c(data))


def file_name(suffix: str = "") -> str:
    """``events.out.tfevents.<time>.<host>.<pid>.<n><suffix>``, the name TensorBoard looks for."""
    return f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_NAMES)}{suffix}"


def is_regular_file(path: str) -> bool:
    """Whether ``path`` is a regular file (not a FIFO or a device, which a read could block on)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def read_records(path: str) -> Iterator[bytes]:
    """The data of each complete record of an event file; a torn last record ends the file.

    Only regular files are opened: a FIFO or a device named like an event file is skipped.
    """
    if not is_regular_file(path):
        return
    with open(path, "rb") as handle:
        while True:
            header = handle.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            (length, _crc) = _HEADER.unpack(header)
            data = handle.read(length)
            if len(data) < length or len(handle.read(_FOOTER.size)) < _FOOTER.size:
                return
            yield data


def read_events(path: str) -> Iterator:
    """The ``Event`` protos of an event file (a record that does not parse ends the file)."""
    from tensorboard.compat.proto import event_pb2

    for data in read_records(path):
        try:
            yield event_pb2.Event.FromString(data)
        except Exception:  # noqa: BLE001  (a damaged record: what follows cannot be trusted)
            return


def version_record(wall_time: float | None = None) -> bytes:
    """The first record of every event file: its format version."""
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event(wall_time=time.time() if wall_time is None else wall_time, file_version=FILE_VERSION)
    return record(event.SerializeToString())


class EventFile:
    """One event file in ``folder``, created on the first write, appended to by ``write``.

    A write that fails (a full disk, a folder made read-only) raises ``OSError``; the file is cut back
    to its last complete record first, so the next write after the fault appends readable records.
    """

    def __init__(self, folder: str, suffix: str = ""):
        self.folder = folder
        self.suffix = suffix
        self.path: str | None = None
        self._size = 0

    def write(self, records: list[bytes]) -> None:
        """Append ``records`` (whole, or nothing readable of them) to the file."""
        if self.path is None:
            os.makedirs(self.folder, exist_ok=True)
            path = os.path.join(self.folder, file_name(self.suffix))
            self._append(path, [version_record()], create=True)
            self.path = path
        self._append(self.path, records)

    def _append(self, path: str, records: list[bytes], create: bool = False) -> None:
        data = b"".join(records)
        try:
            with open(path, "xb" if create else "ab") as handle:
                handle.write(data)
                handle.flush()
        except OSError:
            self._cut_back(path, create)
            raise
        self._size = len(data) if create else self._size + len(data)

    def _cut_back(self, path: str, created: bool) -> None:
        """Remove what a failed write left past the last complete record."""
        try:
            if created:
                os.remove(path)
            else:
                os.truncate(path, self._size)
        except OSError:
            if not created:
                self.path = None  # cannot mend it: the next write starts a new file
