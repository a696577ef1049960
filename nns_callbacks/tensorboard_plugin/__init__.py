"""The ``nns`` TensorBoard plugin: a "Cost" tab with each run's cost model and throughput.

TensorBoard finds it through the ``tensorboard_plugins`` entry point; ``metadata``
is what the writer and the plugin share, so writing never imports the plugin.
"""
