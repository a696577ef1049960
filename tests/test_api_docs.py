"""docs/api.md against the code: a heading per public callable whose signature is the real one (names, kinds,
defaults), every public method and attribute in its place, every per-layer column with its unit, every log
key, TensorBoard tag and ``nns-summary`` option named.  Adding a parameter without its line here fails."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from typing import NamedTuple

import keras
import pytest

import nns_callbacks
from nns_callbacks import layer_table, throughput
from nns_callbacks.cli import _parser
from nns_callbacks.tensorboard_plugin import metadata
from tests.docs_pages import ROOT, Heading, headings, section

API = ROOT / "docs" / "api.md"
TEXT = API.read_text(encoding="utf-8")
RECORDS = {"ModelCost", "LayerCall", "throughput.Rates"}
"""Classes the package hands out rather than users build: documented by their fields, not a signature."""
CLASSES = {name: getattr(nns_callbacks, name) for name in nns_callbacks.__all__ if inspect.isclass(getattr(nns_callbacks, name))}
CLASSES["throughput.Rates"] = throughput.Rates
KERAS_HOOKS = set(dir(keras.callbacks.Callback))
HEADING = re.compile(r"^`(?P<name>[\w.]+)(?:\((?P<params>.*)\))?(?: -> [^`]+)?`$")
UNITS = {"_macs": "MACs", "_flops": "FLOPs", "_bytes": "bytes", "_share": "fraction", "params": "parameters"}
"""A name's unit, by how the name ends (the package's convention)."""


class Documented(NamedTuple):
    """A heading of docs/api.md that names a public object: its dotted name, its parameters as written
    (``None``: a bare heading, no signature) and the heading itself."""

    name: str
    params: str | None
    heading: Heading


class Param(NamedTuple):
    """One parameter: its name, its kind (``inspect.Parameter`` kinds) and its default as text (``None``: none)."""

    name: str
    kind: inspect._ParameterKind
    default: str | None


def documented() -> dict[str, Documented]:
    """The level-3 headings that are one code span naming an object, by name."""
    found = {}
    for heading in headings(TEXT):
        match = HEADING.match(heading.text) if heading.level == 3 else None
        if match:
            assert match["name"] not in found, f"two headings for {match['name']}"
            found[match["name"]] = Documented(match["name"], match["params"], heading)
    return found


DOCUMENTED = documented()


def resolve(dotted: str):
    """``estimate``, ``ModelCost.summary`` or ``throughput.Rates.as_logs``, from ``nns_callbacks`` down."""
    value, path = nns_callbacks, "nns_callbacks"
    for part in dotted.split("."):
        path = f"{path}.{part}"
        value = getattr(value, part) if hasattr(value, part) else importlib.import_module(path)
    return value


def written_params(params: str) -> list[Param]:
    """The parameters of a heading, as Python reads them."""
    arguments = ast.parse(f"def _({params}): pass").body[0].args
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + arguments.defaults
    found = [Param(a.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, _text(d)) for a, d in zip(positional, defaults)]
    if arguments.vararg:
        found.append(Param(arguments.vararg.arg, inspect.Parameter.VAR_POSITIONAL, None))
    found += [Param(a.arg, inspect.Parameter.KEYWORD_ONLY, _text(d))
              for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults)]
    if arguments.kwarg:
        found.append(Param(arguments.kwarg.arg, inspect.Parameter.VAR_KEYWORD, None))
    return found


def _text(node) -> str | None:
    return None if node is None else ast.unparse(node)


def real_params(obj) -> list[inspect.Parameter]:
    """The signature's parameters, ``self`` left out of a method read from its class."""
    params = list(inspect.signature(obj).parameters.values())
    is_method = inspect.isfunction(obj) and "." in obj.__qualname__
    return params[1:] if is_method and params and params[0].name == "self" else params


def same_default(written: str | None, param: inspect.Parameter, owner) -> bool:
    """Whether a heading's default (as text) is the parameter's: a literal's value, else the function's name."""
    default = param.default
    if default is inspect.Parameter.empty:
        return written is None
    if written is None:
        return False
    if repr(default) == "<factory>":  # a dataclass field's default_factory
        default = {f.name: f for f in dataclasses.fields(owner)}[param.name].default_factory()
    try:
        value = ast.literal_eval(written)
    except ValueError:
        return written == f"{getattr(default, '__module__', '')}.{getattr(default, '__qualname__', '')}"
    return type(value) is type(default) and value == default


def public_methods(cls) -> list[str]:
    """The functions a class defines itself for its users: no private names, no Keras callback hooks."""
    return [name for name, value in vars(cls).items()
            if inspect.isfunction(value) and not name.startswith("_") and name not in KERAS_HOOKS]


def attributes(cls) -> list[str]:
    """Its public properties, and for a record its fields."""
    names = [name for name, value in vars(cls).items() if isinstance(value, property) and not name.startswith("_")]
    is_record = any(CLASSES.get(key) is cls for key in RECORDS)
    fields = []
    if is_record:
        fields = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else list(cls._fields)
    return fields + names


