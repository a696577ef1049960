"""Runs tests/jax_devices under the JAX backend on eight virtual CPU devices, in a subprocess: the device count is
fixed when JAX starts."""

import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent


def test_jax_devices_suite():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=8")
    command = [sys.executable, "-m", "pytest", str(HERE / "jax_devices"), "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=HERE.parent)
    print(result.stdout[-20000:], result.stderr[-5000:])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
