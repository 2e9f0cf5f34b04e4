"""`mlops-ci compare` against the commands a CML workflow runs, in the same run.

1. One `mlops-ci compare` (metrics + params + plots data + confidence intervals) vs
   `dvc metrics diff main --json`, `dvc params diff main --json`, `dvc plots diff main --json`
   on a branch of the reference project, or with `--layout NAME` on a project that
   tests/dvc_layouts.py builds (`dvclive-dir`: DVCLive's files in a cached directory output).
   Whole processes against whole processes, each side run once to warm up, then alternated.
   Goal: at least 3x faster (medians), same numbers.
2. `run_compare` in-process on a 10,000-metric file changed on a branch. Goal: under 1 s.

    python benchmarks/bench_compare.py [--runs 5] [--layout dvclive-dir]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _shared import BIN, MLOPS_CI, sh, trained_repo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the layouts
from tests.dvc_layouts import LAYOUTS, build_layout


def make_repo(base: Path) -> Path:
    repo = trained_repo(base)
    sh(["git", "checkout", "-qb", "tune"], repo)
    sh([MLOPS_CI, "train", "-S", "train.logistic_regression.C=0.05"], repo)
    return repo


def make_layout(base: Path, name: str) -> Path:
    """A generated project: `main` trained, the workspace of branch `candidate` retrained."""
    os.environ["DVC_NO_ANALYTICS"] = "1"  # DVC runs in this process to build it
    return build_layout(LAYOUTS[name], base / name)


def alternated(sides: dict[str, list[list[str]]], cwd: Path, runs: int) -> dict[str, list[float]]:
    """Seconds per run of each side's commands; one warm-up each, then the sides take turns
    so that a slow moment of a shared machine falls on both."""
    for cmds in sides.values():
        for cmd in cmds:
            sh(cmd, cwd)
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(runs):
        for name, cmds in sides.items():
            start = time.perf_counter()
            for cmd in cmds:
                sh(cmd, cwd)
            samples[name].append(time.perf_counter() - start)
    return samples


def same_numbers(repo: Path) -> bool:
    """Our rows against `dvc metrics diff` and `dvc params diff` (which must find changes)."""
    ours = json.loads(sh([MLOPS_CI, "compare", "--baseline", "main", "--json"], repo))
    metrics = json.loads(sh([str(BIN / "dvc"), "metrics", "diff", "main", "--json"], repo))
    params = json.loads(sh([str(BIN / "dvc"), "params", "diff", "main", "--json"], repo))
    if not metrics or not params:
        return False
    rows = {(r["file"], r["key"]): r for r in ours["metrics"]}
    changed = {(p["file"], p["name"]): p for p in ours["params"]}
    missing: dict[str, None] = {"baseline": None, "candidate": None}  # a row DVC has, we lack
    return all(
        rows.get((f, k), missing)["baseline"] == v["old"]
        and rows.get((f, k), missing)["candidate"] == v["new"]
        for f, keys in metrics.items()
        for k, v in keys.items()
    ) and all(
        changed.get((f, k), missing)["baseline"] == v["old"]
        and changed.get((f, k), missing)["candidate"] == v["new"]
        for f, keys in params.items()
        for k, v in keys.items()
    )


def bench_many_metrics(base: Path) -> float:
    """`run_compare` in-process on a 10,000-metric file changed on a branch (warm imports)."""
    from mlops_ci.commands.compare import run_compare

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
    parser.add_argument(
        "--layout",
        choices=sorted(LAYOUTS),
        help="a project from tests/dvc_layouts.py instead of the reference project",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_layout(Path(tmp), args.layout) if args.layout else make_repo(Path(tmp))
        dvc = str(BIN / "dvc")
        samples = alternated(
            {
                "ours": [[MLOPS_CI, "compare", "--baseline", "main"]],
                "peer": [
                    [dvc, "metrics", "diff", "main", "--json"],
                    [dvc, "params", "diff", "main", "--json"],
                    [dvc, "plots", "diff", "main", "--json"],
                ],
            },
            repo,
            args.runs,
        )
        agree = same_numbers(repo)
        many = bench_many_metrics(Path(tmp))
    ours, peer = (statistics.median(samples[side]) for side in ("ours", "peer"))
    speedup = peer / ours
    project = args.layout or "reference project"
    for label, side in (
        ("mlops-ci compare (metrics+params+plots+CIs)", "ours"),
        ("dvc metrics/params/plots diff --json", "peer"),
    ):
        low, high = min(samples[side]), max(samples[side])
        print(
            f"{label:<44} min {low:6.3f}  median {statistics.median(samples[side]):6.3f}  "
            f"max {high:6.3f} s"
        )
    print(
        f"{project}: speed-up {speedup:.2f}x (goal >= 3x): {'met' if speedup >= 3 else 'NOT met'}; "
        f"same numbers: {agree}"
    )
    print(
        f"10,000 metrics (read at two revisions, diffed, written) in {many:.3f} s "
        f"(goal < 1 s): {'met' if many < 1 else 'NOT met'}"
    )
    return 0 if speedup >= 3 and agree and many < 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
