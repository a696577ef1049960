"""Keras and its backend imported without their start-up lines (TensorFlow's C++ logging, device probing)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys

_LOGGERS = ("absl", "tensorflow", "jax", "h5py")


def quiet_startup() -> None:
    """Import Keras with the backend's start-up lines silenced (TensorFlow's C++ logging, device probing).

    Call it before ``import keras``, as the examples do; later messages are left alone.
    """
    with native_stderr_silenced():
        keras = keras_quietly()
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # probes the devices now, while stderr is silenced


def keras_quietly():
    """``keras``, imported with TensorFlow's C++ log level raised and the frameworks' loggers at ERROR."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    import keras

    return keras


@contextlib.contextmanager
def silenced():
    """Meanwhile, swallow stray prints on stdout and native (C++) logging written to stderr."""
    with contextlib.redirect_stdout(io.StringIO()), native_stderr_silenced():
        yield


@contextlib.contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null meanwhile: TensorFlow logs there whatever its settings."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        saved = None
    if saved is None:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
