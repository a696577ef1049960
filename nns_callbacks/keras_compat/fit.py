"""Keras internals about the running ``fit``, ``evaluate`` or ``predict``, which Keras does not pass to callbacks:
its data, its callback list, its step counts."""

from __future__ import annotations

import inspect
import sys

import keras

_HOOKS_GET_LAST_STEP = tuple(int(part) for part in keras.version().split(".")[:2]) >= (3, 11)


def steps_done(batch: int, steps_per_execution: int) -> int:
    """Steps of the pass done when a batch-end hook gets index ``batch``.

    Keras 3.11 and later pass the last step of the execution that just ran,
    earlier releases its first (so a hook after steps 3 and 4 said 2).
    """
    return batch + 1 if _HOOKS_GET_LAST_STEP else batch + steps_per_execution


def batch_hooks_may_overlap() -> bool:
    """Whether Keras may run an async-safe callback's batch-end hooks in worker threads, out of order.

    Internal: ``keras.src.backend.IS_THREAD_SAFE``, which ``CallbackList`` reads to dispatch batch hooks
    to a thread pool (True on JAX, torch and NumPy; False on TensorFlow, whose hooks run in step order).
    Public alternative: none.  Where the flag is missing, hooks are taken to overlap.
    """
    from keras.src import backend

    return bool(getattr(backend, "IS_THREAD_SAFE", True))


def running_loop_local(name: str, wanted):
    """The local ``name`` of the running ``fit`` / ``evaluate`` / ``predict`` (its data iterator, callback list).

    Internal: Keras passes neither to callbacks, so the calling frames are searched.
    Public alternative: none (``params["steps"]`` is the number of batches, not their size).
    ``None`` where it is not found (a custom training loop, a renamed local).
    """
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get(name)
        if candidate is not None and wanted(candidate):
            return candidate
        frame = frame.f_back
    return None


def running_frame_of(function):
    """The innermost running frame of ``function`` in this thread (e.g. the trainer's ``fit``), or ``None``.

    Decorators are looked through (Keras wraps ``fit`` in a traceback filter shared by its other methods)."""
    try:
        function = inspect.unwrap(getattr(function, "__func__", function))
    except (TypeError, ValueError):
        return None
    code = getattr(function, "__code__", None)
    frame = sys._getframe(1)
    while frame is not None and code is not None:
        if frame.f_code is code:
            return frame
        frame = frame.f_back
    return None


def watch_batches(adapter, on_batch, on_restart) -> bool:
    """Call ``on_batch(batch)`` for each batch a generator's or a ``PyDataset``'s adapter produces, and
    ``on_restart()`` when it starts a new iterator; whether ``adapter`` is of a kind that can be watched.

    Internal: ``GeneratorDataAdapter.generator`` (the function that starts an iterator over the user's
    generator, looked up at each epoch on every backend) and ``PyDatasetAdapter._standardize_batch``
    (called on each batch where it is consumed).  Public alternative: none; Keras hands callbacks no batch.
    """
    if getattr(adapter, "_nns_watched", None) == on_batch:
        return True
    start = getattr(adapter, "generator", None)
    if callable(start) and hasattr(adapter, "_first_batches"):

        def generator():
            _quietly(on_restart)
            for batch in start():
                _quietly(on_batch, batch)
                yield batch

        adapter.generator = generator
    elif callable(getattr(adapter, "_standardize_batch", None)) and hasattr(adapter, "py_dataset"):
        standardize, iterate = adapter._standardize_batch, adapter._get_iterator

        def standardized(batch):
            batch = standardize(batch)
            _quietly(on_batch, batch)
            return batch

        def iterator():
            _quietly(on_restart)
            return iterate()

        adapter._standardize_batch, adapter._get_iterator = standardized, iterator
    else:
        return False
    adapter._nns_watched = on_batch
    return True


def _quietly(function, *args) -> None:
    try:
        function(*args)
    except Exception:  # noqa: BLE001, S110  (counting a batch must never stop the data)
        pass


def running_data_adapter():
    """The data adapter of the running ``fit`` / ``evaluate`` / ``predict``, or ``None``."""
    iterator = running_loop_local("epoch_iterator", lambda x: hasattr(x, "data_adapter"))
    return getattr(iterator, "data_adapter", None)


def first_batch_size(adapter) -> int | None:
    """The size of a generator's or a ``PyDataset``'s first batch, or ``None``.

    A generator adapter keeps the batches it peeked at to infer specs (internal);
    a ``PyDataset`` is indexed (its public ``__getitem__``: one batch loaded once).
    """
    batches = getattr(adapter, "_first_batches", None)
    if batches:
        first = batches[0]
    elif isinstance(getattr(adapter, "py_dataset", None), keras.utils.PyDataset):
        first = adapter.py_dataset[0]
    else:
        return None
    arrays = [x for x in keras.tree.flatten(first) if hasattr(x, "shape") and len(x.shape) > 0]
    return int(arrays[0].shape[0]) if arrays else None


def dataset_batch_size(adapter) -> int | None:
    """The ``batch(n)`` of a tf.data pipeline whose batch dimension is not static (no ``drop_remainder``).

    Internal (TensorFlow's): each dataset op keeps its ``_input_dataset`` and a
    batch op its ``_batch_size``; read, never iterated.  Public alternative: none
    but reading a batch, which would run the pipeline.
    """
    dataset = getattr(adapter, "_dataset", None)
    for _ in range(64):
        if dataset is None:
            return None
        size = getattr(dataset, "_batch_size", None)
        if size is not None:
            return int(size)
        dataset = getattr(dataset, "_input_dataset", None)
    return None


def samples_seen(model) -> float | None:
    """Samples counted by Keras's loss tracker since the metrics were last reset; ``None`` if it counts none.

    Internal: the ``Mean`` metric behind the ``loss`` log, which every built-in
    train and test step updates with the batch size as its weight.  Read it only
    where the training state is synchronised (epoch and evaluation boundaries).
    """
    count = getattr(getattr(model, "_loss_tracker", None), "count", None)
    if count is None:
        return None
    value = float(keras.ops.convert_to_numpy(count))
    return value if value > 0 else None
