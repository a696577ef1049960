"""Test set-up: the TensorFlow backend runs here; tests/jax_backend runs in a JAX subprocess."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

collect_ignore = [] if os.environ.get("KERAS_BACKEND") == "jax" else ["jax_backend"]
