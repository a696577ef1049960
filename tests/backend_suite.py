"""Run a backend's sub-suite (tests/jax_backend, tests/torch_backend) in a subprocess under that backend, its
progress streamed to the terminal as it comes: Keras picks its backend once per process, and a suite of several
minutes should not sit silent."""

from __future__ import annotations

import codecs
import os
import pathlib
import subprocess
import sys

TESTS = pathlib.Path(__file__).parent
TAIL_CHARS = 12000


def run_backend_suite(folder: str, backend: str, capsys, extra_env: dict | None = None) -> None:
    """``pytest tests/<folder>`` with ``KERAS_BACKEND=backend``: its output goes to the terminal while it runs
    (around pytest's capture), and a failure quotes its last lines."""
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONUNBUFFERED="1", **(extra_env or {}))
    command = [sys.executable, "-m", "pytest", str(TESTS / folder), "-q", "-p", "no:cacheprovider"]
    tail, decoder = "", codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two reads
    with capsys.disabled():
        print(f"\n[{folder}: KERAS_BACKEND={backend}, in a subprocess]", flush=True)
        with subprocess.Popen(command, env=env, cwd=TESTS.parent, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) as process:
            while chunk := os.read(process.stdout.fileno(), 4096):
                text = decoder.decode(chunk)
                sys.stdout.write(text)
                sys.stdout.flush()
                tail = (tail + text)[-TAIL_CHARS:]
            status = process.wait()
    assert status == 0, f"{folder} failed (exit status {status}); its last lines:\n{tail}"
