"""The fault round's cases, under the TensorFlow backend (``tests/jax_backend/test_faults_jax.py`` runs the same
scenarios under JAX): nothing lost, nothing doubled, nothing stale."""

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from nns_callbacks import NNSCallback
from nns_callbacks.tensorboard_plugin.metadata import parse_document
from tests import fault_cases
from tests.events import assert_no_duplicates, read_events, served

# Input(8) -> Dense(16) -> Dense(1), SGD: forward per sample 2 * (8 * 16 + 16 * 1) MACs-as-FLOPs + 17 biases.
FORWARD = 2 * (8 * 16 + 16) + 17


def test_the_cost_is_estimated_again_when_layers_are_unfrozen_and_on_another_model(tmp_path):
    events, phases = fault_cases.fine_tuning_recipe(tmp_path)
    (frozen, frozen_flops, _), (unfrozen, unfrozen_flops, history), (other, _, _) = phases
    assert (frozen, unfrozen, other) == (16 + 1, 8 * 16 + 16 + 16 + 1, 8 * 32 + 32 + 32 + 1)
    # frozen base: forward, the head's weight gradient (2 x 16 + 1), no input gradient into the base; update 2 x 17
    assert frozen_flops == 32 * (FORWARD + 2 * 16 + 1) + 2 * 17
    # unfrozen: the head's input gradient (2 x 16) and the base's weight gradient (2 x 128 + 16) too
    assert unfrozen_flops == 32 * (FORWARD + 2 * 16 + 1 + 2 * 16 + 2 * 128 + 16) + 2 * 161
    # written at the step where each changed: 8 steps per fit
    assert events[("train", "cost/trainable_params")] == [(0, 17.0), (8, 161.0), (16, 321.0)]
    # the second phase's FLOP/s use its own cost: 4 steps of 32 in 4 s (its second epoch, which compiles nothing)
    assert history["tflops_per_sec"][1] == pytest.approx(unfrozen_flops * 4 / 4 / 1e12)


def test_windows_and_epochs_count_what_each_batch_really_held(tmp_path):
    events, history, sizes = fault_cases.varying_batches(tmp_path)
    # windows of 2 steps from the first step's end: steps 1 -> 3 held 7 + 50, 3 -> 5 held 1 + 32, ... in 2 s each
    steps = [step for step, _ in events[("train", "batch_samples_per_sec")]]
    expected = [(sizes[(s - 2) % 8] + sizes[(s - 1) % 8]) / 2 for s in steps]
    assert [value for _, value in events[("train", "batch_samples_per_sec")]] == pytest.approx(expected)
    assert steps == [3, 5, 7, 11, 13, 15]
    assert history["samples_per_sec"] == pytest.approx([sum(sizes) / len(sizes)] * 2)  # 180 samples in 8 s


def test_a_run_that_cannot_be_written_never_stops_the_other_and_says_where_and_why(tmp_path):
    events, history, messages = fault_cases.unwritable_validation(tmp_path)
    assert [step for step, _ in events[("train", "epoch_samples_per_sec")]] == [0, 1, 2]
    assert len({len(values) for values in history.values()}) == 1  # every key in every epoch
    failures = [m for m in messages if "could not write 'validation'" in m]
    assert len(failures) == 1 and str(tmp_path / "validation") in failures[0]
    assert "Not a directory" in failures[0] or "File exists" in failures[0]


def test_a_second_writer_on_the_same_log_dir_writes_apart_and_is_told(tmp_path):
    steps, messages = fault_cases.two_callbacks_one_log_dir(tmp_path)
    assert ("train", "batch_samples_per_sec") in steps and ("writer-2/train", "batch_samples_per_sec") in steps
    assert steps[("train", "batch_samples_per_sec")] == steps[("writer-2/train", "batch_samples_per_sec")]
    assert sum("another writer is writing to" in m for m in messages) == 1
    assert_no_duplicates(tmp_path)


