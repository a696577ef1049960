"""The model ``nns-summary`` estimates: a ``keras.applications`` model built by name, or a saved file.

Finding it (``find_model``) and checking the ``--import`` modules and ``--input-shape`` need no framework,
so a typo or a missing file is reported before Keras is imported.  Building and loading (``load``) take
``keras``: with ``--dtype-policy`` a saved model is rebuilt from its config (weights are not needed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import importlib.util
import json
import os
import re
import stat
import sys
import zipfile

from .applications import application_names

PROG = "nns-summary"
SAVED_SUFFIXES = (".keras", ".h5", ".hdf5")


class LoadError(Exception):
    """A model that cannot be found, built or loaded: one line for the user."""


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """What MODEL names: a saved file (``path``) or a ``keras.applications`` function (``application``)."""

    path: str | None = None
    application: str | None = None


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model to estimate, the input shape to pass to ``estimate`` and the label of its report."""

    model: object
    input_shape: tuple | list | None
    label: str


def one_line(error: BaseException | str, limit: int = 400) -> str:
    """The first line of an error's message, or its type when it has none."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Checks that need no framework.
def find_model(name: str) -> ModelSource:
    """Where MODEL comes from, checked without importing Keras: a readable regular file or an application."""
    if _is_path(name):
        check_file(name)
        return ModelSource(path=name)
    return ModelSource(application=resolve_application(name))


def _is_path(name: str) -> bool:
    return os.path.exists(name) or name.endswith(SAVED_SUFFIXES) or os.sep in name


def check_file(path: str) -> None:
    """A ``LoadError`` unless ``path`` is a readable regular file; a FIFO or a device is never opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LoadError(f"no such file: {path}") from None
    except (OSError, ValueError) as error:
        raise LoadError(f"cannot read {path}: {getattr(error, 'strerror', None) or one_line(error)}") from None
    if stat.S_ISDIR(mode):
        raise LoadError(f"{path} is a directory, not a saved .keras file")
    if not stat.S_ISREG(mode):
        raise LoadError(f"{path} is {_file_kind(mode)}, not a regular file: give MODEL a saved .keras file")
    if not os.access(path, os.R_OK):
        raise LoadError(f"cannot read {path}: permission denied")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise LoadError(f"cannot load {path}: not a .keras archive (a zip file)")


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file"


def _key(name: str) -> str:
    return re.sub(r"[-_\s]", "", name).lower()


def resolve_application(name: str) -> str:
    """The ``keras.applications`` function named ``name`` (case, '-' and '_' ignored), or ``LoadError``."""
    by_key = {_key(n): n for n in application_names()}
    if _key(name) in by_key:
        return by_key[_key(name)]
    close = difflib.get_close_matches(_key(name), list(by_key), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(by_key[k] for k in close)}?" if close else f"; try {PROG} --list"
    raise LoadError(f"{name!r} is neither a keras.applications model nor an existing file{hint}")


def check_input_shapes(source: ModelSource, shapes) -> None:
    """A ``LoadError`` when ``--input-shape`` is given several times for an application (one input)."""
    if source.application and shapes and len(shapes) > 1:
        raise LoadError(f"{source.application} has one input: give --input-shape once")


def check_imports(modules) -> None:
    """A ``LoadError`` for an ``--import`` module whose top-level package is nowhere on the path (nothing runs)."""
    for module in modules:
        top = module.partition(".")[0]
        try:
            found = top in sys.modules or (bool(top) and importlib.util.find_spec(top) is not None)
        except (ImportError, ValueError):
            found = False
        if not found:
            raise LoadError(f"--import {module}: no module named {top or module!r} on the Python path")


# The work, with keras.
def import_modules(modules) -> None:
    """Import each ``--import`` module; one that fails or exits is a ``LoadError`` that says so."""
    for module in modules:
        try:
            importlib.import_module(module)
        except SystemExit as stop:
            status = _exit_status(stop.code)
            raise LoadError(f"--import {module}: the module exited with {status} while being imported") from None
        except Exception as error:  # noqa: BLE001  (a module that fails to import is one line too)
            raise LoadError(f"--import {module}: {one_line(error)}") from None


def _exit_status(code) -> str:
    """What ``sys.exit(code)`` exits with: 0 for ``None``, the number, or 1 and the message."""
    if code is None or isinstance(code, int):
        return f"status {code or 0}"
    return f"status 1 ({one_line(str(code))})"


@contextlib.contextmanager
def kept_dtype_policy():
    """Restore Keras's global dtype policy afterwards (``nns-summary`` may run inside a program)."""
    keras = sys.modules.get("keras")
    before = keras.config.dtype_policy() if keras else None
    try:
        yield
    finally:
        keras = sys.modules.get("keras")
        if keras is not None:
            keras.config.set_dtype_policy(before or keras.config.floatx())


