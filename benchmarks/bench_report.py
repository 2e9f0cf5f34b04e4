"""A 10,000-metric report: `mlops-ci report` against `dvc metrics diff --md`, whole processes,
alternated, in the same run; plus the rendering alone against its budget.

The project: one metrics file of `--rows` values, every one changed on the branch;
`mlops-ci compare` runs once first (the report reads its comparison.json). Peer: what DVC users
run for a PR table today, `dvc metrics diff main --md --all`, which reads the two revisions
itself (so it does a part of compare's work too; our side renders more: verdict, sections,
fitting to GitHub's limit). Goal: the report process no slower than the peer's. Rendering alone
(`build_report` in-process, templates warm) has a budget of 0.5 s.

    python benchmarks/bench_report.py [--rows 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _shared import BIN, MLOPS_CI, alternate, measured, ratio_line, sh

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops_ci.report import GITHUB_COMMENT_LIMIT, build_report
from tests.report.test_report_inputs import make_comparison, make_verdict, many_metrics

BUDGET_S = 0.5


def metrics_repo(base: Path, rows: int) -> Path:
    repo = base / "repo"
    repo.mkdir()
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh([str(BIN / "dvc"), "init", "-q"], repo)
    (repo / "dvc.yaml").write_text("metrics:\n  - metrics.json\n")
    values = {f"m{i:05d}": i / 7 for i in range(rows)}
    (repo / "metrics.json").write_text(json.dumps(values))
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "baseline"], repo)
    (repo / "metrics.json").write_text(json.dumps({k: v + 1 for k, v in values.items()}))
    sh([MLOPS_CI, "compare", "--baseline", "main"], repo)
    return repo


def render_seconds(rows: int, repeat: int = 5) -> float:
    comparison = make_comparison(metrics=many_metrics(rows))
    verdict = make_verdict()
    build_report(comparison, verdict, limit=GITHUB_COMMENT_LIMIT)  # templates compiled once
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        build_report(comparison, verdict, limit=GITHUB_COMMENT_LIMIT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = metrics_repo(Path(tmp), args.rows)
        dvc = [str(BIN / "dvc"), "metrics", "diff", "main", "--md", "--all"]
        samples = alternate(
            {
                "report": lambda i: measured([MLOPS_CI, "report"], repo),
                "dvc": lambda i: measured(dvc, repo),
            },
            args.runs,
        )
    line, fast = ratio_line(
        f"{args.rows:,}-metric report vs dvc metrics diff --md", samples["report"],
        samples["dvc"], 1.0,
    )  # fmt: skip
    print(line)
    render = render_seconds(args.rows)
    within = render < BUDGET_S
    print(
        f"rendering alone (build_report, median of 5): {render * 1000:.0f} ms "
        f"(budget {BUDGET_S * 1000:.0f} ms): {'met' if within else 'NOT met'}"
    )
    return 0 if fast and within else 1


if __name__ == "__main__":
    raise SystemExit(main())
