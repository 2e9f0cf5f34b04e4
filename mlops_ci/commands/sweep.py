"""Sweeps: candidates fanned out on the CI's own matrix of runners, fanned in to one report.

    mlops-ci sweep plan                  # mlops-ci.yaml `sweep:` -> matrix JSON (a GitHub output)
    mlops-ci sweep run --candidate c03   # one matrix job: train with the candidate's params, compare
    mlops-ci sweep collect DIR...        # every job's run directory -> ranked leaderboard, gate, post

No scheduler of our own: the CI runs the jobs, DVC's shared run-cache dedupes their work, and
every runner recomputes the same plan from `mlops-ci.yaml`, so a job needs only its candidate id.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlops_ci.ci import documents
from mlops_ci.project.errors import ConfigError, ServiceError
from mlops_ci.project.settings import Settings, load_settings

PLAN_FILE = "sweep-plan.json"
CANDIDATE_FILE = "candidate.json"
LEADERBOARD_FILE = "leaderboard.json"
COMPARISON_FILE = "comparison.json"
SWEEP_WORKFLOW = "sweep"  # the report marker's workflow part: one sweep comment per artifact
DEFAULT_RANK_METRIC = "accuracy"


@dataclass(frozen=True)
class Candidate:
    id: str
    params: Mapping[str, Any]

    def overrides(self) -> list[str]:
        """The params as `key=value` overrides for `train --set` (hydra syntax, as DVC's -S)."""
        return [f"{key}={_override_value(value)}" for key, value in self.params.items()]

    def label(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.params.items())

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "params": dict(self.params), "set": self.overrides()}


def _override_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # quoted: hydra then takes the string as is


def plan(settings: Settings) -> list[Candidate]:
    """The grid's product (in the order written), then the listed candidates; duplicates once."""
    sweep = settings.sweep
    # Each key's values once, so the product has no duplicates and its size is known up front:
    # the limit is checked before a single combination is built (9 keys of 9 values would be
    # 387,420,489 of them).
    grid = {key: _distinct(values) for key, values in sweep.grid.items()}
    size = math.prod(len(values) for values in grid.values()) if grid else 0
    if size > sweep.max_candidates:
        raise _too_many(settings, size)
    keys = list(grid)
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]
    combos = [c for c in combos if c] + [dict(c) for c in sweep.candidates]
    unique = list({json.dumps(c, sort_keys=True): c for c in combos}.values())
    if not unique:
        raise ConfigError(
            f"{settings.source} has no `sweep:` candidates; add `sweep: {{grid: {{KEY: [V1, V2]}}}}` "
            "or `sweep: {candidates: [{KEY: V}]}`"
        )
    if len(unique) > sweep.max_candidates:
        raise _too_many(settings, len(unique))
    width = max(2, len(str(len(unique))))
    return [Candidate(f"c{i:0{width}d}", combo) for i, combo in enumerate(unique, 1)]


def _distinct(values: Sequence[Any]) -> list[Any]:
    return list({json.dumps(v): v for v in values}.values())


def _too_many(settings: Settings, count: int) -> ConfigError:
    return ConfigError(
        f"{settings.source}: the sweep has {count} candidates, more than "
        f"sweep.max_candidates ({settings.sweep.max_candidates}); shrink the grid or raise the limit"
    )


def run_plan(repo_dir: Path, run_dir: Path) -> dict[str, Any]:
    """Write `sweep-plan.json`; its `matrix` (a step output through `mlops_ci.ci.output`) feeds
    `strategy.matrix: ${{ fromJSON(...) }}`."""
    candidates = plan(load_settings(repo_dir))
    matrix = {"include": [{"candidate": c.id, "label": c.label()} for c in candidates]}
    document = documents.header("sweep-plan") | {
        "candidates": [c.to_dict() for c in candidates],
        "matrix": matrix,
    }
    documents.write(run_dir, PLAN_FILE, document)
    return document


def run_candidate(
    repo_dir: Path,
    run_dir: Path,
    candidate_id: str,
    *,
    pull: bool = False,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """One matrix job: train with the candidate's params, compare with the baseline."""
    from mlops_ci.commands.compare import run_compare
    from mlops_ci.commands.train import run_train

    candidates = {c.id: c for c in plan(load_settings(repo_dir))}
    candidate = candidates.get(candidate_id)
    if candidate is None:
        raise ConfigError(
            f"no sweep candidate {candidate_id!r}; the plan has {', '.join(candidates)}"
        )
    trained = run_train(
        repo_dir, run_dir, pull=pull, overrides=candidate.overrides(), stage_output=out, env=env
    )
    comparison = run_compare(repo_dir, run_dir, env=env)
    document = documents.header("sweep-candidate") | {
        "candidate": candidate.to_dict(),
        "stages": [s.to_dict() for s in trained.stages],
        "baseline_sha": comparison["baseline"]["sha"],
    }
    documents.write(run_dir, CANDIDATE_FILE, document)
    return document


# --- fan in -------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One candidate's run directory, as collected."""

    candidate: dict[str, Any]
    comparison: dict[str, Any]
    row: dict[str, Any] | None = None  # the ranking metric's comparison row
    verdict: str | None = None

    @property
    def value(self) -> float | None:
        value = (self.row or {}).get("candidate")
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )


