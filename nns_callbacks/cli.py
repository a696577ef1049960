"""``nns-summary``: parameters, MACs, FLOPs and memory of a Keras model, from the command line.

    nns-summary ResNet50                      # a keras.applications model, built with weights=None
    nns-summary model.keras --format json     # a saved model; JSON on stdout for piping

Errors are one line on stderr ("nns-summary: error: ...") and a non-zero exit
status: 2 for bad arguments, 1 for anything else.  Nothing but the report goes to
stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import io
import json
import logging
import os
import re
import sys
import warnings
import zipfile

PROG = "nns-summary"
FORMATS = ("table", "markdown", "csv", "json")
DEFAULT_MAX_ROWS = 40


class CliError(Exception):
    """A failure worth one line on stderr and exit status 1."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv=None) -> int:
    """Run ``nns-summary`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    try:
        args = _parse(argv)
    except SystemExit as stop:
        return _exit_code(stop)
    try:
        text = _report(args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # noqa: BLE001  (any failure is one line, never a traceback)
        return _fail(_one_line(error))
    return _print(text)


def _parse(argv) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.list and args.model is None:
        parser.error("the following arguments are required: MODEL")
    if args.fit_memory is not None and args.format == "csv":
        parser.error("--fit-memory works with --format table, markdown or json")
    return args


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=(
            "Parameters, MACs, FLOPs and memory of one training step of a Keras model, per layer. "
            "A MAC is one multiply-add and a FLOP one floating-point operation (1 MAC = 2 FLOPs); "
            "papers that quote 'FLOPs' for a model usually mean MACs."
        ),
        epilog="Examples: nns-summary resnet50 | nns-summary model.keras --format json > cost.json",
    )
    parser.add_argument(
        "model", nargs="?", metavar="MODEL",
        help="a keras.applications name (case-insensitive, e.g. resnet50; built with weights=None) "
        "or the path of a saved .keras file",
    )
    parser.add_argument(
        "--input-shape", type=_shape, action="append", metavar="H,W,C",
        help="shape of one sample, without the batch axis, e.g. 224,224,3; repeat for each input of "
        "a model with several",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=1, metavar="N", help="samples per step (default 1)")
    parser.add_argument(
        "--optimizer", metavar="NAME",
        help="optimizer whose state and update to count, e.g. adam or sgd (default: the saved model's "
        "compiled one, else none)",
    )
    parser.add_argument(
        "--dtype-policy", metavar="NAME",
        help="Keras dtype policy to build or load the model with, e.g. mixed_bfloat16",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.add_argument(
        "--max-rows", type=_non_negative_int, default=DEFAULT_MAX_ROWS, metavar="N",
        help=f"layer rows shown by table and markdown (default {DEFAULT_MAX_ROWS}; 0 shows all)",
    )
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE",
        help="import MODULE first, for a saved model whose custom layers it defines (repeatable)",
    )
    parser.add_argument(
        "--unsafe", action="store_true",
        help="load with safe_mode=False, which runs a saved Lambda's Python code: only for files you trust",
    )
    parser.add_argument(
        "--fit-memory", type=_memory_size, metavar="SIZE",
        help="also print the largest batch whose estimated training memory fits SIZE, e.g. 80GiB or 16GB "
        "(table, markdown and json)",
    )
    parser.add_argument("--list", action="store_true", help="list the keras.applications names and exit")
    return parser


def _memory_size(text: str) -> int:
    from .memory import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _shape(text: str) -> tuple[int, ...]:
    """'224,224,3' (or '224x224x3') -> (224, 224, 3)."""
    parts = [part for part in re.split(r"[,x\s]+", text.strip().strip("()[]")) if part]
    if not parts or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"invalid shape {text!r}: expected positive integers like 224,224,3")
    return tuple(int(part) for part in parts)


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _exit_code(stop: SystemExit) -> int:
    code = stop.code
    return code if isinstance(code, int) else (0 if code is None else 1)


def _fail(message: str, status: int = 1) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    return status


def _one_line(error: BaseException, limit: int = 400) -> str:
    """The first line of an error's message, or its type when it has none."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _print(text: str) -> int:
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


