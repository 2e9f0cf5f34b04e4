"""Rendering a 10,000-metric report, next to peers measured in the same run.

    .venv/bin/python benchmarks/bench_report.py [--rows 10000] [--repeat 5]

Peers: pandas' `DataFrame.to_markdown` on the same rows (a plain table, no escaping, no fitting),
and `dvc metrics diff --md` on a 10,000-metric file between two commits (what DVC users run for a
PR table today). Exits 1 when the report takes 0.5 s or more (issue 4).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops_ci.report import GITHUB_COMMENT_LIMIT, build_report
from tests.report.test_report_inputs import make_comparison, make_verdict, many_metrics

BUDGET_S = 0.5


def best_of(repeat: int, func: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def dvc_metrics_diff(rows: list[dict], workdir: Path) -> float | None:
    """Seconds for `dvc metrics diff --md` between two commits of a `rows`-metric file."""
    dvc = Path(sys.executable).with_name("dvc")
    if not dvc.exists():
        return None
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=True)

    run("git", "init", "--quiet", "-b", "main")
    run(str(dvc), "init", "--quiet")
    (workdir / "dvc.yaml").write_text("metrics:\n- metrics.json\n")
    for side in ("baseline", "candidate"):
        metrics = {f"m{i:05d}": row[side] for i, row in enumerate(rows)}
        (workdir / "metrics.json").write_text(json.dumps(metrics))
        run("git", "add", "--all")
        run("git", "commit", "--quiet", "-m", side)
    start = time.perf_counter()
    out = run(str(dvc), "metrics", "diff", "HEAD~1", "--md", "--all").stdout
    elapsed = time.perf_counter() - start
    assert out.count("\n") >= len(rows), "dvc printed fewer rows than metrics"
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-dvc", action="store_true", help="skip the dvc peer (~2 s)")
    args = parser.parse_args()

    rows = many_metrics(args.rows)
    comparison = make_comparison(metrics=rows)
    verdict = make_verdict()
    build_report(comparison, verdict, limit=GITHUB_COMMENT_LIMIT)  # templates compiled once

    def render() -> object:
        return build_report(comparison, verdict, limit=GITHUB_COMMENT_LIMIT)

    ours = best_of(args.repeat, render)
    report = render()

    import pandas as pd

    frame = pd.DataFrame(rows)[["name", "baseline", "candidate", "delta", "rel_delta", "status"]]
    pandas_s = best_of(args.repeat, frame.to_markdown)

    dvc_s = None
    if not args.no_dvc:
        with tempfile.TemporaryDirectory() as tmp:
            dvc_s = dvc_metrics_diff(rows, Path(tmp))

    print(f"report of {args.rows:,} metric rows (best of {args.repeat}):")
    print(
        f"  mlops-ci build_report (full + fitted to GitHub): {ours * 1000:8.1f} ms "
        f"(full {len(report.full_markdown):,} chars, comment {len(report.markdown):,} chars)"
    )
    print(
        f"  pandas DataFrame.to_markdown (table only):      {pandas_s * 1000:8.1f} ms "
        f"(ratio ours/peer {ours / pandas_s:.2f})"
    )
    if dvc_s is not None:
        print(
            f"  dvc metrics diff --md --all (one run, CLI):     {dvc_s * 1000:8.1f} ms "
            f"(ratio ours/peer {ours / dvc_s:.2f})"
        )
    ok = ours < BUDGET_S
    print(f"budget {BUDGET_S * 1000:.0f} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
