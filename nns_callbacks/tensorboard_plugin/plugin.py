"""The ``nns`` TensorBoard plugin: JSON routes under ``/data/plugin/nns/`` and the Cost tab's ES modules
(``index.js``, and ``roofline.js`` which it imports).

Routes (all JSON but ``index.js``):
- ``runs``: every run with a cost document (``nns/cost``) or a run-status document (``nns/run``): its
  cost figures without the layer rows, its state (running, finished, interrupted) and the rule that
  decided it, the time of its last write, and the error of a document that cannot be read;
- ``layers?run=RUN``: that run's latest cost document (header figures, totals, per-layer rows, peak);
- ``throughput?run=RUN``: the run's rate and memory scalars over steps, with those of its sibling
  ``validation`` run.

A run TensorBoard does not know is 404 on every route; a known run without a cost document is 404 on
``layers``; one whose cost document cannot be read (not JSON, not an object, no ``model``, not UTF-8, not a
string tensor) is listed by ``runs`` with its error and answers 422 on ``layers``. It reads only through
TensorBoard's data provider (and, for a run's state, the writer's lock file where the logdir is local),
imports nothing of Keras, and needs no network.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import posixpath
import re
import time

import numpy as np
from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from . import metadata

try:
    import fcntl
except ImportError:  # no advisory locks here: a run's state falls back to the age of its last write
    fcntl = None

_SCALARS_PLUGIN = "scalars"
_MAX_POINTS = 1000
STALE_AFTER_S = 30 * 60
"""Where a run's lock cannot be checked: a run still "running" with no write for this long is interrupted."""
_SUMMARY_LEAVES = ("layers", "conventions", "roofline", "by_kind")
"""Cost-document fields the ``runs`` listing leaves out (the per-layer rows, the prose, the roofline's points and
the roll-up by kind): ``layers`` has them."""


class DocumentError(ValueError):
    """A JSON document of ours that cannot be read; the message says why."""


def throughput_tags() -> list[str]:
    """The scalar tags the throughput charts draw: per epoch and per window, the measured memory and the
    roofline's predicted step time."""
    rates = [prefix + name for prefix in ("epoch_", "batch_") for name in metadata.RATE_NAMES]
    return rates + ["epoch_" + name for name in metadata.MEMORY_NAMES + metadata.ROOFLINE_NAMES]


def sibling_validation_run(run: str) -> str | None:
    """``a/b/train`` -> ``a/b/validation``, as ``keras.callbacks.TensorBoard`` lays runs out; else ``None``."""
    head, tail = posixpath.split(run)
    if tail != "train":
        return None
    return posixpath.join(head, "validation") if head else "validation"


def parse_tensor_json(value) -> object:
    """The JSON value of a string tensor's one element (bytes or text), else ``DocumentError``."""
    array = np.asarray(value)
    if array.dtype.kind not in "OSU":
        raise DocumentError(f"a {array.dtype} tensor, not a JSON string")
    if array.size != 1:
        raise DocumentError(f"a string tensor of shape {list(array.shape)}, not one JSON string")
    item = array.item()
    if isinstance(item, bytes):
        try:
            item = item.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DocumentError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not isinstance(item, str):
        raise DocumentError(f"a tensor of {type(item).__name__}, not a JSON string")
    try:
        return json.loads(item)
    except ValueError as error:
        raise DocumentError(f"not JSON ({error})") from None


def parse_cost_document(value) -> dict:
    """The cost document (``ModelCost.to_dict()`` fields and ``peak``) of a tensor, else ``DocumentError``."""
    document = parse_tensor_json(value)
    if not isinstance(document, dict):
        raise DocumentError(f"a JSON {type(document).__name__}, not an object")
    if "model" not in document:
        raise DocumentError("a JSON object without 'model'")
    layers = document.get("layers", [])
    if not isinstance(layers, list) or not all(isinstance(row, dict) for row in layers):
        raise DocumentError("'layers' is not a list of objects")
    return document


def parse_status_document(value) -> dict:
    """The run-status document of a tensor, else ``DocumentError``."""
    document = parse_tensor_json(value)
    if not isinstance(document, dict):
        raise DocumentError(f"a JSON {type(document).__name__}, not an object")
    return document


