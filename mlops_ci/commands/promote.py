"""`mlops-ci promote`: register the commit as a version and assign a stage, unless its gate failed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops_ci.ci import documents
from mlops_ci.project.errors import ConfigError, PromotionRefused, RegistryError
from mlops_ci.project.git import Git
from mlops_ci.project.gto import read_artifact
from mlops_ci.project.settings import Settings, load_settings
from mlops_ci.registry import registry, tags


@dataclass
class Promotion:
    artifact: str
    sha: str
    version: str
    stage: str | None
    registered: bool  # this run created the version tag
    assigned: bool  # this run created the stage tag
    tags: list[str] = field(default_factory=list)
    pushed: bool = False
    attempts: int = 1
    verdict: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**documents.header("promotion"), **asdict(self)}

    def summary(self) -> str:
        what = "registered" if self.registered else "already registered"
        line = f"{self.artifact} {self.version} {what} at {self.sha[:7]}"
        if self.stage:
            line += f"; stage {self.stage}: " + ("assigned" if self.assigned else "unchanged")
        if self.tags:
            line += f"\ntags: {', '.join(self.tags)}" + (" (pushed)" if self.pushed else "")
        return line


def _version_message(artifact: str, version: str, sha: str, verdict: dict[str, Any] | None) -> str:
    head = f"mlops-ci: register {artifact} {version} at {sha[:12]}"
    if verdict is None:
        return f"{head}\n\ngate: no verdict recorded for this commit"
    return f"{head}\n\ngate: {verdict.get('verdict')}: {verdict.get('summary') or ''}".rstrip()


def promote(
    repo_dir: Path,
    run_dir: Path,
    *,
    stage: str | None = None,
    push: bool = False,
    rev: str = "HEAD",
    remote: str = "origin",
    settings: Settings | None = None,
    env: Mapping[str, str] | None = None,
) -> Promotion:
    """Register the commit at `rev` as a new version (if it has none) and assign `stage`.

    Idempotent: a commit that already has a version gets no second one, and a version already
    in the stage gets no new stage tag. With `push`, a push that loses a race with another
    runner re-fetches the tags, recomputes the version and counter, and tries again. git tags
    in `env` (default: this process's environment).
    """
    settings = settings or load_settings(repo_dir)
    artifact, config = settings.artifact, settings.promote
    stage = stage or config.auto
    if stage is not None and stage not in config.stages:
        raise ConfigError(
            f"stage {stage!r} is not in promote.stages of mlops-ci.yaml ({list(config.stages)})"
        )
    git = Git(repo_dir)
    git.toplevel()
    sha = git.rev_parse(rev)
    if sha is None:
        raise RegistryError(f"{rev!r} does not name a commit in {repo_dir}")
    verdict = registry.read_verdict(run_dir, sha)
    if verdict and verdict.get("verdict") == "fail":
        raise PromotionRefused(
            f"the gate failed for {sha[:12]} ({verdict.get('summary') or 'see verdict.json'}); "
            "fix the regression (or the policy on the target branch) and run the gate again"
        )
    # A passing verdict judged on another comparison than the one in the run directory proves
    # nothing about this run: fail closed, never promote on it.
    stale = verdict and documents.stale_input(
        verdict, "comparison.json", documents.file_digest(run_dir / "comparison.json")
    )
    if stale:
        raise PromotionRefused(
            f"{run_dir / 'verdict.json'} cannot be trusted: {stale}; run `mlops-ci gate` again"
        )

    def decide(writer: tags.TagWriter) -> tuple[str, bool, bool]:
        art = read_artifact(repo_dir, artifact)
        version = registry.version_at(art, sha)
        registered = version is None
        if version is None:
            version = registry.next_version(art, config.bump)
            writer.register(version, sha, _version_message(artifact, version, sha, verdict))
        assigned = False
        if stage and registry.holder(art, stage) != version:
            writer.assign(stage, sha, f"mlops-ci: assign {artifact} {version} to {stage}")
            assigned = True
        return version, registered, assigned

    done = tags.write_tags(
        git, artifact, decide, push=push, remote=remote, rerun="`mlops-ci promote --push`",
        env=os.environ if env is None else env,
    )  # fmt: skip
    version, registered, assigned = done.value
    result = Promotion(
        artifact=artifact,
        sha=sha,
        version=version,
        stage=stage,
        registered=registered,
        assigned=assigned,
        tags=done.tags,
        pushed=done.pushed,
        attempts=done.attempts,
        verdict=verdict.get("verdict") if verdict else None,
    )
    documents.write(run_dir, "promotion.json", result.to_dict())
    return result
