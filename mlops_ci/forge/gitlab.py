"""GitLab (REST v4): sticky merge request note, commit status, deployments.

GitLab has no step summary: the summary goes to the run directory (keep it as a job artifact).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlops_ci.ci.event import CiEvent
from mlops_ci.ci.limits import GITLAB_NOTE_LIMIT, fit
from mlops_ci.forge.base import PostedComment, PostedPull, ReviewComment
from mlops_ci.forge.errors import ForgeAuthFailed, ForgeNotFound, ForgeRejected
from mlops_ci.forge.http import ForgeSession
from mlops_ci.forge.remote import RemoteForge
from mlops_ci.forge.summary import NoPullRequest

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
        self._user_ids: dict[str, int] = {}  # note authors' ids, for the member look-up
        self._versions: dict[int, list[Any]] = {}

    def __repr__(self) -> str:
        return f"GitLabForge(project={self.project!r}, session={self.session!r})"

    @property
    def pr_number(self) -> int | None:
        return self.pinned_pr if self.pinned_pr is not None else self.event.pr_number

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

    # --- review commands (gate/waivers.py): read when the gate runs -------------------------

    def pr_comments(self, number: int) -> list[ReviewComment]:
        self._require_token()
        path = f"projects/{self.project}/merge_requests/{number}/notes"
        found = []
        for page in self.session.pages(path, {"sort": "asc", "order_by": "created_at"}):
            for note in page:
                if not isinstance(note, dict) or note.get("system"):
                    continue
                author = note.get("author") if isinstance(note.get("author"), dict) else {}
                login = self._author(note)
                if login and isinstance(author.get("id"), int):
                    self._user_ids[login] = author["id"]
                found.append(
                    ReviewComment(
                        note.get("id"),
                        login,
                        str(note.get("body") or ""),
                        note.get("created_at"),
                        self._note_url(number, note.get("id")),  # type: ignore[arg-type]
                    )
                )
        return found

    def may_waive(self, login: str) -> bool:
        """Developer (30) or more, from GET /projects/:id/members/all/:user_id (inherited
        membership counts); someone who is no member answers 404 there: no."""
        user_id = self._user_ids.get(login)
        if user_id is None:
            return False  # not an author we read: nothing to ask about
        try:
            member = self.session.get_json(f"projects/{self.project}/members/all/{user_id}")
        except ForgeNotFound:
            return False
        level = member.get("access_level") if isinstance(member, dict) else None
        return isinstance(level, int) and level >= 30

    def pr_head(self, number: int) -> str | None:
        data = self.session.get_json(f"projects/{self.project}/merge_requests/{number}")
        sha = data.get("sha") if isinstance(data, dict) else None
        return sha if isinstance(sha, str) else None

    def note_head(self, number: int, written_at: str | None) -> str | None:
        """The head of the newest diff version GitLab created before the note: its own
        timestamps, never a commit's (which the pusher chooses)."""
        when = _instant(written_at)
        if when is None:
            return None
        if number not in self._versions:
            path = f"projects/{self.project}/merge_requests/{number}/versions"
            self._versions[number] = [v for page in self.session.pages(path) for v in page]
        best: tuple[Any, str] | None = None
        for version in self._versions[number]:
            at = _instant(version.get("created_at")) if isinstance(version, dict) else None
            sha = version.get("head_commit_sha") if isinstance(version, dict) else None
            later = best is None or (at is not None and at > best[0])
            if at is not None and at <= when and isinstance(sha, str) and later:
                best = (at, sha)
        return best[1] if best else None

    def own_login(self) -> str:
        return self._own_login()

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

    def upsert_pull_request(
        self, *, head: str, base: str, title: str, body: str, labels: Sequence[str] = ()
    ) -> PostedPull:
        """The one open merge request of branch `head`: updated when GitLab has it, else
        opened; `add_labels` keeps labels someone else put on it."""
        self._require_token()
        body = fit(body, GITLAB_NOTE_LIMIT, TRUNCATED_NOTE)
        mrs = f"projects/{self.project}/merge_requests"
        found = self._open_mr(head, base)
        created = found is None
        fields: dict[str, Any] = {"title": title, "description": body}
        if found is None:
            try:
                found = self.session.request_json(
                    "POST",
                    mrs,
                    json={"source_branch": head, "target_branch": base, **fields}
                    | ({"labels": ",".join(labels)} if labels else {}),
                    require=("iid",),
                )
            except ForgeRejected:
                # Another run opened it first (409 "Another open merge request already exists").
                found = self._open_mr(head, base)
                if found is None:
                    raise
                created = False
        if not created:
            extra = {"add_labels": ",".join(labels)} if labels else {}
            found = self.session.request_json(
                "PUT", f"{mrs}/{found['iid']}", json=fields | extra, require=("iid",)
            )
        names = tuple(str(label) for label in found.get("labels") or [])
        return PostedPull(int(found["iid"]), found.get("web_url"), created, names)

    def _open_mr(self, head: str, base: str) -> dict[str, Any] | None:
        params = {"source_branch": head, "target_branch": base, "state": "opened"}
        for page in self.session.pages(f"projects/{self.project}/merge_requests", params):
            for mr in page:
                if isinstance(mr, dict) and "iid" in mr:
                    return mr
        return None

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


def _instant(value: object) -> Any:
    """A GitLab timestamp (`2026-01-01T00:00:00.000Z`) as an aware datetime; None if unreadable."""
    from datetime import datetime

    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
