"""Roll-ups of the per-layer table: its rows summed by block (the qualified name cut at a depth) or by kind.

A row's name is its layer's path through the models and layers that call it (``block_3/ffn/dense``); its
block at depth ``d`` is the first ``d`` parts of that path (``block_3`` at depth 1), and a row with fewer
parts is a block of its own.  A row's kind is decided first by its type, then by the names on its path,
then by its type again:

1. a type naming ``Attention`` (``MultiHeadAttention``, ``ops.DotProductAttention``) is attention, ``Norm``
   normalisation (``LayerNormalization``, ``ops.RMSNorm``), ``Embedding`` embedding, ``Conv`` convolution;
2. otherwise a part of its name with ``attention`` or ``attn`` is attention, ``norm`` normalisation,
   ``embed`` embedding, ``mlp``, ``ffn``, ``feedforward``, ``feed_forward``, ``intermediate`` or ``dense`` MLP
   (so the query projection and the score einsum of ``self_attention/`` are attention);
3. otherwise ``Dense`` and ``EinsumDense`` are MLP, and everything else is other.

Every figure of a roll-up is the exact sum of its rows' (integers), so each column adds up to the model's
total.  Framework-free.
"""

from __future__ import annotations

import re

import pandas as pd

from .roofline import COMPUTE, MEMORY, row_times

KINDS = ("attention", "mlp", "normalization", "embedding", "convolution", "other")
SUMMED = ("params", "forward_macs", "forward_flops", "training_flops", "training_bytes_moved", "activation_bytes")
"""The columns a roll-up sums: parameters, MACs, FLOPs, bytes moved, bytes of activations kept."""

_TYPE_KINDS = (("attention", "Attention"), ("normalization", "Norm"), ("embedding", "Embedding"),
               ("convolution", "Conv"))
_NAME_KINDS = (
    ("attention", re.compile(r"attention|attn")),
    ("normalization", re.compile(r"norm")),
    ("embedding", re.compile(r"embed")),
    ("mlp", re.compile(r"mlp|ffn|feed_?forward|intermediate|dense")),
)
_MLP_TYPES = frozenset({"Dense", "EinsumDense"})


def kind_of(name: str, type_name: str) -> str:
    """The kind of a row (see the module's docstring for the rules)."""
    for kind, word in _TYPE_KINDS:
        if word in type_name:
            return kind
    parts = str(name).lower().split("/")
    for kind, pattern in _NAME_KINDS:
        if any(pattern.search(part) for part in parts):
            return kind
    return "mlp" if type_name in _MLP_TYPES else "other"


def block_of(name: str, depth: int) -> str:
    """The first ``depth`` parts of a row's qualified name."""
    return "/".join(str(name).split("/")[:depth])


def check_depth(depth) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer (1: the outermost blocks), got {depth!r}")


def rollup(layers: pd.DataFrame, keys: list[str], label: str, times: pd.DataFrame | None = None,
           order: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The rows of ``layers`` summed by ``keys`` (one per row, in a column named ``label``), in the order the
    keys first appear (or ``order``, where given, less the keys without rows).

    Columns: ``label``, ``rows``, the ``SUMMED`` columns, ``arithmetic_intensity`` (training FLOPs per byte
    moved); with ``times`` (``roofline.row_times``), the seconds bound by compute and by memory, their sum,
    the bound and the share of the predicted step time.
    """
    frame = layers[list(SUMMED)].copy()
    frame[label] = list(keys)
    grouped = frame.groupby(label, sort=False)
    summed = grouped[list(SUMMED)].sum()
    summed.insert(0, "rows", grouped.size())
    if order is not None:
        summed = summed.reindex([key for key in order if key in summed.index])
    flops, moved = summed["training_flops"], summed["training_bytes_moved"]
    summed["arithmetic_intensity"] = [f / b if b else float("nan") for f, b in zip(flops, moved)]
    if times is not None:
        seconds = times[["compute_seconds", "memory_seconds", "seconds"]].assign(**{label: list(keys)})
        seconds = seconds.groupby(label, sort=False).sum().reindex(summed.index)
        summed = summed.join(seconds)
        summed["bound"] = [COMPUTE if c >= m else MEMORY for c, m in zip(summed["compute_seconds"],
                                                                          summed["memory_seconds"])]
        total = float(times["seconds"].sum())
        summed["share"] = summed["seconds"] / total if total else 0.0
    return summed.reset_index()


def by_block(layers: pd.DataFrame, depth: int = 1, peak_flops=None, memory_bandwidth=None) -> pd.DataFrame:
    """The table summed by block at ``depth``; with a peak and a bandwidth, the predicted seconds too."""
    check_depth(depth)
    keys = [block_of(name, depth) for name in layers["name"]]
    return rollup(layers, keys, "block", _times(layers, peak_flops, memory_bandwidth))


def by_kind(layers: pd.DataFrame, peak_flops=None, memory_bandwidth=None) -> pd.DataFrame:
    """The table summed by kind (attention, MLP, normalisation, embedding, convolution, other)."""
    keys = [kind_of(name, type_name) for name, type_name in zip(layers["name"], layers["type"])]
    return rollup(layers, keys, "kind", _times(layers, peak_flops, memory_bandwidth), order=KINDS)


def _times(layers: pd.DataFrame, peak_flops, memory_bandwidth) -> pd.DataFrame | None:
    """Each row's predicted seconds where both rates are given; ``ValueError`` where only one is."""
    if peak_flops is None and memory_bandwidth is None:
        return None
    if peak_flops is None or memory_bandwidth is None:
        raise ValueError("pass both peak_flops (FLOP/s) and memory_bandwidth (bytes/s) for predicted times, or neither")
    return row_times(layers, peak_flops, memory_bandwidth)
