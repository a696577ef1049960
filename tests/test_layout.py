"""The package's shape: no module above about 450 lines, no import cycle (lazy imports included), and one source for
the per-layer table's columns."""

import ast
import pathlib

import pytest

from nns_callbacks import layer_table, rows

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "nns_callbacks"
MAX_LINES = 450
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: pathlib.Path, known: set[str]) -> set[str]:
    """The package modules ``path`` imports anywhere in it (inside functions too): ``from .x import y`` names
    ``x``, or ``x.y`` where that is a module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    known = {module_name(path) for path in MODULES}
    return {module_name(path): imported_modules(path, known) for path in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_is_above_the_line_limit(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_import_finder_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "nns_callbacks.estimation" in graph["nns_callbacks.run_cost"]
    assert "nns_callbacks.registry" in graph["nns_callbacks.rules.core"]


def test_a_row_field_is_a_table_column():
    """The table's columns come from ``Row``: its fields in order, then the shares before the ``counted`` flag."""
    assert rows.Row._fields == ("name", "type", "call", *rows.Figures._fields)
    fields = [name for name in layer_table.COLUMNS if not name.endswith("_share")]
    assert fields == list(rows.Row._fields)


def test_an_estimated_table_has_the_columns_in_order():
    import keras

    import nns_callbacks

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    assert list(nns_callbacks.estimate(model, batch_size=2).layers.columns) == list(layer_table.COLUMNS)


def test_the_module_map_names_every_module():
    """docs/architecture.md's table lists every module (a package's modules by its folder, ``rules/``)."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    listed = {cell.strip("` ") for line in text.splitlines() if line.startswith("|") for cell in line.split("|")[2:3]}
    missing = []
    for path in MODULES:
        relative = path.relative_to(PACKAGE)
        folder = f"{relative.parts[0]}/" if len(relative.parts) > 1 else None
        if relative.name not in listed and folder not in listed:
            missing.append(str(relative))
    assert missing == []
