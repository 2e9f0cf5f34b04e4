"""`mlops-ci pr`: what a pull request's workflow runs: train, compare, gate, report, then post.

Documents are written before anything is posted, so a forge that fails (exit 3) never loses the
verdict or the report.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlops_ci.commands.gate import (
    COMPARISON_FILE,
    VERDICT_FILE,
    GateNotPosted,
    GateRun,
    judge,
    post_status,
    signal_ci,
)
from mlops_ci.project.errors import MlopsCiError, ServiceError


@dataclass
class PrRun:
    train: Any
    comparison: dict[str, Any]
    gate: GateRun
    report: Any = None
    errors: list[ServiceError] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return self.errors[0].exit_code if self.errors else self.gate.exit_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": self.train.to_dict(),
            "comparison": str(self.gate.path.parent / COMPARISON_FILE),
            "report": self.report.to_dict() if self.report is not None else None,
            "verdict": self.gate.verdict.to_dict(),
            "status": self.gate.status,
            "check_url": self.gate.check_url,
            "errors": [str(e) for e in self.errors],
        }

    def summary(self) -> str:
        from mlops_ci.commands.train import format_stage_table

        lines = [format_stage_table(self.train), "", self.gate.summary()]
        if self.report is not None:
            lines.append(f"report written to {self.report.path}")
            if self.report.comment_url:
                lines.append(f"comment: {self.report.comment_url}")
            lines += self.report.notes
        lines += [f"not posted: {e}" for e in self.errors]
        return "\n".join(lines)


IN_PROGRESS_DESCRIPTION = "in progress: training, comparing and gating"
FAILED_DESCRIPTION = "the run stopped before a verdict: see its log"


def announce_pr(
    repo_dir: Path,
    run_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    forge: Any = None,
    workflow: str | None = None,
    failed: bool = False,
) -> list[str]:
    """Before anything of the repository runs: the gate's status `pending` on the head commit,
    and the sticky comment saying the run is in progress (the final report replaces it).
    `failed`: the run stopped before it could report, so neither may keep saying "in progress":
    the status becomes `error` and the comment says so.

    Reads only `mlops-ci.yaml` (for the artifact's name) and the CI event, so a workflow can run
    it with the token in a step before training, which gets none. A forge that does not answer
    is noted, not fatal: the report that follows is what matters.
    """
    from mlops_ci.ci.event import read_ci_event
    from mlops_ci.forge import NoPullRequest, detect_forge, status_context
    from mlops_ci.project.settings import load_settings
    from mlops_ci.report.render import report_marker_id

    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    artifact = load_settings(repo_dir).artifact
    forge = forge or detect_forge(env, run_dir, out=out)
    sha = read_ci_event(env, run_dir).head_sha
    notes: list[str] = []
    state, description = (
        ("error", FAILED_DESCRIPTION) if failed else ("pending", IN_PROGRESS_DESCRIPTION)
    )
    run = f" ([the run]({forge.run_url}))" if forge.run_url else ""
    commit = f" `{sha[:12]}`" if sha else ""
    body = f"### mlops-ci: {artifact}\n\n" + (
        f"**Stopped**{run}: the run on{commit} ended before it could report (a failing stage, a "
        "bad setting or an unreachable service); its log says why. The next run replaces this.\n"
        if failed
        else f"**In progress**{run}: training, comparing with the baseline and gating{commit}. "
        "The report replaces this comment when the run finishes.\n"
    )
    try:
        if sha:
            forge.set_status(sha, state, description, status_context(artifact))
            notes.append(f"status {state} on {sha[:12]}")
        marker = report_marker_id(artifact, workflow or env.get("GITHUB_WORKFLOW") or "mlops-ci")
        forge.upsert_comment(body, marker)
        notes.append("comment: " + ("stopped" if failed else "in progress"))
    except NoPullRequest:
        notes.append("no pull request to comment on")
    except ServiceError as exc:
        notes.append(f"progress not posted: {exc}")
    return notes


def run_pr(
    repo_dir: Path,
    run_dir: Path,
    *,
    pull: bool = False,
    push: bool = False,
    overrides: Sequence[str] = (),
    baseline: str | None = None,
    target_branch: str | None = None,
    post: bool = True,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    png_limit: int = 0,
) -> PrRun:
    """What a pull request's workflow runs: train, compare, gate, report; then post once.

    The verdict is judged before the report is rendered, so the comment shows it; the comment is
    posted before the status, so a reviewer who follows the red status finds the reasons.
    """
    from mlops_ci.forge import detect_forge

    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    # One forge (one HTTP session, one look-up of the PR and of our login) for every post.
    forge = detect_forge(env, run_dir, out=out) if post else None
    announced = forge is not None and forge.name != "local"
    if announced:
        # Pending and "in progress" first, before any stage of the repository runs.
        for note in announce_pr(repo_dir, run_dir, env=env, out=out, forge=forge):
            out.write(f"mlops-ci: {note}\n")
    try:
        return _run_pr(
            repo_dir, run_dir, pull=pull, push=push, overrides=overrides, baseline=baseline,
            target_branch=target_branch, post=post, env=env, out=out, png_limit=png_limit,
            forge=forge,
        )  # fmt: skip
    except (MlopsCiError, KeyboardInterrupt):
        if announced:  # no report follows: "in progress" must not stay
            announce_pr(repo_dir, run_dir, env=env, out=out, forge=forge, failed=True)
        raise


def _run_pr(
    repo_dir: Path,
    run_dir: Path,
    *,
    pull: bool,
    push: bool,
    overrides: Sequence[str],
    baseline: str | None,
    target_branch: str | None,
    post: bool,
    env: Mapping[str, str],
    out: TextIO,
    png_limit: int,
    forge: Any,
) -> PrRun:
    from mlops_ci.commands.compare import write_comparison
    from mlops_ci.commands.report import ReportNotPosted, run_report
    from mlops_ci.commands.train import run_train_process
    from mlops_ci.report.write import FITTED_NAME, FULL_NAME

    # This run rewrites these; one that stops early (exit 2) must not leave an earlier run's
    # comparison, verdict or report to be read as this one's.
    for name in (COMPARISON_FILE, VERDICT_FILE, FULL_NAME, FITTED_NAME):
        (run_dir / name).unlink(missing_ok=True)
    trained = run_train_process(
        repo_dir, run_dir, pull=pull, push=push, overrides=overrides, stage_output=out, env=env,
        meanwhile=lambda: _load_comparison_modules(repo_dir), command="pr",
    )  # fmt: skip
    compared = write_comparison(
        repo_dir, run_dir, baseline=baseline, target_branch=target_branch, env=env
    )
    comparison = compared.document
    try:
        verdict, _ = judge(repo_dir, run_dir, comparison, compared.policy)
    except MlopsCiError as exc:
        # The gate cannot decide: the report still shows the new comparison, saying why there
        # is no verdict, so no earlier run's report or verdict is left to be read as this one's.
        with contextlib.suppress(MlopsCiError):  # the gate's error is the one to report
            run_report(repo_dir, run_dir, post=False, env=env, out=out, gate_error=str(exc))
        raise
    result = PrRun(trained, comparison, GateRun(verdict, run_dir / VERDICT_FILE))
    signal_ci(verdict, env, out)
    try:
        result.report = run_report(
            repo_dir, run_dir, post=post, env=env, out=out, forge=forge, png_limit=png_limit
        )
    except ReportNotPosted as exc:
        result.errors.append(exc)
    if post:
        try:
            post_status(result.gate, env, run_dir, out, forge)
        except GateNotPosted as exc:
            result.errors.append(exc)
    return result


def _load_comparison_modules(repo_dir: Path) -> None:
    """What compare, gate and report import, loaded while the stages run in their own process:
    numpy only for a project whose policy names predictions (metrics-only ones never need it)."""
    from mlops_ci.commands import report  # noqa: F401  (jinja2 and the templates)
    from mlops_ci.compare import diff  # noqa: F401
    from mlops_ci.project.settings import load_settings

    with contextlib.suppress(MlopsCiError):  # compare says what is wrong with the settings
        if load_settings(repo_dir).predictions:
            from mlops_ci.compare import stats  # noqa: F401
