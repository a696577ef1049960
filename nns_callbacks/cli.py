"""``nns-summary``: parameters, MACs, FLOPs and memory of a Keras model, from the command line.

    nns-summary ResNet50                      # a keras.applications model, built with weights=None
    nns-summary model.keras --format json     # a saved model; JSON on stdout for piping

Errors are one line on stderr ("nns-summary: error: ...") and a non-zero exit
status: 2 for bad arguments, 1 for anything else.  Nothing but the report goes to
stdout.  Arguments, the MODEL name or file and the ``--import`` modules are checked
before Keras (and its backend) is imported; ``--list`` never imports it.  This module
parses and prints: ``loading`` finds and builds the model, ``ModelCost.summary()``
renders the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import warnings

from .applications import application_names
from .loading import (
    PROG,
    LoadedModel,
    check_imports,
    check_input_shapes,
    find_model,
    import_modules,
    kept_dtype_policy,
    load,
    one_line,
    set_dtype_policy,
)
from .memory import parse_bytes
from .quiet import keras_quietly, silenced

FORMATS = ("table", "markdown", "csv", "json")
DEFAULT_MAX_ROWS = 40
_OURS = "nns_callbacks: "  # how this package's warnings start
_LOOKS_NEGATIVE = re.compile(r"-(?:[0-9.]|inf|nan)", re.IGNORECASE)


class CliError(Exception):
    """A failure worth one line on stderr and exit status 1."""


@dataclasses.dataclass(frozen=True)
class Report:
    """What ``nns-summary`` prints: the report for stdout and the warnings for stderr, each once."""

    text: str
    warnings: list[str]


class _Parser(argparse.ArgumentParser):
    """Errors are one line on stderr (exit status 2); an option's value may start with a minus ("-5GB")."""

    def __init__(self, *args, **kwargs):
        self.value_options: set[str] = set()
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        if action.option_strings and action.nargs != 0:
            self.value_options.update(action.option_strings)
        return action

    def parse_args(self, args=None, namespace=None):
        argv = sys.argv[1:] if args is None else list(args)
        return super().parse_args(_glued(argv, self.value_options), namespace)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _glued(argv: list[str], value_options: set[str]) -> list[str]:
    """``--fit-memory -5GB`` as ``--fit-memory=-5GB``, which argparse reads as a value, not an option."""
    glued: list[str] = []
    for token in argv:
        if glued and _LOOKS_NEGATIVE.match(token) and _takes_value(glued[-1], value_options):
            glued[-1] = f"{glued[-1]}={token}"
        else:
            glued.append(token)
    return glued


def _takes_value(token: str, value_options: set[str]) -> bool:
    """Whether ``token`` is an option that takes a value, in full or as argparse's unique abbreviation."""
    if token in value_options:
        return True
    return token.startswith("--") and "=" not in token and sum(o.startswith(token) for o in value_options) == 1


