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
    from mlops_ci.commands.report import ReportNotPosted, run_report
    from mlops_ci.commands.train import run_train
    from mlops_ci.compare.diff import compare
    from mlops_ci.forge import detect_forge
    from mlops_ci.report.write import FITTED_NAME, FULL_NAME

    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    # This run rewrites these; one that stops early (exit 2) must not leave an earlier run's
    # comparison, verdict or report to be read as this one's.
    for name in (COMPARISON_FILE, VERDICT_FILE, FULL_NAME, FITTED_NAME):
        (run_dir / name).unlink(missing_ok=True)
    trained = run_train(
        repo_dir, run_dir, pull=pull, push=push, overrides=overrides, stage_output=out, env=env
    )
    comparison, policy = compare(
        repo_dir, run_dir, baseline=baseline, target_branch=target_branch, env=env
    )
    try:
        verdict, _ = judge(repo_dir, run_dir, comparison, policy)
    except MlopsCiError as exc:
        # The gate cannot decide: the report still shows the new comparison, saying why there
        # is no verdict, so no earlier run's report or verdict is left to be read as this one's.
        with contextlib.suppress(MlopsCiError):  # the gate's error is the one to report
            run_report(repo_dir, run_dir, post=False, env=env, out=out, gate_error=str(exc))
        raise
    result = PrRun(trained, comparison, GateRun(verdict, run_dir / VERDICT_FILE))
    signal_ci(verdict, env, out)
    # One forge (one HTTP session, one look-up of the PR and of our login) for both posts.
    forge = detect_forge(env, run_dir, out=out) if post else None
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
