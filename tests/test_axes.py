"""The step and epoch axes of the callback's summaries, framework-free: what is on disk and the model's count."""

import pytest

from nns_callbacks.axes import KINDS, Axes, kind_of, written_steps
from nns_callbacks.summary_writer import SummaryWriters


def on_disk(**last) -> dict:
    return {kind: last.get(kind, -1) for kind in KINDS}


@pytest.mark.parametrize(
    ("written", "iterations", "restart", "steps"),
    [
        (on_disk(), 0, None, 0),  # a new log_dir, a new model
        (on_disk(), 40, None, 40),  # a trained model, a new log_dir: the axis is its iterations
        (on_disk(batch=15, cost=8), 0, None, 16),  # a fresh model in a used log_dir: after what is there
        (on_disk(batch=15, cost=8), 30, None, 30),  # the same model, trained on without a callback meanwhile
        (on_disk(batch=99, cost=0, epoch=4), 60, 60, 60),  # resumed from a checkpoint at 60: restart there
        (on_disk(batch=59, cost=0), 60, None, 60),  # the checkpoint at the last step written: carry on
        (on_disk(batch=60, cost=0), 60, None, 60),  # a window ending at the checkpoint's step: carry on
        (on_disk(batch=59, cost=60), 60, 60, 60),  # cost panels at that step already: restart, not twice
    ],
)
def test_the_first_fit_resumes_continues_or_follows_the_iterations(written, iterations, restart, steps):
    axes = Axes(written)
    assert axes.begin_fit(iterations) == restart
    assert axes.steps == steps


def test_a_restart_forgets_what_it_drops_so_that_nothing_is_written_twice():
    axes = Axes(on_disk(batch=99, cost=0, epoch=4, evaluation=120))
    axes.begin_fit(60)
    assert axes.written["batch"] == 59 and axes.written["evaluation"] == 59 and axes.written["epoch"] == 4


def test_later_fits_continue_the_axis_even_when_the_optimizer_counts_from_zero_again():
    axes = Axes(on_disk())
    axes.begin_fit(0)
    axes.begin_epoch(0, first_of_fit=True)
    assert axes.step_in_epoch(3) == 3
    axes.end_epoch(10)
    assert axes.begin_fit(0) is None  # recompiled: optimizer.iterations is 0 again
    axes.begin_epoch(0, first_of_fit=True)
    assert axes.step_in_epoch(1) == 11


def test_the_epoch_axis_continues_after_our_last_epoch():
    axes = Axes(on_disk(epoch=2))
    axes.begin_fit(0)
    axes.begin_epoch(0, first_of_fit=True)
    assert axes.epoch(0) == 3
    axes.wrote("epoch", 3)
    axes.begin_epoch(5, first_of_fit=True)  # fit(initial_epoch=5): already past what is written
    assert axes.epoch(5) == 5


def test_standalone_passes_go_where_the_axis_stands_each_after_the_last():
    axes = Axes(on_disk(batch=23))
    assert [axes.standalone("evaluation") for _ in range(2)] == [23, 24]
    assert axes.standalone("prediction") == 23


@pytest.mark.parametrize(
    ("run", "tag", "kind"),
    [("train", "epoch_loss", "epoch"), ("validation", "epoch_mfu", "epoch"), ("train", "batch_mfu", "batch"),
     ("train", "cost/params", "cost"), ("train", "nns/cost", "cost"), ("train", "nns/run", "status"),
     ("validation", "evaluation_mfu", "evaluation"), ("train", "loss", None), ("validation", "batch_mfu", None)],
)
def test_kinds_of_tags(run, tag, kind):
    assert kind_of(run, tag) == kind


def test_written_steps_read_only_our_files_and_honour_restart_markers(tmp_path):
    ours = SummaryWriters(str(tmp_path))
    ours.open()
    for step in (3, 7, 11):
        ours.scalar("train", "batch_mfu", 0.5, step)
    ours.scalar("train", "epoch_mfu", 0.5, 2)
    ours.restart("train", 8)  # a resumed run: 11 is orphaned
    ours.scalar("train", "batch_mfu", 0.5, 9)
    ours.close()
    # a foreign file with far later steps (another writer's epoch_* at the largest step an event holds)
    foreign = SummaryWriters(str(tmp_path / "other"))
    foreign.scalar("train", "epoch_loss", 1.0, 2**63 - 1)
    foreign.close()
    (tmp_path / "train").joinpath((tmp_path / "other" / "train").iterdir().__next__().name[:-4]).write_bytes(
        next((tmp_path / "other" / "train").iterdir()).read_bytes()
    )
    folders = {"train": str(tmp_path / "train"), "validation": str(tmp_path / "validation")}
    assert written_steps(folders, ".nns") == on_disk(batch=9, epoch=2)