# The work: quiet the frameworks, build or load the model, estimate, format.
def _report(args) -> str:
    with _quiet(), _kept_dtype_policy():
        keras, estimate = _frameworks()
        if args.list:
            return "\n".join(application_names(keras))
        if args.dtype_policy:
            _set_dtype_policy(keras, args.dtype_policy)
        _check_optimizer(keras, args.optimizer)
        for module in args.imports:
            _import(module)
        model, shape_for_estimate, label = _model(keras, args)
        cost = _estimate(estimate, model, args, shape_for_estimate)
        fits = _max_batch(model, args, shape_for_estimate) if args.fit_memory is not None else None
    text = render(cost, args.format, args.max_rows or None, label)
    return text if fits is None else _with_max_batch(text, args, fits)


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except Exception as error:  # noqa: BLE001  (a module that fails to import is one line too)
        raise CliError(f"--import {module}: {_one_line(error)}") from None


def _max_batch(model, args, input_shape) -> int:
    from .memory import max_batch_size

    return max_batch_size(model, args.fit_memory, optimizer=args.optimizer, input_shape=input_shape)


def _with_max_batch(text: str, args, fits: int) -> str:
    """The report with the largest batch that fits ``--fit-memory``: a JSON field or a closing line."""
    if args.format == "json":
        report = json.loads(text)
        report["fit_memory_bytes"], report["max_batch_size"] = args.fit_memory, fits
        return json.dumps(report, indent=2)
    from .cost import format_bytes

    return f"{text}\nLargest batch whose estimated training memory fits {format_bytes(args.fit_memory)}: {fits}"


def _frameworks():
    """keras and ``estimate``, imported with TensorFlow's start-up logging silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("absl", "tensorflow", "jax", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import keras

    from .estimation import estimate

    return keras, estimate


@contextlib.contextmanager
def _quiet():
    """Silence Python warnings, stray prints and native (C++) logging written to stderr."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _native_stderr_silenced():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at /dev/null meanwhile: TensorFlow logs there whatever its settings."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        saved = None
    if saved is None:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def _kept_dtype_policy():
    """Restore Keras's global dtype policy afterwards (``main`` may run inside a program)."""
    keras = sys.modules.get("keras")
    before = keras.config.dtype_policy() if keras else None
    try:
        yield
    finally:
        keras = sys.modules.get("keras")
        if keras is not None:
            keras.config.set_dtype_policy(before or keras.config.floatx())


def _set_dtype_policy(keras, name: str) -> None:
    try:
        keras.config.set_dtype_policy(name)
    except (ValueError, TypeError) as error:
        raise CliError(f"unknown dtype policy {name!r} ({_one_line(error)})") from None


def _check_optimizer(keras, name) -> None:
    if name is None:
        return
    try:
        keras.optimizers.get(name)
    except (ValueError, TypeError):
        raise CliError(f"unknown optimizer {name!r}: try adam, adamw, sgd, rmsprop, adagrad, lion") from None


def application_names(keras) -> list[str]:
    """The model-building functions of ``keras.applications``, e.g. ``ResNet50``."""
    return sorted(name for name in dir(keras.applications) if name[:1].isupper() and callable(
        getattr(keras.applications, name)))


def _key(name: str) -> str:
    return re.sub(r"[-_\s]", "", name).lower()


def resolve_application(keras, name: str) -> str:
    """The ``keras.applications`` function named ``name`` (case, '-' and '_' ignored), or ``CliError``."""
    names = application_names(keras)
    by_key = {_key(n): n for n in names}
    if _key(name) in by_key:
        return by_key[_key(name)]
    close = difflib.get_close_matches(_key(name), list(by_key), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(by_key[k] for k in close)}?" if close else f"; try {PROG} --list"
    raise CliError(f"{name!r} is neither a keras.applications model nor an existing file{hint}")


def _is_path(name: str) -> bool:
    return os.path.exists(name) or name.endswith((".keras", ".h5", ".hdf5")) or os.sep in name


def _model(keras, args):
    """(model, input shape to pass to ``estimate``, label) for MODEL."""
    shape = _single_or_list(args.input_shape)
    if _is_path(args.model):
        model = _load(keras, args.model, args.dtype_policy, safe_mode=not args.unsafe)
        _check_fits(model, shape)
        return model, shape, args.model
    name = resolve_application(keras, args.model)
    if isinstance(shape, list):
        raise CliError(f"{name} has one input: give --input-shape once")
    model = _application(keras, name, shape)
    filled = _fill_unknown_sizes(model)
    size = f", input {'x'.join(map(str, filled))}" if filled else ""
    return model, filled, f"keras.applications.{name} (weights=None{size})"


