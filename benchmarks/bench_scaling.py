"""How `mlops-ci compare` and `report` scale: wall time and peak RSS, whole processes, for
- metric keys 10 -> 100,000 (one metrics file, every value changed);
- prediction rows 10,000 -> 1,000,000 (confidence intervals for six metrics);
- plots 1 -> 1,000 (`report` without PNGs after `compare`);
- commits 10 -> 100,000 between the branch and its merge-base, in a depth-1 clone of the branch
  (the baseline is found by deepening, then one full fetch).
Goals: each roughly linear, none failing; 1M rows under 4 s, a 1,000-plot report under 2 s, the
100k-commit baseline resolved. Each point is run `--runs` times (min/median/max printed).

    python benchmarks/bench_scaling.py [--runs 3] [--only keys,rows,plots,commits] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _shared import BIN, ENV, MLOPS_CI, Sample, measured, sh, spread

COMPARE = [MLOPS_CI, "compare", "--baseline", "main"]


def project(base: Path, name: str) -> Path:
    repo = base / name
    repo.mkdir(parents=True)
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh([str(BIN / "dvc"), "init", "-q"], repo)
    return repo


def commit(repo: Path, message: str) -> None:
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", message], repo)


def keys_repo(base: Path, n: int) -> Path:
    repo = project(base, f"keys-{n}")
    (repo / "dvc.yaml").write_text("metrics:\n  - m.json\n")
    groups = max(1, n // 100)
    values = {f"g{g}": {f"m{i}": i / 7 for i in range(g, n, groups)} for g in range(groups)}
    (repo / "m.json").write_text(json.dumps(values))
    commit(repo, "baseline")
    values = {g: {k: v + 1 for k, v in keys.items()} for g, keys in values.items()}
    (repo / "m.json").write_text(json.dumps(values))
    return repo


def predictions_csv(n: int, seed: int, accuracy: float) -> str:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    right = rng.random(n) < accuracy
    pred = np.where(right, y, 1 - y)
    score = np.clip(np.where(pred == 1, 0.75, 0.25) + rng.normal(0, 0.2, n), 0, 1)
    cells = enumerate(zip(y, pred, score, strict=True))
    rows = "\n".join(f"r{i},{a},{b},{c:.5f}" for i, (a, b, c) in cells)
    return "id,y_true,y_pred,y_score\n" + rows + "\n"


def rows_repo(base: Path, n: int) -> Path:
    repo = project(base, f"rows-{n}")
    (repo / "dvc.yaml").write_text("metrics:\n  - m.json\n")
    (repo / "mlops-ci.yaml").write_text("predictions: p.csv\n")
    (repo / "m.json").write_text(json.dumps({"accuracy": 0.9}))
    (repo / "p.csv").write_text(predictions_csv(n, 1, 0.9))
    commit(repo, "baseline")
    (repo / "m.json").write_text(json.dumps({"accuracy": 0.89}))
    (repo / "p.csv").write_text(predictions_csv(n, 2, 0.89))
    return repo


def plots_repo(base: Path, n: int) -> Path:
    repo = project(base, f"plots-{n}")
    (repo / "plots").mkdir()
    lines = ["plots:"]
    for i in range(n):
        lines += [f"  - plots/p{i}.json:", "      x: step", "      y: loss"]
    (repo / "dvc.yaml").write_text("\n".join(lines) + "\n")

    def write(shift: float) -> None:
        for i in range(n):
            points = [{"step": s, "loss": 1 / (s + 1) + shift + i / 1000} for s in range(20)]
            (repo / "plots" / f"p{i}.json").write_text(json.dumps(points))

    write(0.0)
    commit(repo, "baseline")
    write(0.01)
    sh(COMPARE, repo)  # report reads the comparison; compare is measured in the rows above
    return repo


def commits_repo(base: Path, n: int) -> Path:
    """A depth-1 clone of a branch `n` commits past its merge-base with main."""
    origin = project(base, f"origin-{n}")
    (origin / "dvc.yaml").write_text("metrics:\n  - m.json\n")
    (origin / "m.json").write_text(json.dumps({"accuracy": 0.9}))
    commit(origin, "baseline")
    sh(["git", "checkout", "-qb", "feature"], origin)
    # n commits through fast-import: seconds for 100k, where `git commit` would take an hour
    script = []
    for i in range(n):
        message = f"c{i}"
        script.append(
            f"commit refs/heads/feature\ncommitter b <b@example.invalid> {1_700_000_000 + i} +0000\n"
            f"data {len(message)}\n{message}\n"
            + ("from refs/heads/feature^0\n" if i == 0 else "")
            + f"M 644 inline note.txt\ndata {len(str(i))}\n{i}\n"
        )
    subprocess.run(
        ["git", "fast-import", "--quiet", "--force"],
        cwd=origin, input="".join(script).encode(), check=True, env=ENV,
    )  # fmt: skip
    sh(["git", "checkout", "-qf", "feature"], origin)
    clone = base / f"clone-{n}"
    sh(["git", "clone", "-q", "--depth", "1", "--no-single-branch", "-b", "feature",
        f"file://{origin}", str(clone)], base)  # fmt: skip
    sh(["git", "config", "user.email", "b@example.invalid"], clone)
    (clone / "m.json").write_text(json.dumps({"accuracy": 0.91}))
    return clone


SERIES: dict[
    str, tuple[list[int], list[int], Callable[[Path, int], Path], list[str], float | None]
] = {
    # name: (sizes, quick sizes, build, command, goal in seconds at the largest size)
    "keys": ([10, 1_000, 10_000, 100_000], [10, 1_000], keys_repo, COMPARE, None),
    "rows": ([10_000, 100_000, 1_000_000], [10_000], rows_repo, COMPARE, 4.0),
    "plots": ([1, 10, 100, 1_000], [1, 10], plots_repo, [MLOPS_CI, "report"], 2.0),
    # no --baseline: the merge-base with main, which the depth-1 clone has to find
    "commits": (
        [10, 1_000, 10_000, 100_000],
        [10, 1_000],
        commits_repo,
        [MLOPS_CI, "compare"],
        None,
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="keys,rows,plots,commits")
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            sizes, quick, build, command, goal = SERIES[name]
            print(f"{name}: {' '.join(command[1:])}")
            for size in quick if args.quick else sizes:
                repo = build(Path(tmp), size)
                samples: list[Sample] = []
                for run in range(args.runs):
                    if name == "commits" and run:  # the clone is deep now: start a new one
                        repo = build(Path(tmp) / f"{name}-{size}-run{run}", size)
                    samples.append(measured(command, repo))
                wall = [s.wall for s in samples]
                rss = max(s.rss_mib for s in samples)
                line = f"  {size:>9,}  wall {spread(wall)} s  peak RSS {rss:6.0f} MiB"
                if goal is not None and size == sizes[-1]:
                    met = statistics.median(wall) < goal
                    ok &= met
                    line += f"  (goal < {goal} s: {'met' if met else 'NOT met'})"
                print(line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
