"""Test set-up: the TensorFlow backend runs here; tests/jax_backend and tests/torch_backend run in subprocesses
under their backends (tests/test_jax_backend.py, tests/test_torch_backend.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BACKEND_SUITES = {"jax": "jax_backend", "torch": "torch_backend"}
collect_ignore = [suite for backend, suite in BACKEND_SUITES.items() if os.environ.get("KERAS_BACKEND") != backend]
