"""``nns-summary``: outputs parse and match the published counts; every error is one line, no traceback."""

import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import warnings
import zipfile

import keras
import pandas as pd
import pytest

from nns_callbacks import estimate, max_batch_size, memory
from nns_callbacks.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
PREFIX = "nns-summary: error: "
# What TensorFlow's C++ runtime prints while it is imported, whatever TF_CPP_MIN_LOG_LEVEL says.
NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWE]\d{4} \d\d:\d\d:\d\d)")


def run_cli(capsys, *args):
    """(exit status, stdout, stderr) of ``main(args)`` in this process."""
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def tiny_model():
    inputs = keras.Input((8,), name="features")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(hidden), name="tiny")
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.fixture
def saved_model(tmp_path):
    path = tmp_path / "tiny.keras"
    tiny_model().save(path)
    return path


def test_resnet50_json_matches_published_counts(capsys):
    status, out, err = run_cli(capsys, "ResNet50", "--format", "json")
    assert status == 0, err
    report = json.loads(out)
    assert report["params"] == 25_636_712
    assert report["forward_macs"] == pytest.approx(3.86e9, rel=0.01)
    assert report["forward_flops"] > 2 * report["forward_macs"] * 0.99
    assert report["batch_size"] == 1
    assert {"forward_macs", "training_flops", "activation_bytes", "layers", "conventions"} <= set(report)


def test_name_is_case_insensitive_and_batch_scales_totals(capsys):
    status, out, _ = run_cli(capsys, "mobilenet_v2", "--format", "json", "--batch-size", "4", "--optimizer", "adam")
    assert status == 0
    report = json.loads(out)
    assert report["params"] == 3_538_984
    assert report["forward_macs_per_sample"] == pytest.approx(0.300e9, rel=0.01)
    assert report["forward_macs"] == 4 * report["forward_macs_per_sample"]
    assert report["optimizer"] == "Adam"
    assert report["optimizer_bytes"] == 2 * 4 * report["trainable_params"]


def test_csv_parses_with_pandas(capsys):
    status, out, _ = run_cli(capsys, "MobileNetV2", "--format", "csv", "--input-shape", "96,96,3")
    assert status == 0
    layers = pd.read_csv(io.StringIO(out))
    assert {"name", "type", "params", "forward_macs", "training_flops"} <= set(layers.columns)
    assert layers["params"].sum() == 3_538_984  # global pooling: the weights do not depend on the image size


def test_markdown_has_totals_and_a_layer_table(capsys):
    status, out, _ = run_cli(capsys, "MobileNetV2", "--format", "markdown", "--max-rows", "5")
    assert status == 0
    assert "| quantity | whole batch | per sample |" in out
    table = [line for line in out.splitlines() if line.startswith("| layer | type | output shape |")]
    assert len(table) == 1
    assert "more rows" in out


def test_table_is_the_default(capsys):
    status, out, _ = run_cli(capsys, "MobileNetV2", "--max-rows", "3")
    assert status == 0
    header = "keras.applications.MobileNetV2 (weights=None): batch 1, dtype policy float32, optimizer none"
    assert out.startswith(header + "\n")
    assert [line for line in out.splitlines() if ": batch " in line] == [header]  # one header, ModelCost.summary()'s
    assert "params 3,538,984" in out
    assert "what papers call 'FLOPs'" in out.splitlines()[-1]


def test_depth_sums_the_rows_by_block(capsys, tmp_path):
    inner_in = keras.Input((8,))
    inner = keras.Model(inner_in, keras.layers.Dense(4, name="b")(keras.layers.Dense(6, name="a")(inner_in)),
                        name="block")
    x = keras.Input((8,))
    model = keras.Model(x, keras.layers.Dense(2, name="head")(inner(x)))
    path = tmp_path / "nested.keras"
    model.save(path)
    status, out, err = run_cli(capsys, str(path), "--depth", "1")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[1].split()[:2] == ["block", "rows"]
    assert [line.split()[:2] for line in lines[2:4]] == [["block", "2"], ["head", "1"]]
    assert f"params {model.count_params():,}" in out