REQUIRED = [*nns_callbacks.__all__, *(f"{key}.{method}" for key, cls in CLASSES.items() for method in public_methods(cls))]
SIGNED = [entry for entry in DOCUMENTED.values() if entry.params is not None]


@pytest.mark.parametrize("name", REQUIRED)
def test_every_public_object_has_a_heading(name):
    assert name in DOCUMENTED, f"docs/api.md has no heading ### `{name}(...)`"


@pytest.mark.parametrize("name", REQUIRED)
def test_a_callable_is_headed_by_its_signature(name):
    obj = resolve(name)
    bare = DOCUMENTED.get(name) is not None and DOCUMENTED[name].params is None
    handed_out = name in RECORDS or (inspect.isclass(obj) and issubclass(obj, BaseException))
    assert not (bare and callable(obj) and not handed_out), f"### `{name}` needs its signature: `{name}(...)`"


@pytest.mark.parametrize("entry", SIGNED, ids=lambda entry: entry.name)
def test_heading_signature_is_the_real_one(entry):
    obj = resolve(entry.name)
    owner = obj if inspect.isclass(obj) else None
    written, real = written_params(entry.params), real_params(obj)
    assert [(p.name, p.kind) for p in written] == [(p.name, p.kind) for p in real], (
        f"{entry.name}: docs/api.md has ({entry.params}), the code ({', '.join(map(str, real))})")
    for doc, param in zip(written, real):
        assert same_default(doc.default, param, owner), (
            f"{entry.name}: {param.name}'s default is {param.default!r} in the code, {doc.default} in docs/api.md")


@pytest.mark.parametrize("key", sorted(CLASSES), ids=str)
def test_every_attribute_is_named_in_its_class_section(key):
    body = section(TEXT, DOCUMENTED[key].heading)
    missing = [name for name in attributes(CLASSES[key]) if f"`{name}`" not in body]
    assert not missing, f"docs/api.md's section on {key} does not name {missing}"


def table_rows(body: str, header: str) -> list[list[str]]:
    """The cells of the Markdown table under ``header`` (its heading row) in ``body``."""
    lines = body[body.index(header):].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def unit_of(name: str) -> str | None:
    return next((unit for ending, unit in UNITS.items() if name.endswith(ending)), None)


def test_every_layer_column_is_listed_in_order_with_its_unit():
    [heading] = [h for h in headings(TEXT) if h.text.startswith("The per-layer table")]
    rows = table_rows(section(TEXT, heading), "| Column | Unit | Meaning |")
    assert [row[0].strip("`") for row in rows] == list(layer_table.COLUMNS)
    for column, unit, meaning in rows:
        expected = unit_of(column.strip("`"))
        assert unit and meaning and (expected is None or unit == expected), f"{column}: unit {unit!r}"


def test_model_cost_figures_have_the_unit_their_names_say():
    rows = table_rows(section(TEXT, DOCUMENTED["ModelCost"].heading), "| Attribute | Unit | Meaning |")
    for names, unit, _ in rows:
        for name in re.findall(r"`(\w+)`", names):
            expected = unit_of(name.removesuffix("_per_sample"))
            assert expected is None or unit == expected, f"ModelCost.{name}: unit {unit!r}, its name says {expected}"


def logged_keys() -> list[str]:
    """The keys ``NNSCallback`` adds to Keras's logs: every rate a pass can report."""
    rates = throughput.Rates(1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    return sorted(rates.as_logs(flops=True, mfu=True, hfu=True))


@pytest.mark.parametrize("key", logged_keys())
def test_every_keras_log_key_is_listed(key):
    [heading] = [h for h in headings(TEXT) if h.text == "Keras logs"]
    body = section(TEXT, heading)
    assert f"`{key}`" in body and f"`val_{key}`" in body


def written_tags() -> list[str]:
    """Every TensorBoard tag the package names in its source, and the per-epoch rate and memory tags."""
    literals = set()
    for path in (ROOT / "nns_callbacks").rglob("*.py"):
        literals |= set(re.findall(r"\"((?:cost|nns)/[\w/]*\w)\"", path.read_text(encoding="utf-8")))
    return sorted(literals | {f"epoch_{name}" for name in metadata.RATE_NAMES + metadata.MEMORY_NAMES})


@pytest.mark.parametrize("tag", written_tags())
def test_every_tensorboard_tag_is_listed(tag):
    [heading] = [h for h in headings(TEXT) if h.text == "TensorBoard tags"]
    assert f"`{tag}`" in section(TEXT, heading)


@pytest.mark.parametrize("option", [o for action in _parser()._actions for o in action.option_strings
                                    if o.startswith("--") and o != "--help"])
def test_every_nns_summary_option_is_listed(option):
    [heading] = [h for h in headings(TEXT) if h.text == "`nns-summary`"]
    assert f"`{option}" in section(TEXT, heading)
