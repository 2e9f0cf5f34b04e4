"""`mlops-ci compare`: write comparison.json and print the terminal table.

The command owns the I/O around `compare.diff.compare`: it reads the CI event from the
environment, finds the repository, resolves the baseline, and writes the document and the
image plots into the run directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.project.errors import ConfigError, ServiceError

if TYPE_CHECKING:  # the comparison modules load when a comparison runs
    from mlops_ci.compare.diff import Comparison


def write_comparison(
    repo_dir: Path,
    run_dir: Path,
    *,
    baseline: str | None = None,
    target_branch: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Comparison:
    """Compare the workspace with the baseline and write `<run_dir>/comparison.json` (and the
    image plots beside it); hand back the comparison, with the baseline's policy for the gate."""
    from mlops_ci.ci import documents
    from mlops_ci.ci.event import read_ci_event
    from mlops_ci.compare.baseline import resolve_baseline
    from mlops_ci.compare.diff import compare
    from mlops_ci.compare.snapshot import Project
    from mlops_ci.project.dvc import RemoteFetcher
    from mlops_ci.project.git import Git
    from mlops_ci.project.settings import load_settings

    env = os.environ if env is None else env
    if baseline is not None and not baseline.strip():
        raise ConfigError("--baseline is empty; use merge-base, base, stage:NAME or a git ref")
    project = Project.find(Path(repo_dir), Git(repo_dir).toplevel())
    git = project.git
    local = load_settings(project.git_top)
    event = read_ci_event(env, run_dir)
    target = target_branch or event.base_ref or local.target_branch
    branch = event.head_ref or git.current_branch()
    resolved = resolve_baseline(
        git, baseline or local.baseline, target_branch=target, artifact=local.artifact,
        event_base_sha=event.base_sha if event.is_pull_request else None,
        event_before_sha=event.base_sha if event.event_name == "push" else None,
        branch=branch, stages=local.promote.stages,
    )  # fmt: skip
    fetch = RemoteFetcher(project.root, local.remote, env)
    comparison = compare(
        project, resolved, local, target_branch=target, branch=branch, fetch=fetch,
        run_dir=run_dir,
    )  # fmt: skip
    for name, data in comparison.images.items():
        path = run_dir / name
        with documents.writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    documents.write(run_dir, "comparison.json", comparison.document)
    if fetch.failures:
        raise ServiceError(f"{fetch.failures[0]}; the comparison is saved in {run_dir}")
    return comparison


def run_compare(
    repo_dir: Path,
    run_dir: Path,
    *,
    baseline: str | None = None,
    target_branch: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Compare the workspace with the baseline and write `<run_dir>/comparison.json`."""
    comparison = write_comparison(
        repo_dir, run_dir, baseline=baseline, target_branch=target_branch, env=env
    )
    return comparison.document


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)[:40]


# A terminal shows this many metric rows at most, the ones a reader must see first.
TERMINAL_ROWS = 50
_FIRST = ("regressed", "unknown", "removed", "added", "improved", "inconclusive", "changed")


def _terminal_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The rows to print (in document order) and how many are left out."""
    if len(rows) <= TERMINAL_ROWS:
        return rows, 0
    rank = {status: i for i, status in enumerate(_FIRST)}
    order = sorted(range(len(rows)), key=lambda i: rank.get(rows[i].get("status"), len(_FIRST)))
    keep = sorted(order[:TERMINAL_ROWS])
    return [rows[i] for i in keep], len(rows) - len(keep)


def format_comparison(document: Mapping[str, Any]) -> str:
    """The terminal table of `mlops-ci compare`."""
    base = document["baseline"]
    lines = [
        f"baseline:  {base['how']} {str(base.get('sha') or '-')[:12]} {base.get('subject') or ''}".rstrip(),
        f"candidate: {str(document['candidate'].get('sha') or '-')[:12]} ({document['candidate'].get('branch') or 'detached'})",
        "",
    ]
    rows, hidden = _terminal_rows(document["metrics"])
    width = max([6, *(min(len(r["name"]), 40) for r in rows)])
    lines.append(
        f"{'metric':<{width}}  {'baseline':>10}  {'candidate':>10}  {'delta':>10}  {'95% CI':>21}  status"
    )
    for r in rows:
        ci = f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]" if r["ci_low"] is not None else "-"
        delta = f"{r['delta']:+.4g}" if r["delta"] is not None else "-"
        lines.append(
            f"{r['name'][:40]:<{width}}  {_fmt(r['baseline']):>10}  {_fmt(r['candidate']):>10}  "
            f"{delta:>10}  {ci:>21}  {r['status']}"
        )
    if hidden:
        lines.append(f"... and {hidden:,} more metrics (every row is in comparison.json)")
    if document["params"]:
        lines += ["", "params changed:"]
        lines += [f"  {p['name']}: {_fmt(p['baseline'])} -> {_fmt(p['candidate'])} ({p['change']})"
                  for p in document["params"]]  # fmt: skip
    lines += _data_lines(document.get("data"))
    for problem in document["errors"]:
        lines.append(
            f"error: {problem['file']} at {problem['revision'][:12]}: {problem['message']}"
        )
    lines += [f"warning: {w}" for w in document["warnings"]]
    return "\n".join(lines)


def _data_lines(data: Any) -> list[str]:
    """The data section in a few lines: tracked paths that changed, then each table."""
    if not isinstance(data, Mapping):
        return []
    lines = [""]
    if data.get("error"):
        lines.append(f"data: could not be computed: {data['error']}")
    files = data.get("files")
    if isinstance(files, Mapping):
        counts = {k: n for k, n in (files.get("counts") or {}).items() if n}
        shown = ", ".join(f"{n} {k}" for k, n in counts.items()) or "none"
        lines.append(f"data: DVC-tracked paths changed: {shown}")
    for table in data.get("tables") or []:
        base, cand = table.get("baseline") or {}, table.get("candidate") or {}
        rows = f"rows {_fmt(base.get('rows'))} -> {_fmt(cand.get('rows'))}"
        shifted = table.get("drifted_columns") or []
        tail = f", shifted: {', '.join(map(str, shifted[:5]))}" if shifted else ""
        lines.append(f"  table {table.get('path')}: {table.get('status')}, {rows}{tail}")
    return lines if len(lines) > 1 else []
