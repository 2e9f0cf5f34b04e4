"""`mlops-ci rollback`: give a stage back to its previous version and redeploy that version.

A rollback deploys first and writes its registry tags after: a deploy that fails leaves the
registry as it was, and tags that cannot be written or pushed switch the deployment back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mlops_ci.ci import documents
from mlops_ci.commands.deploy import deploy, record, record_failure
from mlops_ci.project.errors import MlopsCiError
from mlops_ci.project.settings import Settings, load_settings
from mlops_ci.registry import registry
from mlops_ci.registry.deploy import Deployment, put_version, target_of

ROLLBACK_JOURNAL = "rollback.json"


@dataclass
class RollbackResult:
    rollback: registry.Rollback
    deployment: Deployment

    def to_dict(self) -> dict[str, Any]:
        return {
            **documents.header("rollback"),
            "state": "done",
            "registry": self.rollback.to_dict(),
            "deployment": self.deployment.to_dict(),
        }

    def summary(self) -> str:
        r = self.rollback
        if r.tags:
            how = f"tags {', '.join(r.tags)}{', pushed' if r.pushed else ''}"
        else:
            how = "its tags were written by an earlier run that was interrupted"
        return (
            f"{r.artifact} {r.stage}: rolled back from {r.from_version} to {r.to_version} "
            f"({how})\n" + self.deployment.summary()
        )


def _journal(run_dir: Path, state: str, plan: registry.RollbackPlan) -> None:
    """What a rollback is doing, written before it starts: a rerun after a crash finds it."""
    documents.write(
        run_dir,
        ROLLBACK_JOURNAL,
        {
            **documents.header("rollback"),
            "state": state,
            "registry": {
                "artifact": plan.artifact,
                "stage": plan.stage,
                "from_version": plan.current,
                "to_version": plan.previous,
            },
        },
    )


def _interrupted_rollback(run_dir: Path, plan: registry.RollbackPlan) -> tuple[str, str] | None:
    """The version an earlier rollback of this stage moved the registry to before it was
    stopped (its tags landed, the record did not): finish that one, do not roll back again."""
    try:
        journal = documents.read(run_dir, ROLLBACK_JOURNAL, kind="rollback", required=False)
    except MlopsCiError:
        return None
    if not isinstance(journal, dict) or journal.get("state") != "started":
        return None
    moved = journal.get("registry") or {}
    if moved.get("stage") != plan.stage or moved.get("artifact") != plan.artifact:
        return None
    if plan.current is None or moved.get("to_version") != plan.current:
        return None
    return str(moved.get("from_version")), plan.current


def rollback(
    repo_dir: Path,
    run_dir: Path,
    *,
    stage: str | None = None,
    target: str | None = None,
    push: bool = False,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> RollbackResult:
    """Give `stage` back to its previous version and redeploy that version.

    The order keeps the registry honest: the previous version is deployed first (a failure
    leaves the tags as they were), then the tags are written (and pushed); tags that cannot be
    written switch the deployment back to the version the registry still names. A rerun after
    a crash between the tags and the record finishes that rollback instead of starting another.
    """
    settings = load_settings(repo_dir)
    env = os.environ if env is None else env
    target = target_of(target, settings)
    plan = registry.plan_rollback(repo_dir, stage=stage, push=push, settings=settings)
    resumed = _interrupted_rollback(run_dir, plan)
    if resumed is not None:
        deployment = deploy(
            repo_dir, run_dir, target=target, version=resumed[1], environment=plan.stage,
            env=env, out=out, settings=settings,
        )  # fmt: skip
        moved = registry.Rollback(plan.artifact, plan.stage, *resumed)
        result = RollbackResult(moved, deployment)
        documents.write(run_dir, ROLLBACK_JOURNAL, result.to_dict())
        return result
    current, previous = plan.require()
    _journal(run_dir, "started", plan)
    back = dict(version=previous, sha=plan.commits[previous], environment=plan.stage)
    try:
        deployed = put_version(repo_dir, run_dir, settings, target, **back, env=env)
    except MlopsCiError as exc:
        record_failure(run_dir, settings, target, **back, error=exc, env=env, out=out)
        _journal(run_dir, "failed", plan)
        raise type(exc)(
            f"{exc}; the registry is unchanged ({plan.artifact} {plan.stage} is still {current})"
        ) from exc
    try:
        moved = registry.rollback(
            repo_dir, stage=plan.stage, push=push, settings=settings, expect=(current, previous),
            env=env,
        )  # fmt: skip
    except MlopsCiError as exc:
        raise _undo(repo_dir, run_dir, settings, target, plan, deployed, exc, env, out) from exc
    deployment = record(run_dir, deployed, env, out)
    documents.write(run_dir, "deployment.json", deployment.to_dict())
    result = RollbackResult(moved, deployment)
    documents.write(run_dir, ROLLBACK_JOURNAL, result.to_dict())
    return result


def _undo(
    repo_dir: Path,
    run_dir: Path,
    settings: Settings,
    target: str,
    plan: registry.RollbackPlan,
    deployed: Deployment,
    error: MlopsCiError,
    env: Mapping[str, str],
    out: TextIO | None,
) -> MlopsCiError:
    """The tags could not be written: put back what was live, so the target agrees with the
    registry again; returns the error that says which state it left."""
    current = plan.current or ""
    live = deployed.previous if deployed.previous in plan.commits else current
    try:
        put_version(
            repo_dir, run_dir, settings, target, version=live, sha=plan.commits[live],
            environment=plan.stage, env=env,
        )  # fmt: skip
    except MlopsCiError as undo_error:
        record_failure(
            run_dir, settings, target, version=deployed.version, sha=deployed.sha,
            environment=plan.stage, error=error, env=env, out=out,
        )  # fmt: skip
        return type(error)(
            f"{error}; switching the deployment back to {live} failed too ({undo_error}): "
            f"{plan.stage} now serves {deployed.version} while the registry names {current}; "
            "rerun the rollback once the registry and the target answer"
        )
    record_failure(
        run_dir, settings, target, version=deployed.version, sha=deployed.sha,
        environment=plan.stage, error=error, env=env, out=out,
    )  # fmt: skip
    _journal(run_dir, "failed", plan)
    return type(error)(
        f"{error}; the deployment was switched back to {live}, so the registry "
        f"({plan.stage}: {current}) and the target agree as before"
    )
