"""Runs tests/jax_backend under the JAX backend, in a subprocess: Keras picks its backend once per process."""

import pytest

from tests.backend_suite import run_backend_suite


def test_jax_backend_suite(capsys):
    pytest.importorskip("jax")
    run_backend_suite("jax_backend", "jax", capsys, {"JAX_PLATFORMS": "cpu"})
