"""End to end: the quickstart trains with NNSCallback, then a real TensorBoard server shows the cost panels.

Everything is read back through TensorBoard's HTTP API (the endpoints its dashboards use),
on 127.0.0.1 only, with urllib.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# small_cnn: conv 3*3*3*16 + 16, conv 3*3*16*32 + 32, dense 8*8*32*4 + 4.
QUICKSTART_PARAMS = 448 + 4_640 + 8_196
EPOCHS = 2
STARTUP_TIMEOUT = 60
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def _env():
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(base: str, route: str, **query) -> bytes:
    url = f"{base}{route}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with _OPENER.open(url, timeout=10) as response:
        return response.read()


def fetch_json(base: str, route: str, **query):
    return json.loads(fetch(base, route, **query))


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    """Logs of a short quickstart run (2 epochs, 2 validation batches per epoch)."""
    root = tmp_path_factory.mktemp("e2e")
    logs = root / "logs"
    command = [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--log-dir", str(logs),
               "--epochs", str(EPOCHS), "--samples", "640"]
    done = subprocess.run(command, cwd=root, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"quickstart failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return logs


def _ready(base: str) -> bool:
    """The server answers and has loaded both runs, including the last epoch's scalars."""
    try:
        tags = fetch_json(base, "/data/plugin/scalars/tags")
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return False
    return "cost/params" in tags.get("train", {}) and "epoch_samples_per_sec" in tags.get("validation", {})


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def tensorboard(log_dir):
    """The base URL of a TensorBoard server on ``log_dir``, stopped after the module's tests."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(log_dir), "--host", "127.0.0.1",
               "--port", str(port), "--load_fast=false", "--reload_interval", "1"]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_env())
        try:
            _wait_until_ready(base, server, log)
            yield base
        finally:
            _stop(server)


def _wait_until_ready(base: str, server: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not _ready(base):
        if server.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            pytest.fail(f"TensorBoard did not serve the logs (exit {server.poll()}):\n{log.read()[-3000:]}")
        time.sleep(1)


def test_runs_train_and_validation(tensorboard):
    assert {"train", "validation"} <= set(fetch_json(tensorboard, "/data/runs"))


def test_cost_and_throughput_scalars(tensorboard):
    tags = fetch_json(tensorboard, "/data/plugin/scalars/tags")
    train, validation = set(tags["train"]), set(tags["validation"])
    cost = {"cost/params", "cost/forward_macs_per_sample", "cost/training_flops_per_sample",
            "cost/memory/activation_bytes", "cost/memory/training_bytes", "cost/peak_flops_per_sec"}
    throughput = {"epoch_samples_per_sec", "epoch_steps_per_sec", "epoch_tflops_per_sec", "epoch_mfu"}
    assert cost <= train
    assert throughput <= train
    assert throughput <= validation


def test_scalar_values(tensorboard):
    [(_, step, params)] = fetch_json(tensorboard, "/data/plugin/scalars/scalars", run="train", tag="cost/params")
    assert (step, params) == (0, QUICKSTART_PARAMS)
    rates = fetch_json(tensorboard, "/data/plugin/scalars/scalars", run="train", tag="epoch_samples_per_sec")
    assert [step for _, step, _ in rates] == list(range(EPOCHS))
    assert all(value > 0 for _, _, value in rates)
    mfu = fetch_json(tensorboard, "/data/plugin/scalars/scalars", run="train", tag="epoch_mfu")
    assert all(0 < value < 10 for _, _, value in mfu)  # peak measured on this CPU


def test_layer_table_and_notes_text(tensorboard):
    assert {"cost/layers", "cost/notes"} <= set(fetch_json(tensorboard, "/data/plugin/text/tags")["train"])
    [layers] = fetch_json(tensorboard, "/data/plugin/text/text", run="train", tag="cost/layers")
    assert "<table>" in layers["text"] and "conv2d_1" in layers["text"]  # Markdown rendered as HTML
    [notes] = fetch_json(tensorboard, "/data/plugin/text/text", run="train", tag="cost/notes")
    assert "multiply-add" in notes["text"]


def test_top_layers_image(tensorboard):
    assert "cost/top_layers" in fetch_json(tensorboard, "/data/plugin/images/tags")["train"]
    [image] = fetch_json(tensorboard, "/data/plugin/images/images", run="train", tag="cost/top_layers")
    png = fetch(tensorboard, "/data/plugin/images/individualImage?" + image["query"])
    assert png.startswith(b"\x89PNG")


def test_custom_scalars_layout(tensorboard):
    layout = fetch_json(tensorboard, "/data/plugin/custom_scalars/layout")
    titles = {category["title"]: category for category in layout["category"]}
    # the quick start measures per epoch on a CPU: no per-window or memory charts, which would stay empty
    assert set(titles) == {"nns_callbacks: throughput per epoch"}
    charts = {chart["title"] for chart in titles["nns_callbacks: throughput per epoch"]["chart"]}
    assert {"samples/s", "achieved TFLOP/s (1e12 FLOP/s)", "MFU (achieved / peak FLOP/s)"} <= charts