def test_help_shows_usage_and_exits_0(capsys):
    status, out, _ = run_cli(capsys, "--help")
    assert status == 0
    assert out.startswith("usage: nns-summary") and "--input-shape" in out
    assert "1 MAC = 2 FLOPs" in " ".join(out.split())


def test_list_names_applications(capsys):
    status, out, _ = run_cli(capsys, "--list")
    assert status == 0
    assert {"ResNet50", "MobileNetV2", "EfficientNetB0"} <= set(out.split())


def test_saved_model_round_trip(capsys, saved_model):
    expected = estimate(tiny_model())
    status, out, err = run_cli(capsys, str(saved_model), "--format", "json")
    assert status == 0, err
    report = json.loads(out)
    assert report["params"] == expected.params == 8 * 16 + 16 + 16 * 3 + 3
    assert report["forward_macs"] == expected.forward_macs == 8 * 16 + 16 * 3
    assert report["optimizer"] == "Adam"  # the compiled one, saved with the model


def test_saved_model_with_dtype_policy_and_batch(capsys, saved_model):
    reports = {}
    for policy in ("float32", "mixed_bfloat16"):
        status, out, err = run_cli(
            capsys, str(saved_model), "--format", "json", "--dtype-policy", policy, "--batch-size", "8"
        )
        assert status == 0, err
        reports[policy] = json.loads(out)
    half, full = reports["mixed_bfloat16"], reports["float32"]
    assert half["dtype_policy"] == "mixed_bfloat16"
    assert half["activation_bytes"] * 2 == full["activation_bytes"] > 0  # bfloat16 activations: 2 bytes
    assert half["weight_bytes"] == full["weight_bytes"]  # mixed precision keeps float32 weights
    assert keras.config.dtype_policy().name == "float32"  # the global policy is put back


def test_unbuilt_saved_model_takes_input_shape(capsys, tmp_path):
    path = tmp_path / "seq.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saving a model that is not built yet is the point
        keras.Sequential([keras.layers.Embedding(50, 8), keras.layers.LSTM(4)]).save(path)
    status, _, err = run_cli(capsys, str(path))
    assert status == 1 and "--input-shape" in err
    status, out, err = run_cli(capsys, str(path), "--input-shape", "20", "--format", "json")
    assert status == 0, err
    assert json.loads(out)["layers"][0]["output_shape"] == "(20, 8)"


def _corrupt(tmp_path):
    path = tmp_path / "corrupt.keras"
    path.write_bytes(b"not a zip archive")
    return [str(path)]


def _zip_without_config(tmp_path):
    path = tmp_path / "empty.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
    return [str(path)]


def _saved(tmp_path):
    path = tmp_path / "tiny.keras"
    tiny_model().save(path)
    return str(path)


