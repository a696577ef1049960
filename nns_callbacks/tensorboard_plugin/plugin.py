"""The ``nns`` TensorBoard plugin: JSON routes under ``/data/plugin/nns/`` and the Cost tab's ES module.

Routes (all JSON but ``index.js``):
- ``runs``: the runs that hold a cost document, with their model names;
- ``layers?run=RUN``: that run's latest cost document (header figures, totals, per-layer rows, peak);
- ``throughput?run=RUN``: the run's rate and memory scalars over steps, with those of its sibling
  ``validation`` run.

It reads only through TensorBoard's data provider, imports nothing of Keras, and needs no network.
"""

from __future__ import annotations

import importlib.resources
import posixpath

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from . import metadata

_SCALARS_PLUGIN = "scalars"
_MAX_POINTS = 1000


def throughput_tags() -> list[str]:
    """The scalar tags the throughput charts draw: per epoch and per window, and the measured memory."""
    rates = [prefix + name for prefix in ("epoch_", "batch_") for name in metadata.RATE_NAMES]
    return rates + ["epoch_" + name for name in metadata.MEMORY_NAMES]


def sibling_validation_run(run: str) -> str | None:
    """``a/b/train`` -> ``a/b/validation``, as ``keras.callbacks.TensorBoard`` lays runs out; else ``None``."""
    head, tail = posixpath.split(run)
    if tail != "train":
        return None
    return posixpath.join(head, "validation") if head else "validation"


class NNSPlugin(base_plugin.TBPlugin):
    """The Cost tab: each run's cost model, per-layer table, top layers and throughput."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider

    def get_plugin_apps(self):
        return {
            "/index.js": self._serve_module,
            "/runs": self._serve_runs,
            "/layers": self._serve_layers,
            "/throughput": self._serve_throughput,
        }

    def is_active(self):
        return False  # active exactly when a run holds our summaries: see data_plugin_names

    def data_plugin_names(self):
        return (metadata.PLUGIN_NAME,)

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="Cost")

    # Data, as plain dicts (the tests call these through the routes).
    def runs(self, ctx, experiment: str) -> list[dict]:
        """Every run with a cost document: its name, model, batch size and the step it was written at."""
        documents = self._latest_documents(ctx, experiment, runs=None)
        return [
            {"run": run, "model": doc["model"], "batch_size": doc["batch_size"], "step": doc["step"]}
            for run, doc in sorted(documents.items())
        ]

    def layers(self, ctx, experiment: str, run: str) -> dict:
        """The run's latest cost document, with ``run``, ``step`` and ``wall_time`` added."""
        documents = self._latest_documents(ctx, experiment, runs=[run])
        if run not in documents:
            raise errors.NotFoundError(f"no cost model in run {run!r}")
        return documents[run]

    def throughput(self, ctx, experiment: str, run: str) -> dict:
        """``{"train": {tag: [[step, value], ...]}, "validation": {...}}`` of the rate and memory scalars."""
        validation = sibling_validation_run(run)
        runs = [run] + ([validation] if validation else [])
        scalars = self._data_provider.read_scalars(
            ctx,
            experiment_id=experiment,
            plugin_name=_SCALARS_PLUGIN,
            downsample=_MAX_POINTS,
            run_tag_filter=provider.RunTagFilter(runs=runs, tags=throughput_tags()),
        )

        def series(name):
            return {tag: [[d.step, d.value] for d in data] for tag, data in scalars.get(name, {}).items()}

        return {"train": series(run), "validation": series(validation) if validation else {}}

    def _latest_documents(self, ctx, experiment: str, runs) -> dict[str, dict]:
        tensors = self._data_provider.read_tensors(
            ctx,
            experiment_id=experiment,
            plugin_name=metadata.PLUGIN_NAME,
            downsample=1,
            run_tag_filter=provider.RunTagFilter(runs=runs, tags=[metadata.COST_TAG]),
        )
        documents = {}
        for run, tags in tensors.items():
            data = tags.get(metadata.COST_TAG)
            if not data:
                continue
            latest = data[-1]
            document = metadata.parse_document(latest.numpy.item())
            document.update(run=run, step=latest.step, wall_time=latest.wall_time)
            documents[run] = document
        return documents

    # Routes.
    @wrappers.Request.application
    def _serve_module(self, request):
        source = importlib.resources.files(__package__).joinpath("static", "index.js").read_bytes()
        return http_util.Respond(request, source, "application/javascript")

    @wrappers.Request.application
    def _serve_runs(self, request):
        ctx, experiment = _context(request)
        return http_util.Respond(request, self.runs(ctx, experiment), "application/json")

    @wrappers.Request.application
    def _serve_layers(self, request):
        ctx, experiment = _context(request)
        return http_util.Respond(request, self.layers(ctx, experiment, _run(request)), "application/json")

    @wrappers.Request.application
    def _serve_throughput(self, request):
        ctx, experiment = _context(request)
        return http_util.Respond(request, self.throughput(ctx, experiment, _run(request)), "application/json")


def _context(request):
    return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)


def _run(request) -> str:
    run = request.args.get("run")
    if not run:
        raise errors.InvalidArgumentError("the query needs ?run=RUN")
    return run
