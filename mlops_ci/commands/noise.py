"""`mlops-ci noise --repeat N`: measure run-to-run noise by re-running stages, on request.

A metric without an interval (latency, training time) gets its noise band from the target
branch's history. A project with no history yet, or a stage whose declared inputs just changed,
has none, and such a metric can only be `changed`. Asked to, this re-runs every stage that writes
a metrics file N more times with its inputs unchanged (`dvc repro --force --single-item`),
records each value in `noise.json` in the run directory, and `compare` pools their spread with
the history's. The workspace keeps the last run's outputs: a measurement like any other.

It runs repository code: call it where `train` runs, in the job without write tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.ci import documents
from mlops_ci.compare.noise import LOCK_FILE, REPEATS_FILE, load_or_none, lock_outputs
from mlops_ci.compare.snapshot import Project, flatten, take_snapshot
from mlops_ci.project.errors import ConfigError
from mlops_ci.project.git import Git

MAX_REPEAT = 50


@dataclass
class NoiseResult:
    repeat: int
    stages: list[str] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "repeat": self.repeat,
            "stages": self.stages,
            "measurements": self.measurements,
            "notes": self.notes,
        }

    def summary(self) -> str:
        lines = [f"note: {n}" for n in self.notes]
        for m in self.measurements:
            values = m["values"]
            spread = max(values) - min(values)
            lines.append(f"{m['file']}:{m['key']}: {len(values)} measurements, spread {spread:.6g}")
        runs = f"{self.repeat} more run(s) of {', '.join(self.stages)}" if self.stages else "none"
        lines.append(f"noise measured: {runs}; {REPEATS_FILE} feeds the next compare")
        return "\n".join(lines)


def run_noise(
    repo_dir: Path, run_dir: Path, *, repeat: int, stages: list[str] | None = None
) -> NoiseResult:
    """Re-run the stages writing metrics (or `stages`) `repeat` more times; write noise.json."""
    from mlops_ci.ci.tokens import WRITE_TOKEN_VARIABLES
    from mlops_ci.project.dvc import open_repo, reproduce_stage

    if not 1 <= repeat <= MAX_REPEAT:
        raise ConfigError(f"--repeat must be between 1 and {MAX_REPEAT}, got {repeat}")
    git = Git(repo_dir)
    project = Project.find(Path(repo_dir), git.toplevel())
    lock_path = project.root / LOCK_FILE
    before = lock_outputs(lock_path.read_bytes() if lock_path.is_file() else None)
    snap = take_snapshot(project, None, predictions_path=None)
    numeric = {
        path: {k: v for k, v in values.items() if _finite(v)}
        for path, values in snap.metrics.items()
    }
    writers = {path: before[path][0] for path in numeric if path in before and numeric[path]}
    result = NoiseResult(repeat=repeat)
    unwritten = sorted(p for p in numeric if p not in writers)
    if unwritten:
        result.notes.append(
            f"not measured (no stage in {LOCK_FILE} writes them): {', '.join(unwritten)}"
        )
    chosen = sorted(set(writers.values()))
    if stages:
        unknown = sorted(set(stages) - set(chosen))
        if unknown:
            raise ConfigError(
                f"no stage in {LOCK_FILE} named {', '.join(unknown)} writes a metrics file; "
                f"stages that do: {', '.join(chosen) or 'none'}"
            )
        chosen = [s for s in chosen if s in stages]
    result.stages = chosen
    files = sorted(p for p, s in writers.items() if s in chosen)
    series: dict[tuple[str, str], list[float]] = {
        (p, k): [float(v)] for p in files for k, v in numeric[p].items()
    }
    with open_repo(project.root) as repo:
        for _ in range(repeat):
            for stage in chosen:
                reproduce_stage(repo, stage, hidden=WRITE_TOKEN_VARIABLES)
            for path in files:
                values = _read_metrics(project.root / path, path)
                for (p, key), measured in series.items():
                    if p == path:
                        value = values.get(key)
                        measured.append(float(value) if _finite(value) else float("nan"))
    after = lock_outputs(lock_path.read_bytes() if lock_path.is_file() else None)
    inputs = {}
    for path in files:
        digest = after.get(path, (None, None))[1]
        if digest is None or digest != before[path][1]:
            result.notes.append(f"{path}: its stage's declared inputs changed while re-running")
            continue
        inputs[path] = digest
    for (path, key), values in series.items():
        if path in inputs and all(v == v for v in values):  # NaN: a run lost the metric
            result.measurements.append({"file": path, "key": key, "values": values})
    documents.write(
        run_dir,
        REPEATS_FILE,
        documents.header("noise")
        | {
            "created_at": documents.now(),
            "sha": git.head_sha(),
            "repeat": repeat,
            "inputs": inputs,
            "measurements": result.measurements,
        },
    )
    return result


def _read_metrics(path: Path, name: str) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError:
        return {}
    document = load_or_none(raw, name)  # unreadable: a gap, as in the history
    return flatten(document) if isinstance(document, dict | list) else {}


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value == value
        and value not in (float("inf"), float("-inf"))
    )
