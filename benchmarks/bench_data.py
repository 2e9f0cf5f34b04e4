"""What the data section adds to `mlops-ci compare`, whole process against whole process.

Two copies of one project, identical but for the baseline's `mlops-ci.yaml`: one declares a
1,000,000-row x 20-column CSV (10 float, 5 integer, 5 text columns; about 100 MB, tracked with
`dvc add`) as a table, the other turns the data section off (`data: {files: false, auto:
false}`). The candidate's workspace changes the table (1% of rows dropped, one column shifted),
so the section does everything it does for a real change: the file table (from the records),
every row of both revisions parsed (rows, missing cells, dtypes, categories), a 50,000-row
sample for the KS tests (the default), a KS or chi-square test per column, the correction. One warm-up per side, then the sides take turns (the order flips each round).

Goal: the data section adds under 2 s (median with minus median without), on 2 cores.

Then memory (`--large-gb`, 0 to skip): a generated CSV of that many GB (the same 20 columns),
tracked with `dvc add`, whose candidate gains 1% more rows; `mlops-ci compare` reads every row
of both revisions. Goal: its peak RSS (GNU time) at most 300 MiB. The files live under the
temporary directory and are deleted after.

    python benchmarks/bench_data.py [--runs 5] [--rows 1000000] [--large-gb 1] [--large-runs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _shared import BIN, MLOPS_CI, alternate, measured, sh, spread

GOAL_SECONDS = 2.0
GOAL_RSS_MIB = 300.0
DVC = str(BIN / "dvc")


def table(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(10):
        data[f"f{i}"] = rng.normal(loc=shift if i == 0 else 0.0, size=rows).round(4)
    for i in range(5):
        data[f"i{i}"] = rng.integers(0, 1000, size=rows)
    for i in range(5):
        data[f"c{i}"] = rng.choice(np.array(["alpha", "beta", "gamma", "delta"]), size=rows)
    return pd.DataFrame(data)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def make_repo(base: Path, name: str, policy: str, files: dict[str, Path]) -> Path:
    repo = base / name
    repo.mkdir()
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh([DVC, "init", "-q"], repo)
    (repo / "mlops-ci.yaml").write_text(policy)
    (repo / "data").mkdir()
    shutil.copy(files["baseline"], repo / "data" / "table.csv")
    sh([DVC, "add", "-q", "data/table.csv"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "baseline data"], repo)
    sh(["git", "checkout", "-qb", "candidate"], repo)
    shutil.copy(files["candidate"], repo / "data" / "table.csv")
    sh([DVC, "add", "-q", "data/table.csv"], repo)
    return repo


def write_large(path: Path, gigabytes: float, extra_rows: float = 0.0) -> None:
    """About `gigabytes` of CSV: one generated block written over and over (distinct values do
    not change what memory a parse needs), then `extra_rows` of a block more."""
    block = table(400_000, 3).to_csv(index=False, header=False).encode()
    header = table(1, 3).to_csv(index=False).splitlines(keepends=True)[0].encode()
    repeats = max(1, round(gigabytes * 1e9 / len(block)))
    with path.open("wb") as fh:
        fh.write(header)
        for _ in range(repeats):
            fh.write(block)
        if extra_rows:
            fh.write(table(round(400_000 * repeats * extra_rows), 4, shift=0.1).to_csv(
                index=False, header=False).encode())  # fmt: skip


def large(base: Path, gigabytes: float, runs: int) -> bool:
    repo = base / "large"
    repo.mkdir()
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh([DVC, "init", "-q"], repo)
    (repo / "mlops-ci.yaml").write_text(
        "artifact: model\ndata:\n  files: false\n  tables: [data/big.csv]\n"
    )
    (repo / "data").mkdir()
    write_large(repo / "data" / "big.csv", gigabytes)
    sh([DVC, "add", "-q", "data/big.csv"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "baseline data"], repo)
    sh(["git", "checkout", "-qb", "candidate"], repo)
    write_large(repo / "data" / "big.csv", gigabytes, extra_rows=0.01)
    sh([DVC, "add", "-q", "data/big.csv"], repo)
    size_gb = (repo / "data" / "big.csv").stat().st_size / 1e9
    cmd = [MLOPS_CI, "compare", "--baseline", "main"]
    samples = [measured(cmd, repo) for _ in range(runs)]
    (entry,) = json.loads(sh([*cmd, "--json"], repo))["data"]["tables"]
    peak = statistics.median(s.rss_mib for s in samples)
    met = max(s.rss_mib for s in samples) <= GOAL_RSS_MIB
    print(f"{size_gb:.2f} GB CSV, rows {entry['baseline']['rows']:,} -> "
          f"{entry['candidate']['rows']:,}, {runs} runs of compare")  # fmt: skip
    print(f"  wall {spread([s.wall for s in samples])} s  cpu {spread([s.cpu for s in samples])} s")
    print(
        f"  peak RSS {spread([s.rss_mib for s in samples])} MiB (min/median/max; goal <= "
        f"{GOAL_RSS_MIB:.0f} MiB): {'met' if met else 'NOT met'} (median {peak:.0f})"
    )
    shutil.rmtree(repo, ignore_errors=True)
    return met


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--large-gb", type=float, default=1.0)
    parser.add_argument("--large-runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        files = {"baseline": base / "baseline.csv", "candidate": base / "candidate.csv"}
        write_csv(table(args.rows, 1), files["baseline"])
        write_csv(table(args.rows, 2, shift=0.05).iloc[: args.rows * 99 // 100], files["candidate"])
        size_mb = files["baseline"].stat().st_size / 1e6
        with_data = make_repo(
            base, "with", "artifact: model\ndata:\n  tables: [data/table.csv]\n", files
        )
        without = make_repo(
            base, "without", "artifact: model\ndata: {files: false, auto: false}\n", files
        )
        cmd = [MLOPS_CI, "compare", "--baseline", "main"]
        samples = alternate(
            {"with data": lambda i: measured(cmd, with_data),
             "without": lambda i: measured(cmd, without)},
            args.runs,
        )  # fmt: skip
        document = json.loads(sh([*cmd, "--json"], with_data))
        shutil.rmtree(with_data, ignore_errors=True)
        shutil.rmtree(without, ignore_errors=True)
        large_met = large(base, args.large_gb, args.large_runs) if args.large_gb > 0 else True
    (table_doc,) = document["data"]["tables"]
    print(
        f"{args.rows:,} rows x 20 columns ({size_mb:.0f} MB CSV), {args.runs} alternated runs "
        "after one warm-up each"
    )
    for name, runs in samples.items():
        print(
            f"  {name:<9} wall {spread([s.wall for s in runs])} s  "
            f"cpu {spread([s.cpu for s in runs])} s  peak RSS {max(s.rss_mib for s in runs):.0f} MiB"
        )
    added = [w.wall - o.wall for w, o in zip(samples["with data"], samples["without"], strict=True)]
    median_added = statistics.median(s.wall for s in samples["with data"]) - statistics.median(
        s.wall for s in samples["without"]
    )
    met = median_added < GOAL_SECONDS
    print(f"  added per alternated pair: {spread(added)} s (min/median/max)")
    print(
        f"data section adds {median_added:.3f} s (median with - median without; goal < "
        f"{GOAL_SECONDS} s): {'met' if met else 'NOT met'}"
    )
    print(
        f"rows {table_doc['baseline']['rows']:,} -> {table_doc['candidate']['rows']:,}, "
        f"sample {table_doc['candidate']['sample']:,}, shifted: {table_doc['drifted_columns']}, "
        f"files table from: {document['data']['files']['source']}"
    )
    return 0 if met and large_met else 1


if __name__ == "__main__":
    sys.exit(main())
