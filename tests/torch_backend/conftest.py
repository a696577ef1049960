"""Tests that need the torch backend: the callback and the cost model under torch."""

import os

import pytest

if os.environ.get("KERAS_BACKEND") != "torch":
    pytest.skip("run with KERAS_BACKEND=torch (tests/test_torch_backend.py does)", allow_module_level=True)
