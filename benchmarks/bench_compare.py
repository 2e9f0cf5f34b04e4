"""`mlops-ci compare` against the commands a CML workflow runs, in the same run.

1. One `mlops-ci compare` (metrics + params + plots data + confidence intervals) vs
   `dvc metrics diff main --json`, `dvc params diff main --json`, `dvc plots diff main --json`
   on a branch of the reference project. Goal: at least 3x faster, same numbers.
2. 10,000 metrics compared in-process. Goal: under 1 s.

    python benchmarks/bench_compare.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from _shared import BIN, MLOPS_CI, sh, trained_repo


def make_repo(base: Path) -> Path:
    repo = trained_repo(base)
    sh(["git", "checkout", "-qb", "tune"], repo)
    sh([MLOPS_CI, "train", "-S", "train.logistic_regression.C=0.05"], repo)
    return repo


def median_time(cmds: list[list[str]], cwd: Path, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for cmd in cmds:
            sh(cmd, cwd)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def same_numbers(repo: Path) -> bool:
    ours = json.loads(sh([MLOPS_CI, "compare", "--baseline", "main", "--json"], repo))
    theirs = json.loads(sh([str(BIN / "dvc"), "metrics", "diff", "main", "--json"], repo))
    rows = {(r["file"], r["key"]): r for r in ours["metrics"]}
    return all(
        rows[(f, k)]["baseline"] == v["old"] and rows[(f, k)]["candidate"] == v["new"]
        for f, keys in theirs.items()
        for k, v in keys.items()
    )


def bench_many_metrics() -> float:
    from mlops_ci.compare import metric_rows
    from mlops_ci.dvcfile import ProjectFiles
    from mlops_ci.settings import Settings
    from mlops_ci.snapshot import Snapshot

    base = Snapshot(rev="a" * 40, files=ProjectFiles())
    cand = Snapshot(rev=None, files=ProjectFiles())
    base.metrics["m.json"] = {f"group{i % 100}.metric{i}": i / 3 for i in range(10_000)}
    cand.metrics["m.json"] = {f"group{i % 100}.metric{i}": i / 3 + (i % 7) for i in range(10_000)}
    start = time.perf_counter()
    rows = metric_rows(base, cand, Settings(), {})
    elapsed = time.perf_counter() - start
    assert len(rows) == 10_000
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        ours = median_time(
            [[MLOPS_CI, "compare", "--baseline", "main"]], repo, args.runs
        )
        dvc = str(BIN / "dvc")
        peer = median_time(
            [
                [dvc, "metrics", "diff", "main", "--json"],
                [dvc, "params", "diff", "main", "--json"],
                [dvc, "plots", "diff", "main", "--json"],
            ],
            repo,
            args.runs,
        )
        agree = same_numbers(repo)
    many = bench_many_metrics()
    speedup = peer / ours
    print(f"mlops-ci compare (metrics+params+plots+CIs)  median {ours:6.3f} s")
    print(f"dvc metrics/params/plots diff --json         median {peer:6.3f} s")
    print(
        f"speed-up {speedup:.2f}x (goal >= 3x): {'met' if speedup >= 3 else 'NOT met'}; same numbers: {agree}"
    )
    print(
        f"10,000 metrics compared in {many:.3f} s (goal < 1 s): {'met' if many < 1 else 'NOT met'}"
    )
    return 0 if speedup >= 3 and agree and many < 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
