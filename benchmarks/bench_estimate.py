"""Time ``estimate`` against ``model.summary()`` and the TensorFlow profiler's FLOP count, in one process.

Usage: [KERAS_BACKEND=jax] python benchmarks/bench_estimate.py [--models ResNet50,NASNetLarge,EfficientNetB7]
       [--llama-layers 24] [--repeats 3]

Prints one row per model: seconds for each method, the ratios, and the FLOPs each
counter finds (the profiler counts 2 FLOPs per multiply-add, like ``forward_flops``).
The last row is a keras-hub Llama (24 layers, hidden 1024, 16 heads, 374M
parameters) at sequence length 2048, measured first: a process that has built the
applications' models and the profiler's graphs runs both ``estimate`` and
``summary()`` slower (the Llama's ratio 0.80 becomes 0.92 on TensorFlow).  The
profiler runs on the TensorFlow backend only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras

import nns_callbacks

PROFILER = keras.backend.backend() == "tensorflow"


def median_seconds(function, repeats: int) -> float:
    """Median wall time of ``function()`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profiler_flops(model) -> int:
    """Forward FLOPs of batch 1 by the TF1 profiler on the frozen graph (trace and freeze included)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2_as_graph

    spec = [tf.TensorSpec((1, *x.shape[1:]), x.dtype) for x in model.inputs]
    function = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0], training=False))
    _, graph_def = convert_variables_to_constants_v2_as_graph(function.get_concrete_function(*spec))
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        result = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options)
    return result.total_float_ops


def llama(layers: int):
    """A keras-hub Llama built from its constructor (no weights), and its input shape at sequence length 2048."""
    import keras_hub

    model = keras_hub.models.LlamaBackbone(
        vocabulary_size=32000, num_layers=layers, num_query_heads=16, num_key_value_heads=16, hidden_dim=1024,
        intermediate_dim=2816,
    )
    return model, {"token_ids": (2048,), "padding_mask": (2048,)}


def bench(name: str, repeats: int, model=None, input_shape=None) -> dict:
    model = model or getattr(keras.applications, name)(weights=None)
    estimate_s = median_seconds(lambda: nns_callbacks.estimate(model, input_shape=input_shape), repeats)
    summary_s = median_seconds(lambda: model.summary(print_fn=lambda *a, **k: None), repeats)
    start = time.perf_counter()
    tf_flops = profiler_flops(model) if PROFILER and input_shape is None else float("nan")
    profiler_s = time.perf_counter() - start if PROFILER and input_shape is None else float("nan")
    cost = nns_callbacks.estimate(model, input_shape=input_shape)
    return {
        "model": name,
        "estimate_s": estimate_s,
        "summary_s": summary_s,
        "profiler_s": profiler_s,
        "estimate/summary": estimate_s / summary_s,
        "profiler/estimate": profiler_s / estimate_s,
        "forward_flops": cost.forward_flops,
        "profiler_flops": tf_flops,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ResNet50,NASNetLarge,EfficientNetB7")
    parser.add_argument("--llama-layers", type=int, default=24, help="0 leaves the keras-hub Llama out")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    llama_rows = []
    if args.llama_layers:  # first: the applications and the profiler's graphs slow what follows them down
        model, shape = llama(args.llama_layers)
        llama_rows.append(bench(f"keras-hub Llama, {args.llama_layers} layers, seq 2048", args.repeats, model, shape))
    rows = [bench(name, args.repeats) for name in args.models.split(",") if name] + llama_rows
    print(f"backend: {keras.backend.backend()}")
    print("| model | estimate (s) | model.summary() (s) | TF profiler (s) | estimate / summary | profiler / estimate "
          "| forward GFLOPs (ours) | profiler GFLOPs |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['model']} | {r['estimate_s']:.3f} | {r['summary_s']:.3f} | {r['profiler_s']:.1f} | "
            f"{r['estimate/summary']:.2f} | {r['profiler/estimate']:.0f}x | {r['forward_flops'] / 1e9:.2f} | "
            f"{r['profiler_flops'] / 1e9:.2f} |"
        )


if __name__ == "__main__":
    main()
