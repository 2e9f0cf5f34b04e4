"""State of the fake GitHub: repositories, seeding helpers, and objects built from GitHub's
schemas (a minimal valid instance, then the fields that matter)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes import openapi
from tests.fakes.server import FakeForge

COMMENT_LIMIT = 65536  # GitHub rejects longer issue comment bodies with 422
STATUS_DESCRIPTION_LIMIT = 140
DEFAULT_TOKEN = "ghs_fake_installation_token"
DEFAULT_LOGIN = "github-actions[bot]"
DOCS = "https://docs.github.com/rest"


@dataclass
class Repo:
    full_name: str
    id: int
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[int]] = field(default_factory=dict)  # issue number -> comment ids
    statuses: list[dict[str, Any]] = field(default_factory=list)
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    deployment_statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "refs/tags/x" -> sha
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)  # tag object sha -> object


class GitHubState(FakeForge):
    """Seeding and inspection: what a test arranges before and reads after."""

    name = "github"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.repos: dict[str, Repo] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {DEFAULT_TOKEN: DEFAULT_LOGIN}
        self.editors: set[str] = set()  # logins that may edit other users' comments
        # login -> collaborator permission (admin, maintain, write, triage, read); others: 404
        self.permissions: dict[str, str] = {}
        self._ids = itertools.count(1001)

    # --- seeding -----------------------------------------------------------------------------

    def add_token(self, token: str, login: str) -> None:
        """Accept `token` as `login`; a login ending in [bot] acts as an app (may create checks)."""
        self.tokens[token] = login

    def may_edit_others(self, login: str) -> None:
        """Give `login` write access: it may edit comments other users wrote."""
        with self.lock:
            self.editors.add(login)

    def set_permission(self, login: str, permission: str) -> None:
        """Make `login` a collaborator with `permission` (what the permission endpoint says)."""
        with self.lock:
            self.permissions[login] = permission

    def repo(self, full_name: str) -> Repo:
        with self.lock:
            if full_name not in self.repos:
                self.repos[full_name] = Repo(full_name, next(self._ids))
            return self.repos[full_name]

    def add_pull(
        self,
        repo: str,
        number: int,
        *,
        head_sha: str,
        head_ref: str = "feature",
        base_ref: str = "main",
        base_sha: str = "0" * 40,
        state: str = "open",
        title: str = "",
        body: str | None = None,
        merge_commit_sha: str | None = None,
        head_repo: str | None = None,
    ) -> None:
        """`head_repo`: the fork the head branch lives in (None: this repository)."""
        with self.lock:
            self.repo(repo).pulls[number] = {
                "head_repo": head_repo,
                "merge_commit_sha": merge_commit_sha,
                "number": number,
                "head_sha": head_sha,
                "head_ref": head_ref,
                "base_ref": base_ref,
                "base_sha": base_sha,
                "state": state,
                "title": title,
                "body": body,
                "labels": [],
            }

    def seed_comments(
        self, repo: str, issue: int, count: int, *, login: str = "someone", body: str = "LGTM"
    ) -> None:
        """Add `count` earlier comments from another user."""
        for i in range(count):
            self._create_comment(self.repo(repo), issue, f"{body} ({i + 1})", login)

    def ci_env(
        self,
        workdir: Path,
        *,
        repo: str = "octo/demo",
        pr: int | None = 7,
        head_sha: str = "a" * 40,
        base_sha: str = "b" * 40,
        event: str = "pull_request",
        token: str = DEFAULT_TOKEN,
    ) -> dict[str, str]:
        """The environment of a GitHub Actions job pointed at this fake (and the PR seeded)."""
        workdir.mkdir(parents=True, exist_ok=True)
        payload: dict[str, Any]
        if pr is not None and event.startswith("pull_request"):
            self.add_pull(repo, pr, head_sha=head_sha, base_sha=base_sha)
            side = {"repo": {"full_name": repo}}
            payload = {
                "number": pr,
                "pull_request": {
                    "number": pr,
                    "head": {"ref": "feature", "sha": head_sha, **side},
                    "base": {"ref": "main", "sha": base_sha, **side},
                },
            }
        else:
            payload = {"ref": "refs/heads/main", "before": base_sha, "after": head_sha}
        event_path = workdir / "event.json"
        event_path.write_text(json.dumps(payload))
        return {
            "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": self.url,
            "GITHUB_SERVER_URL": self.url,
            "GITHUB_REPOSITORY": repo,
            "GITHUB_RUN_ID": "4242",
            "GITHUB_SHA": head_sha,
            "GITHUB_REF": "refs/heads/main" if event == "push" else f"refs/pull/{pr}/merge",
            "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_STEP_SUMMARY": str(workdir / "step-summary.md"),
            "GITHUB_TOKEN": token,
            "MLOPS_CI_RETRY_BASE": "0.01",
        }

    def comments_on(self, repo: str, issue: int) -> list[dict[str, Any]]:
        with self.lock:
            return [self.comments[i] for i in self.repo(repo).comments.get(issue, [])]

    def state(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "repos": {
                name: {
                    "pulls": repo.pulls,
                    "comments": {
                        str(n): [self.comments[i] for i in ids] for n, ids in repo.comments.items()
                    },
                    "statuses": repo.statuses,
                    "check_runs": repo.check_runs,
                    "deployments": repo.deployments,
                    "deployment_statuses": {str(k): v for k, v in repo.deployment_statuses.items()},
                    "refs": repo.refs,
                    "tags": repo.tags,
                }
                for name, repo in self.repos.items()
            },
            "violations": self.violations,
        }

    def rate_limit_body(self) -> dict[str, Any]:
        return {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
            "before you try again.",
            "documentation_url": DOCS,
        }

    # --- object builders (minimal valid instance from the schema, then the real fields) -------

    def _user(self, login: str) -> dict[str, Any]:
        user = openapi.synthesize_component("simple-user")
        user.update(
            login=login,
            id=abs(hash(login)) % 10_000_000,
            type="Bot" if login.endswith("[bot]") else "User",
            html_url=f"{self.url}/{login}",
            url=f"{self.url}/users/{login}",
        )
        return user

    def _create_comment(self, repo: Repo, issue: int, body: str, login: str) -> dict[str, Any]:
        with self.lock:
            cid = next(self._ids)
            comment = openapi.synthesize_component("issue-comment")
            comment.update(
                id=cid,
                body=body,
                user=self._user(login),
                html_url=f"{self.url}/{repo.full_name}/pull/{issue}#issuecomment-{cid}",
                url=f"{self.url}/repos/{repo.full_name}/issues/comments/{cid}",
                issue_url=f"{self.url}/repos/{repo.full_name}/issues/{issue}",
                node_id=f"IC_{cid}",
            )
            self.comments[cid] = comment
            repo.comments.setdefault(issue, []).append(cid)
            return comment

    def _label(self, repo: Repo, name: str) -> dict[str, Any]:
        label = openapi.synthesize_component("label")
        label.update(
            id=abs(hash((repo.full_name, name))) % 10_000_000,
            name=name,
            description=None,
            color="ededed",
            url=f"{self.url}/repos/{repo.full_name}/labels/{name}",
        )
        return label

    def _pull_object(self, repo: Repo, pull: dict[str, Any], schema: str) -> dict[str, Any]:
        obj = openapi.synthesize_component(schema)
        number = pull["number"]
        obj.update(
            number=number,
            state=pull["state"],
            id=repo.id * 1000 + number,
            html_url=f"{self.url}/{repo.full_name}/pull/{number}",
            url=f"{self.url}/repos/{repo.full_name}/pulls/{number}",
        )
        obj["head"].update(ref=pull["head_ref"], sha=pull["head_sha"])
        obj.update(title=pull.get("title", ""), body=pull.get("body"))
        if pull.get("merge_commit_sha"):
            obj.update(merge_commit_sha=pull["merge_commit_sha"], merged_at="2026-01-03T00:00:00Z")
        # pull-request-simple's labels have a string description (never null).
        obj["labels"] = [
            self._label(repo, name) | {"description": ""} for name in pull.get("labels", [])
        ]
        obj["base"].update(ref=pull["base_ref"], sha=pull["base_sha"])
        for side in ("head", "base"):
            if isinstance(obj[side].get("repo"), dict):
                name = (side == "head" and pull.get("head_repo")) or repo.full_name
                obj[side]["repo"].update(full_name=name, name=name.split("/")[1])
        return obj

    # --- routing -----------------------------------------------------------------------------
