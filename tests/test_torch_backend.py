"""Runs tests/torch_backend under the torch backend, in a subprocess: Keras picks its backend once per process."""

from tests.backend_suite import run_backend_suite


def test_torch_backend_suite(capsys):
    run_backend_suite("torch_backend", "torch", capsys)
