"""Test helpers for measured peaks and bandwidths: fake accelerator names (the cache fixture: conftest's
``measurement_cache``)."""

from nns_callbacks import devices


def fake_names(monkeypatch, names):
    """The accelerators the backend reports, as ``names``."""
    monkeypatch.setattr(devices, "accelerator_names", lambda backend: list(names))
