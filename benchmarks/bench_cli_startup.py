"""Cold start of `mlops-ci --help` against `dvc --version`, measured in the same run.

Goal (issue: foundation): at most half of `dvc --version`, because commands that need no DVC,
pandas or scikit-learn must not import them. Prints medians and the ratio.

    python benchmarks/bench_cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def median_seconds(cmd: list[str], runs: int) -> float:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(cmd, capture_output=True, check=True, env=env)  # warm the page cache once
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    ours = median_seconds([str(BIN / "mlops-ci"), "--help"], args.runs)
    peer = median_seconds([str(BIN / "dvc"), "--version"], args.runs)
    ratio = ours / peer
    print(f"mlops-ci --help   median {ours * 1000:7.1f} ms")
    print(f"dvc --version     median {peer * 1000:7.1f} ms")
    print(f"ratio             {ratio:.2f} (goal <= 0.50): {'met' if ratio <= 0.5 else 'NOT met'}")
    return 0 if ratio <= 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
