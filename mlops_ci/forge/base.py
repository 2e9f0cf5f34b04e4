"""The one small interface every forge implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.ci.limits import STATUS_DESCRIPTION_LIMIT, cut

SUMMARY_FILE = "summary.md"
STATES = ("pending", "success", "failure", "error")
# Deployment states in GitHub's words; GitLab maps them to its own.
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")


@dataclass(frozen=True)
class PostedComment:
    id: int | str
    url: str | None
    created: bool
    author: str | None = None  # who the forge says wrote it (our login, seen from outside)


@dataclass(frozen=True)
class PostedPull:
    """The one open pull/merge request of a head branch, as the forge holds it now."""

    number: int
    url: str | None
    created: bool  # opened by this call (False: an open one was updated)
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewComment:
    """A comment on a pull/merge request as the forge holds it (author and time are the
    forge's, never the body's)."""

    id: int | str
    author: str | None
    body: str
    created_at: str | None
    url: str | None


class ReviewNotSupported(Exception):
    """This forge has no review commands (the local forge)."""


class Forge(ABC):
    """GitHub, GitLab or local. Built by `detect_forge`; every method may raise ForgeError."""

    name: str = "forge"
    comment_limit: int | None = None
    pinned_pr: int | None = None  # set by use_pull_request

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    @property
    def run_url(self) -> str | None:
        return None

    def commit_url(self, sha: str) -> str | None:
        return None

    @abstractmethod
    def upsert_comment(self, body: str, marker: str) -> PostedComment:
        """Create or update the one comment carrying `marker` on the current PR/MR."""

    def set_status(
        self,
        sha: str,
        state: str,
        description: str,
        context: str,
        target_url: str | None = None,
    ) -> dict[str, Any]:
        """Commit status; state is one of pending, success, failure, error. The description is
        cut to 140 characters; the link defaults to the CI run."""
        if state not in STATES:
            raise ValueError(f"status state {state!r} is not one of {', '.join(STATES)}")
        link = target_url or self.run_url
        status_id = self._post_status(
            sha, state, cut(description, STATUS_DESCRIPTION_LIMIT), context, link
        )
        return {"id": status_id, "state": state, "context": context, "url": link}

    @abstractmethod
    def _post_status(
        self, sha: str, state: str, description: str, context: str, link: str | None
    ) -> int | str | None:
        """Send one checked, cut status; return the forge's id of it (None where it has none)."""

    def create_check_run(
        self, sha: str, name: str, conclusion: str, title: str, summary: str
    ) -> str | None:
        """A check run with a summary; None where the forge or the token has none."""
        return None

    def write_summary(self, markdown: str) -> Path | None:
        """The job summary; where a forge has none, `summary.md` in the run directory (replaced)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / SUMMARY_FILE
        path.write_text(markdown.rstrip("\n") + "\n", encoding="utf-8")
        return path

    def record_deployment(
        self,
        sha: str,
        environment: str,
        version: str,
        state: str,
        description: str,
        url: str | None = None,
    ) -> dict[str, Any]:
        """A deployment of `version` at `sha` to `environment`, with its state (one of
        DEPLOYMENT_STATES); every forge returns the same record."""
        check_deployment_state(state, DEPLOYMENT_STATES)
        deployment_id = self._post_deployment(sha, environment, version, state, description, url)
        return {
            "id": deployment_id,
            "environment": environment,
            "version": version,
            "sha": sha,
            "state": state,
            "url": url,
            "description": description,
        }

    @abstractmethod
    def _post_deployment(
        self,
        sha: str,
        environment: str,
        version: str,
        state: str,
        description: str,
        url: str | None,
    ) -> int | str | None:
        """Send one checked deployment; return the forge's id of it (None where it has none)."""

    @abstractmethod
    def find_pr(self, sha: str) -> int | None:
        """The open pull/merge request whose head is `sha`, if any."""

    @abstractmethod
    def upsert_pull_request(
        self, *, head: str, base: str, title: str, body: str, labels: Sequence[str] = ()
    ) -> PostedPull:
        """Open a pull/merge request from branch `head` into `base`, or update the open one
        (title, body) when there is one already; add `labels` either way."""

    def use_pull_request(self, number: int) -> None:
        """Post later comments to pull/merge request `number` (one this run opened) instead
        of the one the CI event names."""
        self.pinned_pr = number

    # --- review commands (gate/waivers.py); the local forge has none ------------------------

    def pr_comments(self, number: int) -> list[ReviewComment]:
        """Every comment on pull/merge request `number`, oldest first."""
        raise ReviewNotSupported(f"{self.name} has no pull request comments")

    def may_waive(self, login: str) -> bool:
        """Whether `login` has write access (GitHub) or Developer or more (GitLab). An API
        error raises: the caller fails closed (no waiver)."""
        raise ReviewNotSupported(f"{self.name} has no permissions to check")

    def pr_head(self, number: int) -> str | None:
        """The current head SHA of pull/merge request `number`."""
        raise ReviewNotSupported(f"{self.name} has no pull requests")

    def pr_from_fork(self, number: int) -> bool:
        """Whether pull/merge request `number` comes from another repository (a fork): its
        author needs no write access to this one, so the review reads no waiver for it."""
        raise ReviewNotSupported(f"{self.name} has no pull requests")

    def note_head(self, number: int, written_at: str | None) -> str | None:
        """The head a comment written at `written_at` was about, where the forge can tell from
        its own records (GitLab's merge request versions); None: only the review's reply can."""
        return None

    def merged_pr(self, sha: str) -> tuple[int, str] | None:
        """The merged pull/merge request that `sha` (a merge commit, or its head) landed, and its
        final head SHA; None when there is none or the forge cannot tell."""
        return None

    def own_login(self) -> str:
        """Who our comments are by ("" when unknown)."""
        return ""

    def post_reply(self, number: int, body: str) -> PostedComment:
        """A new comment on pull/merge request `number` (never an update)."""
        raise ReviewNotSupported(f"{self.name} cannot comment")

    def edit_comment(self, number: int, comment_id: int | str, body: str) -> PostedComment:
        """Replace the body of our comment `comment_id`."""
        raise ReviewNotSupported(f"{self.name} cannot edit comments")


def check_deployment_state(state: str, allowed: Collection[str]) -> None:
    """A deployment state the forge accepts, or a ValueError naming the ones it does."""
    if state not in allowed:
        raise ValueError(f"deployment state {state!r} is not one of {', '.join(allowed)}")
