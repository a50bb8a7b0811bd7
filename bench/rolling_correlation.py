"""Incremental rolling correlation against a full numpy recompute, side by side in one run.

    .venv/bin/python bench/rolling_correlation.py [--repeats 5]

For each window (1k, 10k, 100k) a ``RollingCorrelation`` is filled to its window, then timed
over a batch of updates; the naive way recomputes ``np.corrcoef`` over the whole window on
every update. Printed: the median cost per update of each, and their ratio (the result;
absolute times on a shared machine are noise). The incremental cost includes the periodic
exact re-anchoring, amortised.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.rolling import RollingCorrelation  # noqa: E402

WINDOWS = (1_000, 10_000, 100_000)


def incremental_cost(window: int, x: np.ndarray, y: np.ndarray, updates: int) -> float:
    """Seconds per update of the O(1) estimator, past its warm-up, over whole windows."""
    rolling = RollingCorrelation(window)
    xs, ys = x.tolist(), y.tolist()
    for i in range(window):
        rolling.update(xs[i], ys[i])
    start = time.perf_counter()
    for i in range(window, window + updates):
        rolling.update(xs[i], ys[i])
    return (time.perf_counter() - start) / updates


def state_bytes(window: int, x: np.ndarray, y: np.ndarray) -> int:
    """Memory one full (pair, window) estimator holds, measured with tracemalloc."""
    tracemalloc.start()
    rolling = RollingCorrelation(window)
    for i in range(window):  # fresh float objects, as from decoded events
        rolling.update(float(x[i]), float(y[i]))
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return size


def recompute_cost(window: int, x: np.ndarray, y: np.ndarray, updates: int) -> float:
    """Seconds per update of recomputing Pearson over the whole window with numpy."""
    start = time.perf_counter()
    for i in range(window, window + updates):
        np.corrcoef(x[i - window + 1:i + 1], y[i - window + 1:i + 1])
    return (time.perf_counter() - start) / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    print(f"{'window':>8} {'incremental us/update':>22} {'recompute us/update':>20} "
          f"{'ratio':>9} {'memory':>10}")
    for window in WINDOWS:
        # a whole window of updates for the incremental side, so re-anchoring is amortised in
        updates = max(window, 20_000)
        x = rng.standard_normal(window + updates)
        y = 0.3 * x + rng.standard_normal(window + updates)
        recompute_updates = max(20, 2_000_000 // window)
        inc = statistics.median(incremental_cost(window, x, y, updates)
                                for _ in range(args.repeats))
        rec = statistics.median(recompute_cost(window, x, y, recompute_updates)
                                for _ in range(args.repeats))
        memory = state_bytes(window, x, y)
        print(f"{window:>8} {inc * 1e6:>22.2f} {rec * 1e6:>20.2f} {rec / inc:>8.0f}x "
              f"{memory / 1024:>7.0f} KiB")
    print(f"(medians of {args.repeats} runs; memory = one (pair, window) estimator, traced)")


if __name__ == "__main__":
    main()