ERROR_CASES = [
    pytest.param(lambda tmp: ["resnt50"], 1, "did you mean ResNet50", id="unknown-name"),
    pytest.param(lambda tmp: ["ResNet50", "--input-shape", "10,10,3"], 1, "32x32", id="shape-too-small"),
    pytest.param(lambda tmp: ["ResNet50", "--input-shape", "abc"], 2, "invalid shape", id="malformed-shape"),
    pytest.param(lambda tmp: ["ResNet50", "--input-shape", "224,0,3"], 2, "invalid shape", id="zero-in-shape"),
    pytest.param(lambda tmp: ["ResNet50", "--batch-size", "0"], 2, "positive integer", id="zero-batch"),
    pytest.param(lambda tmp: ["ResNet50", "--batch-size", "-4"], 2, "positive integer", id="negative-batch"),
    pytest.param(lambda tmp: ["ResNet50", "--batch-size", "two"], 2, "not an integer", id="text-batch"),
    pytest.param(lambda tmp: ["ResNet50", "--format", "xml"], 2, "invalid choice", id="bad-format"),
    pytest.param(lambda tmp: ["ResNet50", "--max-rows", "-1"], 2, "--max-rows", id="negative-max-rows"),
    pytest.param(lambda tmp: [], 2, "MODEL", id="no-model"),
    pytest.param(lambda tmp: ["ResNet50", "--optimizer", "nope"], 1, "unknown optimizer", id="unknown-optimizer"),
    pytest.param(lambda tmp: ["ResNet50", "--dtype-policy", "nope"], 1, "unknown dtype policy", id="bad-policy"),
    pytest.param(lambda tmp: [str(tmp / "missing.keras")], 1, "no such file", id="missing-file"),
    pytest.param(lambda tmp: [str(tmp)], 1, "is a directory", id="directory"),
    pytest.param(_corrupt, 1, "cannot load", id="corrupt-file"),
    pytest.param(_zip_without_config, 1, "cannot load", id="zip-without-model"),
    pytest.param(lambda tmp: [_saved(tmp), "--input-shape", "10"], 1, "does not fit", id="shape-mismatch-file"),
    pytest.param(lambda tmp: ["ResNet50", "--input-shape", "-1,2"], 2, "invalid shape", id="negative-shape"),
    pytest.param(lambda tmp: ["ResNet50", "--input-shape", "96,96,3", "--input-shape", "96,96,3"], 1,
                 "ResNet50 has one input: give --input-shape once", id="two-shapes-one-input"),
    pytest.param(lambda tmp: ["ResNet50", "--fit-memory", "-5GB"], 2,
                 "argument --fit-memory: memory size '-5GB' must be positive", id="fit-memory-negative"),
    pytest.param(lambda tmp: ["ResNet50", "--fit-memory", "0.5"], 2,
                 "argument --fit-memory: memory size '0.5' is less than 1 byte", id="fit-memory-below-a-byte"),
    pytest.param(lambda tmp: ["ResNet50", "--fit-memory", "2000TiB"], 2,
                 "argument --fit-memory: memory size '2000TiB' is more than any device holds", id="fit-memory-huge"),
    pytest.param(lambda tmp: ["ResNet50", "--fit-memory", "9" * 400 + "TB"], 2,
                 "is more than any device holds", id="fit-memory-overflow"),
    pytest.param(lambda tmp: ["MobileNetV2", "--import", "tests.fixtures.exits_on_import"], 1,
                 "--import tests.fixtures.exits_on_import: the module exited with status 3 while being imported",
                 id="import-exits"),
    pytest.param(lambda tmp: ["MobileNetV2", "--import", "no_such_module_for_nns"], 1,
                 "--import no_such_module_for_nns: no module named 'no_such_module_for_nns'", id="import-missing"),
]


@pytest.mark.parametrize(("make_args", "status", "message"), ERROR_CASES)
def test_errors_are_one_line_without_traceback(capsys, tmp_path, make_args, status, message):
    code, out, err = run_cli(capsys, *make_args(tmp_path))
    assert code == status
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX)
    assert message in lines[0]


def _command():
    """The installed console script when there is one, else ``python -m nns_callbacks``."""
    script = shutil.which("nns-summary", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "nns_callbacks"]


