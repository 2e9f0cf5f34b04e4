"""GitHub (and GitHub Enterprise): sticky PR comment, commit status, check run, step summary,
deployments. Domain calls only; transport, retries and errors live in `http.py`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops_ci import __version__
from mlops_ci.ci.event import CiEvent
from mlops_ci.ci.limits import (
    CHECK_SUMMARY_LIMIT,
    GITHUB_COMMENT_LIMIT,
    STATUS_DESCRIPTION_LIMIT,
    cut,
    fit,
)
from mlops_ci.forge.base import PostedComment, PostedPull, ReviewComment
from mlops_ci.forge.errors import ForgeAuthFailed, ForgeNotFound, ForgeRejected
from mlops_ci.forge.http import ForgeSession
from mlops_ci.forge.remote import RemoteForge
from mlops_ci.forge.summary import NoPullRequest, append_summary

log = logging.getLogger("mlops_ci.forge")

ACTIONS_BOT = "github-actions[bot]"  # the author of everything GITHUB_TOKEN posts
CHECK_CONCLUSIONS = (
    "success",
    "failure",
    "neutral",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
)
HINTS = {
    401: "The token was refused: check MLOPS_CI_TOKEN or GITHUB_TOKEN.",
    403: "The token lacks a permission: grant the workflow `pull-requests: write`, "
    "`statuses: write` (and `deployments: write`). Fork pull requests get a read-only token: "
    "post from a workflow_run workflow instead.",
    404: "Check GITHUB_REPOSITORY and that the token can see the repository.",
}
TRUNCATED_NOTE = (
    "> The report was shortened to fit GitHub's 65,536-character comment limit; "
    "the full version is in the job summary and the run directory artifact."
)


class GitHubForge(RemoteForge):
    name = "github"
    comment_limit = GITHUB_COMMENT_LIMIT
    truncated_note = TRUNCATED_NOTE
    fallback_author = ACTIONS_BOT

    def __init__(
        self,
        run_dir: Path,
        *,
        session: ForgeSession,
        repository: str,
        event: CiEvent,
        server_url: str,
        step_summary: Path | None = None,
        login: str | None = None,
    ):
        super().__init__(run_dir, session=session, event=event, login=login)
        self.repository = repository
        self.server_url = server_url.rstrip("/")
        self.step_summary = step_summary
        self._pr: int | bool | None = False  # False: not resolved yet

    def __repr__(self) -> str:
        return f"GitHubForge(repository={self.repository!r}, session={self.session!r})"

    def commit_url(self, sha: str) -> str | None:
        return f"{self.server_url}/{self.repository}/commit/{sha}"

    @property
    def pr_number(self) -> int | None:
        """The event's PR, or (push) the open PR whose head is the pushed commit."""
        if self.pinned_pr is not None:
            return self.pinned_pr
        if self._pr is False:
            number = self.event.pr_number
            if number is None and self.event.head_sha:
                number = self.find_pr(self.event.head_sha)
            self._pr = number
        return self._pr  # type: ignore[return-value]

    # --- comments ----------------------------------------------------------------------------

    def upsert_comment(self, body: str, marker: str) -> PostedComment:
        number = self.pr_number
        if number is None:
            raise NoPullRequest(
                f"no pull request for this run ({self.event.event_name or 'unknown event'}); "
                "the report is in the job summary and the run directory"
            )
        path = f"repos/{self.repository}/issues/{number}/comments"

        def create(text: str) -> PostedComment:
            data = self.session.request_json("POST", path, json={"body": text}, require=("id",))
            return PostedComment(
                data["id"], data.get("html_url"), created=True, author=self._author(data)
            )

        def update(comment_id: int, text: str) -> PostedComment:
            data = self.session.request_json(
                "PATCH",
                f"repos/{self.repository}/issues/comments/{comment_id}",
                json={"body": text},
                require=("id",),
            )
            return PostedComment(data["id"], data.get("html_url"), created=False)

        return self._upsert_marked(
            body, marker, path=path, params=None, create=create, update=update
        )

    # --- review commands (gate/waivers.py) ---------------------------------------------------

    def pr_comments(self, number: int) -> list[ReviewComment]:
        path = f"repos/{self.repository}/issues/{number}/comments"
        return [
            ReviewComment(
                c.get("id"),
                self._author(c),
                str(c.get("body") or ""),
                c.get("created_at"),
                c.get("html_url"),
            )
            for page in self.session.pages(path, None)
            for c in page
            if isinstance(c, dict)
        ]

    def may_waive(self, login: str) -> bool:
        """GET /repos/{o}/{r}/collaborators/{user}/permission: admin, maintain or write. A
        user who is no collaborator answers 404 there: no."""
        from urllib.parse import quote

        try:
            data = self.session.get_json(
                f"repos/{self.repository}/collaborators/{quote(login, safe='')}/permission"
            )
        except ForgeNotFound:
            return False
        permission = data.get("permission") if isinstance(data, dict) else None
        return permission in ("admin", "maintain", "write")

    def pr_head(self, number: int) -> str | None:
        data = self.session.get_json(f"repos/{self.repository}/pulls/{number}")
        head = data.get("head") if isinstance(data, dict) else None
        sha = head.get("sha") if isinstance(head, dict) else None
        return sha if isinstance(sha, str) else None

    def pr_from_fork(self, number: int) -> bool:
        """head.repo differs from base.repo; a deleted fork (head.repo null) is a fork too."""
        data = self.session.get_json(f"repos/{self.repository}/pulls/{number}")
        sides = [data.get(side) if isinstance(data, dict) else None for side in ("head", "base")]
        names = [
            (side.get("repo") or {}).get("full_name") if isinstance(side, dict) else None
            for side in sides
        ]
        return not (isinstance(names[0], str) and names[0].lower() == str(names[1]).lower())

    def own_login(self) -> str:
        return self._own_login()

    def merged_pr(self, sha: str) -> tuple[int, str] | None:
        """Like `find_pr`, for the pull request a push to the target branch merged: GitHub lists
        it for its merge commit (or, rebased or fast-forwarded, its head)."""
        try:
            pulls = self.session.get_json(f"repos/{self.repository}/commits/{sha}/pulls")
        except (ForgeNotFound, ForgeRejected):
            return None
        for pull in pulls if isinstance(pulls, list) else []:
            if not isinstance(pull, dict) or not pull.get("merged_at"):
                continue
            head = (pull.get("head") or {}).get("sha")
            if sha in (pull.get("merge_commit_sha"), head) and isinstance(head, str):
                return int(pull["number"]), head
        return None

    def post_reply(self, number: int, body: str) -> PostedComment:
        return self._write_comment("POST", f"issues/{number}/comments", body)

    def edit_comment(self, number: int, comment_id: int | str, body: str) -> PostedComment:
        del number  # GitHub addresses a comment by its id alone
        return self._write_comment("PATCH", f"issues/comments/{comment_id}", body)

    def _write_comment(self, method: str, path: str, body: str) -> PostedComment:
        data = self.session.request_json(
            method,
            f"repos/{self.repository}/{path}",
            json={"body": fit(body, GITHUB_COMMENT_LIMIT, TRUNCATED_NOTE)},
            require=("id",),
        )
        return PostedComment(data["id"], data.get("html_url"), created=method == "POST")

    # --- statuses and checks -----------------------------------------------------------------

    def _post_status(
        self, sha: str, state: str, description: str, context: str, link: str | None
    ) -> int | None:
        payload: dict[str, Any] = {"state": state, "description": description, "context": context}
        if link:
            payload["target_url"] = link
        # Sent again after a timeout: a second status of the same context is harmless.
        data = self.session.request_json(
            "POST",
            f"repos/{self.repository}/statuses/{sha}",
            json=payload,
            require=("id",),
            repeatable=True,
        )
        return data["id"]

    def create_check_run(
        self, sha: str, name: str, conclusion: str, title: str, summary: str
    ) -> str | None:
        if conclusion not in CHECK_CONCLUSIONS:
            raise ValueError(
                f"check conclusion {conclusion!r} is not one of {', '.join(CHECK_CONCLUSIONS)}"
            )
        payload: dict[str, Any] = {
            "name": name,
            "head_sha": sha,
            "status": "completed",
            "conclusion": conclusion,
            "output": {
                "title": cut(title, 255),
                "summary": fit(summary, CHECK_SUMMARY_LIMIT, TRUNCATED_NOTE),
            },
        }
        if self.run_url:
            payload["details_url"] = self.run_url
        try:
            # Repeatable like a status: the newest check run of a name is the one a PR shows.
            data = self.session.request_json(
                "POST",
                f"repos/{self.repository}/check-runs",
                json=payload,
                require=("html_url",),
                repeatable=True,
            )
        except ForgeAuthFailed as exc:
            # Only GitHub Apps (GITHUB_TOKEN included) may create check runs; a PAT may not.
            log.info("no check run: %s", exc)
            return None
        return data["html_url"]

    # --- summary -----------------------------------------------------------------------------

    def write_summary(self, markdown: str) -> Path | None:
        if self.step_summary is None:
            return super().write_summary(markdown)
        from mlops_ci.ci.documents import REPORT_FILE as FULL_NAME

        return append_summary(self.step_summary, markdown, str(self.run_dir / FULL_NAME))

    # --- deployments and PR lookup -----------------------------------------------------------

    def _post_deployment(
        self,
        sha: str,
        environment: str,
        version: str,
        state: str,
        description: str,
        url: str | None,
    ) -> int:
        description = cut(description, STATUS_DESCRIPTION_LIMIT)
        deployment = self.session.request_json(
            "POST",
            f"repos/{self.repository}/deployments",
            json={
                "ref": sha,
                "task": "deploy",
                "environment": environment,
                "description": description,
                # Deploying what the gate passed: GitHub must not re-check contexts or merge.
                "auto_merge": False,
                "required_contexts": [],
                "payload": {"version": version, "tool": f"mlops-ci {__version__}"},
                "production_environment": environment == "production",
            },
            require=("id",),
        )
        status_payload: dict[str, Any] = {
            "state": state,
            "description": description,
            "auto_inactive": True,
        }
        if url:
            status_payload["environment_url"] = url
        if self.run_url:
            status_payload["log_url"] = self.run_url
        self.session.request(
            "POST",
            f"repos/{self.repository}/deployments/{deployment['id']}/statuses",
            json=status_payload,
        )
        return deployment["id"]

    # --- pull requests a run opens (retrain) ---------------------------------------------------

    def upsert_pull_request(
        self, *, head: str, base: str, title: str, body: str, labels: Sequence[str] = ()
    ) -> PostedPull:
        """The one open PR of branch `head`: updated when GitHub has it, else opened."""
        body = fit(body, GITHUB_COMMENT_LIMIT, TRUNCATED_NOTE)  # the PR body has the same limit
        found = self._open_pull(head, base)
        created = found is None
        if found is None:
            try:
                found = self.session.request_json(
                    "POST",
                    f"repos/{self.repository}/pulls",
                    json={"head": head, "base": base, "title": title, "body": body},
                    require=("number",),
                )
            except ForgeRejected:
                # Another run opened it between our look-up and our POST (GitHub answers 422
                # "A pull request already exists"): update that one instead.
                found = self._open_pull(head, base)
                if found is None:
                    raise
                created = False
        if not created:
            found = self.session.request_json(
                "PATCH",
                f"repos/{self.repository}/pulls/{found['number']}",
                json={"title": title, "body": body},
                require=("number",),
            )
        number = int(found["number"])
        names = [str(label.get("name")) for label in found.get("labels") or []]
        if labels:
            added = self.session.request_json(
                "POST",
                f"repos/{self.repository}/issues/{number}/labels",
                json={"labels": list(labels)},
                repeatable=True,  # adding a label twice leaves one
            )
            names = [str(label.get("name")) for label in added if isinstance(label, dict)]
        return PostedPull(number, found.get("html_url"), created, tuple(names))

    def _open_pull(self, head: str, base: str) -> dict[str, Any] | None:
        owner = self.repository.split("/", 1)[0]
        params = {"head": f"{owner}:{head}", "base": base, "state": "open"}
        for page in self.session.pages(f"repos/{self.repository}/pulls", params):
            for pull in page:
                if isinstance(pull, dict) and "number" in pull:
                    return pull
        return None

    def find_pr(self, sha: str) -> int | None:
        """The open PR whose head is `sha` (GET /repos/{o}/{r}/commits/{sha}/pulls)."""
        try:
            pulls = self.session.get_json(f"repos/{self.repository}/commits/{sha}/pulls")
        except (ForgeNotFound, ForgeRejected):
            return None  # unknown commit or empty repository
        # Only a PR whose head *is* this commit: a trusted job confirms a fork's claimed PR
        # number with this, and a PR that merely contains the commit must not pass.
        for pull in pulls if isinstance(pulls, list) else []:
            if (
                isinstance(pull, dict)
                and pull.get("state") == "open"
                and (pull.get("head") or {}).get("sha") == sha
            ):
                return int(pull["number"])
        return None


def github_login(env: Mapping[str, str]) -> str | None:
    """Who posts: MLOPS_CI_COMMENT_AUTHOR, else the Actions bot when GITHUB_TOKEN is the token."""
    if env.get("MLOPS_CI_COMMENT_AUTHOR"):
        return env["MLOPS_CI_COMMENT_AUTHOR"]
    if (
        env.get("GITHUB_ACTIONS") == "true"
        and not env.get("MLOPS_CI_TOKEN")
        and env.get("GITHUB_TOKEN")
    ):
        return ACTIONS_BOT
    return None
