"""The writing thread of ``SummaryWriters``: what flushes hand it reaches disk in order, after failures too, and
a thread that ended when idle is started again."""

import errno
import pathlib
import subprocess
import sys
import time

import pytest

from nns_callbacks import event_files, summary_writer
from nns_callbacks.summary_writer import SummaryWriters
from tests.events import read_events


@pytest.fixture
def full_disk(monkeypatch):
    """A switch: while ``full[0]`` is True, every event file write fails with ENOSPC."""
    full = [False]
    write = event_files.EventFile.write

    def failing(self, records):
        if full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, records)

    monkeypatch.setattr(event_files.EventFile, "write", failing)
    return full


def test_summaries_that_failed_twice_in_a_row_are_written_in_their_order(tmp_path, full_disk):
    writers = SummaryWriters(str(tmp_path))
    writers.open()
    full_disk[0] = True
    for step in (0, 1):  # two hand-overs before the thread writes either: both fail
        writers.scalar("train", "epoch_mfu", 0.5, step)
        writers.flush()
    writers.wait()
    full_disk[0] = False
    writers.scalar("train", "epoch_mfu", 0.5, 2)
    with pytest.warns(UserWarning, match="No space left on device"):
        writers.close()
    assert [step for step, _ in read_events(tmp_path)[("train", "epoch_mfu")]] == [0, 1, 2]


def test_a_writing_thread_that_ended_when_idle_is_started_again(tmp_path, monkeypatch):
    monkeypatch.setattr(summary_writer, "QUIET_SECONDS", 0.0)
    monkeypatch.setattr(summary_writer, "WRITE_INTERVAL", 0.01)
    writers = SummaryWriters(str(tmp_path))
    writers.open()
    first = writers._thread
    first.join(timeout=5)  # nothing handed over: it ends
    assert not first.is_alive() and writers._thread is None
    writers.scalar("train", "epoch_mfu", 0.5, 0)
    writers.flush()
    writers.close()
    assert [step for step, _ in read_events(tmp_path)[("train", "epoch_mfu")]] == [0]


def test_only_an_urgent_flush_wakes_the_writing_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(summary_writer, "WRITE_INTERVAL", 60.0)  # left alone, the thread looks in a minute
    writers = SummaryWriters(str(tmp_path))
    writers.open()
    writers.scalar("train", "epoch_mfu", 0.5, 0)
    writers.flush()
    time.sleep(0.3)
    assert read_events(tmp_path) == {}  # handed over, not written: the hook woke nothing
    writers.flush(urgent=True)
    deadline = time.monotonic() + 10
    while ("train", "epoch_mfu") not in read_events(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert read_events(tmp_path)[("train", "epoch_mfu")] == [(0, 0.5)]
    writers.close()


def test_queued_summaries_reach_disk_without_a_flush(tmp_path, monkeypatch):
    monkeypatch.setattr(summary_writer, "WRITE_INTERVAL", 0.01)
    writers = SummaryWriters(str(tmp_path))
    writers.open()
    writers.scalar("train", "epoch_mfu", 0.5, 0)
    deadline = time.monotonic() + 10
    while ("train", "epoch_mfu") not in read_events(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ("train", "epoch_mfu") in read_events(tmp_path)  # the thread took it: no hook handed it over
    writers.close()


def test_what_is_queued_when_the_process_exits_is_written(tmp_path):
    script = (f"from nns_callbacks.summary_writer import SummaryWriters\n"
              f"writers = SummaryWriters({str(tmp_path)!r})\n"
              f"writers.open()\n"
              f"writers.scalar('train', 'epoch_mfu', 0.5, 3)\n")  # no close: the exit handler writes it
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300,
                          cwd=pathlib.Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    assert read_events(tmp_path)[("train", "epoch_mfu")] == [(3, 0.5)]
