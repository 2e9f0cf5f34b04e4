"""A no-op pull request on a fresh clone: warm shared remote against a cold one, in one run.

The reference pipeline on `data.n_samples: 200000` (synthetic). main is trained and pushed to
the warm remote; then two fresh clones of a docs-only branch run `mlops-ci train --pull`, one
against the warm remote and one against an empty (cold) remote. Prints wall time and stages
executed for each, and the speed-up.

    python benchmarks/bench_remote.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _shared import MLOPS_CI, sh, trained_repo


def main_repo(base: Path, rows: int, remote: Path) -> Path:
    repo = trained_repo(base, "data.source=synthetic", f"data.n_samples={rows}")
    sh([MLOPS_CI, "train", "--push"], repo, MLOPS_CI_REMOTE_URL=str(remote))
    sh(["git", "clone", "-q", "--bare", str(repo), str(base / "origin.git")], base)
    return repo


def no_op_pr(base: Path, name: str, remote: Path) -> tuple[float, dict[str, int]]:
    clone = base / name
    sh(["git", "clone", "-q", str(base / "origin.git"), str(clone)], base)
    sh(["git", "checkout", "-qb", "docs"], clone)
    (clone / "README.md").write_text("docs only\n")
    sh(["git", "add", "-A"], clone)
    sh(["git", "commit", "-qm", "Docs"], clone)
    start = time.perf_counter()
    sh([MLOPS_CI, "train", "--pull"], clone, MLOPS_CI_REMOTE_URL=str(remote))
    elapsed = time.perf_counter() - start
    stages = json.loads((clone / ".mlops-ci" / "train.json").read_text())["stages"]
    counts: dict[str, int] = {}
    for stage in stages:
        counts[stage["status"]] = counts.get(stage["status"], 0) + 1
    return elapsed, counts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        warm, cold = base / "warm-remote", base / "cold-remote"
        cold.mkdir()
        main_repo(base, args.rows, warm)
        warm_s, warm_stages = no_op_pr(base, "warm-clone", warm)
        cold_s, cold_stages = no_op_pr(base, "cold-clone", cold)
    print(f"rows: {args.rows:,} (synthetic); no-op PR on a fresh clone, `mlops-ci train --pull`")
    print(f"warm remote  {warm_s:6.2f} s  stages: {warm_stages}")
    print(f"cold remote  {cold_s:6.2f} s  stages: {cold_stages}")
    print(f"speed-up {cold_s / warm_s:.1f}x; stages executed warm/cold: "
          f"{warm_stages.get('ran', 0)}/{cold_stages.get('ran', 0)}")  # fmt: skip
    return 0 if warm_stages.get("ran", 0) == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
