"""GitLab (REST v4): sticky merge request note, commit status, deployments.

GitLab has no step summary: the summary goes to the run directory (keep it as a job artifact).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlops_ci.forge.base import PostedComment
from mlops_ci.forge.errors import ForgeAuthFailed, ForgeNotFound
from mlops_ci.forge.http import ForgeSession
from mlops_ci.forge.remote import RemoteForge
from mlops_ci.forge.summary import NoPullRequest
from mlops_ci.project.ci_event import CiEvent
from mlops_ci.project.limits import GITLAB_NOTE_LIMIT

# Our state words (GitHub's) to GitLab's.
STATUS_STATES = {"pending": "pending", "success": "success", "failure": "failed", "error": "failed"}
DEPLOYMENT_STATES = {
    "success": "success",
    "failure": "failed",
    "error": "failed",
    "in_progress": "running",
    "queued": "running",
    "pending": "running",
    "inactive": "canceled",
}
MISSING_API_KEY_HELP = (
    "GitLab: no API token. CI_JOB_TOKEN cannot post merge request notes, statuses or "
    "deployments: create a project access token with the `api` scope and pass it as the masked "
    "CI/CD variable MLOPS_CI_TOKEN (or GITLAB_TOKEN)."
)
HINTS = {
    401: "The token was refused: check MLOPS_CI_TOKEN or GITLAB_TOKEN (CI_JOB_TOKEN cannot post notes).",
    403: "The token lacks a permission: it needs the `api` scope and at least Reporter "
    "(notes) or Developer (statuses, deployments) role.",
    404: "Check CI_PROJECT_ID and that the token can see the project.",
}
TRUNCATED_NOTE = (
    "> The report was shortened to fit GitLab's 1,000,000-character note limit; "
    "the full version is in the run directory artifact."
)


class GitLabForge(RemoteForge):
    name = "gitlab"
    comment_limit = GITLAB_NOTE_LIMIT
    truncated_note = TRUNCATED_NOTE
    author_key = "author"
    login_key = "username"

    def __init__(
        self,
        run_dir: Path,
        *,
        session: ForgeSession,
        project_id: str,
        event: CiEvent,
        project_url: str | None = None,
        login: str | None = None,
    ):
        super().__init__(run_dir, session=session, event=event, login=login)
        self.project = quote(project_id, safe="")  # a numeric id or an encoded path
        self.project_url = project_url.rstrip("/") if project_url else None

    def __repr__(self) -> str:
        return f"GitLabForge(project={self.project!r}, session={self.session!r})"

    @property
    def pr_number(self) -> int | None:
        return self.event.pr_number

    def commit_url(self, sha: str) -> str | None:
        return f"{self.project_url}/-/commit/{sha}" if self.project_url else None

    def _require_token(self) -> None:
        if not self.session.has_token:
            raise ForgeAuthFailed(MISSING_API_KEY_HELP, status=401)

    def upsert_comment(self, body: str, marker: str) -> PostedComment:
        iid = self.pr_number
        if iid is None:
            raise NoPullRequest(
                "no merge request for this pipeline (CI_MERGE_REQUEST_IID is unset: use "
                "`rules: - if: $CI_PIPELINE_SOURCE == 'merge_request_event'`)"
            )
        self._require_token()
        notes = f"projects/{self.project}/merge_requests/{iid}/notes"

        def create(text: str) -> PostedComment:
            data = self.session.request_json("POST", notes, json={"body": text}, require=("id",))
            return PostedComment(
                data["id"],
                self._note_url(iid, data["id"]),
                created=True,
                author=self._author(data),
            )

        def update(note_id: int, text: str) -> PostedComment:
            data = self.session.request_json(
                "PUT", f"{notes}/{note_id}", json={"body": text}, require=("id",)
            )
            return PostedComment(data["id"], self._note_url(iid, data["id"]), created=False)

        return self._upsert_marked(
            body,
            marker,
            path=notes,
            params={"sort": "asc", "order_by": "created_at"},
            create=create,
            update=update,
        )

    def _note_url(self, iid: int, note_id: int) -> str | None:
        if not self.project_url:
            return None
        return f"{self.project_url}/-/merge_requests/{iid}#note_{note_id}"

    def _post_status(
        self, sha: str, state: str, description: str, context: str, link: str | None
    ) -> int | None:
        self._require_token()
        payload: dict[str, Any] = {
            "state": STATUS_STATES[state],
            "name": context,
            "description": description,
        }
        if link:
            payload["target_url"] = link
        data = self.session.request_json(
            "POST",
            f"projects/{self.project}/statuses/{sha}",
            json=payload,
            require=("id",),
            repeatable=True,  # a second status of the same name after a timeout is harmless
        )
        return data["id"]

    def _post_deployment(
        self,
        sha: str,
        environment: str,
        version: str,
        state: str,
        description: str,
        url: str | None,
    ) -> int:
        self._require_token()
        data = self.session.request_json(
            "POST",
            f"projects/{self.project}/deployments",
            json={
                "environment": environment,
                "sha": sha,
                "ref": self.event.head_ref or self.event.base_ref or "main",
                "tag": False,
                "status": DEPLOYMENT_STATES[state],
            },
            require=("id",),
        )
        return data["id"]

    def find_pr(self, sha: str) -> int | None:
        try:
            mrs = self.session.get_json(
                f"projects/{self.project}/repository/commits/{sha}/merge_requests"
            )
        except ForgeNotFound:
            return None
        for mr in mrs if isinstance(mrs, list) else []:
            if isinstance(mr, dict) and mr.get("state") == "opened" and mr.get("sha") == sha:
                return int(mr["iid"])
        return None