def lock_path(logdir: str, run: str) -> str | None:
    """The writer lock of ``run`` where the logdir is a local folder holding it, else ``None``.

    ``a/train`` -> ``logdir/a/.nns-writer.lock``; ``a/writer-2/train`` (a second writer's runs) ->
    ``logdir/a/.nns-writer-2.lock``.
    """
    if not logdir or "://" in logdir:
        return None
    folder = os.path.join(logdir, *run.split("/"))
    if not os.path.isdir(folder):
        return None
    parent = os.path.dirname(os.path.normpath(folder))
    writer = re.fullmatch(r"writer-(\d+)", os.path.basename(parent))
    if writer:
        name = metadata.LOCK_NAME.replace(".lock", f"-{writer.group(1)}.lock")
        return os.path.join(os.path.dirname(parent), name)
    return os.path.join(parent, metadata.LOCK_NAME)


def lock_held(path: str) -> bool | None:
    """Whether a process holds ``path`` locked (``fcntl.flock``): ``False`` where the file is absent or
    unlocked, ``None`` where that cannot be told (no ``fcntl``, unreadable file).

    It takes a non-blocking shared lock for an instant and lets it go: a writer that claims the lock in
    that instant finds it taken and writes as a second writer (``writer-2/``), which is rare and visible.
    """
    if fcntl is None:
        return None
    try:
        handle = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
    finally:
        os.close(handle)


def run_state(status: dict | None, lock: str | None, last_write: float | None, now: float) -> dict:
    """``{"state", "rule", "reason"}``: ``running``, ``finished``, ``interrupted`` or ``unknown``, and the rule
    that decided it: ``document`` (the run-status document says so), ``lock`` (a run left ``running`` whose
    writer's lock is held, or is absent or free) or ``age`` (where the lock cannot be checked: no write for
    ``STALE_AFTER_S``)."""
    if status is None:
        return {"state": "unknown", "rule": None, "reason": "no run-status document (nns/run) in this run"}
    written = status.get("state")
    if written == "finished":
        return {"state": "finished", "rule": "document", "reason": "fit ended"}
    if written != "running":
        return {"state": "unknown", "rule": "document", "reason": f"unknown state {written!r}"}
    held = lock_held(lock) if lock else None
    if held is True:
        return {"state": "running", "rule": "lock", "reason": f"its writer holds {lock}"}
    if held is False:
        return {"state": "interrupted", "rule": "lock",
                "reason": f"left 'running', and no process holds {lock} (absent or unlocked): fit did not end"}
    why = "the logdir is not a local folder" if lock is None else f"{lock} cannot be checked"
    if last_write is None:
        return {"state": "running", "rule": "age", "reason": f"left 'running'; {why} and no write time is known"}
    age = max(0.0, now - last_write)
    if age > STALE_AFTER_S:
        return {"state": "interrupted", "rule": "age",
                "reason": f"left 'running' and nothing written for {age / 60:.0f} min "
                          f"(more than {STALE_AFTER_S // 60}); {why}"}
    return {"state": "running", "rule": "age",
            "reason": f"left 'running', last write {age:.0f} s ago (within {STALE_AFTER_S // 60} min); {why}"}


