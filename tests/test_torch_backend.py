"""Runs tests/torch_backend under the torch backend, in a subprocess: Keras picks its backend once per process."""

import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).parent


def test_torch_backend_suite():
    env = dict(os.environ, KERAS_BACKEND="torch")
    command = [sys.executable, "-m", "pytest", str(HERE / "torch_backend"), "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=HERE.parent)
    print(result.stdout[-20000:], result.stderr[-5000:])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
