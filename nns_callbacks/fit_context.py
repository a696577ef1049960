"""What the callback learns about the running ``fit``, ``evaluate`` or ``predict`` that Keras does not pass to it:
the data and its batch size, the devices, whether this process writes, whether ``train_step`` is the model's own.

Every lookup answers ``None`` (unknown) rather than raise: measuring must never break training.
"""

from __future__ import annotations

import itertools
import os

import keras

from . import keras_compat as compat
from . import memory
from .passes import FitState
from .throughput import BatchPlan


def safe(getter):
    """``getter()``, or ``None`` where it raises."""
    try:
        return getter()
    except Exception:  # noqa: BLE001  (any failure means "unknown here")
        return None


def batch_plan(batch_size_arg, model, adapter=None) -> BatchPlan | None:
    """Samples per step: the argument, else the running data adapter, else a peeked first batch; ``None``: unknown."""
    adapter = adapter if adapter is not None else compat.running_data_adapter()
    sliced = safe(lambda: adapter.batch_size)  # arrays, which Keras slices into batches of this size
    size = (
        batch_size_arg
        or sliced
        or safe(lambda: compat.first_batch_size(adapter))
        or safe(lambda: compat.dataset_batch_size(adapter))
    )
    if not size:
        inputs = safe(lambda: model.inputs) or []
        size = inputs[0].shape[0] if inputs else None
    if not size:
        return None
    num_batches = safe(lambda: adapter.num_batches)
    partial = safe(lambda: adapter.partial_batch_size)
    exact = bool(sliced) and int(size) == int(sliced) and num_batches is not None
    return BatchPlan(int(size), num_batches, partial or None, exact)


def keras_tensorboard(ours, log_dir: str | None):
    """A ``keras.callbacks.TensorBoard`` after ``ours`` in the running ``fit``, writing into ``log_dir``.

    It writes the rates we put into ``logs`` under the same tags, so we leave those to it.
    """
    if log_dir is None:
        return None
    callbacks = compat.running_loop_local("callbacks", lambda x: isinstance(x, keras.callbacks.CallbackList))
    listed = list(getattr(callbacks, "callbacks", []))
    after = listed[listed.index(ours) + 1:] if ours in listed else []
    for callback in after:
        if isinstance(callback, keras.callbacks.TensorBoard) and _same_dir(callback.log_dir, log_dir):
            return callback
    return None


def _same_dir(first: str, second: str) -> bool:
    return os.path.realpath(first) == os.path.realpath(second)


def replicas(model) -> int:
    """Replicas that train in sync: the tf.distribute strategy's or the Keras distribution's devices."""
    strategy = safe(lambda: model.distribute_strategy)
    count = safe(lambda: strategy.num_replicas_in_sync)
    if count:
        return int(count)
    distribution = safe(keras.distribution.distribution)
    devices = safe(lambda: distribution.device_mesh.devices.size)
    return int(devices or 1)


def is_chief(model) -> bool:
    """Whether this process writes summaries: the chief of a multi-worker job, or the only one."""
    strategy = safe(lambda: model.distribute_strategy)
    resolver = safe(lambda: strategy.cluster_resolver)
    if resolver is not None and getattr(resolver, "task_type", None) not in (None, "chief"):
        has_chief = "chief" in (safe(lambda: resolver.cluster_spec().as_dict()) or {})
        return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0
    if keras.backend.backend() == "jax":
        import jax

        return jax.process_index() == 0
    return True


def has_custom_train_step(model) -> bool:
    """Whether the model's class (not Keras's backend trainer) defines ``train_step``."""
    for cls in type(model).__mro__:
        if "train_step" in vars(cls):
            return not cls.__module__.startswith("keras.")
    return False


def in_running_fit(model) -> bool:
    """Whether a ``fit`` of ``model`` is running in this thread (a validation pass), not a standalone
    ``evaluate`` after a fit that ended by an exception."""
    return compat.running_frame_of(safe(lambda: type(model).fit)) is not None


class SampleLedger:
    """The size of each batch a Python generator or a ``PyDataset`` produced in the running fit, in order.

    The batches are counted where Keras takes them from the user's Python code (on every backend, also
    when tf.data prefetches them in a thread), so that a window of steps counts what its steps really
    held.  Other data (arrays, whose batches the plan knows; tf.data pipelines) is not watched.
    """

    def __init__(self):
        self.sizes: list[int] = []
        self.consumed = 0  # steps of the fit before the running epoch
        self.watching = False

    def watch(self, adapter) -> bool:
        """Count the batches ``adapter`` produces from now on; whether it is a kind that can be watched."""
        self.sizes, self.consumed = [], 0
        self.watching = compat.watch_batches(adapter, self._produced, self._restarted)
        return self.watching

    def _produced(self, batch) -> None:
        arrays = [x for x in keras.tree.flatten(batch) if hasattr(x, "shape") and len(x.shape) > 0]
        if arrays:
            self.sizes.append(int(arrays[0].shape[0]))

    def _restarted(self) -> None:
        """A new iterator over the data: what the last one prefetched beyond the steps run is not trained on."""
        del self.sizes[self.consumed:]

    def samples(self, start: int, stop: int) -> int | None:
        """Samples in steps ``start`` to ``stop`` (exclusive) of the running epoch; ``None`` where not known."""
        first, last = self.consumed + start, self.consumed + stop
        if not self.watching or len(self.sizes) < last:
            return None
        return sum(itertools.islice(self.sizes, first, last))

    def end_epoch(self, steps: int) -> None:
        """The running epoch ran ``steps`` steps."""
        self.consumed += steps


def open_fit(callback, model, adapter, compiles: bool, restart: int | None) -> FitState:
    """The record of a fit that begins: the ledger of its data's batches, a Keras TensorBoard writing our logs, its
    steps per epoch and per execution, whether its first step compiles, and where a resumed run restarts."""
    ledger = SampleLedger()
    ledger.watch(adapter)
    return FitState(
        ledger, keras_tensorboard(callback, callback.log_dir), (callback.params or {}).get("steps"),
        int(safe(lambda: model.steps_per_execution) or 1), compiles, start=0, restart=restart,
        measures_memory=memory.peak_bytes_in_use(keras.backend.backend()) is not None)
