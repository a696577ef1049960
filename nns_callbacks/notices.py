"""The package's warnings: one category users can filter, and one warning per cause per estimate or fit.

    warnings.filterwarnings("ignore", category=nns_callbacks.NNSWarning)
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings


class NNSWarning(UserWarning):
    """A warning from nns_callbacks: something left uncounted, unknown or unwritten; training goes on."""


class UncountedWarning(NNSWarning):
    """A call the cost model counts as zero (no rule, not traceable): ``ModelCost.unsupported`` lists it too."""


_SEEN: contextvars.ContextVar[set | None] = contextvars.ContextVar("nns_warned_causes", default=None)


@contextlib.contextmanager
def once_per_cause(seen: set | None = None):
    """Within the block each cause is warned once; ``seen`` carries the causes across several blocks (a fit)."""
    if seen is None and _SEEN.get() is not None:
        yield _SEEN.get()
        return
    seen = set() if seen is None else seen
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)


def warn(message: str, cause=None, stacklevel: int = 2, seen: set | None = None, category=NNSWarning) -> None:
    """Warn with ``NNSWarning``, once per ``cause`` (default: the message) in ``seen`` or the scope of
    ``once_per_cause``."""
    seen = _SEEN.get() if seen is None else seen
    key = message if cause is None else cause
    if seen is not None:
        if key in seen:
            return
        seen.add(key)
    warnings.warn(f"nns_callbacks: {message}", category, stacklevel=stacklevel + 1)
