"""Slices and simultaneous intervals: 100,000 rows x 5 slices x 6 metrics, 1,000 resamples, paired,
in a whole process on one thread (target: under 2 s of CPU, import to exit).

The parent writes both sides' columns to `.npy` files once; each run is a fresh child process that
imports mlops-ci, validates the columns into predictions (`Predictions.from_arrays`), and computes
the family (`stats.bootstrap_family`: every metric on all rows and on each slice, intervals that
hold together). Its CPU time (user + system) is read with `resource.getrusage(RUSAGE_CHILDREN)`.

    .venv/bin/python benchmarks/bench_slices.py [--rows N] [--runs K] [--resamples B]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = """
import sys
import numpy as np
from mlops_ci.compare.stats import Predictions, bootstrap_family

d, b = sys.argv[1], int(sys.argv[2])
cols = {k: np.load(f"{d}/{k}.npy", allow_pickle=False) for k in
        ("ids", "y", "perm", "base", "cand", "region")}
ids, y, perm = cols["ids"], cols["y"], cols["perm"]
base = Predictions.from_arrays(y, (cols["base"] > 0.5).astype(int), cols["base"], ids=ids)
cand = Predictions.from_arrays(y[perm], (cols["cand"][perm] > 0.5).astype(int),
                               cols["cand"][perm], ids=ids[perm])
family = bootstrap_family(base, cand, slices={"region": (cols["region"], cols["region"][perm])},
                          n_resamples=b, seed=1)
assert family.members == 36, family.members
"""


def write_columns(directory: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    shared = rng.normal(0, 1, n)
    sides = [1 / (1 + np.exp(-(1.6 * (2 * y - 1) + shared + 0.5 * rng.normal(0, 1, n))))
             for _ in range(2)]  # fmt: skip
    columns = {
        "ids": np.array([f"s{i}" for i in range(n)]),
        "y": y,
        "perm": rng.permutation(n),  # the candidate file lists its rows in another order
        "base": np.round(sides[0], 4),  # rounded, as models write them: ties in the AUC
        "cand": np.round(sides[1], 4),
        "region": np.array(["eu", "us", "apac", "latam", "mea"])[rng.integers(0, 5, n)],
    }
    for name, values in columns.items():
        np.save(directory / f"{name}.npy", values, allow_pickle=False)


def child_cpu(directory: Path, resamples: int) -> float:
    """CPU seconds (user + system) of one child process that runs the family once."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}  # fmt: skip
    subprocess.run(
        [sys.executable, "-c", CHILD, str(directory), str(resamples)], check=True, env=env
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_columns(directory, args.rows)
        times = [child_cpu(directory, args.resamples) for _ in range(args.runs)]
    print(
        f"slices + simultaneous intervals, {args.rows:,} rows x 5 slices x 6 metrics, "
        f"{args.resamples} resamples, whole process, CPU seconds over {args.runs} runs: "
        f"min {min(times):.2f}, median {statistics.median(times):.2f}, max {max(times):.2f}"
    )
    ok = statistics.median(times) < 2.0
    print("target (< 2 s CPU): " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
