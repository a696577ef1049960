"""``register_cost_rule`` for users: the built-in rules are registered before any of theirs, so a user's rule
replaces a built-in one only when asked (``replace=True``) and never the reverse."""

from __future__ import annotations

from . import rules  # noqa: F401  (registers the built-in rules)
from .registry import register_cost_rule as _register


def register_cost_rule(*layer_types: type, replace: bool = False):
    """Register the decorated ``rule(layer, call) -> LayerCost`` for ``layer_types`` (layer or op classes).

    Subclasses inherit their nearest registered ancestor's rule.  Registering a type twice, a built-in one
    included, raises ``ValueError`` unless ``replace=True``.
    """
    return _register(*layer_types, replace=replace)
