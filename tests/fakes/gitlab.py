"""A stateful loopback GitLab REST v4 API: merge request notes, commit statuses, deployments.

GitLab publishes no packaged OpenAPI description for these endpoints, so this fake follows the
documented REST v4 behaviour by hand: `PRIVATE-TOKEN` auth (401 `{"message": "401
Unauthorized"}`; a job token may not use these endpoints), 403/404 messages of the same shape,
400 `{"error": "<param> is missing"}` for a missing parameter, notes up to 1,000,000 characters,
pagination with `X-Page`/`X-Next-Page`/`X-Total` and `Link`, `per_page` capped at 100, and 429
with `Retry-After` for rate limits. Requests with parameters the endpoint does not document are
recorded in `violations`.

Run standalone (for gitlab-ci-local): `python -m tests.fakes.gitlab --port 8766 --state-file
state.json --token glpat-x=mlops-bot --pull 42#7@<sha>` (project id 42, MR !7); it prints its URL.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlencode

from tests.fakes.gitlab_state import DEFAULT_LOGIN, DEFAULT_TOKEN, NOTE_LIMIT, GitLabState
from tests.fakes.server import Reply, serve_main

__all__ = ["DEFAULT_LOGIN", "DEFAULT_TOKEN", "FakeGitLab"]
STATUS_STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
DEPLOYMENT_STATES = ("running", "success", "failed", "canceled")
P = r"/api/v4/projects/(?P<project>[^/]+)"
ROUTES = [
    ("GET", r"/api/v4/user", "user", set()),
    (
        "GET",
        P + r"/merge_requests/(?P<iid>\d+)/notes",
        "list_notes",
        {"sort", "order_by", "per_page", "page"},
    ),
    ("POST", P + r"/merge_requests/(?P<iid>\d+)/notes", "create_note", set()),
    ("PUT", P + r"/merge_requests/(?P<iid>\d+)/notes/(?P<note>\d+)", "update_note", set()),
    ("GET", P + r"/merge_requests/(?P<iid>\d+)", "get_mr", set()),
    (
        "GET",
        P + r"/merge_requests",
        "list_mrs",
        {"source_branch", "target_branch", "state", "per_page", "page"},
    ),
    ("POST", P + r"/merge_requests", "create_mr", set()),
    ("PUT", P + r"/merge_requests/(?P<iid>\d+)", "update_mr", set()),
    ("POST", P + r"/statuses/(?P<sha>[0-9a-f]{40})", "create_status", set()),
    (
        "GET",
        P + r"/repository/commits/(?P<sha>[0-9a-f]{40})/statuses",
        "list_statuses",
        {"per_page", "page", "name", "ref"},
    ),
    (
        "GET",
        P + r"/repository/commits/(?P<sha>[0-9a-f]{40})/merge_requests",
        "commit_mrs",
        {"per_page", "page"},
    ),
    ("GET", P + r"/members/all/(?P<user>\d+)", "get_member", set()),
    ("GET", P + r"/merge_requests/(?P<iid>\d+)/versions", "list_versions", {"per_page", "page"}),
    ("POST", P + r"/deployments", "create_deployment", set()),
    ("PUT", P + r"/deployments/(?P<deployment>\d+)", "update_deployment", set()),
    (
        "GET",
        P + r"/deployments",
        "list_deployments",
        {"per_page", "page", "environment", "status", "order_by", "sort"},
    ),
]
BODY_FIELDS = {
    "create_note": {"body", "created_at", "internal", "merge_request_diff_head_sha"},
    "update_note": {"body"},
    "create_status": {
        "state",
        "ref",
        "name",
        "context",
        "target_url",
        "description",
        "coverage",
        "pipeline_id",
    },
    "create_mr": {
        "source_branch",
        "target_branch",
        "title",
        "description",
        "labels",
        "assignee_id",
        "remove_source_branch",
        "squash",
    },
    "update_mr": {
        "title",
        "description",
        "labels",
        "add_labels",
        "remove_labels",
        "target_branch",
        "state_event",
    },
    "create_deployment": {"environment", "sha", "ref", "tag", "status"},
    "update_deployment": {"status"},
}


def _msg(status: int, text: str) -> Reply:
    return status, {}, {"message": text}


class FakeGitLab(GitLabState):
    """Routes: each endpoint is a method named `op_<name>` after its row in ROUTES."""

    # --- routing -----------------------------------------------------------------------------

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]
    ) -> Reply:
        for verb, pattern, name, params in ROUTES:  # noqa: B007 (used after the loop)
            found = re.fullmatch(pattern, path)
            if verb == method and found:
                break
        else:
            with self.lock:
                self.violations.append(f"{method} {path} is not an endpoint of the fake GitLab")
            return _msg(404, "404 Not Found")
        for key in set(query) - params:
            with self.lock:
                self.violations.append(f"{name}: query parameter {key} is not documented")
        if isinstance(body, dict):
            for key in set(body) - BODY_FIELDS.get(name, set()):
                with self.lock:
                    self.violations.append(f"{name}: body field {key} is not documented")
        if "job-token" in headers:
            return _msg(401, "401 Unauthorized")  # job tokens cannot use these endpoints
        token = headers.get("private-token") or headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        login = self.tokens.get(token)
        if login is None:
            return _msg(401, "401 Unauthorized")
        if method != "GET" and token in self.readonly_tokens:
            return _msg(403, "403 Forbidden")
        args = found.groupdict()
        if "project" in args:
            args["project"] = unquote(args["project"])
        with self.lock:
            return getattr(self, "op_" + name)(
                args, query, body if isinstance(body, dict) else {}, login
            )

    def _page(self, items: list[Any], query: dict[str, str], path: str) -> Reply:
        per_page = min(100, max(1, int(query.get("per_page", 20))))
        page = max(1, int(query.get("page", 1)))
        total_pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(total_pages),
            "X-Next-Page": str(page + 1) if page < total_pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }

        def link(n: int, rel: str) -> str:
            return f'<{self.url}{path}?{urlencode({**query, "page": n, "per_page": per_page})}>; rel="{rel}"'

        links = [link(page + 1, "next")] if page < total_pages else []
        links += [link(page - 1, "prev")] if page > 1 else []
        links += [link(1, "first"), link(total_pages, "last")]
        headers["Link"] = ", ".join(links)
        return 200, headers, chunk

    @staticmethod
    def _missing(body: dict[str, Any], *names: str) -> Reply | None:
        for name in names:
            if body.get(name) in (None, ""):
                return 400, {}, {"error": f"{name} is missing"}
        return None

    # --- endpoints ---------------------------------------------------------------------------

    def op_user(self, args, query, body, login) -> Reply:
        if login in self.hidden_users:
            return 403, {}, {"error": "insufficient_scope"}
        return 200, {}, self._user(login)

    def op_list_notes(self, args, query, body, login) -> Reply:
        notes = self.project(args["project"])["notes"].get(int(args["iid"]), [])
        ordered = (
            notes if query.get("sort") == "asc" else list(reversed(notes))
        )  # GitLab: desc by default
        path = f"/api/v4/projects/{args['project']}/merge_requests/{args['iid']}/notes"
        return self._page(ordered, query, path)

    def _check_note(self, body: dict[str, Any]) -> Reply | None:
        missing = self._missing(body, "body")
        if missing:
            return missing
        if len(body["body"]) > NOTE_LIMIT:
            return (
                400,
                {},
                {"message": {"note": [f"is too long (maximum is {NOTE_LIMIT} characters)"]}},
            )
        return None

    def op_create_note(self, args, query, body, login) -> Reply:
        if int(args["iid"]) not in self.project(args["project"])["mrs"]:
            return _msg(404, "404 Not found")
        problem = self._check_note(body)
        if problem:
            return problem
        return 201, {}, self._create_note(args["project"], int(args["iid"]), body["body"], login)

    def op_update_note(self, args, query, body, login) -> Reply:
        problem = self._check_note(body)
        if problem:
            return problem
        for note in self.project(args["project"])["notes"].get(int(args["iid"]), []):
            if note["id"] == int(args["note"]):
                if note["author"]["username"] != login:
                    return _msg(403, "403 Forbidden")
                note["body"] = body["body"]
                note["updated_at"] = "2026-01-02T00:00:00.000Z"
                return 200, {}, note
        return _msg(404, "404 Not found")

    def op_get_member(self, args, query, body, login) -> Reply:
        # A member of the project (or an ancestor group) by user id; anyone else: 404.
        for name, level in self.members.items():
            if self._user(name)["id"] == int(args["user"]):
                return 200, {}, {**self._user(name), "access_level": level}
        return _msg(404, "404 Not found")

    def op_list_versions(self, args, query, body, login) -> Reply:
        # Newest first, as GitLab lists a merge request's diff versions.
        found = self.versions.get((args["project"], int(args["iid"])), [])
        path = f"/api/v4/projects/{args['project']}/merge_requests/{args['iid']}/versions"
        return self._page(list(reversed(found)), query, path)

    def op_get_mr(self, args, query, body, login) -> Reply:
        mr = self.project(args["project"])["mrs"].get(int(args["iid"]))
        return (200, {}, {**mr, "id": mr["iid"] + 10_000}) if mr else _msg(404, "404 Not found")

    def _mr_object(self, project: str, mr: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": mr["iid"] + 10_000,
            "labels": [],
            "title": "",
            "description": None,
            **mr,
            "project_id": int(project) if project.isdigit() else 0,
            "web_url": f"{self.url}/group/demo/-/merge_requests/{mr['iid']}",
        }

    def op_list_mrs(self, args, query, body, login) -> Reply:
        state = query.get("state", "all")
        found = [
            self._mr_object(args["project"], mr)
            for mr in sorted(self.project(args["project"])["mrs"].values(), key=lambda m: -m["iid"])
            if state in ("all", mr["state"])
            and query.get("source_branch") in (None, mr["source_branch"])
            and query.get("target_branch") in (None, mr["target_branch"])
        ]
        return self._page(found, query, f"/api/v4/projects/{args['project']}/merge_requests")

    def op_create_mr(self, args, query, body, login) -> Reply:
        missing = self._missing(body, "source_branch", "target_branch", "title")
        if missing:
            return missing
        mrs = self.project(args["project"])["mrs"]
        for mr in mrs.values():
            if mr["source_branch"] == body["source_branch"] and mr["state"] == "opened":
                return (
                    409,
                    {},
                    {
                        "message": [
                            "Another open merge request already exists for this source branch: "
                            f"!{mr['iid']}"
                        ]
                    },
                )
        iid = max([0, *mrs]) + 1
        self.add_pull(
            args["project"],
            iid,
            head_sha="0" * 40,  # the fake holds no git objects: the branch tip is unknown here
            source=body["source_branch"],
            target=body["target_branch"],
        )
        labels = [x for x in str(body.get("labels") or "").split(",") if x]
        mrs[iid].update(title=body["title"], description=body.get("description"), labels=labels)
        return 201, {}, self._mr_object(args["project"], mrs[iid])

    def op_update_mr(self, args, query, body, login) -> Reply:
        mr = self.project(args["project"])["mrs"].get(int(args["iid"]))
        if mr is None:
            return _msg(404, "404 Not found")
        for key in ("title", "description", "target_branch"):
            if key in body:
                mr[key] = body[key]
        labels = mr.setdefault("labels", [])
        for name in str(body.get("add_labels") or "").split(","):
            if name and name not in labels:
                labels.append(name)
        mr["updates"] = mr.get("updates", 0) + 1
        return 200, {}, self._mr_object(args["project"], mr)

    def op_create_status(self, args, query, body, login) -> Reply:
        missing = self._missing(body, "state")
        if missing:
            return missing
        if body["state"] not in STATUS_STATES:
            return 400, {}, {"error": "state does not have a valid value"}
        status = {
            "id": next(self._ids),
            "sha": args["sha"],
            "status": body["state"],
            "name": body.get("name") or body.get("context") or "default",
            "target_url": body.get("target_url"),
            "description": body.get("description"),
            "ref": body.get("ref"),
            "author": self._user(login),
            "created_at": "2026-01-01T00:00:00.000Z",
        }
        self.project(args["project"])["statuses"].append(status)
        return 201, {}, status

    def op_list_statuses(self, args, query, body, login) -> Reply:
        found = [s for s in self.project(args["project"])["statuses"] if s["sha"] == args["sha"]]
        return self._page(
            found,
            query,
            f"/api/v4/projects/{args['project']}/repository/commits/{args['sha']}/statuses",
        )

    def op_commit_mrs(self, args, query, body, login) -> Reply:
        mrs = [m for m in self.project(args["project"])["mrs"].values() if m["sha"] == args["sha"]]
        return 200, {}, mrs

    def op_create_deployment(self, args, query, body, login) -> Reply:
        missing = self._missing(body, "environment", "sha", "ref", "status")
        if missing:
            return missing
        if "tag" not in body:
            return 400, {}, {"error": "tag is missing"}
        if body["status"] not in DEPLOYMENT_STATES:
            return 400, {}, {"error": "status does not have a valid value"}
        dep = {
            "id": next(self._ids),
            "iid": len(self.project(args["project"])["deployments"]) + 1,
            "ref": body["ref"],
            "sha": body["sha"],
            "status": body["status"],
            "environment": {"name": body["environment"]},
            "user": self._user(login),
            "created_at": "2026-01-01T00:00:00.000Z",
        }
        self.project(args["project"])["deployments"].append(dep)
        return 201, {}, dep

    def op_update_deployment(self, args, query, body, login) -> Reply:
        if body.get("status") not in DEPLOYMENT_STATES:
            return 400, {}, {"error": "status does not have a valid value"}
        for dep in self.project(args["project"])["deployments"]:
            if dep["id"] == int(args["deployment"]):
                dep["status"] = body["status"]
                return 200, {}, dep
        return _msg(404, "404 Not found")

    def op_list_deployments(self, args, query, body, login) -> Reply:
        deps = self.project(args["project"])["deployments"]
        return self._page(deps, query, f"/api/v4/projects/{args['project']}/deployments")


def main(argv: list[str] | None = None) -> int:
    return serve_main(FakeGitLab, argv)


if __name__ == "__main__":
    raise SystemExit(main())
