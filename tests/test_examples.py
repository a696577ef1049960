"""Every example runs to the end with small arguments; the training ones leave TensorBoard event files."""

import os
import pathlib
import subprocess
import sys

import pandas as pd
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SMALL_TRAINING = ["--epochs", "1", "--samples", "640"]  # 2 validation batches: the first one warms up
TRAINING_EXAMPLES = ["quickstart", "image_cnn", "sequence_rnn", "small_transformer"]


def run_example(name: str, *args: str, cwd, quieted: bool = True) -> subprocess.CompletedProcess:
    """Run ``examples/<name>.py`` as a user would, from ``cwd``; ``quieted=False``: without the test suite's
    TF_CPP_MIN_LOG_LEVEL, as a user's shell runs it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if quieted:
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    return done


def test_every_example_is_tested():
    on_disk = {path.stem for path in EXAMPLES.glob("*.py")}
    assert on_disk == {*TRAINING_EXAMPLES, "compare_applications"}


def assert_logs(log_dir: pathlib.Path) -> None:
    for run in ("train", "validation"):
        assert list((log_dir / run).glob("events.out.tfevents.*")), f"no {run} events in {log_dir}"


def test_quickstart_prints_cost_table_throughput_and_where_to_look(tmp_path):
    done = run_example("quickstart", *SMALL_TRAINING, cwd=tmp_path, quieted=False)  # --log-dir: logs/quickstart
    assert_logs(tmp_path / "logs" / "quickstart")
    out = done.stdout
    assert out.index("forward_macs") < out.index("epoch 1: train")  # print_summary=True: the table comes first
    assert "samples/s" in out and "GFLOP/s" in out and "MFU" in out  # peak_flops="measure": a CPU has an MFU
    assert out.rstrip().endswith(".venv/bin/tensorboard --logdir logs  # this one: logs/quickstart")
    assert "oneDNN" not in done.stderr and "cuda" not in done.stderr.lower()  # no TensorFlow start-up lines


@pytest.mark.parametrize("name", [n for n in TRAINING_EXAMPLES if n != "quickstart"])
def test_each_example_writes_to_a_log_directory_of_its_own(name, tmp_path):
    run_example(name, *SMALL_TRAINING, cwd=tmp_path)
    assert_logs(tmp_path / "logs" / name)


@pytest.mark.parametrize("name", [n for n in TRAINING_EXAMPLES if n != "quickstart"])
def test_training_example_writes_logs(name, tmp_path):
    log_dir = tmp_path / "runs"
    done = run_example(name, *SMALL_TRAINING, "--log-dir", str(log_dir), cwd=tmp_path)
    assert_logs(log_dir)
    assert "samples/s" in done.stdout
    assert done.stdout.rstrip().endswith(f"# this one: {log_dir}")


def test_compare_applications_table_and_csv(tmp_path):
    csv = tmp_path / "costs.csv"
    done = run_example("compare_applications", "--models", "ResNet50", "MobileNetV2", "--csv", str(csv), cwd=tmp_path)
    assert "| model | input | params (M) | forward GMAC |" in done.stdout
    table = pd.read_csv(csv)
    assert list(table["model"]) == ["MobileNetV2", "ResNet50"]  # sorted by forward MACs
    resnet = table.set_index("model").loc["ResNet50"]
    assert resnet["params (M)"] == pytest.approx(25.636712)
    assert resnet["forward GMAC"] == pytest.approx(3.86, rel=0.01)
