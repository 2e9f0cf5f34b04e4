"""`mlops-ci report`: read the run directory, render, write every destination, maybe post.

The one impure entry point of the report: it reads the environment, builds the forge and the
git wrapper and passes them down. Files are written first, so a failure to post (exit 3) never
loses the report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlops_ci.ci import documents
from mlops_ci.ci.limits import SUMMARY_LIMIT_BYTES
from mlops_ci.forge import NoPullRequest, detect_forge
from mlops_ci.project.errors import ConfigError, GitError, NotAGitRepo, ServiceError
from mlops_ci.project.git import Git
from mlops_ci.project.settings import Settings, load_settings
from mlops_ci.report.render import (
    Report,
    ReportLinks,
    build_report,
    check_documents,
    revision_labels,
)
from mlops_ci.report.trend import (
    DEFAULT_COMMITS,
    Trend,
    carried_trend,
    key_metrics,
    read_trend,
)
from mlops_ci.report.write import FULL_NAME, write_pngs, write_report


class ReportNotPosted(ServiceError):
    """The forge refused or failed to take the comment; the report is saved all the same."""


@dataclass
class ReportRun:
    report: Report
    path: Path
    summary: Path | None = None
    comment_url: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": str(self.path),
            "summary": str(self.summary) if self.summary else None,
            "comment_url": self.comment_url,
            "dropped": self.report.dropped,
            "characters": len(self.report.markdown),
            "marker": self.report.marker_id,
            "notes": self.notes,
        }


def load_trend(
    repo_dir: Path, comparison: dict, verdict: dict | None, *, commits: int = DEFAULT_COMMITS
) -> Trend | None:
    """Key metrics (the gate's, else the first few) over the last `commits` commits of the
    target branch; None when unreadable or `commits` is 0."""
    if commits <= 0:
        return None
    target = str(comparison.get("target_branch") or "main")
    rules = (verdict or {}).get("rules")
    listed = [r for r in (rules if isinstance(rules, list) else [])
              if isinstance(r, dict) and r.get("metric")]  # fmt: skip
    # Gated metrics first: a metric listed only for its direction is not gated.
    listed.sort(key=lambda r: r.get("rule") == "direction")
    names = list(dict.fromkeys(str(r["metric"]) for r in listed))
    metrics = key_metrics(comparison, names or None)
    if not metrics:
        return None
    carried = carried_trend(comparison.get("trend"), metrics, commits)
    if carried is not None:
        return carried
    git = Git(repo_dir)
    try:
        ref = next((r for r in (f"origin/{target}", target) if git.rev_parse(r)), None)
        return read_trend(git, ref, metrics, commits=commits) if ref else None
    except (GitError, NotAGitRepo):
        return None


def summary_markdown(report: Report) -> str:
    """The full report when it fits the job summary's 1 MiB, else one fitted to it."""
    if len(report.full_markdown.encode()) <= SUMMARY_LIMIT_BYTES - 1024:
        return report.full_markdown
    # A UTF-16 code unit is at most 3 UTF-8 bytes, so this bound holds for any text.
    return report.fitted((SUMMARY_LIMIT_BYTES - 1024) // 3)[0]


def run_report(
    repo_dir: Path,
    run_dir: Path,
    *,
    post: bool = False,
    output: Path | None = None,
    env: Mapping[str, str] | None = None,
    workflow: str | None = None,
    out: TextIO | None = None,
    forge: Any = None,
    gate_error: str | None = None,
    png_limit: int = 0,
) -> ReportRun:
    """Render `<run_dir>/comparison.json` (+ `verdict.json`) and write it everywhere.

    `out` takes the local forge's one-line notices (stderr when stdout carries JSON); `forge`
    is the caller's, when it already has one (one HTTP session per command). `gate_error`: why
    the gate could not decide (`pr` after a bad policy); the report says so instead of a verdict.
    `png_limit`: draw at most this many plots as PNG files (0: none, the default).

    A verdict.json judged on another comparison.json (its recorded digest differs) is not
    shown: the report says it is stale and what to rerun.
    """
    env = os.environ if env is None else env
    comparison, comparison_digest = documents.read_digested(
        run_dir, "comparison.json", kind="comparison"
    )
    verdict, verdict_digest = documents.read_digested(
        run_dir, "verdict.json", kind="verdict", required=False
    )
    notes: list[str] = []
    verdict_note = None
    if gate_error is not None:
        verdict, verdict_digest = None, None
        verdict_note = f"The gate could not decide: {gate_error}"
    elif verdict is not None:
        stale = documents.stale_input(verdict, "comparison.json", comparison_digest)
        if stale is not None:
            verdict, verdict_digest = None, None
            verdict_note = (
                f"verdict.json was judged on another comparison.json ({stale}), so it is not "
                "shown; run `mlops-ci gate` to judge this one"
            )
            notes.append(verdict_note)
    check_documents(comparison, verdict)  # before the trend reads the rows
    try:
        settings = load_settings(repo_dir)
    except ConfigError as exc:  # the report only needs trend_commits: show it all the same
        settings = Settings()
        notes.append(f"settings unreadable, the report uses defaults: {exc}")
    forge = forge or detect_forge(env, run_dir, out=out)
    links = ReportLinks(commit_url=forge.commit_url, run_url=forge.run_url)
    try:
        hint = str((run_dir / FULL_NAME).relative_to(repo_dir))
    except ValueError:
        hint = str(run_dir / FULL_NAME)
    pngs = None
    if png_limit:  # drawn first, so the report names only the files that exist
        plots = [p for p in comparison.get("plots") or [] if isinstance(p, dict)]
        pngs = write_pngs(run_dir, plots, revision_labels(comparison), limit=png_limit)
    report = build_report(
        comparison,
        verdict,
        limit=forge.comment_limit,
        links=links,
        trend=load_trend(repo_dir, comparison, verdict, commits=settings.trend_commits),
        full_report_hint=hint,
        marker_id=workflow or env.get("GITHUB_WORKFLOW") or "mlops-ci",
        verdict_note=verdict_note,
        inputs={"comparison.json": comparison_digest, "verdict.json": verdict_digest},
        pngs=pngs,
    )
    path = write_report(run_dir, report, output=output)
    result = ReportRun(
        report=report,
        path=path,
        summary=forge.write_summary(summary_markdown(report)),
        notes=notes,
    )
    if post:
        try:
            posted = forge.upsert_comment(report.markdown, report.marker_id)
        except NoPullRequest as exc:
            # A push, dispatch or branch pipeline: nothing to comment on, and no failure.
            result.notes.append(f"no pull request to comment on: {exc}")
        except ServiceError as exc:
            raise ReportNotPosted(
                f"{exc}. The report is saved in {path} (and the job summary); rerun "
                "`mlops-ci report --post` once the forge answers"
            ) from exc
        else:
            result.comment_url = posted.url
    return result
