"""The names of ``keras.applications`` models, read from Keras's installed files without importing Keras.

Importing Keras imports its backend (TensorFlow: seconds), so ``nns-summary --list`` and the check of a
MODEL name read the public API file that Keras generates for ``keras.applications`` instead: the
capitalised names it imports are the model-building functions.  Keras 3.10 and later keep that file at
``keras/applications/__init__.py``, older releases at ``keras/api/applications/__init__.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import os

from .quiet import keras_quietly, native_stderr_silenced

_API_FILES = (("applications", "__init__.py"), ("api", "applications", "__init__.py"))


def application_names() -> list[str]:
    """The model-building functions of ``keras.applications``, e.g. ``ResNet50``, sorted."""
    path = _api_file()
    names = _public_names(path) if path else set()
    return sorted(names) if names else _imported_names()


def _api_file() -> str | None:
    """The installed ``keras.applications`` public API file, found without importing Keras, or ``None``."""
    spec = importlib.util.find_spec("keras")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for parts in _API_FILES:
            path = os.path.join(folder, *parts)
            if os.path.isfile(path):
                return path
    return None


def _public_names(path: str) -> set[str]:
    """The capitalised names a module's source imports or defines (its public functions and classes)."""
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return set()
    names = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
             for alias in node.names}
    names |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    return {name for name in names if name[:1].isupper()}


def _imported_names() -> list[str]:
    """The names from ``keras.applications`` itself: the slow way, for an install whose file is not found."""
    with native_stderr_silenced():
        applications = keras_quietly().applications
    return sorted(name for name in dir(applications) if name[:1].isupper() and callable(getattr(applications, name)))
