"""Every question asked of the accelerator, for each backend, in one dispatch table.

``PROBES[backend]`` holds one ``Probes`` record: the accelerators' names, whether float32 matmuls run as
TF32, the first accelerator's memory capacity and the peak bytes it has held. The public functions ask
one probe and turn a missing backend, a CPU or any framework failure into the same "unknown" answer.
``machine()`` names this computer for the measurement cache.

No framework is imported at module import time: each probe imports its own lazily.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
import socket
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Probes:
    """One backend's probes of its accelerators; each may raise, which means unknown."""

    names: Callable[[], list[str]]
    tf32: Callable[[], bool]
    memory: Callable[[], int | None]
    peak_in_use: Callable[[], int | None]


def _jax_accelerator():
    """The first JAX device, None if it is a CPU."""
    import jax

    device = jax.devices()[0]
    return None if device.platform == "cpu" else device


def _jax_names() -> list[str]:
    """Device kinds of the non-CPU JAX devices."""
    import jax

    return [d.device_kind for d in jax.devices() if d.platform != "cpu"]


def _jax_tf32() -> bool:
    """Whether JAX's default matmul precision allows TF32 (or lower)."""
    import jax

    precision = jax.config.jax_default_matmul_precision
    return str(precision).lower() not in ("highest", "float32")


def _jax_memory() -> int | None:
    """Bytes the first JAX accelerator can hold."""
    device = _jax_accelerator()
    stats = (device.memory_stats() or {}) if device is not None else {}
    return int(stats.get("bytes_limit") or 0) or None


def _jax_peak_in_use() -> int | None:
    """Peak bytes the first JAX accelerator has held."""
    device = _jax_accelerator()
    stats = device.memory_stats() if device is not None else None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def _tf_gpu_name(tf, gpu) -> str:
    """Marketing name of one TensorFlow physical GPU, its device path if absent."""
    try:
        return tf.config.experimental.get_device_details(gpu)["device_name"]
    except Exception:  # noqa: BLE001 - any framework failure means "unknown"
        return gpu.name


def _tensorflow_names() -> list[str]:
    """Names of the GPUs (and TPU cores, by path) TensorFlow sees."""
    import tensorflow as tf

    names = [_tf_gpu_name(tf, gpu) for gpu in tf.config.list_physical_devices("GPU")]
    return names or [d.name for d in tf.config.list_logical_devices("TPU")]


def _tensorflow_tf32() -> bool:
    """Whether TensorFlow runs float32 matmuls as TF32."""
    import tensorflow as tf

    return bool(tf.config.experimental.tensor_float_32_execution_enabled())


def _tensorflow_memory() -> int | None:
    """Bytes the first TensorFlow GPU can hold."""
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return None
    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    return int(details.get("memory_limit") or 0) or None


def _tensorflow_peak_in_use() -> int | None:
    """Peak bytes the first TensorFlow GPU has held."""
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])


def _torch_cuda():
    """torch.cuda where a CUDA device is available, else None."""
    import torch

    return torch.cuda if torch.cuda.is_available() else None


def _torch_names() -> list[str]:
    """Names of the CUDA devices torch sees."""
    cuda = _torch_cuda()
    return [cuda.get_device_name(i) for i in range(cuda.device_count())] if cuda else []


def _torch_tf32() -> bool:
    """Whether torch runs float32 CUDA matmuls as TF32."""
    import torch

    return bool(torch.backends.cuda.matmul.allow_tf32)


def _torch_memory() -> int | None:
    """Bytes the first CUDA device holds."""
    cuda = _torch_cuda()
    return int(cuda.get_device_properties(0).total_memory) if cuda else None


def _torch_peak_in_use() -> int | None:
    """Peak bytes torch has allocated on the current CUDA device."""
    cuda = _torch_cuda()
    return int(cuda.max_memory_allocated()) if cuda else None


PROBES: dict[str, Probes] = {
    "jax": Probes(_jax_names, _jax_tf32, _jax_memory, _jax_peak_in_use),
    "tensorflow": Probes(_tensorflow_names, _tensorflow_tf32, _tensorflow_memory, _tensorflow_peak_in_use),
    "torch": Probes(_torch_names, _torch_tf32, _torch_memory, _torch_peak_in_use),
}


def _ask(backend: str, probe: str, unknown):
    """One probe's answer for a backend; `unknown` for another backend or any failure."""
    probes = PROBES.get(backend)
    try:
        return getattr(probes, probe)() if probes else unknown
    except Exception:  # noqa: BLE001 - any framework failure means "unknown"
        return unknown


def accelerator_names(backend: str) -> list[str]:
    """Names of the accelerators the backend sees; [] for CPU only or failure."""
    return list(_ask(backend, "names", []))


def tf32_enabled(backend: str) -> bool:
    """Whether float32 matmuls default to TF32 on this backend (False if unknown)."""
    return bool(_ask(backend, "tf32", False))


def device_memory(backend: str) -> int | None:
    """Bytes of memory on the first accelerator, or ``None`` (a CPU, or a backend that does not say)."""
    return _ask(backend, "memory", None)


def peak_bytes_in_use(backend: str) -> int | None:
    """The peak bytes the first accelerator has held so far, or ``None`` where the backend cannot tell."""
    return _ask(backend, "peak_in_use", None)


def _cpu_from_proc() -> str:
    """The CPU's model name from /proc/cpuinfo, '' where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.cache
def cpu_model() -> str:
    """The CPU's model name, as well as this system can tell."""
    return _cpu_from_proc() or platform.processor() or platform.machine() or "unknown CPU"


def machine() -> str:
    """This computer, for the measurement cache: its host name and CPU model."""
    return f"{socket.gethostname()} ({cpu_model()})"
