"""The fault round's cases under the JAX backend: the scenarios of ``tests/fault_cases.py``, asserted as under
TensorFlow (``tests/test_faults.py``), with the batch-end hooks in worker threads (asynchronous dispatch)."""

import subprocess
import sys
import textwrap

import pytest

from nns_callbacks import event_files
from tests import fault_cases, test_faults
from tests.events import assert_no_duplicates

# The scenarios whose assertions hold as they are under JAX.
SHARED = [
    "test_the_cost_is_estimated_again_when_layers_are_unfrozen_and_on_another_model",
    "test_a_run_that_cannot_be_written_never_stops_the_other_and_says_where_and_why",
    "test_other_writers_tags_never_move_or_break_our_axes",
    "test_the_run_status_says_running_then_finished",
    "test_an_event_file_that_is_a_fifo_is_skipped_not_waited_on",
]


@pytest.mark.parametrize("name", SHARED)
def test_shared_fault_case(name, tmp_path):
    getattr(test_faults, name)(tmp_path)


def test_a_second_writer_on_the_same_log_dir_writes_apart_and_is_told(tmp_path):
    steps, messages = fault_cases.two_callbacks_one_log_dir(tmp_path)
    assert {("train", "epoch_samples_per_sec"), ("writer-2/train", "epoch_samples_per_sec")} <= set(steps)
    assert sum("another writer is writing to" in m for m in messages) == 1
    assert_no_duplicates(tmp_path)


def test_a_run_resumed_from_a_checkpoint_restarts_its_axis_there(tmp_path):
    _, _, resumed_at = fault_cases.resumed_after_a_crash(tmp_path / "logs", str(tmp_path / "model.keras"))
    assert resumed_at == 4
    assert_no_duplicates(tmp_path / "logs")  # the crashed process's windows after step 4 are dropped
    starts = [event.step for path in (tmp_path / "logs" / "train").iterdir() for event in event_files.read_events(str(path))
              if event.HasField("session_log")]
    assert starts == [4, 4]  # the restart, marked where the resumed run starts again


def test_fit_with_no_epochs_writes_nothing_and_moves_no_axis(tmp_path):
    empty, events = fault_cases.empty_fits_then_a_fit(tmp_path)
    assert empty == {}
    assert [step for step, _ in events[("train", "cost/params")]] == [0]
    assert [step for step, _ in events[("train", "epoch_samples_per_sec")]] == [0]


def test_windows_count_what_each_batch_held_however_the_hooks_interleave(tmp_path):
    events, history, sizes = fault_cases.varying_batches(tmp_path)
    # the epochs after the first (whose compilation is told apart by the first step's hook, which a worker thread
    # may run late on a fake clock) are timed from their begin to their end: exact whatever order hooks run in
    assert history["samples_per_sec"][1:] == pytest.approx([sum(sizes) / len(sizes)])
    # each window's samples are what its steps held (the hooks may close it a step later or earlier)
    steps = [step for step, _ in events[("train", "batch_steps_per_sec")]]
    assert len(steps) >= 4 and len(steps) == len(set(steps))


def test_a_fit_ended_by_an_exception_ends_the_callbacks_fit(tmp_path):
    events = fault_cases.aborted_fit_then_evaluate(tmp_path)
    assert ("train", "batch_samples_per_sec") in events
    assert ("validation", "evaluation_samples_per_sec") in events


def test_epoch_rates_follow_the_wall_clock_without_a_sync_per_step(tmp_path):
    _, history, syncs = fault_cases.slow_epoch_starts(tmp_path)
    # epochs after the first, which compiles, from their begin to their last step: 320 samples in 15 s
    assert history["samples_per_sec"][1:] == pytest.approx([320 / 15] * 2)
    assert history["val_samples_per_sec"][1:] == pytest.approx([64.0] * 2)
    # 10 steps an epoch: a callback that synchronised every step would sync 30 times or more
    assert len(syncs) <= 4 * 3
    assert_no_duplicates(tmp_path)


def test_writing_summaries_imports_no_tensorflow(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, keras
        from nns_callbacks import NNSCallback
        inputs = keras.Input((8,))
        model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
        model.compile("sgd", "mse")
        x = np.ones((64, 8), "float32")
        model.fit(x, x[:, :4], batch_size=32, epochs=2, verbose=0,
                  callbacks=[NNSCallback(log_dir={str(tmp_path)!r}, update_freq=1, peak_flops=1e12)])
        print("tensorflow" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr[-3000:]
    assert (tmp_path / "train").is_dir()
