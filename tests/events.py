"""Read TensorBoard event files back: {(run, tag): [(step, value), ...]}."""

import collections
import pathlib

from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
from tensorboard.util import tensor_util


def _value(value):
    if value.HasField("image"):
        return value.image.encoded_image_string
    if value.HasField("tensor"):
        array = tensor_util.make_ndarray(value.tensor)
        item = array.item() if array.size == 1 else array
        if isinstance(item, bytes) and value.metadata.plugin_data.plugin_name == "text":
            return item.decode("utf-8")
        return item
    return value.simple_value


def read_events(log_dir) -> dict:
    """Every summary value under ``log_dir``, keyed by (run, tag), in file order."""
    found = collections.defaultdict(list)
    root = pathlib.Path(log_dir)
    for path in sorted(root.rglob("events.out.tfevents.*")):
        run = path.parent.relative_to(root).as_posix()
        for event in LegacyEventFileLoader(str(path)).Load():
            for value in event.summary.value:
                found[(run, value.tag)].append((event.step, _value(value)))
    return dict(found)


def served(log_dir) -> dict:
    """The steps of each (run, tag) as TensorBoard serves them: its own event accumulator, which drops the
    points a restart marker (``SessionLog.START``) orphans.  Every point is kept (no sampling)."""
    from tensorboard.backend.event_processing import plugin_event_accumulator as accumulator

    root = pathlib.Path(log_dir)
    runs = sorted({path.parent for path in root.rglob("events.out.tfevents.*")})
    found = {}
    for folder in runs:
        events = accumulator.EventAccumulator(str(folder), size_guidance={accumulator.TENSORS: 0})
        events.Reload()
        run = folder.relative_to(root).as_posix()
        for tag in events.Tags()["tensors"]:
            found[(run, tag)] = [event.step for event in events.Tensors(tag)]
    return found


def assert_no_duplicates(log_dir) -> None:
    """No (run, tag, step) is served twice."""
    for (run, tag), steps in served(log_dir).items():
        assert len(steps) == len(set(steps)), (run, tag, steps)