@dataclass
class SweepResult:
    leaderboard: dict[str, Any]
    markdown: str
    report_path: Path
    gate: Any
    comment_url: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return int(self.gate.exit_code)

    def summary(self) -> str:
        board = self.leaderboard
        lines = [f"sweep: {len(board['rows'])} candidates ranked by {board['rank_by']}"]
        for row in board["rows"]:
            value = "-" if row["value"] is None else f"{row['value']:.4g}"
            lines.append(
                f"  {row['rank']:>2}. {row['candidate']}  {value:>8}  {row['verdict'] or '-':<8} {row['label']}"
            )
        lines.append(f"best: {board['best']}; report written to {self.report_path}")
        if self.comment_url:
            lines.append(f"comment: {self.comment_url}")
        return "\n".join([*lines, self.gate.summary(), *self.notes])


def candidate_dirs(paths: Sequence[Path]) -> list[Path]:
    """The run directories among `paths`: each path itself, or its subdirectories, that hold a
    `candidate.json` (what downloading every job's artifact into one folder gives)."""
    found: list[Path] = []
    for path in paths:
        if (path / CANDIDATE_FILE).is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.iterdir() if (p / CANDIDATE_FILE).is_file())
    if not found:
        raise ConfigError(
            "no sweep run directories found (a directory with candidate.json, or a folder of "
            "them); download every matrix job's run directory first"
        )
    return found


def _load(path: Path) -> Entry:
    from mlops_ci.ci.untrusted import validate_document

    candidate = documents.read(path, CANDIDATE_FILE, kind="sweep-candidate")
    comparison = documents.read(path, COMPARISON_FILE, kind="comparison")
    validate_document("comparison", comparison, source=str(path / COMPARISON_FILE))
    return Entry(candidate=candidate["candidate"], comparison=comparison)


def _metric_row(comparison: Mapping[str, Any], metric: str) -> dict[str, Any] | None:
    rows = [r for r in comparison.get("metrics") or [] if metric in (r.get("name"), r.get("key"))]
    return rows[0] if rows else None


def rank(entries: list[Entry], metric: str) -> list[Entry]:
    """Best first in the metric's direction; candidates without the metric last, by id."""
    for entry in entries:
        entry.row = _metric_row(entry.comparison, metric)
    direction = next((e.row["direction"] for e in entries if e.row), "higher")
    sign = -1.0 if direction == "higher" else 1.0

    def key(entry: Entry) -> tuple[int, float, str]:
        value = entry.value
        return (value is None, sign * value if value is not None else 0.0, entry.candidate["id"])

    return sorted(entries, key=key)


def rank_metric(settings: Settings) -> str:
    return settings.sweep.rank_by or next(iter(settings.metrics), DEFAULT_RANK_METRIC)


