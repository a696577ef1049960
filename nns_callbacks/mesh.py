"""The devices a model is spread over, as named mesh axes, and how each variable is laid out on them.

Sources: a Keras distribution (``keras.distribution.DataParallel``, ``ModelParallel`` with a ``LayoutMap``), a
``tf.distribute`` strategy (data parallel over its replicas), or a number of devices (data parallel, for
planning on a machine that has fewer).  Layouts are read from the distribution, never from the arrays.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

AUTO = "auto"
Axes = tuple[tuple[str, ...], ...]
"""Per dimension of a tensor, the mesh axes that shard it (``()``: not sharded)."""


@dataclasses.dataclass(frozen=True)
class Mesh:
    """Named axes of devices; ``batch_axis`` shards the data's batch dimension; ``source``: where it came from."""

    shape: dict[str, int]
    batch_axis: str | None
    source: str

    @property
    def devices(self) -> int:
        return math.prod(self.shape.values())

    @property
    def data_parallel(self) -> int:
        """How many ways the batch is split: the size of the batch axis."""
        return self.shape.get(self.batch_axis, 1) if self.batch_axis else 1

    def size(self, axes) -> int:
        """Devices along ``axes`` (mesh axis names) together."""
        return math.prod(self.shape.get(axis, 1) for axis in axes)

    def model_axes(self, axes) -> tuple[str, ...]:
        """``axes`` less the batch axis, of more than one device."""
        return tuple(axis for axis in axes if axis != self.batch_axis and self.shape.get(axis, 1) > 1)


@dataclasses.dataclass(frozen=True)
class Placement:
    """A mesh and the layout of each variable on it (``variable_axes(variable) -> Axes``)."""

    mesh: Mesh
    variable_axes: Callable[[object], Axes]


def placement(distribution, model=None) -> Placement | None:
    """The placement ``distribution`` describes: ``"auto"`` (the active Keras distribution, else ``model``'s
    ``tf.distribute`` strategy), a Keras distribution, a ``tf.distribute`` strategy, a number of devices (data
    parallel), or ``None`` (one device).  One device is ``None``."""
    if isinstance(distribution, str) and distribution == AUTO:
        distribution = _active(model)
    if distribution is None:
        return None
    if isinstance(distribution, bool) or (isinstance(distribution, int) and distribution < 1):
        raise ValueError(f"distribution must be a Keras distribution, a tf.distribute strategy, a positive number "
                         f"of devices, 'auto' or None, got {distribution!r}")
    if isinstance(distribution, int):
        return _data_parallel(distribution, "devices argument")
    if hasattr(distribution, "num_replicas_in_sync"):
        return _data_parallel(int(distribution.num_replicas_in_sync), type(distribution).__name__)
    if hasattr(distribution, "device_mesh") and hasattr(distribution, "get_variable_layout"):
        return _keras_placement(distribution)
    raise ValueError(f"distribution must be a Keras distribution, a tf.distribute strategy, a positive number of "
                     f"devices, 'auto' or None, got {distribution!r}")


def _active(model):
    """The distribution a model trains under when none is named: Keras's active one, or its TF strategy."""
    import keras

    active = keras.distribution.distribution()
    if active is not None:
        return active
    strategy = getattr(model, "distribute_strategy", None) if keras.backend.backend() == "tensorflow" else None
    replicas = getattr(strategy, "num_replicas_in_sync", 1)
    return strategy if replicas > 1 else None


def _data_parallel(devices: int, source: str) -> Placement | None:
    if devices == 1:
        return None
    return Placement(Mesh({"batch": devices}, "batch", source), _replicated)


def _replicated(variable) -> Axes:
    return tuple(() for _ in variable.shape)


def _keras_placement(distribution) -> Placement | None:
    mesh = distribution.device_mesh
    shape = {str(name): int(size) for name, size in zip(mesh.axis_names, mesh.shape)}
    batch_axis = getattr(distribution, "batch_dim_name", None)
    placed = Mesh(shape, batch_axis, type(distribution).__name__)
    if placed.devices == 1:
        return None

    def variable_axes(variable) -> Axes:
        try:
            layout = distribution.get_variable_layout(variable)
        except Exception:  # noqa: BLE001  (an unreadable layout: replicated, the upper bound)
            return _replicated(variable)
        return normalized_axes(getattr(layout, "axes", None), len(variable.shape))

    return Placement(placed, variable_axes)


def normalized_axes(axes, rank: int) -> Axes:
    """A layout's axes (a name, a tuple of names or ``None`` per dimension) as tuples of names per dimension."""
    if axes is None or len(axes) != rank:
        return tuple(() for _ in range(rank))
    return tuple(() if axis is None else ((axis,) if isinstance(axis, str) else tuple(axis)) for axis in axes)


def shard_elements(shape, axes: Axes, mesh: Mesh) -> int:
    """Elements of the largest shard (device 0's): each dimension divided, rounded up, by the devices along its axes."""
    return math.prod(-(-int(dim) // mesh.size(dim_axes)) for dim, dim_axes in zip(shape, axes))
