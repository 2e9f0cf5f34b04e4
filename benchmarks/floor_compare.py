"""The floor for reading and diffing metrics: stdlib only, one `git cat-file --batch` for the
baseline's files, the workspace's read directly, flattened and diffed. It knows the files in
advance (no dvc.yaml, no params, no plots, no statistics): no real tool can be faster, so
`bench_compare.py` states how far `mlops-ci compare` is from it.

    python benchmarks/floor_compare.py BASELINE_REV METRICS_FILE...
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def flat(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, inner in value.items():
            out.update(flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def main() -> int:
    rev, files = sys.argv[1], sys.argv[2:]
    query = "".join(f"{rev}:{name}\n" for name in files).encode()
    raw = subprocess.run(
        ["git", "cat-file", "--batch"], input=query, capture_output=True, check=True
    ).stdout
    baseline: dict[str, bytes] = {}
    for name in files:
        header, _, raw = raw.partition(b"\n")
        size = int(header.split()[2])
        baseline[name], raw = raw[:size], raw[size + 1 :]
    for name in files:
        old = flat(json.loads(baseline[name]))
        new = flat(json.loads(Path(name).read_bytes()))
        for key in sorted(old.keys() | new.keys()):
            a, b = old.get(key), new.get(key)
            if a != b:
                diff = b - a if isinstance(a, int | float) and isinstance(b, int | float) else ""
                print(f"{name}\t{key}\t{a}\t{b}\t{diff}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
