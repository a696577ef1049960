"""Event files for the Cost tab's tests, written with TensorBoard's own writer and protos (no Keras, no
callback): the ``nns/cost`` and ``nns/run`` documents and the ``epoch_*`` scalars the callback writes."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from nns_callbacks.tensorboard_plugin import metadata

try:
    import fcntl
except ImportError:  # pragma: no cover - the browser tests run on Linux
    fcntl = None


def document_value(tag: str, payload) -> summary_pb2.Summary.Value:
    """A summary value with our plugin's metadata: ``payload`` a dict (JSON), bytes, text or any array."""
    if isinstance(payload, (dict, list)):
        payload = json.dumps(payload).encode("utf-8")
    array = np.array(payload, dtype=object) if isinstance(payload, (bytes, str)) else np.asarray(payload)
    return summary_pb2.Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(),
                                     tensor=tensor_util.make_tensor_proto(array))


def scalar_value(tag: str, value: float) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(tag=tag, simple_value=float(value))


class Run:
    """One run folder's event file: ``add(step, *values)``, then ``close()``."""

    def __init__(self, folder):
        self.writer = EventFileWriter(str(folder), filename_suffix=".test")

    def add(self, step: int, *values, wall_time: float | None = None) -> None:
        event = event_pb2.Event(wall_time=wall_time or time.time(), step=step, summary=summary_pb2.Summary(value=values))
        self.writer.add_event(event)

    def close(self) -> None:
        self.writer.close()


def layer_rows(widths: list[int], batch_size: int, input_width: int = 1024, slots: int = 2) -> list[dict]:
    """Dense layers of ``widths`` on ``input_width`` features, in ``ModelCost.layers`` records, float32, with the
    bytes moved of an optimizer of ``slots`` slots per weight."""
    rows, previous = [], input_width
    for i, width in enumerate(widths):
        params = previous * width + width
        macs = batch_size * previous * width
        forward = 2 * macs + batch_size * width
        x, y = 4 * batch_size * previous, 4 * batch_size * width
        input_grad = (4 * params + x) if i else 0  # the first layer computes no input gradient
        moved = {"forward_bytes_moved": x + 4 * params + y, "backward_bytes_moved": y + x + 4 * params + input_grad,
                 "optimizer_bytes_moved": (3 + 2 * slots) * 4 * params}
        moved["training_bytes_moved"] = sum(moved.values())
        rows.append({"name": f"dense_{i}" if i else "dense", "type": "Dense", "call": 1,
                     "output_shape": f"({width},)", "params": params, "trainable_params": params,
                     "forward_macs": macs, "forward_flops": forward, "backward_flops": 2 * forward,
                     "training_flops": 3 * forward, "weight_bytes": 4 * params,
                     "activation_bytes": 4 * batch_size * previous, **moved,
                     "arithmetic_intensity": 3 * forward / moved["training_bytes_moved"], "counted": True})
        previous = width
    for key, share in (("forward_flops", "forward_flops_share"), ("training_flops", "training_flops_share"),
                       ("activation_bytes", "activation_bytes_share"),
                       ("training_bytes_moved", "training_bytes_moved_share")):
        total = sum(row[key] for row in rows)
        for row in rows:
            row[share] = row[key] / total
    return rows


BYTES_MOVED = ("forward_bytes_moved", "backward_bytes_moved", "optimizer_bytes_moved", "training_bytes_moved")


def cost_document(model: str, widths: list[int], batch_size: int, optimizer: str = "adam",
                  peak: dict | None = None, bandwidth: float | None = None, bytes_moved: bool = True,
                  **extra) -> dict:
    """A cost document in the callback's format (``ModelCost.to_dict()`` fields, ``peak``, and where
    ``bandwidth`` (bytes/s) and the peak are given, ``bandwidth``, ``roofline`` and ``by_kind``);
    ``bytes_moved=False``: as an older callback wrote it, without bytes moved."""
    slots = 2 if optimizer == "adam" else 0
    rows = layer_rows(widths, batch_size, slots=slots)
    total = {key: sum(row[key] for row in rows) for key in
             ("params", "forward_macs", "forward_flops", "backward_flops", "training_flops", "weight_bytes",
              "activation_bytes", *BYTES_MOVED)}
    document = {
        "model": model, "batch_size": batch_size, "dtype_policy": "float32", "optimizer": optimizer,
        "params": total["params"], "trainable_params": total["params"], "non_trainable_params": 0,
        "forward_macs": total["forward_macs"], "forward_flops": total["forward_flops"],
        "backward_flops": total["backward_flops"], "optimizer_flops": 0, "training_flops": total["training_flops"],
        "weight_bytes": total["weight_bytes"], "gradient_bytes": total["weight_bytes"],
        "optimizer_bytes": slots * total["weight_bytes"], "activation_bytes": total["activation_bytes"],
        "training_bytes": (2 + slots) * total["weight_bytes"] + total["activation_bytes"],
        "unsupported": {}, "conventions": "A MAC is one multiply-add.", "layers": rows, "peak": peak,
    }
    for key in ("forward_macs", "forward_flops", "backward_flops", "training_flops", "activation_bytes"):
        document[f"{key}_per_sample"] = document[key] / batch_size
    if bytes_moved:
        document.update({key: total[key] for key in BYTES_MOVED})
        document["arithmetic_intensity"] = total["training_flops"] / total["training_bytes_moved"]
        document.update(roofline_parts(document, peak, bandwidth))
    else:
        for row in rows:
            for key in (*BYTES_MOVED, "arithmetic_intensity", "training_bytes_moved_share"):
                del row[key]
    document.update(extra)
    return document