def _fill_unknown_sizes(model, size: int = 224):
    """The input shape with open sizes set to ``size`` (MobileNetV3 leaves them open), else ``None``."""
    shape = tuple(model.inputs[0].shape[1:])
    return tuple(size if d is None else int(d) for d in shape) if None in shape else None


def _check_fits(model, shape) -> None:
    """A ``CliError`` when ``--input-shape`` contradicts a size the saved model's inputs fix."""
    inputs = _known_inputs(model)
    if shape is None or inputs is None:
        return
    given = shape if isinstance(shape, list) else [shape]
    expected = [tuple(tensor.shape[1:]) for tensor in inputs]
    if len(given) != len(expected) or not all(map(_fits, given, expected)):
        wanted = ", ".join(str(e).replace("None", "any") for e in expected)
        raise CliError(f"--input-shape {' '.join(map(str, given))} does not fit the model's input(s): {wanted}")


def _known_inputs(model):
    try:
        return list(model.inputs) if model.built and model.inputs else None
    except (AttributeError, ValueError):
        return None


def _fits(given: tuple, expected: tuple) -> bool:
    return len(given) == len(expected) and all(e is None or e == g for g, e in zip(given, expected))


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
        raise CliError(f"cannot build {name} with input shape {shape or 'default'}: {_one_line(error)}") from None


def _load(keras, path: str, dtype_policy, safe_mode: bool = True):
    """A saved model; with a dtype policy, rebuilt from its config with that policy (weights are not needed)."""
    if not os.path.exists(path):
        raise CliError(f"no such file: {path}")
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory, not a saved .keras file")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise CliError(f"cannot load {path}: not a .keras archive (a zip file)")
    try:
        if dtype_policy and zipfile.is_zipfile(path):
            return _rebuilt_with_policy(keras, path, dtype_policy, safe_mode)
        return keras.saving.load_model(path, safe_mode=safe_mode)
    except Exception as error:  # noqa: BLE001  (a broken file fails in many ways)
        raise CliError(f"cannot load {path}: {_loading_advice(error)}") from None


def _loading_advice(error: Exception) -> str:
    """Keras's reason, and what to pass for the two reasons a valid file cannot load."""
    message = _one_line(error)
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


def _estimate(estimate, model, args, input_shape):
    try:
        return estimate(model, batch_size=args.batch_size, input_shape=input_shape, optimizer=args.optimizer)
    except Exception as error:  # noqa: BLE001  (a shape that does not fit fails inside the model)
        message = _one_line(error)
        if input_shape is not None:
            message += " (check --input-shape)"
        elif "input_shape" in message:
            message += " (pass --input-shape)"
        raise CliError(message) from None


def render(cost, output_format: str, max_rows: int | None, label: str = "") -> str:
    """The report in ``output_format``: table, markdown, csv or json."""
    if output_format == "json":
        return cost.to_json()
    if output_format == "csv":
        return cost.to_csv()
    if output_format == "markdown":
        return cost.to_markdown(max_rows=max_rows)
    return _table(cost, max_rows, label)


def _table(cost, max_rows: int | None, label: str) -> str:
    from .cost import format_count

    lines = [
        f"{label or cost.model_name}: batch {cost.batch_size}, {cost.dtype_policy}, optimizer {cost.optimizer}",
        "",
        cost.summary(max_rows=max_rows),
    ]
    if cost.unsupported:
        listed = ", ".join(f"{name} x{count}" for name, count in sorted(cost.unsupported.items()))
        lines.append(f"Not counted (cost 0): {listed}")
    lines.append(
        f"Per sample: {format_count(cost.forward_macs_per_sample)}MAC forward (what papers call 'FLOPs'), "
        f"{format_count(cost.training_flops_per_sample)}FLOP per training step. 1 MAC = 2 FLOPs."
    )
    return "\n".join(lines)


def quiet_startup() -> None:
    """Import Keras with the backend's start-up lines silenced (TensorFlow's C++ logging, device probing).

    Call it before ``import keras``, as the examples do; later messages are left alone.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _native_stderr_silenced():
        for name in ("absl", "tensorflow", "jax", "h5py"):
            logging.getLogger(name).setLevel(logging.ERROR)
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # probes the devices now, while stderr is silenced