def test_a_writer_in_another_process_is_detected(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from nns_callbacks.summary_writer import WriterLock
            lock = WriterLock({str(tmp_path)!r})
            lock.claim()
            print("held", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.warns(UserWarning, match="another writer"):
            fault_cases.fit(fault_cases.stack(False), tmp_path, *fault_cases.data(64), batch_size=32)
        assert ("writer-2/train", "epoch_samples_per_sec") in read_events(tmp_path)
    finally:
        holder.communicate("\n", timeout=30)


def test_a_fit_ended_by_an_exception_ends_the_callbacks_fit(tmp_path):
    events = fault_cases.aborted_fit_then_evaluate(tmp_path)
    assert [step for step, _ in events[("train", "batch_samples_per_sec")]] == [2, 3, 4]  # the aborted epoch's
    assert ("validation", "evaluation_samples_per_sec") in events  # the evaluate after it is written


def test_other_writers_tags_never_move_or_break_our_axes(tmp_path):
    events, history = fault_cases.foreign_tags_then_fit(tmp_path)
    ours = [step for step, _ in events[("train", "epoch_samples_per_sec")]]
    assert ours == [0, 1] and history["samples_per_sec"] == [32.0, 32.0]


def test_a_run_resumed_from_a_checkpoint_restarts_its_axis_there(tmp_path):
    steps, events, resumed_at = fault_cases.resumed_after_a_crash(tmp_path / "logs", str(tmp_path / "model.keras"))
    assert resumed_at == 4
    windows = steps[("train", "batch_samples_per_sec")]
    # first process: windows at 3 (epoch 0), 7, 11 (epochs 1, 2); the resumed one restarts at step 4: 7, 11 again
    assert windows == [3, 7, 11]
    assert_no_duplicates(tmp_path / "logs")
    restarts = [step for (run, tag), points in events.items() for step, _ in points if tag == "batch_samples_per_sec"]
    assert restarts.count(7) == 2  # written twice on disk, served once


def test_fit_with_no_epochs_writes_nothing_and_moves_no_axis(tmp_path):
    empty, events = fault_cases.empty_fits_then_a_fit(tmp_path)
    assert empty == {}
    assert [step for step, _ in events[("train", "batch_samples_per_sec")]] == [2]
    assert [step for step, _ in events[("train", "cost/params")]] == [0]


def test_epoch_rates_follow_the_wall_clock_with_start_up_and_compilation_apart(tmp_path):
    events, history, _ = fault_cases.slow_epoch_starts(tmp_path)
    # 10 steps of 32 a second after a 5 s start: the first epoch's start-up is its compilation (taken out),
    # the others' start-up is a data iterator starting, which the wall clock sees: 320 samples in 15 s
    assert history["samples_per_sec"] == pytest.approx([32.0, 320 / 15, 320 / 15])
    assert [v for _, v in events[("train", "epoch_compile_seconds")]] == pytest.approx([5.0, 0.0, 0.0])
    assert [v for _, v in events[("train", "epoch_startup_seconds")]] == pytest.approx([5.0, 5.0, 5.0])
    assert [v for _, v in events[("train", "epoch_steady_samples_per_sec")]] == pytest.approx([32.0] * 3)
    assert history["val_samples_per_sec"] == pytest.approx([64.0] * 3)  # 64 samples in 2 steps of 0.5 s


def test_the_run_status_says_running_then_finished(tmp_path):
    fault_cases.fit(fault_cases.stack(False), tmp_path, *fault_cases.data(64), batch_size=32, epochs=2)
    documents = [parse_document(doc) for _, doc in read_events(tmp_path)[("train", "nns/run")]]
    assert [d["state"] for d in documents] == ["running", "finished"]
    assert documents[0]["cost"] == "ok" and documents[0]["work"]["model_source"].startswith("the estimate")


def test_an_event_file_that_is_a_fifo_is_skipped_not_waited_on(tmp_path):
    (tmp_path / "train").mkdir()
    os.mkfifo(tmp_path / "train" / "events.out.tfevents.1.host.1.0.nns")
    finished = []
    worker = threading.Thread(
        target=lambda: finished.append(fault_cases.fit(fault_cases.stack(False), tmp_path, *fault_cases.data(64),
                                                       batch_size=32)),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=120)
    assert finished, "on_train_begin waited on a FIFO"


def test_log_dir_subfolders_that_cannot_be_written_are_an_error_at_construction(tmp_path):
    (tmp_path / "train").write_text("a file where the run's folder goes")
    with pytest.raises(ValueError, match="train.*not a folder"):
        NNSCallback(log_dir=str(tmp_path))


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs mounted at ``tmp_path/disk``; skipped where this machine cannot mount one."""
    disk = tmp_path / "disk"
    disk.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_loses_nothing_once_space_is_back(small_disk):
    log_dir = small_disk / "logs"
    filler = small_disk / "filler"
    x, y = fault_cases.data(64 * 32)  # 64 steps an epoch, a window each: more than a page of events

    class Disk(fault_cases.keras.callbacks.Callback):
        """Fills the disk before epoch 1 and frees it before epoch 3."""

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
                try:
                    while os.write(descriptor, b"\0" * 4096):
                        pass
                except OSError:
                    pass
                finally:
                    os.close(descriptor)
            if epoch == 3 and filler.exists():
                filler.unlink()

    with pytest.warns(UserWarning, match=r"could not write 'train' summaries to .*No space left on device"):
        fault_cases.fit(fault_cases.stack(False), log_dir, x, y, batch_size=32, epochs=5, callbacks=[Disk()],
                        update_freq=1)
    events = read_events(log_dir)
    assert [step for step, _ in events[("train", "epoch_samples_per_sec")]] == [0, 1, 2, 3, 4]
    assert [step for step, _ in events[("train", "batch_samples_per_sec")]] == [
        epoch * 64 + step for epoch in range(5) for step in range(2, 65)]
    assert_no_duplicates(log_dir)
    assert served(log_dir)[("train", "epoch_samples_per_sec")] == [0, 1, 2, 3, 4]
