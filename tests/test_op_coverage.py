"""Every public ``keras.ops`` function of the installed Keras is in one of three kinds (``op_kinds``).

Runs on any Keras 3 the package supports (3.8 to 3.15): functions and op classes are looked up, never
assumed.
"""

from __future__ import annotations

import collections
import importlib
import inspect
import types

import keras
import pytest

from nns_callbacks.registry import fitting_rule, rule_for
from nns_callbacks.rules.op_kinds import BY_RULE, CONTROL, FREE, FREE_REASONS, OP_KINDS, RULE


def public_functions() -> dict[str, object]:
    """``{key: function}`` over ``keras.ops`` and each of its public submodules (image, linalg, nn, numpy, ...)."""
    found = {}
    namespaces = {"": keras.ops}
    for name in dir(keras.ops):
        value = getattr(keras.ops, name)
        if isinstance(value, types.ModuleType) and not name.startswith("_"):
            namespaces[name] = value
    for prefix, module in namespaces.items():
        for name in dir(module):
            value = getattr(module, name)
            if name.startswith("_") or isinstance(value, (types.ModuleType, type)) or not callable(value):
                continue
            top = getattr(keras.ops, name, None)
            key = name if (not prefix or top is value) else f"{prefix}.{name}"
            found[key] = value
    return found


FUNCTIONS = public_functions()


def op_class(qualified: str):
    """``"numpy.Add"`` -> ``keras.src.ops.numpy.Add``, or ``None`` where this Keras lacks it."""
    module, name = qualified.split(".")
    try:
        return getattr(importlib.import_module(f"keras.src.ops.{module}"), name, None)
    except ImportError:
        return None


def test_every_public_function_has_a_kind():
    missing = sorted(set(FUNCTIONS) - set(OP_KINDS))
    assert not missing, f"keras.ops functions in no kind (add them to nns_callbacks/rules/op_kinds.py): {missing}"


def test_the_namespaces_are_all_enumerated():
    submodules = {key.split(".")[0] for key in FUNCTIONS if "." in key}
    assert "image" in submodules
    assert {"matmul", "conv", "inv", "resize"} - {key.split(".")[-1] for key in FUNCTIONS} == set()


def test_entries_are_well_formed():
    for name, (kind, reason, qualified) in OP_KINDS.items():
        assert kind in (RULE, FREE, CONTROL), name
        if kind == FREE:
            assert reason in FREE_REASONS, (name, reason)
        if kind == RULE:
            assert qualified is not None or reason.startswith("costed through"), name
            assert qualified is None or reason == BY_RULE, name
        if kind == CONTROL:
            assert qualified is None and reason, name


@pytest.mark.parametrize("name", sorted(k for k, v in OP_KINDS.items() if v[2] is not None and k in FUNCTIONS))
def test_each_op_class_has_a_rule_and_is_the_functions_own(name):
    kind, _, qualified = OP_KINDS[name]
    cls = op_class(qualified)
    assert cls is not None, f"{name}: keras.src.ops.{qualified} is missing from this Keras"
    source = inspect.getsource(FUNCTIONS[name])
    # a free function may run eagerly only in an older Keras (``arange`` before 3.9): no op to cost there
    assert f"{cls.__name__}(" in source or kind == FREE, f"{name} does not run {qualified}"
    instance = object.__new__(cls)
    assert rule_for(instance) is not None and fitting_rule(instance) is not None, f"no rule for {qualified} ({name})"


@pytest.mark.parametrize("name", sorted(k for k, v in OP_KINDS.items() if v[0] == RULE and v[2] is None))
def test_functions_costed_through_other_ops_name_a_costed_one(name):
    through = OP_KINDS[name][1].rsplit(": ", 1)[-1]
    assert OP_KINDS[through][0] == RULE and OP_KINDS[through][2] is not None


def test_control_flow_is_listed_and_has_no_rule():
    control = {k for k, v in OP_KINDS.items() if v[0] == CONTROL}
    assert {"cond", "switch", "scan", "while_loop", "fori_loop", "map", "vectorized_map", "associative_scan",
            "custom_gradient", "jvp"} <= control
    for name in control & set(FUNCTIONS):
        for cls_name in ("Cond", "Switch", "Scan", "WhileLoop", "ForiLoop", "Map", "AssociativeScan"):
            cls = op_class(f"core.{cls_name}")
            if cls is not None:
                assert rule_for(object.__new__(cls)) is None


def test_kind_counts():
    installed = collections.Counter(OP_KINDS[key][0] for key in FUNCTIONS)
    assert installed[RULE] > 150 and installed[FREE] > 50 and installed[CONTROL] >= 9, installed