def set_dtype_policy(keras, name: str) -> None:
    """Make ``name`` Keras's global dtype policy, or raise a ``LoadError`` naming ``--dtype-policy``."""
    try:
        keras.config.set_dtype_policy(name)
    except (ValueError, TypeError) as error:
        raise LoadError(f"unknown dtype policy {name!r} ({one_line(error)}): check --dtype-policy") from None


def load(keras, source: ModelSource, shapes, dtype_policy=None, safe_mode: bool = True) -> LoadedModel:
    """The model ``source`` names, built or loaded, with the input shape for ``estimate`` and its label."""
    shape = _single_or_list(shapes)
    if source.path:
        model = _load_file(keras, source.path, dtype_policy, safe_mode)
        _check_fits(model, shape)
        return LoadedModel(model, shape, source.path)
    model = _application(keras, source.application, shape)
    filled = _fill_unknown_sizes(model)
    size = f", input {'x'.join(map(str, filled))}" if filled else ""
    return LoadedModel(model, filled, f"keras.applications.{source.application} (weights=None{size})")


def _single_or_list(shapes):
    if not shapes:
        return None
    return shapes[0] if len(shapes) == 1 else list(shapes)


def _application(keras, name: str, shape):
    build = getattr(keras.applications, name)
    kwargs = {"weights": None} if shape is None else {"weights": None, "input_shape": shape}
    try:
        return build(**kwargs)
    except Exception as error:  # noqa: BLE001  (keras raises several types for a bad shape)
        raise LoadError(f"cannot build {name} with input shape {shape or 'default'}: {one_line(error)}") from None


def _fill_unknown_sizes(model, size: int = 224):
    """The input shape with open sizes set to ``size`` (MobileNetV3 leaves them open), else ``None``."""
    shape = tuple(model.inputs[0].shape[1:])
    return tuple(size if d is None else int(d) for d in shape) if None in shape else None


def _check_fits(model, shape) -> None:
    """A ``LoadError`` when ``--input-shape`` contradicts a size the saved model's inputs fix."""
    inputs = _known_inputs(model)
    if shape is None or inputs is None:
        return
    given = shape if isinstance(shape, list) else [shape]
    expected = [tuple(tensor.shape[1:]) for tensor in inputs]
    if len(given) != len(expected) or not all(map(_fits, given, expected)):
        wanted = ", ".join(str(e).replace("None", "any") for e in expected)
        raise LoadError(f"--input-shape {' '.join(map(str, given))} does not fit the model's input(s): {wanted}")


def _known_inputs(model):
    try:
        return list(model.inputs) if model.built and model.inputs else None
    except (AttributeError, ValueError):
        return None


def _fits(given: tuple, expected: tuple) -> bool:
    return len(given) == len(expected) and all(e is None or e == g for g, e in zip(given, expected))


def _load_file(keras, path: str, dtype_policy, safe_mode: bool = True):
    """A saved model; with a dtype policy, rebuilt from its config with that policy."""
    try:
        if dtype_policy and zipfile.is_zipfile(path):
            return _rebuilt_with_policy(keras, path, dtype_policy, safe_mode)
        return keras.saving.load_model(path, safe_mode=safe_mode)
    except Exception as error:  # noqa: BLE001  (a broken file fails in many ways)
        raise LoadError(f"cannot load {path}: {_loading_advice(error)}") from None


def _loading_advice(error: Exception) -> str:
    """Keras's reason, and what to pass for the two reasons a valid file cannot load."""
    message = one_line(error)
    missing = re.search(r"Could not locate (?:class|function) '([^']+)'", str(error))
    if missing:
        return (f"it uses {missing.group(1)!r}, which is not registered here: pass --import MODULE, the module "
                f"that defines it (with @keras.saving.register_keras_serializable)")
    if "safe_mode" in str(error) or "unsafe" in str(error).lower():
        return f"it holds a Lambda, whose Python code runs when loaded: pass --unsafe if you trust the file ({message})"
    return message


def _rebuilt_with_policy(keras, path: str, dtype_policy: str, safe_mode: bool = True):
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    _override_dtypes(config, dtype_policy)
    return keras.saving.deserialize_keras_object(config, safe_mode=safe_mode)


_NOT_LAYERS = ("InputLayer", "__keras_tensor__")


def _override_dtypes(node, dtype_policy: str) -> None:
    """Give every layer in a serialized config ``dtype_policy``; inputs, tensors and quantized layers keep theirs."""
    if isinstance(node, list):
        for item in node:
            _override_dtypes(item, dtype_policy)
        return
    if not isinstance(node, dict):
        return
    config = node.get("config")
    is_layer = isinstance(config, dict) and "dtype" in config and node.get("class_name") not in _NOT_LAYERS
    if is_layer and _plain_policy(config["dtype"]):
        config["dtype"] = dtype_policy
    for value in node.values():
        _override_dtypes(value, dtype_policy)


def _plain_policy(dtype) -> bool:
    return isinstance(dtype, str) or (isinstance(dtype, dict) and dtype.get("class_name") == "DTypePolicy")
