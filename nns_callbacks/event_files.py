"""TensorBoard event files, written and read without TensorFlow.

An event file is a sequence of records in TensorFlow's format: the length of the
data (uint64, little-endian), the masked CRC-32C of those 8 bytes, the data (one
serialized ``Event`` proto) and the masked CRC-32C of the data.  TensorBoard's own
``EventFileWriter`` and loader reach TensorFlow through ``tensorboard.compat.tf``
(2-3 s to import where it is installed); this module uses only TensorBoard's protos
and its pure-Python checksum, and leaves TensorBoard's behaviour alone.
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
import stat
import struct
import time
from collections.abc import Iterator

import numpy as np

FILE_VERSION = "brain.Event:2"
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_NAMES = itertools.count()


def _masked_crc32c(data: bytes) -> int:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    return masked_crc32c(data)


def record(data: bytes) -> bytes:
    """One record: length, its masked CRC-32C, the data, the data's masked CRC-32C."""
    return records([data])[0]


_LARGE = 1 << 14
"""Data of this many bytes or more is checksummed alone (a cost document), the rest together."""


def records(datas: list[bytes]) -> list[bytes]:
    """The records of ``datas``; the small ones checksummed all at once (``crc32c_together``), which keeps a
    window's summaries written every step to a few microseconds each."""
    small = [i for i, data in enumerate(datas) if len(data) < _LARGE]
    sums = dict(zip(small, crc32c_together([datas[i] for i in small])))
    made = []
    for i, data in enumerate(datas):
        length = struct.pack("<Q", len(data))
        footer = _mask(sums[i]) if i in sums else _masked_crc32c(data)
        made.append(length + struct.pack("<I", _length_crc(len(data))) + data + _FOOTER.pack(footer))
    return made


@functools.lru_cache(maxsize=4096)
def _length_crc(length: int) -> int:
    return _masked_crc32c(struct.pack("<Q", length))


def _mask(crc: int) -> int:
    """TensorFlow's masking of a CRC-32C: rotated right by 15 bits, plus a constant (mod 2**32)."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def crc32c_together(datas: list[bytes]) -> list[int]:
    """The CRC-32C (Castagnoli) of each of ``datas``, computed a byte position at a time for all of them with
    numpy (the pure-Python checksum takes about 0.35 us a byte)."""
    if not datas:
        return []
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import CRC_TABLE

    table = np.array(CRC_TABLE, dtype=np.uint32)
    lengths = np.array([len(data) for data in datas])
    buffer = np.zeros((len(datas), int(lengths.max())), dtype=np.uint32)
    for row, data in enumerate(datas):
        buffer[row, :len(data)] = np.frombuffer(data, dtype=np.uint8)
    crc = np.full(len(datas), 0xFFFFFFFF, dtype=np.uint32)
    for column in range(buffer.shape[1]):
        updated = table[(crc ^ buffer[:, column]) & 0xFF] ^ (crc >> 8)
        crc = np.where(lengths > column, updated, crc)
    return [int(value) ^ 0xFFFFFFFF for value in crc]


def file_name(suffix: str = "") -> str:
    """``events.out.tfevents.<time>.<host>.<pid>.<n><suffix>``, the name TensorBoard looks for."""
    return f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_NAMES):06d}{suffix}"


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
