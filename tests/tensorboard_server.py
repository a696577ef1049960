"""A real TensorBoard server on 127.0.0.1 for the tests, read with urllib (never through a proxy), and the
headless Chromium the browser tests drive with Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
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
STARTUP_TIMEOUT = 60
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]


def env() -> dict:
    """This process's environment with this checkout first on ``PYTHONPATH`` (so the server imports its plugin)."""
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


def status_of(base: str, route: str, **query) -> int:
    """The HTTP status of a GET (errors included)."""
    try:
        fetch(base, route, **query)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


@contextlib.contextmanager
def serve(log_dir, ready) -> str:
    """The base URL of a TensorBoard server on ``log_dir`` once ``ready(base)`` is true; stopped on exit."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(log_dir), "--host", "127.0.0.1",
               "--port", str(port), "--load_fast=false", "--reload_interval", "1"]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env())
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not _answers(base, ready):
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"TensorBoard did not serve the logs (exit {server.poll()}):\n{log.read()[-3000:]}")
                time.sleep(0.5)
            served = fetch(base, "/data/plugin/nns/index.js")
            assert served == (ROOT / "nns_callbacks/tensorboard_plugin/static/index.js").read_bytes(), (
                "the server runs another checkout's nns plugin")
            yield base
        finally:
            _stop(server)


def _answers(base, ready) -> bool:
    try:
        return bool(ready(base))
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return False


def wait_for(condition, timeout: float = 30, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not _answers(None, lambda _: condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {message}")
        time.sleep(0.3)


def chromium() -> str:
    """Debian's Chromium (``.ci/run`` installs it and sets ``NNS_REQUIRE_BROWSER``); elsewhere the browser
    tests are skipped without it."""
    path = os.environ.get("NNS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        if os.environ.get("NNS_REQUIRE_BROWSER"):
            pytest.fail(f"no Chromium at {path}: .ci/run installs Debian's chromium package")
        pytest.skip(f"no Chromium at {path}")
    return path