def roofline_parts(document: dict, peak: dict | None, bandwidth: float | None) -> dict:
    """``bandwidth``, ``roofline`` and ``by_kind`` as ``nns_callbacks.panels`` writes them (no Keras needed)."""
    import pandas as pd

    from nns_callbacks.bandwidth import Bandwidth
    from nns_callbacks.cost import ModelCost
    from nns_callbacks.panels import cost_document as panels_document
    from nns_callbacks.roofline import roofline

    fields = {key: document[key] for key in ModelCost.__dataclass_fields__ if key in document and key != "layers"}
    cost = ModelCost(**fields, model_name=document["model"], layers=pd.DataFrame(document["layers"]))
    rates = None if peak is None or bandwidth is None else (peak["flops_per_sec"], bandwidth)
    found = None if rates is None else roofline(cost.layers, *rates)
    stated = None if bandwidth is None else Bandwidth(bandwidth, "datasheet", (peak or {}).get("device", "?"), 1)
    written = panels_document(cost, None, stated, found)
    return {key: written[key] for key in ("bandwidth", "roofline", "by_kind")}


def status_document(state: str, cost: str = "ok", cost_error: str | None = None, pid: int = 4242) -> dict:
    return {"version": 1, "state": state, "cost": cost, "cost_error": cost_error,
            "writer": {"host": "test-host", "pid": pid, "id": f"writer-{pid}"}, "backend": "tensorflow"}


def peak(flops_per_sec: float, device: str = "NVIDIA H100", precision: str = "bfloat16",
         source: str = "datasheet", devices: int = 1) -> dict:
    return {"flops_per_sec": flops_per_sec, "source": source, "device": device, "precision": precision,
            "devices": devices}


def write_run(log_dir, *, cost=None, status=None, final_status=None, epochs: list[dict] | None = None,
              validation: list[dict] | None = None, lock: bool = True) -> None:
    """``log_dir/train`` (and ``validation``) as the callback writes them: ``status`` at fit start (step 0),
    ``cost`` (a dict, or any payload to damage it), one dict of ``epoch_*`` values per epoch, then
    ``final_status`` at the last step. ``lock``: leave the writer's (free) lock file, as a writer does."""
    os.makedirs(log_dir, exist_ok=True)
    if lock:
        with open(os.path.join(log_dir, metadata.LOCK_NAME), "a"):
            pass
    train = Run(os.path.join(log_dir, "train"))
    if status is not None:
        train.add(0, document_value(metadata.STATUS_TAG, status))
    if cost is not None:
        train.add(0, document_value(metadata.COST_TAG, cost))
    for epoch, values in enumerate(epochs or []):
        train.add(epoch, *(scalar_value(f"epoch_{name}", value) for name, value in values.items()))
    if final_status is not None:
        train.add(len(epochs or []), document_value(metadata.STATUS_TAG, final_status))
    train.close()
    if validation:
        run = Run(os.path.join(log_dir, "validation"))
        for epoch, values in enumerate(validation):
            run.add(epoch, *(scalar_value(f"epoch_{name}", value) for name, value in values.items()))
        run.close()


