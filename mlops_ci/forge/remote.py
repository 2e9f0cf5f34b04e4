"""What GitHub and GitLab share: a session, the CI event, and the sticky comment found by its
hidden marker (paging through every comment) and updated in place.

Anyone can paste the marker into a comment, so a comment is ours only when it carries the marker
*and* our author. When the token may not read its own user (GitHub App installation tokens,
tokens without `read_user`), the author we look for is MLOPS_CI_COMMENT_AUTHOR or the forge's
usual bot; failing that, a new comment is posted rather than a stranger's edited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops_ci.ci.event import CiEvent
from mlops_ci.ci.limits import fit, hidden_marker, with_marker
from mlops_ci.forge.base import Forge, PostedComment
from mlops_ci.forge.errors import ForgeAuthFailed, ForgeNotFound, ForgeUnavailable
from mlops_ci.forge.http import ForgeSession

log = logging.getLogger("mlops_ci.forge")


class RemoteForge(Forge):
    """A forge behind an HTTP API. Subclasses name where a comment keeps its author."""

    comment_limit: int
    truncated_note: str = ""
    author_key = "user"  # the comment field that holds its author (GitLab: "author")
    login_key = "login"  # the author's (and GET /user's) name field (GitLab: "username")
    fallback_author: str | None = None  # whose comments are ours when GET /user is refused

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
        """Our comments' author; "" when unknown, and then no comment is taken as ours."""
        if self.login is None:
            try:
                user = self.session.get_json("user")
                self.login = str(user.get(self.login_key) or "") if isinstance(user, dict) else ""
            except (ForgeAuthFailed, ForgeNotFound):
                # Installation tokens may not read /user. Never "any comment with the marker":
                # a reviewer who pastes it would have theirs overwritten (or block us on 403).
                self.login = self.fallback_author or ""
        return self.login

    def _author(self, comment: Mapping[str, Any]) -> str | None:
        author = comment.get(self.author_key)
        login = author.get(self.login_key) if isinstance(author, Mapping) else None
        return str(login) if login else None

    def _find_marked(
        self, path: str, tag: str, params: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        # Oldest first; the first one of ours carrying the marker is the report.
        for page in self.session.pages(path, params):
            for comment in page:
                if comment.get("system") or tag not in (comment.get("body") or ""):
                    continue
                login = self._own_login()
                if login and self._author(comment) == login:
                    return comment
        return None

    def _await_landed(
        self, path: str, tag: str, params: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """Our marked comment, looked for again and again for as long as the timed-out POST
        itself was given: a forge that was slow to answer may be as slow to apply."""
        waited, pause = 0.0, 0.25
        while True:
            found = self._find_marked(path, tag, params)
            if found is not None or waited >= self.session.policy.timeout:
                return found
            pause = min(pause, self.session.policy.timeout - waited)
            time.sleep(pause)
            waited += pause
            pause *= 2

    def _learn_login(self, posted: PostedComment) -> PostedComment:
        """What we just created names our author: later posts of this run update it."""
        if posted.author and self.login is None:
            self.login = posted.author
        elif posted.author and posted.author != self.login:
            log.warning(
                "%s: our comments are by %s, which the token could not tell; set "
                "MLOPS_CI_COMMENT_AUTHOR=%s so later runs update this comment instead of "
                "adding one",
                self.name,
                posted.author,
                posted.author,
            )
            self.login = posted.author
        return posted

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
        """Update our comment under `path` that carries `marker`, else create it; the body is
        fitted to the forge's limit."""
        tag = hidden_marker(marker)
        text = fit(with_marker(body, marker), self.comment_limit, self.truncated_note)
        existing = self._find_marked(path, tag, params)
        if existing is not None:
            try:
                return update(existing["id"], text)
            except (ForgeAuthFailed, ForgeNotFound) as exc:
                # Not ours to edit after all (or deleted meanwhile): post our own instead of
                # failing the job, as a comment someone else controls must not block the report.
                log.warning(
                    "%s: comment %s not updated (%s); posting a new one",
                    self.name,
                    existing["id"],
                    exc.status,
                )
        try:
            return self._learn_login(create(text))
        except ForgeUnavailable as exc:
            if exc.forge_message != "timeout":
                raise
        # A timed-out POST may have landed, or land later: look before posting a duplicate.
        existing = self._await_landed(path, tag, params)
        if existing is None:
            return self._learn_login(create(text))
        return update(existing["id"], text)
