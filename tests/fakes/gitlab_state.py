"""State of the fake GitLab: projects, merge requests, notes, statuses and deployments, and
the seeding helpers tests arrange them with."""

from __future__ import annotations

import itertools
from typing import Any

from tests.fakes.server import FakeForge

NOTE_LIMIT = 1_000_000
DEFAULT_TOKEN = "glpat-fake-project-token"
DEFAULT_LOGIN = "project_42_bot"


class GitLabState(FakeForge):
    """Seeding and inspection: what a test arranges before and reads after."""

    name = "gitlab"
    rate_limit_status = 429

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tokens: dict[str, str] = {DEFAULT_TOKEN: DEFAULT_LOGIN}
        self.readonly_tokens: set[str] = set()
        self.hidden_users: set[str] = set()  # logins whose token may not read GET /user
        self.projects: dict[str, dict[str, Any]] = {}
        self.members: dict[str, int] = {}  # login -> access level (30 Developer, 40 Maintainer)
        # (project, iid) -> the merge request's diff versions, oldest first
        self.versions: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._ids = itertools.count(501)

    # --- seeding -----------------------------------------------------------------------------

    def add_token(self, token: str, login: str, *, readonly: bool = False) -> None:
        self.tokens[token] = login
        if readonly:
            self.readonly_tokens.add(token)

    def hide_user(self, login: str) -> None:
        """GET /user answers 403 for `login`'s tokens (a token without the read_user scope)."""
        with self.lock:
            self.hidden_users.add(login)

    def project(self, pid: str) -> dict[str, Any]:
        with self.lock:
            return self.projects.setdefault(
                str(pid),
                {"mrs": {}, "notes": {}, "statuses": [], "deployments": []},
            )

    def add_pull(
        self,
        project: str,
        iid: int,
        *,
        head_sha: str,
        source: str = "feature",
        target: str = "main",
    ) -> None:
        self.project(project)["mrs"][iid] = {
            "iid": iid,
            "sha": head_sha,
            "source_branch": source,
            "target_branch": target,
            "state": "opened",
        }

    def set_permission(self, login: str, level: int | str) -> None:
        """Make `login` a project member with access `level` (10 Guest ... 50 Owner)."""
        with self.lock:
            self.members[login] = int(level)

    def push(self, project: str, iid: int, head_sha: str, at: str) -> None:
        """A push to the merge request's branch at time `at`: a new head and diff version."""
        with self.lock:
            self.project(project)["mrs"][iid]["sha"] = head_sha
            found = self.versions.setdefault((str(project), iid), [])
            found.append(
                {
                    "id": next(self._ids),
                    "head_commit_sha": head_sha,
                    "base_commit_sha": "0" * 40,
                    "start_commit_sha": "0" * 40,
                    "created_at": at,
                    "merge_request_id": iid + 10_000,
                    "state": "collected",
                    "real_size": "1",
                }
            )

    def note_at(self, project: str, iid: int, body: str, login: str, at: str) -> dict[str, Any]:
        """A note written by `login` at time `at` (GitLab's own timestamp)."""
        note = self._create_note(project, iid, body, login)
        note["created_at"] = note["updated_at"] = at
        return note

    def seed_notes(
        self, project: str, iid: int, count: int, *, login: str = "someone", body: str = "LGTM"
    ) -> None:
        for i in range(count):
            self._create_note(project, iid, f"{body} ({i + 1})", login)

    def ci_env(
        self,
        *,
        project: str = "42",
        mr: int | None = 7,
        head_sha: str = "a" * 40,
        base_sha: str = "b" * 40,
        token: str | None = DEFAULT_TOKEN,
    ) -> dict[str, str]:
        """The environment of a GitLab CI job pointed at this fake (and the MR seeded)."""
        env = {
            "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{self.url}/api/v4",
            "CI_SERVER_URL": self.url,
            "CI_PROJECT_ID": project,
            "CI_PROJECT_PATH": "group/demo",
            "CI_PROJECT_URL": f"{self.url}/group/demo",
            "CI_PIPELINE_URL": f"{self.url}/group/demo/-/pipelines/77",
            "CI_COMMIT_SHA": head_sha,
            "CI_COMMIT_REF_NAME": "feature" if mr else "main",
            "CI_JOB_TOKEN": "job-token-value",
            "MLOPS_CI_RETRY_BASE": "0.01",
        }
        if mr is not None:
            self.add_pull(project, mr, head_sha=head_sha)
            env.update(
                CI_PIPELINE_SOURCE="merge_request_event",
                CI_MERGE_REQUEST_IID=str(mr),
                CI_MERGE_REQUEST_DIFF_BASE_SHA=base_sha,
                CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
                CI_MERGE_REQUEST_SOURCE_BRANCH_NAME="feature",
                CI_MERGE_REQUEST_PROJECT_ID=project,
                CI_MERGE_REQUEST_SOURCE_PROJECT_ID=project,
            )
        else:
            env.update(
                CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="main", CI_COMMIT_BEFORE_SHA=base_sha
            )
        if token:
            env["MLOPS_CI_TOKEN"] = token
        return env

    def notes_on(self, project: str, iid: int) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.project(project)["notes"].get(iid, []))

    def state(self) -> dict[str, Any]:
        return {"url": self.url, "projects": self.projects, "violations": self.violations}

    def rate_limit_body(self) -> dict[str, Any]:
        return {"message": "Retry later"}

    def _user(self, login: str) -> dict[str, Any]:
        return {
            "id": abs(hash(login)) % 100_000,
            "username": login,
            "name": login,
            "state": "active",
            "web_url": f"{self.url}/{login}",
        }

    def _create_note(self, project: str, iid: int, body: str, login: str) -> dict[str, Any]:
        with self.lock:
            note = {
                "id": next(self._ids),
                "type": None,
                "body": body,
                "author": self._user(login),
                "created_at": "2026-01-01T00:00:00.000Z",
                "updated_at": "2026-01-01T00:00:00.000Z",
                "system": False,
                "noteable_id": iid,
                "noteable_type": "MergeRequest",
                "noteable_iid": iid,
                "resolvable": False,
                "confidential": False,
                "internal": False,
            }
            self.project(project)["notes"].setdefault(iid, []).append(note)
            return note