@contextlib.contextmanager
def holding_lock(log_dir):
    """Hold ``log_dir``'s writer lock, as a callback does while ``fit`` runs."""
    with open(os.path.join(log_dir, metadata.LOCK_NAME), "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# Twenty runs to compare: four models, several batch sizes, two kinds of device, and every state.
MODELS = {"mlp_s": [2048] * 4 + [10], "mlp_m": [4096] * 6 + [10], "mlp_l": [8192] * 8 + [10], "mlp_xs": [512, 2048, 64, 10]}
H100 = peak(989e12)
A100 = peak(312e12, device="NVIDIA A100")
ROLES = {"running": 3, "interrupted": 5, "no_cost": 7, "a100": 9, "old_format": 6, "no_bandwidth": 10, "sharded": 11}
BANDWIDTHS = {H100["flops_per_sec"]: 3.35e12, A100["flops_per_sec"]: 1.555e12}  # bytes/s
NO_COST_ERROR = "no rule for layer FancyAttention (estimate(model) raised NotImplementedError)"


def add_per_device(document: dict, mesh_shape: dict[str, int]) -> None:
    """One device's share, as ``ModelCost.to_dict()`` writes it: state sharded over the model axis, activations
    over every device, a gradient buffer under data parallelism."""
    devices, model_axis = math.prod(mesh_shape.values()), mesh_shape["model"]
    share = {"weight_bytes": document["weight_bytes"] // model_axis,
             "gradient_bytes": document["gradient_bytes"] // model_axis,
             "optimizer_bytes": document["optimizer_bytes"] // model_axis,
             "activation_bytes": document["activation_bytes"] // devices,
             "gradient_buffer_bytes": document["gradient_bytes"] // model_axis,
             "training_flops": document["training_flops"] // devices, "communication_bytes": 2**26,
             "notes": ["3 activation tensor(s) of unknown sharding counted replicated over the model axes"]}
    share["training_bytes"] = sum(share[k] for k in ("weight_bytes", "gradient_bytes", "optimizer_bytes",
                                                      "activation_bytes", "gradient_buffer_bytes"))
    document.update(devices=devices, mesh_shape=mesh_shape, per_device=share)


def comparison_run(root, i: int, name: str | None = None) -> str:
    """Run number ``i`` of the comparison set under ``root/<name>`` (``run<i>``); its name (``.../train``)."""
    name = name or f"run{i:02d}"
    model = list(MODELS)[i % len(MODELS)]
    batch_size = (256, 512, 1024, 2048)[(i // len(MODELS)) % 4]
    device_peak = A100 if i == ROLES["a100"] else H100
    bandwidth = None if i == ROLES["no_bandwidth"] else BANDWIDTHS[device_peak["flops_per_sec"]]
    document = cost_document(model, MODELS[model], batch_size, peak=device_peak, bandwidth=bandwidth,
                             bytes_moved=i != ROLES["old_format"])
    if i == ROLES["sharded"]:
        add_per_device(document, {"batch": 2, "model": 4})
    predicted = (document.get("roofline") or {}).get("step_seconds")
    flops_per_step = document["training_flops"]
    if model == "mlp_m":
        document["hardware_flops_per_step"] = int(1.25 * flops_per_step)
    mfu = 0.18 + 0.05 * (i % 6) + 0.1 * (model == "mlp_l")
    epochs = []
    for epoch in range(3 + i % 3):
        achieved = mfu * device_peak["flops_per_sec"] * (0.6 if epoch == 0 else 1.0 + 0.015 * epoch)
        steps_per_sec = achieved / flops_per_step
        values = {"samples_per_sec": steps_per_sec * batch_size, "steps_per_sec": steps_per_sec,
                  "tflops_per_sec": achieved / 1e12, "mfu": achieved / device_peak["flops_per_sec"],
                  "peak_memory_bytes": 1.2 * document["training_bytes"] + 2**24 * epoch,
                  "peak_memory_over_estimate": 1.2}
        if model == "mlp_m":  # hardware FLOPs (rematerialisation) above the model's
            values["hfu"] = 1.25 * values["mfu"]
        if predicted is not None:  # predicted / measured step time: the measured step is batch / samples/s
            values["roofline_step_seconds"] = predicted
            values["roofline_fraction"] = predicted * values["samples_per_sec"] / batch_size
        epochs.append(values)
    validation = [{"samples_per_sec": 2.8 * e["samples_per_sec"], "tflops_per_sec": e["tflops_per_sec"] / 3.2,
                   "mfu": e["mfu"] / 3.2} for e in epochs]
    if i == ROLES["no_cost"]:
        document = None
        for e in epochs:
            for key in ("tflops_per_sec", "mfu", "hfu", "roofline_step_seconds", "roofline_fraction"):
                e.pop(key, None)
    status = status_document("running", cost="missing" if document is None else "ok",
                             cost_error=NO_COST_ERROR if document is None else None, pid=1000 + i)
    done = i not in (ROLES["running"], ROLES["interrupted"])
    write_run(os.path.join(root, name), cost=document, status=status, epochs=epochs, validation=validation,
              final_status=dict(status, state="finished") if done else None)
    return f"{name}/train"


def comparison_runs(root, count: int = 20) -> dict[str, str]:
    """``count`` runs under ``root`` (``run00/train``, ...); ``{role: run}`` for the special ones:
    ``running`` (its lock must be held: ``holding_lock``), ``interrupted``, ``no_cost``, ``a100`` (another
    peak), ``old_format`` (a cost document without bytes moved), ``no_bandwidth`` (no roofline)."""
    names = [comparison_run(root, i) for i in range(count)]
    return {role: names[i] for role, i in ROLES.items()}
