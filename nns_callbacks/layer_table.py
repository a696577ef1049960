"""The per-layer table as a pandas DataFrame: the rows' columns, each row's share of the totals, and the totals.

Figures are 64-bit integer columns where no sum can pass 2**63 - 1, else Python integers (exact).
"""

from __future__ import annotations

import typing

import numpy as np
import pandas as pd

from .rows import Row

_SHARED_COLUMNS = ("forward_flops", "training_flops", "activation_bytes", "training_bytes_moved")
"""The columns whose shares of their totals the table holds too (``<column>_share``)."""
_COUNT_COLUMNS = tuple(name for name, kind in typing.get_type_hints(Row).items() if kind is int)
COLUMNS = (
    *(name for name in Row._fields if name != "counted"),
    *(f"{name}_share" for name in _SHARED_COLUMNS),
    "counted",
)
"""The table's columns in order: a ``Row``'s fields, the shares before the ``counted`` flag."""


def _int64_arrays(columns: dict[str, list]) -> dict[str, np.ndarray]:
    """The count columns that are 64-bit integers whose sum cannot wrap, as arrays (pandas makes the same of
    them, slower); a larger column (a batch of 2**40, a 175B-parameter model over millions of tokens) stays
    Python integers, exact."""
    arrays = {name: np.array(columns[name]) for name in _COUNT_COLUMNS}
    return {name: values for name, values in arrays.items() if values.dtype == np.int64 and _sum_fits(values)}


def _sum_fits(values: np.ndarray) -> bool:
    """Whether no sum of these 64-bit integers can pass 2**63 - 1."""
    return not len(values) or int(np.abs(values).max()) * len(values) < 2**63


def _frame(columns: dict[str, list], arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """The table, with each row's share of the shared columns' totals; ``arrays``: see ``_int64_arrays``."""
    data = {**columns, **arrays}
    for column in _SHARED_COLUMNS:
        total = data[column].sum()
        values = np.asarray(data[column], dtype=np.float64)
        data[f"{column}_share"] = values / float(total) if total else np.zeros(len(values))
    return pd.DataFrame({name: data[name] for name in COLUMNS})


def _frame_inferred(columns: dict[str, list]) -> pd.DataFrame:
    """``_frame`` where pandas tells the columns' types (no rows, figures beyond 64-bit integers, fractions)."""
    rows = [dict(zip(columns, row)) for row in zip(*columns.values())]
    frame = pd.DataFrame(rows, columns=list(columns))
    return _frame({name: frame[name] for name in frame.columns}, {})


SUMMED_COLUMNS = (
    "forward_macs", "forward_flops", "backward_flops", "activation_bytes",
    "forward_bytes_moved", "backward_bytes_moved", "optimizer_bytes_moved",
)


def layer_table(columns: dict[str, list]) -> tuple:
    """The per-layer table and the totals of its summed columns (from 64-bit integer arrays where they fit)."""
    arrays = _int64_arrays(columns)
    if columns["name"] and all(name in arrays for name in _SHARED_COLUMNS + SUMMED_COLUMNS):
        return _frame(columns, arrays), {name: int(arrays[name].sum()) for name in SUMMED_COLUMNS}
    frame = _frame_inferred(columns)
    return frame, {name: int(frame[name].sum()) for name in SUMMED_COLUMNS}
