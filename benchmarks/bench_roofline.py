"""The roofline's predicted step time against the measured one, for a compute-bound and a memory-bound model.

Usage: python benchmarks/bench_roofline.py [--rounds 3] [--steps 8]   (KERAS_BACKEND picks the backend)

Each round measures this machine's peak FLOP/s (float32 matmuls) and memory bandwidth (a copy) afresh
(``"measure!"``), then times ``--steps`` training steps of each model (``train_on_batch`` on data already on
the device, after two warm-up steps; every step returns its loss, so each is synchronised), and prints the
roofline's predicted step time (``ModelCost.roofline``), its bound, and predicted / measured. The models:

* compute-bound: 4 x Dense(2048) on 2048 features, batch 512, SGD: matrix products of high intensity;
* memory-bound: 6 x (LayerNormalization, ReLU, sigmoid) on 256 x 1024 features, batch 64, SGD: elementwise
  work on 64 MiB tensors, a few FLOPs per byte.

The contract (issue #19): each is labelled with its bound; predicted / measured is at most 1.15 for both, and
at least 0.5 for the compute-bound one.  The figures go in docs/roofline.md.  Not a timed test: the 2-core VM
this project runs on is shared, and its peak swings by 2x as neighbours load it (benchmarks/bench_peak.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import nns_callbacks

nns_callbacks.quiet_startup()


def compute_bound():
    import keras

    inputs = keras.Input((2048,))
    x = inputs
    for i in range(4):
        x = keras.layers.Dense(2048, name=f"dense_{i}")(x)
    return keras.Model(inputs, x, name="dense_stack"), 512


def memory_bound():
    import keras

    inputs = keras.Input((256, 1024))
    x = inputs
    for i in range(6):
        x = keras.layers.LayerNormalization(name=f"norm_{i}")(x)
        x = keras.layers.Activation("relu", name=f"relu_{i}")(x)
        x = keras.layers.Activation("sigmoid", name=f"sigmoid_{i}")(x)
    return keras.Model(inputs, x, name="elementwise_stack"), 64


MODELS = {"compute-bound": compute_bound, "memory-bound": memory_bound}


class Case:
    """A model compiled with SGD and MSE, its batch on the device, and its cost at that batch."""

    def __init__(self, make):
        import keras

        self.model, self.batch = make()
        self.model.compile(optimizer="sgd", loss="mse")
        shape = (self.batch, *self.model.input_shape[1:])
        self.x = keras.random.uniform(shape)
        self.y = keras.random.uniform((self.batch, *self.model.output_shape[1:]))
        self.cost = nns_callbacks.estimate(self.model, batch_size=self.batch)
        for _ in range(2):  # tracing, compilation, first allocations
            self.model.train_on_batch(self.x, self.y)

    def step_seconds(self, steps: int) -> float:
        """Seconds per training step, over ``steps`` steps (each returns its loss: synchronised)."""
        start = time.perf_counter()
        for _ in range(steps):
            self.model.train_on_batch(self.x, self.y)
        return (time.perf_counter() - start) / steps


def measure(rounds: int, steps: int) -> list[dict]:
    """Per round and model: the peak, the bandwidth, the predicted and the measured step, the bound."""
    import keras

    from nns_callbacks.bandwidth import resolve_bandwidth
    from nns_callbacks.peaks import resolve_peak

    backend = keras.backend.backend()
    cases = {name: Case(make) for name, make in MODELS.items()}
    results = []
    for round_index in range(rounds):
        for name, case in cases.items():
            peak = resolve_peak("measure!", backend, "float32").flops_per_sec
            bandwidth = resolve_bandwidth("measure!", backend).bytes_per_sec
            measured = case.step_seconds(steps)
            roofline = case.cost.roofline(peak, bandwidth)
            bound = roofline.bound_seconds()
            results.append({
                "round": round_index + 1, "model": name, "peak": peak, "bandwidth": bandwidth,
                "predicted": roofline.step_seconds, "measured": measured,
                "bound": "compute" if bound["compute"] >= bound["memory"] else "memory",
                "intensity": roofline.arithmetic_intensity, "ridge": roofline.ridge_point,
            })
            print(f"  round {round_index + 1}, {name}: {results[-1]['predicted'] / measured:.2f}", file=sys.stderr)
    return results


def report(results: list[dict]) -> str:
    """A Markdown table of every round, then the medians and the contract's verdict."""
    lines = [("| round | model | peak GFLOP/s | bandwidth GB/s | intensity FLOP/B (ridge) | bound | predicted ms | "
              "measured ms | predicted / measured |"), "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r['round']} | {r['model']} | {r['peak'] / 1e9:.0f} | {r['bandwidth'] / 1e9:.1f} | "
                     f"{r['intensity']:.1f} ({r['ridge']:.1f}) | {r['bound']} | {1e3 * r['predicted']:.1f} | "
                     f"{1e3 * r['measured']:.1f} | {r['predicted'] / r['measured']:.2f} |")
    lines.append("")
    for name, (low, high) in {"compute-bound": (0.5, 1.15), "memory-bound": (0.0, 1.15)}.items():
        mine = [r for r in results if r["model"] == name]
        ratio = statistics.median(r["predicted"] / r["measured"] for r in mine)
        bounds = {r["bound"] for r in mine}
        verdict = "ok" if low <= ratio <= high and bounds == {name.split("-")[0]} else "NOT MET"
        lines.append(f"{name}: median predicted / measured {ratio:.2f} (wanted {low} to {high}), "
                     f"labelled {', '.join(sorted(bounds))}: {verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of measurement (default 3)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per model per round (default 8)")
    args = parser.parse_args()
    os.environ.setdefault("NNS_CACHE_DIR", tempfile.mkdtemp(prefix="nns_bench_roofline_"))
    import keras

    print(f"backend {keras.backend.backend()}, {os.cpu_count()} CPUs")
    print(report(measure(args.rounds, args.steps)))


if __name__ == "__main__":
    main()
