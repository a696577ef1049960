"""Tests on eight virtual CPU devices under the JAX backend: per-device figures against XLA's partitioned step."""

import os

import pytest

if os.environ.get("KERAS_BACKEND") != "jax" or "device_count=8" not in os.environ.get("XLA_FLAGS", ""):
    pytest.skip("run with KERAS_BACKEND=jax and XLA_FLAGS=--xla_force_host_platform_device_count=8 "
                "(tests/test_jax_devices.py does)", allow_module_level=True)
