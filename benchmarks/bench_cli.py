"""How fast ``nns-summary`` answers when it needs no framework: ``--list`` and a file that does not exist.

Usage: python benchmarks/bench_cli.py [--repeats 3] [--model]

Each command runs in a fresh process (the console script next to this Python when there is one, else
``python -m nns_callbacks``), as a user types it; the median of the wall times is printed per command.
``--model`` adds one command that does import Keras (MobileNetV2 at 96x96), for scale.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = {"--list": ["--list"], "unknown file": ["nosuch.keras"], "typo": ["resnt50"]}
MODEL = {"MobileNetV2 (imports Keras)": ["MobileNetV2", "--input-shape", "96,96,3", "--format", "json"]}


def command() -> list[str]:
    """The installed console script when there is one, else ``python -m nns_callbacks``."""
    script = shutil.which("nns-summary", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "nns_callbacks"]


def seconds(args: list[str]) -> float:
    """Wall time of one run of ``nns-summary args``, importing this checkout."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    subprocess.run([*command(), *args], capture_output=True, env=env, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per command (default 3)")
    parser.add_argument("--model", action="store_true", help="also time a command that builds a model")
    options = parser.parse_args()
    commands = {**COMMANDS, **(MODEL if options.model else {})}
    print(f"nns-summary from {command()[0]}, median of {options.repeats} runs")
    print("| command | median (s) | runs (s) |\n| --- | ---: | --- |")
    for name, args in commands.items():
        runs = [seconds(args) for _ in range(options.repeats)]
        print(f"| nns-summary {' '.join(args)} ({name}) | {statistics.median(runs):.3f} | "
              f"{', '.join(f'{run:.3f}' for run in runs)} |")


if __name__ == "__main__":
    main()
