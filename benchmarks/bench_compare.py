"""`mlops-ci compare` against the commands a CML workflow runs, in the same run.

1. One `mlops-ci compare` (metrics + params + plots data + confidence intervals) vs
   `dvc metrics diff main --json`, `dvc params diff main --json`, `dvc plots diff main --json`
   on a branch of the reference project. Goal: at least 3x faster, same numbers.
2. `run_compare` in-process on a 10,000-metric file changed on a branch. Goal: under 1 s.

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
    """Our rows against `dvc metrics diff` and `dvc params diff` (which must find changes)."""
    ours = json.loads(sh([MLOPS_CI, "compare", "--baseline", "main", "--json"], repo))
    metrics = json.loads(sh([str(BIN / "dvc"), "metrics", "diff", "main", "--json"], repo))
    params = json.loads(sh([str(BIN / "dvc"), "params", "diff", "main", "--json"], repo))
    if not metrics or not params:
        return False
    rows = {(r["file"], r["key"]): r for r in ours["metrics"]}
    changed = {(p["file"], p["name"]): p for p in ours["params"]}
    return all(
        rows[(f, k)]["baseline"] == v["old"] and rows[(f, k)]["candidate"] == v["new"]
        for f, keys in metrics.items()
        for k, v in keys.items()
    ) and all(
        changed[(f, k)]["baseline"] == v["old"] and changed[(f, k)]["candidate"] == v["new"]
        for f, keys in params.items()
        for k, v in keys.items()
    )


def bench_many_metrics(base: Path) -> float:
    """`run_compare` in-process on a 10,000-metric file changed on a branch (warm imports)."""
    from mlops_ci.compare import run_compare

    repo = base / "many"
    repo.mkdir()
    sh(["git", "init", "-q", "-b", "main"], repo)
    (repo / "dvc.yaml").write_text("metrics:\n  - m.json\n")
    values = {f"group{j}": {f"metric{i}": i / 3 for i in range(j, 10_000, 100)} for j in range(100)}
    (repo / "m.json").write_text(json.dumps(values))
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "baseline"], repo)
    sh(["git", "checkout", "-qb", "change"], repo)
    values = {g: {k: v + 1 for k, v in keys.items()} for g, keys in values.items()}
    (repo / "m.json").write_text(json.dumps(values))
    run_compare(repo, repo / ".mlops-ci", baseline="main", env={})  # warm the imports
    start = time.perf_counter()
    doc = run_compare(repo, repo / ".mlops-ci", baseline="main", env={})
    elapsed = time.perf_counter() - start
    assert len(doc["metrics"]) == 10_000, len(doc["metrics"])
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        ours = median_time([[MLOPS_CI, "compare", "--baseline", "main"]], repo, args.runs)
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
        many = bench_many_metrics(Path(tmp))
    speedup = peer / ours
    print(f"mlops-ci compare (metrics+params+plots+CIs)  median {ours:6.3f} s")
    print(f"dvc metrics/params/plots diff --json         median {peer:6.3f} s")
    print(
        f"speed-up {speedup:.2f}x (goal >= 3x): {'met' if speedup >= 3 else 'NOT met'}; same numbers: {agree}"
    )
    print(
        f"10,000 metrics (read at two revisions, diffed, written) in {many:.3f} s "
        f"(goal < 1 s): {'met' if many < 1 else 'NOT met'}"
    )
    return 0 if speedup >= 3 and agree and many < 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
