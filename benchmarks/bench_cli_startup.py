"""Cold start of `mlops-ci --help` against `dvc --version`, whole processes, alternated.

Goal: at most 0.35x `dvc --version` (medians), because commands that need no DVC, pandas or
scikit-learn must not import them (tests/test_imports.py says which commands load what).

    python benchmarks/bench_cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from _shared import BIN, MLOPS_CI, alternate, measured, spread

GOAL = 0.35


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    here = Path.cwd()
    samples = alternate(
        {
            "mlops-ci --help": lambda i: measured([MLOPS_CI, "--help"], here),
            "dvc --version": lambda i: measured([str(BIN / "dvc"), "--version"], here),
        },
        args.runs,
        warmups=2,
    )
    for name, runs in samples.items():
        print(f"{name:<16} wall {spread([s.wall for s in runs])} s (min/median/max)")
    ours, peer = (statistics.median(s.wall for s in runs) for runs in samples.values())
    ratio = ours / peer
    print(f"ratio {ratio:.2f} (goal <= {GOAL}): {'met' if ratio <= GOAL else 'NOT met'}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
