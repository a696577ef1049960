"""Tests that need the JAX backend: XLA's cost analysis and the callback under JAX."""

import os

import pytest

if os.environ.get("KERAS_BACKEND") != "jax":
    pytest.skip("run with KERAS_BACKEND=jax (tests/test_jax_backend.py does)", allow_module_level=True)
