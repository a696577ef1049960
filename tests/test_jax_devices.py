"""Runs tests/jax_devices under the JAX backend on eight virtual CPU devices, in a subprocess: the device count is
fixed when JAX starts."""

import pytest

from tests.backend_suite import run_backend_suite


def test_jax_devices_suite(capsys):
    pytest.importorskip("jax")
    run_backend_suite("jax_devices", "jax", capsys,
                      {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