def collect(
    repo_dir: Path,
    run_dir: Path,
    paths: Sequence[Path],
    *,
    post: bool = False,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> SweepResult:
    """Rank every candidate against the baseline, gate the best, write and post one report."""
    from mlops_ci.commands import gate as gate_command
    from mlops_ci.gate.policy import load_policy
    from mlops_ci.gate.rules import evaluate_gate

    env = os.environ if env is None else env
    metric = rank_metric(load_settings(repo_dir))
    entries = rank([_load(p) for p in candidate_dirs(paths)], metric)
    baselines = {e.comparison["baseline"].get("sha") for e in entries}
    if len(baselines) > 1:
        raise ConfigError(
            "the candidates were compared with different baselines "
            f"({', '.join(str(b)[:12] for b in baselines)}); run every job on the same commit"
        )
    policy = load_policy(repo_dir, baselines.pop())
    verdicts = [evaluate_gate(e.comparison, policy.settings, policy=policy.source) for e in entries]
    for entry, verdict in zip(entries, verdicts, strict=True):
        entry.verdict = verdict.verdict
    best = entries[0]
    # The best candidate becomes the run directory's comparison and verdict: what `gate`,
    # `report` and the actions' outputs read afterwards.
    documents.write(run_dir, COMPARISON_FILE, best.comparison)
    gate = gate_command.GateRun(
        verdicts[0], documents.write(run_dir, gate_command.VERDICT_FILE, verdicts[0].to_dict())
    )
    gate_command.signal_ci(verdicts[0], env, out or sys.stdout)
    leaderboard = _leaderboard(entries, metric)
    documents.write(run_dir, LEADERBOARD_FILE, leaderboard)
    forge = None
    if post:
        from mlops_ci.forge import detect_forge

        forge = detect_forge(env, run_dir, out=out)
    artifact = policy.settings.artifact  # trusted: the policy at the baseline, not a document
    result = _render_and_post(run_dir, leaderboard, best, gate, forge, artifact)
    if forge is not None:
        post_sweep_status(gate, env, run_dir, forge, artifact)
    return result


def sweep_status_context(artifact: str) -> str:
    """`mlops-ci/<artifact>/sweep`: a sweep never sets the pull request gate's own status."""
    from mlops_ci.forge import status_context

    return f"{status_context(artifact)}/{SWEEP_WORKFLOW}"


def post_sweep_status(
    gate: Any, env: Mapping[str, str], run_dir: Path, forge: Any, artifact: str
) -> None:
    """The best candidate's verdict as the commit status (and check run) of the sweep."""
    from mlops_ci.ci.event import read_ci_event
    from mlops_ci.commands import gate as gate_command
    from mlops_ci.gate.verdict import CHECK_CONCLUSION, STATUS_STATE

    verdict = gate.verdict
    sha = read_ci_event(env, run_dir).head_sha or verdict.candidate_sha
    if not sha:
        gate.notes.append("no commit to set the sweep status on (no CI event, no candidate)")
        return
    context = sweep_status_context(artifact)
    description = gate_command.status_description(verdict)
    try:
        gate.status = forge.set_status(sha, STATUS_STATE[verdict.verdict], description, context)
        gate.check_url = forge.create_check_run(
            sha,
            context,
            CHECK_CONCLUSION[verdict.verdict],
            description,
            gate_command.check_summary(verdict),
        )
    except ServiceError as exc:
        raise gate_command.GateNotPosted(
            f"{exc}. The sweep's verdict ({verdict.verdict}) is saved in {gate.path}; rerun "
            "`mlops-ci sweep collect --post` once the forge answers"
        ) from exc


def _leaderboard(entries: list[Entry], metric: str) -> dict[str, Any]:
    best = entries[0]
    rows = []
    for rank_no, entry in enumerate(entries, 1):
        row = entry.row or {}
        rows.append({
            "rank": rank_no, "candidate": entry.candidate["id"],
            "label": Candidate(entry.candidate["id"], entry.candidate["params"]).label(),
            "params": entry.candidate["params"], "value": entry.value,
            "baseline": row.get("baseline"), "delta": row.get("delta"),
            "ci_low": row.get("ci_low"), "ci_high": row.get("ci_high"),
            "status": row.get("status"), "verdict": entry.verdict,
        })  # fmt: skip
    return documents.header("leaderboard") | {
        "rank_by": metric,
        "direction": (best.row or {}).get("direction", "higher"),
        "baseline": best.comparison["baseline"],
        "best": best.candidate["id"],
        "rows": rows,
    }


def _render_and_post(
    run_dir: Path, leaderboard: dict[str, Any], best: Entry, gate: Any, forge: Any, artifact: str
) -> SweepResult:
    """The leaderboard over the best candidate's report: written, and posted when `forge`."""
    from mlops_ci.report import build_report, report_marker_id
    from mlops_ci.report.templating import render

    board = render("leaderboard.md.j2", board=leaderboard)
    limit = forge.comment_limit if forge is not None else None
    report = build_report(
        best.comparison,
        gate.verdict.to_dict(),
        limit=None if limit is None else max(limit - len(board) - 2, 1000),
        marker_id=report_marker_id(artifact, SWEEP_WORKFLOW),
    )
    full = board + "\n" + report.full_markdown
    path = documents.write_text(run_dir, documents.REPORT_FILE, full)
    result = SweepResult(leaderboard, full, path, gate)
    if forge is not None:
        from mlops_ci.commands.report import ReportNotPosted

        forge.write_summary(full)
        try:
            result.comment_url = forge.upsert_comment(
                board + "\n" + report.markdown, report.marker_id
            ).url
        except ServiceError as exc:
            raise ReportNotPosted(f"{exc}; the sweep report is saved in {path}") from exc
    return result