def test_command_line_bad_name_is_one_line_without_traceback():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    done = subprocess.run(
        [*_command(), "resnet5O"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    ours = [line for line in done.stderr.splitlines() if not NATIVE_LOG.match(line)]
    assert len(ours) == 1, done.stderr
    assert ours[0].startswith(f"{PREFIX}'resnet5O' is neither a keras.applications model")
    assert "did you mean ResNet50" in ours[0]


@pytest.mark.parametrize(("output_format", "size_text"), [("table", "256MiB"), ("json", "0.25GiB")])
def test_fit_memory_names_the_largest_batch_that_fits(capsys, output_format, size_text):
    size = 256 * 2**20  # a fraction of a unit is fine: 0.25GiB
    status, out, _ = run_cli(capsys, "MobileNetV2", "--input-shape", "96,96,3", "--optimizer", "adam",
                             "--fit-memory", size_text, "--format", output_format)
    assert status == 0
    fits = json.loads(out)["max_batch_size"] if output_format == "json" else int(out.strip().rsplit(" ", 1)[-1])
    assert fits > 0
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
    needed = [estimate(model, batch_size=b, optimizer="adam").training_bytes for b in (fits, fits + 1)]
    assert needed[0] <= size < needed[1]


@pytest.mark.parametrize(("args", "message"), [(["--fit-memory", "lots"], "80GiB"), (["--fit-memory", "1GB", "--format", "csv"], "table, markdown or json")])
def test_fit_memory_mistakes_are_one_line(capsys, args, message):
    status, _, err = run_cli(capsys, "MobileNetV2", *args)
    assert status != 0 and message in err and len(err.strip().splitlines()) <= 3


def lambda_model_file(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 3.0, name="triple")(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    return path


def test_a_lambda_needs_the_unsafe_opt_in_and_loads_with_it(capsys, tmp_path):
    path = lambda_model_file(tmp_path)
    status, _, err = run_cli(capsys, str(path))
    assert status != 0 and "--unsafe" in err
    status, out, err = run_cli(capsys, str(path), "--unsafe", "--format", "json")
    assert status == 0, err
    assert json.loads(out)["forward_flops"] == 4  # the Lambda's x * 3.0 is traced: 4 multiplies


def custom_layer_file(tmp_path, script_dir):
    """Save a model with a registered custom layer in a separate process, so this one has no registration."""
    code = (
        "import sys, keras; sys.path.insert(0, sys.argv[2]); from tests.fixtures.custom_layers import Doubling; "
        "i = keras.Input((4,)); keras.Model(i, Doubling(name='double')(i)).save(sys.argv[1])"
    )
    path = tmp_path / "custom.keras"
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    subprocess.run([sys.executable, "-c", code, str(path), script_dir], check=True, env=env, capture_output=True)
    return path


def test_a_custom_class_is_named_and_loads_once_its_module_is_imported(capsys, tmp_path):
    root = str(pathlib.Path(__file__).resolve().parents[1])
    path = custom_layer_file(tmp_path, root)
    sys.modules.pop("tests.fixtures.custom_layers", None)
    keras.saving.get_custom_objects().pop("nns_fixtures>Doubling", None)
    status, _, err = run_cli(capsys, str(path))
    assert status != 0 and "Doubling" in err and "--import" in err
    status, out, err = run_cli(capsys, str(path), "--import", "tests.fixtures.custom_layers", "--format", "json")
    assert status == 0, err
    assert json.loads(out)["forward_flops"] == 4


def test_a_loaded_model_keeps_the_dtype_policy_it_was_saved_with(capsys, tmp_path):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny_model()
    finally:
        keras.config.set_dtype_policy(previous)
    path = tmp_path / "mixed.keras"
    model.save(path)
    status, out, err = run_cli(capsys, str(path), "--format", "json")
    assert status == 0, err
    assert json.loads(out)["dtype_policy"] == "mixed_float16"
    assert estimate(keras.saving.load_model(path)).dtype_policy == "mixed_float16"


# One header, one "Not counted" line, this package's warnings once each


def sorting_model_file(tmp_path):
    """A saved model with a layer whose op (a user's own) has no cost rule."""
    from tests.fixtures.cli_extras import Sorting

    inputs = keras.Input((8,))
    path = tmp_path / "sorting.keras"
    keras.Model(inputs, Sorting(name="sorted")(keras.layers.Dense(4, name="fc")(inputs))).save(path)
    return path


@pytest.mark.parametrize("output_format", ["table", "markdown"])
def test_what_is_not_counted_is_one_line_under_one_header(capsys, tmp_path, output_format):
    path = sorting_model_file(tmp_path)
    status, out, err = run_cli(capsys, str(path), "--import", "tests.fixtures.cli_extras", "--format", output_format)
    assert status == 0, err
    lines = out.splitlines()
    assert [line for line in lines if "Not counted" in line] == ["Not counted (cost 0): ops.Mystery x1"]
    assert [line for line in lines if "batch 1, " in line] == [lines[0]]
    assert str(path) in lines[0]  # the label, not the model's name, heads the one header
    assert "Mystery" not in err  # the "Not counted" line says it: no warning repeats it


def test_warnings_are_shown_once_per_cause(capsys, saved_model):
    # --fit-memory estimates several batches: the optimizer without a cost entry warns each time
    status, out, err = run_cli(capsys, str(saved_model), "--import", "tests.fixtures.cli_extras",
                               "--optimizer", "nns_fixtures>PlainDescent", "--fit-memory", "1MiB")
    assert status == 0, err
    assert "optimizer PlainDescent" in out
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nns-summary: warning: ") and "PlainDescent" in lines[0]


# Quiet, fast failures: nothing of a framework is imported for a listing, a typo or a file that will not do

FRAMEWORKS = ("tensorflow", "jax", "torch", "keras")
_RUN_AND_LIST_FRAMEWORKS = (
    "import json, sys; from nns_callbacks.cli import main; status = main(sys.argv[1:]); "
    f"print(json.dumps([status, sorted(m for m in sys.modules if m.partition('.')[0] in {FRAMEWORKS!r})]))"
)


def _fifo(tmp_path):
    path = tmp_path / "pipe.keras"
    os.mkfifo(path)  # opening it would wait for a writer forever
    return [str(path)]


@pytest.mark.parametrize(("make_args", "status", "message"), [
    pytest.param(lambda tmp: ["--list"], 0, "", id="list"),
    pytest.param(lambda tmp: [str(tmp / "nosuch.keras")], 1, "no such file", id="missing-file"),
    pytest.param(lambda tmp: ["resnt50"], 1, "did you mean ResNet50", id="unknown-name"),
    pytest.param(_fifo, 1, "is a named pipe (FIFO), not a regular file: give MODEL a saved .keras file", id="fifo"),
    pytest.param(_corrupt, 1, "not a .keras archive", id="corrupt-file"),
    pytest.param(lambda tmp: ["ResNet50", "--import", "no_such_module_for_nns"], 1, "no module named", id="import"),
    pytest.param(lambda tmp: ["ResNet50", "--fit-memory", "-5GB"], 2, "must be positive", id="fit-memory"),
    pytest.param(lambda tmp: ["ResNet50", "--input-shape", "9,9,3", "--input-shape", "9,9,3"], 1, "one input",
                 id="two-shapes-one-input"),
    pytest.param(lambda tmp: ["ResNet50", "--depth", "0"], 2, "positive integer", id="depth-zero"),
    pytest.param(lambda tmp: ["ResNet50", "--depth", "1", "--format", "json"], 2, "--depth works with --format table",
                 id="depth-json"),
])
def test_quick_answers_import_no_framework(tmp_path, make_args, status, message):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", _RUN_AND_LIST_FRAMEWORKS, *make_args(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    code, imported = json.loads(done.stdout.splitlines()[-1])
    assert (code, imported) == (status, [])
    assert message in done.stderr
    if status == 0:
        assert {"ResNet50", "MobileNetV2", "EfficientNetB0"} <= set(done.stdout.split())


def test_list_is_what_keras_applications_holds(capsys):
    status, out, _ = run_cli(capsys, "--list")
    assert status == 0
    expected = sorted(n for n in dir(keras.applications) if n[:1].isupper() and callable(getattr(keras.applications, n)))
    assert out.split() == expected


# Memory sizes as --fit-memory and max_batch_size read them


@pytest.mark.parametrize(("text", "expected"), [("1.5GiB", 3 * 2**29), ("+2 KB", 2000), (".5KiB", 512), ("1", 1)])
def test_memory_sizes_may_be_fractions_of_a_unit(text, expected):
    assert memory.parse_bytes(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("-5GB", "must be positive"), ("0", "must be positive"), ("0.5", "less than 1 byte"),
    ("1025TiB", "more than any device holds"), ("9" * 400, "more than any device holds"),
])
def test_memory_sizes_out_of_range_say_why(text, message):
    with pytest.raises(ValueError, match=message):
        memory.parse_bytes(text)


@pytest.mark.parametrize(("memory_bytes", "message"), [
    pytest.param(float("inf"), r"memory_bytes=inf is more than any device holds", id="inf"),
    pytest.param(10**400, r"is more than any device holds", id="huge-int"),
    pytest.param(float("nan"), r"memory_bytes=nan is not a number", id="nan"),
    pytest.param(-1, r"memory_bytes=-1 must be positive", id="negative"),
    pytest.param(0.5, r"memory_bytes=0.5 is less than 1 byte", id="half-a-byte"),
    pytest.param("-5GB", r"memory_bytes: memory size '-5GB' must be positive", id="negative-text"),
])
def test_max_batch_size_names_memory_bytes_when_it_is_out_of_range(memory_bytes, message):
    with pytest.raises(ValueError, match=message):
        max_batch_size(tiny_model(), memory_bytes)
