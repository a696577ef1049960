"""Test set-up: the TensorFlow backend runs here; tests/jax_backend and tests/torch_backend run in subprocesses
under their backends (tests/test_jax_backend.py, tests/test_torch_backend.py)."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BACKEND_SUITES = {"jax": "jax_backend", "torch": "torch_backend"}
collect_ignore = [suite for backend, suite in BACKEND_SUITES.items() if os.environ.get("KERAS_BACKEND") != backend]
if os.environ.get("KERAS_BACKEND") != "jax" or "device_count=8" not in os.environ.get("XLA_FLAGS", ""):
    collect_ignore.append("jax_devices")  # eight virtual devices: tests/test_jax_devices.py


@pytest.fixture(autouse=True, scope="session")
def _temporary_measurement_cache(tmp_path_factory):
    """Peaks and bandwidths measured by the tests (examples too, in their subprocesses) go to a temporary
    cache, never the user's ~/.cache/nns_callbacks."""
    previous = os.environ.get("NNS_CACHE_DIR")
    os.environ["NNS_CACHE_DIR"] = str(tmp_path_factory.mktemp("nns-cache"))
    yield
    if previous is None:
        os.environ.pop("NNS_CACHE_DIR", None)
    else:
        os.environ["NNS_CACHE_DIR"] = previous


@pytest.fixture
def measurement_cache(tmp_path, monkeypatch):
    """An empty measurement cache of this test's own: the path of its file."""
    monkeypatch.setenv("NNS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "measurements.json"
