"""The local forge: no CI around, so everything a forge would show goes to files in the run
directory (`comment.md`, `statuses.json`, `deployments.json`, `pulls.json`, `summary.md`) and
one line each to the terminal."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from mlops_ci.ci.documents import now
from mlops_ci.ci.limits import with_marker
from mlops_ci.forge.base import Forge, PostedComment, PostedPull

COMMENT_FILE = "comment.md"
COMMENTS_STORE = "comments.json"
STATUSES_FILE = "statuses.json"
DEPLOYMENTS_FILE = "deployments.json"
PULLS_FILE = "pulls.json"


class LocalForge(Forge):
    name = "local"
    comment_limit = None

    def __init__(self, run_dir: Path, *, out: TextIO | None = None):
        super().__init__(run_dir)
        self.out = out if out is not None else sys.stdout

    def __repr__(self) -> str:
        return f"LocalForge(run_dir={str(self.run_dir)!r})"

    def _say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def _append_json(self, name: str, item: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / name
        items = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        items.append(item)
        _replace(path, json.dumps(items, indent=2) + "\n")

    def upsert_comment(self, body: str, marker: str) -> PostedComment:
        """`comment.md` shows every living comment, one per marker, each updated in place.

        The bodies are kept in `comments.json` (marker -> body) so a report that itself holds
        HTML comments cannot confuse where one comment ends.
        """
        text = with_marker(body, marker).strip("\n") + "\n"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        store = self.run_dir / COMMENTS_STORE
        comments: dict[str, str] = (
            json.loads(store.read_text(encoding="utf-8")) if store.exists() else {}
        )
        created = marker not in comments
        comments[marker] = text
        _replace(store, json.dumps(comments, indent=2) + "\n")
        path = self.run_dir / COMMENT_FILE
        _replace(path, "\n---\n\n".join(comments.values()))
        self._say(f"comment {'written' if created else 'updated'}: {path} ({marker})")
        return PostedComment(marker, path.as_uri(), created=created)

    def _post_status(
        self, sha: str, state: str, description: str, context: str, link: str | None
    ) -> None:
        item = {
            "sha": sha,
            "state": state,
            "description": description,
            "context": context,
            "target_url": link,
            "created_at": now(),
        }
        self._append_json(STATUSES_FILE, item)
        self._say(f"status {context}: {state} — {description}")

    def _post_deployment(
        self,
        sha: str,
        environment: str,
        version: str,
        state: str,
        description: str,
        url: str | None,
    ) -> None:
        item = {
            "id": None,
            "environment": environment,
            "version": version,
            "sha": sha,
            "state": state,
            "url": url,
            "description": description,
            "created_at": now(),
        }
        self._append_json(DEPLOYMENTS_FILE, item)
        self._say(f"deployment {version} to {environment}: {state}" + (f" ({url})" if url else ""))

    def find_pr(self, sha: str) -> int | None:
        return None

    def upsert_pull_request(
        self, *, head: str, base: str, title: str, body: str, labels: Sequence[str] = ()
    ) -> PostedPull:
        """`pulls.json` holds one record per head branch, opened once and updated in place."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / PULLS_FILE
        pulls: list[dict[str, Any]] = (
            json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        )
        found = next((p for p in pulls if p["head"] == head and p["state"] == "open"), None)
        if found is None:
            found = {
                "number": len(pulls) + 1,
                "head": head,
                "base": base,
                "state": "open",
                "labels": [],
                "created_at": now(),
            }
            pulls.append(found)
        created = "updated_at" not in found
        found.update(title=title, body=body, updated_at=now())
        found["labels"] += [name for name in labels if name not in found["labels"]]
        _replace(path, json.dumps(pulls, indent=2) + "\n")
        self._say(
            f"pull request #{found['number']} {'opened' if created else 'updated'}: "
            f"{head} -> {base} ({path})"
        )
        return PostedPull(found["number"], path.as_uri(), created, tuple(found["labels"]))


def _replace(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a process killed mid-write must not leave a truncated
    record that every later run then fails to read."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
