"""`mlops-ci compare` against its peers, whole process against whole process, in the same run.

Peers, on a branch of the reference project (or with `--layout NAME` a project that
tests/dvc_layouts.py builds, e.g. `dvclive-dir`: DVCLive's files in a cached directory output):
- the DVC CLI: `dvc metrics diff main --json`, `dvc params diff main --json`,
  `dvc plots diff main --json` (what a CML workflow runs). Goal: at least 4x faster.
- DVC's Python API doing the same three diffs in one process (benchmarks/dvc_api_diffs.py):
  no "three processes" margin. Goal: at least 2x faster.
- the stdlib floor (benchmarks/floor_compare.py): the metrics files alone, known in advance,
  one `git cat-file --batch`. A reference for what reading costs, not a goal.

Same work on every side except where stated: compare also reads every dvc.yaml, the policy at
the baseline, and bootstraps confidence intervals from the predictions (which no peer does);
the floor reads no params and no plots. One warm-up per side, then the sides take turns
(the order flips each round). Prints min/median/max wall seconds, and peak RSS.

Main holds `--history` commits (default 20, each a retraining with unchanged inputs), so
compare reads the target branch's history for noise bands as it does on a real project.

    python benchmarks/bench_compare.py [--runs 7] [--history 20] [--layout dvclive-dir]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from _shared import (
    BIN,
    MLOPS_CI,
    alternate,
    measured,
    ratio_line,
    run_sequence,
    sh,
    spread,
    trained_repo,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the layouts
from tests.compare.test_dvc_oracle import as_pairs
from tests.dvc_layouts import LAYOUTS, build_layout

HERE = Path(__file__).resolve().parent


def make_repo(base: Path, history: int) -> Path:
    repo = trained_repo(base, history=history)
    sh(["git", "checkout", "-qb", "tune"], repo)
    sh([MLOPS_CI, "train", "-S", "train.logistic_regression.C=0.05"], repo)
    return repo


def make_layout(base: Path, name: str) -> Path:
    """A generated project: `main` trained, the workspace of branch `candidate` retrained."""
    os.environ["DVC_NO_ANALYTICS"] = "1"  # DVC runs in this process to build it
    return build_layout(LAYOUTS[name], base / name)


def same_numbers(repo: Path) -> bool:
    """Our rows against `dvc metrics diff` and `dvc params diff` (which must find changes),
    normalised as the DVC oracle tests do (NaN, inf, booleans)."""
    ours = json.loads(sh([MLOPS_CI, "compare", "--baseline", "main", "--json"], repo))
    metrics = json.loads(sh([str(BIN / "dvc"), "metrics", "diff", "main", "--json"], repo))
    params = json.loads(sh([str(BIN / "dvc"), "params", "diff", "main", "--json"], repo))
    if not metrics or not params:
        return False
    rows, changed = as_pairs(ours["metrics"]), as_pairs(ours["params"])
    return all(rows.get(k) == v for k, v in as_pairs(metrics).items()) and all(
        changed.get(k) == v for k, v in as_pairs(params).items()
    )


def metrics_files(repo: Path) -> list[str] | None:
    """The metrics files DVC shows for the workspace (what the floor script is told); None
    when some live only in DVC's cache (a directory output) or are not JSON (YAML, TOML),
    which no stdlib script reads."""
    shown = json.loads(sh([str(BIN / "dvc"), "metrics", "show", "--json"], repo))
    files = sorted(shown.get("", {}).get("data", {}))
    tracked = set(sh(["git", "ls-tree", "-r", "--name-only", "main"], repo).split())
    json_only = all(f.endswith(".json") for f in files)
    return files if set(files) <= tracked and json_only else None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--layout", choices=sorted(LAYOUTS), help="a generated project instead")
    parser.add_argument(
        "--history", type=int, default=20, help="commits on main (noise bands, trend); 1: none"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = (
            make_layout(Path(tmp), args.layout)
            if args.layout
            else make_repo(Path(tmp), args.history)
        )
        dvc = str(BIN / "dvc")
        files = metrics_files(repo)
        floor = [sys.executable, str(HERE / "floor_compare.py"), "main", *(files or [])]
        sides = {
            "compare": lambda i: measured([MLOPS_CI, "compare", "--baseline", "main"], repo),
            "dvc CLI": lambda i: run_sequence(
                [[dvc, kind, "diff", "main", "--json"] for kind in ("metrics", "params", "plots")],
                repo,
            ),
            "dvc API": lambda i: measured(
                [sys.executable, str(HERE / "dvc_api_diffs.py"), "main"], repo
            ),
            "floor": lambda i: measured(floor, repo),
        }
        if files is None:
            del sides["floor"]
        samples = alternate(sides, args.runs)
        agree = same_numbers(repo)
    project = args.layout or f"reference project, {args.history} commits on main"
    print(f"{project}, {args.runs} alternated runs after one warm-up each")
    for name, runs in samples.items():
        print(
            f"  {name:<8} wall {spread([s.wall for s in runs])} s  "
            f"cpu {spread([s.cpu for s in runs])} s  peak RSS {max(s.rss_mib for s in runs):.0f} MiB"
        )
    ours = samples["compare"]
    cli, cli_ok = ratio_line("vs DVC CLI (3 diffs)", ours, samples["dvc CLI"], 4.0)
    api, api_ok = ratio_line("vs DVC API (1 process)", ours, samples["dvc API"], 2.0)
    print(cli)
    print(api)
    if "floor" in samples:
        over_floor = statistics.median(s.wall for s in ours) / statistics.median(
            s.wall for s in samples["floor"]
        )
        print(
            f"vs stdlib floor: compare takes {over_floor:.2f}x the floor's median (a reference, "
            "not a goal: the floor reads the metrics files alone)"
        )
    else:
        print("vs stdlib floor: not applicable (metrics in DVC outputs, or not JSON)")
    print(f"same numbers as dvc metrics/params diff: {agree}")
    return 0 if cli_ok and api_ok and agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