class NNSPlugin(base_plugin.TBPlugin):
    """The Cost tab: the runs' cost models and throughput compared, and one run's per-layer table."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider
        self._logdir = context.logdir or ""

    def get_plugin_apps(self):
        return {
            "/index.js": self._serve_module,
            "/roofline.js": self._serve_module,
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
        """Every run with a cost or run-status document: its cost figures (no layer rows), state, last write
        and the errors of documents that cannot be read."""
        documents = self._latest(ctx, experiment, runs=None)
        last_writes = self._last_writes(ctx, experiment)
        now = time.time()
        listing = []
        for run in sorted(documents):
            cost, status = documents[run].get(metadata.COST_TAG), documents[run].get(metadata.STATUS_TAG)
            entry = {"run": run, "model": None, "batch_size": None, "step": None, "wall_time": None, "cost": None,
                     "error": None, "updated": _latest_time(last_writes, run)}
            if cost is not None:
                entry.update(step=cost["step"], wall_time=cost["wall_time"], error=cost["error"])
                if cost["document"] is not None:
                    document = cost["document"]
                    entry.update(model=document.get("model"), batch_size=document.get("batch_size"),
                                 cost={k: v for k, v in document.items() if k not in _SUMMARY_LEAVES})
            entry["status"] = self._status(run, cost, status, entry["updated"], now)
            listing.append(entry)
        return listing

    def layers(self, ctx, experiment: str, run: str) -> dict:
        """The run's latest cost document, with ``run``, ``step`` and ``wall_time`` added."""
        self._check_run(ctx, experiment, run)
        cost = self._latest(ctx, experiment, runs=[run]).get(run, {}).get(metadata.COST_TAG)
        if cost is None:
            raise errors.NotFoundError(f"no cost model in run {run!r}")
        if cost["document"] is None:
            raise DocumentError(f"the cost document of run {run!r} cannot be read: {cost['error']}")
        return dict(cost["document"], run=run, step=cost["step"], wall_time=cost["wall_time"])

    def throughput(self, ctx, experiment: str, run: str) -> dict:
        """``{"train": {tag: [[step, value], ...]}, "validation": {...}}`` of the rate and memory scalars."""
        self._check_run(ctx, experiment, run)
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

    def _check_run(self, ctx, experiment: str, run: str) -> None:
        known = {r.run_name for r in self._data_provider.list_runs(ctx, experiment_id=experiment)}
        if run not in known:
            raise errors.NotFoundError(f"no run {run!r}")

    def _latest(self, ctx, experiment: str, runs) -> dict[str, dict[str, dict]]:
        """``{run: {tag: {"document", "error", "step", "wall_time"}}}`` of the latest cost and status documents;
        a document that cannot be read has ``document`` ``None`` and its ``error``."""
        tensors = self._data_provider.read_tensors(
            ctx,
            experiment_id=experiment,
            plugin_name=metadata.PLUGIN_NAME,
            downsample=1,
            run_tag_filter=provider.RunTagFilter(runs=runs, tags=[metadata.COST_TAG, metadata.STATUS_TAG]),
        )
        parsers = {metadata.COST_TAG: parse_cost_document, metadata.STATUS_TAG: parse_status_document}
        found: dict[str, dict[str, dict]] = {}
        for run, tags in tensors.items():
            for tag, parse in parsers.items():
                data = tags.get(tag)
                if not data:
                    continue
                latest = data[-1]
                try:
                    document, error = parse(latest.numpy), None
                except DocumentError as failure:
                    document, error = None, str(failure)
                found.setdefault(run, {})[tag] = {"document": document, "error": error, "step": latest.step,
                                                  "wall_time": latest.wall_time}
        return found

    def _last_writes(self, ctx, experiment: str) -> dict[str, float]:
        """The wall time of each run's last scalar or ``nns`` summary."""
        times: dict[str, float] = {}
        for plugin_name in (_SCALARS_PLUGIN, metadata.PLUGIN_NAME):
            listing = self._data_provider.list_scalars if plugin_name == _SCALARS_PLUGIN else self._data_provider.list_tensors
            for run, tags in listing(ctx, experiment_id=experiment, plugin_name=plugin_name).items():
                for series in tags.values():
                    times[run] = max(times.get(run, 0.0), series.max_wall_time)
        return times

    def _status(self, run: str, cost: dict | None, status: dict | None, last_write, now: float) -> dict:
        document = status["document"] if status else None
        result = run_state(document, lock_path(self._logdir, run), last_write, now)
        if cost is not None and cost["document"] is not None:
            result.update(cost="ok", cost_error=None)
        elif cost is not None:
            result.update(cost="damaged", cost_error=cost["error"])
        else:
            said = document.get("cost_error") if document else None
            result.update(cost="missing", cost_error=said if isinstance(said, str) else None)
        result.update(
            document=document,
            error=status["error"] if status else None,
            writer=document.get("writer") if document else None,
            backend=document.get("backend") if document else None,
        )
        return result

    # Routes.
    @wrappers.Request.application
    def _serve_module(self, request):
        """``index.js`` or the module it imports (``roofline.js``), by the request's last path part."""
        name = posixpath.basename(request.path)
        source = importlib.resources.files(__package__).joinpath("static", name).read_bytes()
        return http_util.Respond(request, source, "application/javascript")

    @wrappers.Request.application
    def _serve_runs(self, request):
        ctx, experiment = _context(request)
        return http_util.Respond(request, self.runs(ctx, experiment), "application/json")

    @wrappers.Request.application
    def _serve_layers(self, request):
        ctx, experiment = _context(request)
        run = _run(request)
        try:
            document = self.layers(ctx, experiment, run)
        except DocumentError as error:
            return http_util.Respond(request, {"run": run, "error": str(error)}, "application/json", code=422)
        return http_util.Respond(request, document, "application/json")

    @wrappers.Request.application
    def _serve_throughput(self, request):
        ctx, experiment = _context(request)
        return http_util.Respond(request, self.throughput(ctx, experiment, _run(request)), "application/json")


def _latest_time(times: dict[str, float], run: str) -> float | None:
    found = [times[name] for name in (run, sibling_validation_run(run)) if name in times]
    return max(found) if found else None


def _context(request):
    return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)


def _run(request) -> str:
    run = request.args.get("run")
    if not run:
        raise errors.InvalidArgumentError("the query needs ?run=RUN")
    return run
