"""Build the forge this process runs under from the environment (the one impure entry point)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mlops_ci.ci.event import forge_kind, read_ci_event
from mlops_ci.forge.base import Forge
from mlops_ci.project.errors import ConfigError

if TYPE_CHECKING:
    import requests


def _token(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def detect_forge(
    env: Mapping[str, str],
    run_dir: Path,
    session: requests.Session | None = None,
    *,
    out: TextIO | None = None,
) -> Forge:
    """GitHub when GITHUB_ACTIONS=true, GitLab when GITLAB_CI=true, else local
    (MLOPS_CI_FORGE=github|gitlab|local overrides). API URLs always come from the environment."""
    kind = forge_kind(env)
    run_dir = Path(run_dir)
    if kind == "local":
        from mlops_ci.forge.local import LocalForge

        return LocalForge(run_dir, out=out if out is not None else sys.stdout)

    from mlops_ci.forge.http import ForgeSession, RetryPolicy

    event = read_ci_event(env, run_dir)
    policy = RetryPolicy.from_env(env)
    if kind == "github":
        from mlops_ci.forge import github

        repository = env.get("GITHUB_REPOSITORY", "").strip()
        if not repository:
            raise ConfigError("GITHUB_REPOSITORY is not set: it names the owner/repo to post to")
        api = env.get("GITHUB_API_URL", "").strip() or "https://api.github.com"
        forge_session = ForgeSession(
            api,
            forge="GitHub",
            token=_token(env, "MLOPS_CI_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"),
            policy=policy,
            session=session,
            extra_headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            hints=github.HINTS,
        )
        summary = env.get("GITHUB_STEP_SUMMARY", "").strip()
        return github.GitHubForge(
            run_dir,
            session=forge_session,
            repository=repository,
            event=event,
            server_url=event.server_url or "https://github.com",
            step_summary=Path(summary) if summary else None,
            login=github.github_login(env),
        )

    from mlops_ci.forge import gitlab

    api = env.get("CI_API_V4_URL", "").strip()
    if not api and env.get("CI_SERVER_URL"):
        api = env["CI_SERVER_URL"].rstrip("/") + "/api/v4"
    project = env.get("CI_PROJECT_ID", "").strip()
    if not api or not project:
        raise ConfigError("CI_API_V4_URL and CI_PROJECT_ID must be set to post to GitLab")
    forge_session = ForgeSession(
        api,
        forge="GitLab",
        token=_token(env, "MLOPS_CI_TOKEN", "GITLAB_TOKEN"),
        auth_header="PRIVATE-TOKEN",
        auth_prefix="",
        policy=policy,
        session=session,
        hints=gitlab.HINTS,
    )
    return gitlab.GitLabForge(
        run_dir,
        session=forge_session,
        project_id=project,
        event=event,
        project_url=env.get("CI_PROJECT_URL") or None,
        login=env.get("MLOPS_CI_COMMENT_AUTHOR") or None,
    )
