"""What GitHub and GitLab share: a session, the CI event, and the sticky comment found by its
hidden marker (paging through every comment) and updated in place."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops_ci.forge.base import Forge, PostedComment, fit, hidden_marker, with_marker
from mlops_ci.forge.errors import ForgeAuthFailed, ForgeNotFound, ForgeUnavailable
from mlops_ci.forge.event import CiEvent
from mlops_ci.forge.http import ForgeSession


class RemoteForge(Forge):
    """A forge behind an HTTP API. Subclasses name where a comment keeps its author."""

    comment_limit: int
    truncated_note: str = ""
    author_key = "user"  # the comment field that holds its author (GitLab: "author")
    login_key = "login"  # the author's (and GET /user's) name field (GitLab: "username")

    def __init__(
        self,
        run_dir: Path,
        *,
        session: ForgeSession,
        event: CiEvent,
        login: str | None = None,
    ):
        super().__init__(run_dir)
        self.session = session
        self.event = event
        # The comment author to look for; None: ask GET /user the first time it matters.
        self.login = login

    @property
    def run_url(self) -> str | None:
        return self.event.run_url

    def _own_login(self) -> str:
        if self.login is None:
            try:
                user = self.session.get_json("user")
                self.login = str(user.get(self.login_key) or "") if isinstance(user, dict) else ""
            except (ForgeAuthFailed, ForgeNotFound):
                self.login = ""  # installation tokens may not read /user: match by marker only
        return self.login

    def _find_marked(
        self, path: str, tag: str, params: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        # Oldest first; the first one of ours carrying the marker is the report.
        for page in self.session.pages(path, params):
            for comment in page:
                if comment.get("system") or tag not in (comment.get("body") or ""):
                    continue
                login = self._own_login()
                if not login or (comment.get(self.author_key) or {}).get(self.login_key) == login:
                    return comment
        return None

    def _upsert_marked(
        self,
        body: str,
        marker: str,
        *,
        path: str,
        params: Mapping[str, Any] | None,
        create: Callable[[str], PostedComment],
        update: Callable[[Any, str], PostedComment],
    ) -> PostedComment:
        """Update the comment under `path` that carries `marker`, else create it; the body is
        fitted to the forge's limit."""
        tag = hidden_marker(marker)
        text = fit(with_marker(body, marker), self.comment_limit, self.truncated_note)
        existing = self._find_marked(path, tag, params)
        if existing is None:
            try:
                return create(text)
            except ForgeUnavailable as exc:
                if exc.forge_message != "timeout":
                    raise
            # A timed-out POST may have landed: look again instead of posting a duplicate.
            existing = self._find_marked(path, tag, params)
            if existing is None:
                return create(text)
        return update(existing["id"], text)