def main(argv=None) -> int:
    """Run ``nns-summary`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    try:
        args = _parse(argv)
    except SystemExit as stop:
        return _exit_code(stop)
    try:
        report = Report("\n".join(application_names()), []) if args.list else _report(args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # noqa: BLE001  (any failure is one line, never a traceback)
        return _fail(one_line(error))
    _warn(report.warnings)
    return _print(report.text)


def _parse(argv) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.list and args.model is None:
        parser.error("the following arguments are required: MODEL")
    if args.fit_memory is not None and args.format == "csv":
        parser.error("--fit-memory works with --format table, markdown or json")
    if args.depth is not None and args.format != "table":
        parser.error("--depth works with --format table")
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
        "--depth", type=_positive_int, metavar="N",
        help="sum the table's rows by block: the first N parts of their names (block_3/ffn/dense at depth 1 is "
        "block_3), like torchinfo's depth (table only)",
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
        help="also print the largest batch whose estimated training memory fits SIZE, e.g. 80GiB, 16GB or "
        "1.5GiB (1 byte to 1 PiB; table, markdown and json)",
    )
    parser.add_argument(
        "--devices", type=_positive_int, default=1, metavar="N",
        help="plan data parallelism over N devices: the batch is global, and memory, FLOPs and traffic are also "
        "given per device (--fit-memory: the largest global batch whose per-device memory fits)",
    )
    parser.add_argument("--list", action="store_true", help="list the keras.applications names and exit")
    return parser


def _memory_size(text: str) -> int:
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


def _warn(messages: list[str]) -> None:
    for message in messages:
        sys.stderr.write(f"{PROG}: warning: {message}\n")
    sys.stderr.flush()


def _print(text: str) -> int:
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


# The work: check what needs no framework, then import it quietly, build or load, estimate, format.
def _report(args) -> Report:
    source = find_model(args.model)
    check_input_shapes(source, args.input_shape)
    check_imports(args.imports)
    with warnings.catch_warnings(record=True) as caught, silenced(), kept_dtype_policy():
        warnings.simplefilter("always")
        keras = keras_quietly()
        if args.dtype_policy:
            set_dtype_policy(keras, args.dtype_policy)
        _check_optimizer(keras, args.optimizer)
        import_modules(args.imports)
        loaded = load(keras, source, args.input_shape, args.dtype_policy, safe_mode=not args.unsafe)
        cost = _estimate(loaded, args)
        fits = _max_batch(loaded, args) if args.fit_memory is not None else None
    text = render(cost, args.format, args.max_rows or None, loaded.label, args.depth)
    text = text if fits is None else _with_max_batch(text, args, fits)
    return Report(text, _shown_warnings(caught))


def _shown_warnings(caught) -> list[str]:
    """This package's warnings, each cause once, less those the report's "Not counted" line already lists."""
    from .notices import UncountedWarning

    messages = (str(record.message) for record in caught if not issubclass(record.category, UncountedWarning))
    ours = (one_line(m[len(_OURS):]) for m in messages if m.startswith(_OURS))
    return list(dict.fromkeys(ours))


def _check_optimizer(keras, name) -> None:
    if name is None:
        return
    try:
        keras.optimizers.get(name)
    except (ValueError, TypeError):
        raise CliError(f"unknown optimizer {name!r}: try adam, adamw, sgd, rmsprop, adagrad, lion") from None


def _estimate(loaded: LoadedModel, args):
    from .estimation import estimate

    try:
        return estimate(loaded.model, batch_size=args.batch_size, input_shape=loaded.input_shape,
                        optimizer=args.optimizer, distribution=args.devices)
    except Exception as error:  # noqa: BLE001  (a shape that does not fit fails inside the model)
        message = one_line(error)
        if loaded.input_shape is not None:
            message += " (check --input-shape)"
        elif "input_shape" in message:
            message += " (pass --input-shape)"
        raise CliError(message) from None


def _max_batch(loaded: LoadedModel, args) -> int:
    from .memory import max_batch_size

    return max_batch_size(loaded.model, args.fit_memory, optimizer=args.optimizer, input_shape=loaded.input_shape,
                          distribution=args.devices)


def _with_max_batch(text: str, args, fits: int) -> str:
    """The report with the largest batch that fits ``--fit-memory``: a JSON field or a closing line."""
    if args.format == "json":
        report = json.loads(text)
        report["fit_memory_bytes"], report["max_batch_size"] = args.fit_memory, fits
        return json.dumps(report, indent=2)
    from .cost import format_bytes

    per_device = f" per device over {args.devices} devices" if args.devices > 1 else ""
    return (f"{text}\nLargest batch whose estimated training memory{per_device} fits {format_bytes(args.fit_memory)}: "
            f"{fits}")


def render(cost, output_format: str, max_rows: int | None, label: str = "", depth: int | None = None) -> str:
    """The report in ``output_format``: table (by block at ``depth``, where given), markdown, csv or json."""
    if output_format == "json":
        return cost.to_json()
    if output_format == "csv":
        return cost.to_csv()
    if output_format == "markdown":
        return cost.to_markdown(max_rows=max_rows, label=label or None)
    return f"{cost.summary(max_rows=max_rows, label=label or None, depth=depth)}\n{_per_sample(cost)}"


def _per_sample(cost) -> str:
    """The per-sample line: MACs as papers quote them ('FLOPs'), and FLOPs of a training step."""
    from .cost import format_count

    return (
        f"Per sample: {format_count(cost.forward_macs_per_sample)}MAC forward (what papers call 'FLOPs'), "
        f"{format_count(cost.training_flops_per_sample)}FLOP per training step. 1 MAC = 2 FLOPs."
    )
