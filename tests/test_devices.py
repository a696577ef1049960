"""nns_callbacks.devices: one probe table per backend, unknown on a CPU or a failure; the machine's name."""

import dataclasses
import socket
import subprocess
import sys

import pytest

from nns_callbacks import devices
from nns_callbacks.devices import accelerator_names, device_memory, peak_bytes_in_use, tf32_enabled


def _broken():
    raise RuntimeError("no driver")


def _with_probe(monkeypatch, backend, **probes):
    """Replace some of one backend's probes."""
    monkeypatch.setitem(devices.PROBES, backend, dataclasses.replace(devices.PROBES[backend], **probes))


def test_every_backend_has_every_probe():
    assert set(devices.PROBES) == {"jax", "tensorflow", "torch"}
    fields = {field.name for field in dataclasses.fields(devices.Probes)}
    assert fields == {"names", "tf32", "memory", "peak_in_use"}
    assert all(callable(getattr(probes, name)) for probes in devices.PROBES.values() for name in fields)


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch", "numpy"])
def test_this_cpu_machine_has_no_accelerator_and_no_device_memory(backend):
    assert accelerator_names(backend) == []
    assert device_memory(backend) is None
    assert peak_bytes_in_use(backend) is None


KNOWN = {"names": ["NVIDIA L4"], "tf32": True, "memory": 24_000_000_000, "peak_in_use": 1_000}
UNKNOWN = {"names": [], "tf32": False, "memory": None, "peak_in_use": None}


def _answers(backend):
    """Every probe's answer for one backend, by probe name."""
    return {"names": accelerator_names(backend), "tf32": tf32_enabled(backend), "memory": device_memory(backend),
            "peak_in_use": peak_bytes_in_use(backend)}


@pytest.mark.parametrize("probe", sorted(KNOWN))
def test_a_failing_probe_means_unknown_and_the_others_still_answer(monkeypatch, probe):
    probes = {name: (lambda value=value: value) for name, value in KNOWN.items()}
    _with_probe(monkeypatch, "torch", **{**probes, probe: _broken})
    assert _answers("torch") == {**KNOWN, probe: UNKNOWN[probe]}


def test_probes_answer_through_the_table(monkeypatch):
    _with_probe(monkeypatch, "jax", names=lambda: ["NVIDIA H200"], tf32=lambda: True,
                memory=lambda: 150_000_000_000, peak_in_use=lambda: 5_760_000_000)
    assert accelerator_names("jax") == ["NVIDIA H200"]
    assert tf32_enabled("jax") is True
    assert (device_memory("jax"), peak_bytes_in_use("jax")) == (150_000_000_000, 5_760_000_000)


def test_tf32_enabled_tensorflow_follows_its_switch():
    import tensorflow as tf

    before = tf.config.experimental.tensor_float_32_execution_enabled()
    try:
        tf.config.experimental.enable_tensor_float_32_execution(False)
        assert tf32_enabled("tensorflow") is False
        tf.config.experimental.enable_tensor_float_32_execution(True)
        assert tf32_enabled("tensorflow") is True
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(before)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [(None, True), ("default", True), ("tensorfloat32", True), ("bfloat16", True), ("high", True),
     ("highest", False), ("float32", False)],
)
def test_tf32_enabled_jax_reads_default_matmul_precision(setting, expected):
    import jax

    before = jax.config.jax_default_matmul_precision
    try:
        jax.config.update("jax_default_matmul_precision", setting)
        assert tf32_enabled("jax") is expected
    finally:
        jax.config.update("jax_default_matmul_precision", before)


def test_tensorflow_names_come_from_device_details(monkeypatch):
    import tensorflow as tf

    details = {"gpu0": "NVIDIA H100 80GB HBM3", "gpu1": "NVIDIA H100 80GB HBM3"}
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: list(details))
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda gpu: {"device_name": details[gpu], "compute_capability": (9, 0)})
    assert accelerator_names("tensorflow") == ["NVIDIA H100 80GB HBM3"] * 2


class FakeJaxDevice:
    def __init__(self, platform, kind, stats=None):
        self.platform, self.device_kind, self._stats = platform, kind, stats

    def memory_stats(self):
        return self._stats


def test_jax_names_skip_cpu_devices_and_memory_reads_the_first_accelerator(monkeypatch):
    import jax

    stats = {"bytes_limit": 150_000_000_000, "peak_bytes_in_use": 5_760_000_000}
    found = [FakeJaxDevice("gpu", "NVIDIA H200", stats), FakeJaxDevice("cpu", "cpu")]
    monkeypatch.setattr(jax, "devices", lambda: found)
    assert accelerator_names("jax") == ["NVIDIA H200"]
    assert (device_memory("jax"), peak_bytes_in_use("jax")) == (150_000_000_000, 5_760_000_000)


def test_jax_tpu_device_kind_is_its_name(monkeypatch):
    import jax

    monkeypatch.setattr(jax, "devices", lambda: [FakeJaxDevice("tpu", "TPU v5 lite", {})])
    assert accelerator_names("jax") == ["TPU v5 lite"]
    assert device_memory("jax") is None  # no bytes_limit: unknown, not 0
    assert peak_bytes_in_use("jax") is None


def test_machine_names_the_host_and_its_cpu():
    assert devices.machine() == f"{socket.gethostname()} ({devices.cpu_model()})"
    assert devices.cpu_model()


@pytest.mark.parametrize("module", ["devices", "chips", "timing", "measure_cache", "peaks", "bandwidth", "hardware"])
def test_importing_the_hardware_modules_imports_no_framework(module):
    code = (f"import sys, nns_callbacks.{module}\n"
            "print(sorted(m for m in ('tensorflow', 'jax', 'torch', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
