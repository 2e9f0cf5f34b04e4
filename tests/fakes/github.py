"""A stateful loopback GitHub REST API, checked against GitHub's own OpenAPI description.

Only the operations in tests/openapi/github-rest-subset.json are served. Every request is
validated against its operation (a bad one answers 422 and is recorded in `violations`), and
every answer the fake builds is validated too, so the fake cannot drift from GitHub.

Run standalone (for act): `python -m tests.fakes.github --port 8765 --state-file state.json
--token ghs_x=github-actions[bot] --pull owner/repo#7@<sha>`; it prints its URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from tests.fakes import openapi
from tests.fakes.github_state import (
    COMMENT_LIMIT,
    DEFAULT_LOGIN,
    DEFAULT_TOKEN,
    DOCS,
    STATUS_DESCRIPTION_LIMIT,
    GitHubState,
    Repo,
)
from tests.fakes.server import Reply, serve_main

__all__ = ["DEFAULT_LOGIN", "DEFAULT_TOKEN", "FakeGitHub"]


def _error(status: int, message: str, **extra: Any) -> Reply:
    return status, {}, {"message": message, "documentation_url": DOCS, **extra}


class FakeGitHub(GitHubState):
    """Routes: each operation is a method named after GitHub's operationId."""

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]
    ) -> Reply:
        found = openapi.match(method, path)
        if found is None:
            with self.lock:
                self.violations.append(f"{method} {path} is not an operation of the subset")
            return _error(404, "Not Found")
        op, params = found
        problems = openapi.validate_request(op, params, query, body)
        if problems:
            with self.lock:
                self.violations += [f"{op.operation_id} request: {p}" for p in problems]
            return _error(422, "Invalid request.\n\n" + "\n".join(problems))
        auth = headers.get("authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else ""
        login = self.tokens.get(token)
        if login is None:
            return _error(401, "Bad credentials")
        handler = getattr(self, "op_" + op.operation_id.replace("/", "_").replace("-", "_"))
        with self.lock:
            status, reply_headers, payload = handler(params, query, body, login)
            for problem in openapi.validate_response(op, status, payload):
                self.violations.append(f"{op.operation_id} {problem}")
        return status, reply_headers, payload

    def _repo_of(self, params: dict[str, str]) -> Repo:
        return self.repo(f"{params['owner']}/{params['repo']}")

    # --- operations (named after GitHub's operationId) -----------------------------------------

    def op_users_get_authenticated(self, params, query, body, login) -> Reply:
        if login.endswith("[bot]"):
            return _error(403, "Resource not accessible by integration")
        user = openapi.synthesize({"$ref": "#/components/schemas/private-user"})
        user.update(self._user(login), user_view_type="private")
        return 200, {}, user

    def op_issues_list_comments(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        number = int(params["issue_number"])
        per_page = min(100, int(query.get("per_page", 30)))  # GitHub caps it silently
        page = int(query.get("page", 1))
        ids = repo.comments.get(number, [])
        items = [self.comments[i] for i in ids[(page - 1) * per_page : page * per_page]]
        last = max(1, -(-len(ids) // per_page))
        base = f"{self.url}/repos/{repo.full_name}/issues/{number}/comments"
        links = []
        if page < last:
            links.append(
                f'<{base}?{urlencode({"per_page": per_page, "page": page + 1})}>; rel="next"'
            )
            links.append(f'<{base}?{urlencode({"per_page": per_page, "page": last})}>; rel="last"')
        if page > 1:
            links.append(f'<{base}?{urlencode({"per_page": per_page, "page": 1})}>; rel="first"')
            links.append(
                f'<{base}?{urlencode({"per_page": per_page, "page": page - 1})}>; rel="prev"'
            )
        return 200, ({"Link": ", ".join(links)} if links else {}), items

    def op_issues_create_comment(self, params, query, body, login) -> Reply:
        if len(body["body"]) > COMMENT_LIMIT:
            return self._too_long()
        comment = self._create_comment(
            self._repo_of(params), int(params["issue_number"]), body["body"], login
        )
        return 201, {"Location": comment["url"]}, comment

    def op_issues_update_comment(self, params, query, body, login) -> Reply:
        comment = self.comments.get(int(params["comment_id"]))
        if comment is None:
            return _error(404, "Not Found")
        if comment["user"]["login"] != login and login not in self.editors:
            # Someone else's comment: only a token with write access to the repository may
            # edit it (the fake's `editors`); anyone else gets the integration 403.
            return _error(403, "Resource not accessible by integration")
        if len(body["body"]) > COMMENT_LIMIT:
            return self._too_long()
        comment["body"] = body["body"]
        comment["updated_at"] = "2026-01-02T00:00:00Z"
        return 200, {}, comment

    def op_repos_get_collaborator_permission_level(self, params, query, body, login) -> Reply:
        permission = self.permissions.get(params["username"])
        if permission is None:
            # GitHub answers 404 for a user who is no collaborator.
            return _error(404, "Not Found")
        answer = openapi.synthesize_component("repository-collaborator-permission")
        answer.update(permission=permission, role_name=permission)
        if isinstance(answer.get("user"), dict):
            answer["user"].update(login=params["username"])
        return 200, {}, answer

    def op_issues_get_comment(self, params, query, body, login) -> Reply:
        comment = self.comments.get(int(params["comment_id"]))
        return (200, {}, comment) if comment else _error(404, "Not Found")

    def _too_long(self) -> Reply:
        return _error(
            422,
            "Validation Failed",
            errors=[
                {
                    "resource": "IssueComment",
                    "code": "custom",
                    "field": "body",
                    "message": f"body is too long (maximum is {COMMENT_LIMIT} characters)",
                }
            ],
        )

    def op_repos_create_commit_status(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        if len(body.get("description") or "") > STATUS_DESCRIPTION_LIMIT:
            return _error(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "Status",
                        "code": "custom",
                        "field": "description",
                        "message": "description is too long (maximum is 140 characters)",
                    }
                ],
            )
        status = openapi.synthesize_component("status")
        sid = next(self._ids)
        status.update(
            id=sid,
            state=body["state"],
            description=body.get("description"),
            target_url=body.get("target_url"),
            context=body.get("context", "default"),
            creator=self._user(login),
            url=f"{self.url}/repos/{repo.full_name}/statuses/{params['sha']}",
        )
        repo.statuses.append({**status, "sha": params["sha"]})
        return 201, {}, status

    def op_repos_list_commit_statuses_for_ref(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        found = [s for s in reversed(repo.statuses) if s["sha"] == params["ref"]]
        return 200, {}, [{k: v for k, v in s.items() if k != "sha"} for s in found]

    def op_repos_get_combined_status_for_ref(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        latest: dict[str, dict[str, Any]] = {}
        for s in repo.statuses:
            if s["sha"] == params["ref"]:
                latest[s["context"]] = s
        combined = openapi.synthesize_component("combined-commit-status")
        states = {s["state"] for s in latest.values()}
        state = (
            "failure"
            if states & {"failure", "error"}
            else "pending"
            if "pending" in states or not states
            else "success"
        )
        simple = []
        for s in latest.values():
            item = openapi.synthesize_component("simple-commit-status")
            item.update({k: s[k] for k in item if k in s})
            simple.append(item)
        combined.update(state=state, sha=params["ref"], total_count=len(simple), statuses=simple)
        return 200, {}, combined

    def op_checks_create(self, params, query, body, login) -> Reply:
        if not login.endswith("[bot]"):
            return _error(403, "You must authenticate via a GitHub App.")
        repo = self._repo_of(params)
        run = openapi.synthesize_component("check-run")
        rid = next(self._ids)
        run.update(
            id=rid,
            name=body["name"],
            head_sha=body["head_sha"],
            status=body.get("status", "completed" if body.get("conclusion") else "queued"),
            conclusion=body.get("conclusion"),
            html_url=f"{self.url}/{repo.full_name}/runs/{rid}",
            url=f"{self.url}/repos/{repo.full_name}/check-runs/{rid}",
            details_url=body.get("details_url"),
        )
        run["output"].update(
            {
                k: v
                for k, v in (body.get("output") or {}).items()
                if k in ("title", "summary", "text")
            }
        )
        repo.check_runs.append(run)
        return 201, {}, run

    def op_repos_create_deployment(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        if body.get("required_contexts") is None:
            # Real GitHub checks every status context first; the library must opt out explicitly.
            return (
                409,
                {},
                {"message": "Conflict: required_contexts must be given", "documentation_url": DOCS},
            )
        dep = openapi.synthesize_component("deployment")
        did = next(self._ids)
        dep.update(
            id=did,
            sha=body["ref"] if len(body["ref"]) == 40 else "0" * 40,
            ref=body["ref"],
            task=body.get("task", "deploy"),
            environment=body.get("environment", "production"),
            description=body.get("description"),
            payload=body.get("payload", {}),
            creator=self._user(login),
            url=f"{self.url}/repos/{repo.full_name}/deployments/{did}",
            statuses_url=f"{self.url}/repos/{repo.full_name}/deployments/{did}/statuses",
            repository_url=f"{self.url}/repos/{repo.full_name}",
        )
        repo.deployments.append(dep)
        repo.deployment_statuses[did] = []
        return 201, {}, dep

    def op_repos_list_deployments(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        deps = [
            d
            for d in reversed(repo.deployments)
            if all(query.get(k) in (None, d.get(k)) for k in ("sha", "ref", "task", "environment"))
        ]
        return 200, {}, deps

    def op_repos_create_deployment_status(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        did = int(params["deployment_id"])
        if did not in repo.deployment_statuses:
            return _error(404, "Not Found")
        status = openapi.synthesize_component("deployment-status")
        status.update(
            id=next(self._ids),
            state=body["state"],
            description=body.get("description", ""),
            environment_url=body.get("environment_url", ""),
            log_url=body.get("log_url", ""),
            target_url=body.get("log_url", ""),
            creator=self._user(login),
            deployment_url=f"{self.url}/repos/{repo.full_name}/deployments/{did}",
            url=f"{self.url}/repos/{repo.full_name}/deployments/{did}/statuses",
        )
        repo.deployment_statuses[did].append(status)
        return 201, {}, status

    def op_repos_list_deployment_statuses(self, params, query, body, login) -> Reply:
        statuses = self._repo_of(params).deployment_statuses.get(int(params["deployment_id"]))
        return (
            (200, {}, list(reversed(statuses)))
            if statuses is not None
            else _error(404, "Not Found")
        )

    def op_repos_list_pull_requests_associated_with_commit(
        self, params, query, body, login
    ) -> Reply:
        repo = self._repo_of(params)
        pulls = [
            self._pull_object(repo, p, "pull-request-simple")
            for p in repo.pulls.values()
            if params["commit_sha"] in (p["head_sha"], p.get("merge_commit_sha"))
        ]
        return 200, {}, pulls

    def op_pulls_get(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        pull = repo.pulls.get(int(params["pull_number"]))
        if pull is None:
            return _error(404, "Not Found")
        return 200, {}, self._pull_object(repo, pull, "pull-request")

    def op_pulls_list(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        state = query.get("state", "open")
        head = query.get("head")  # "owner:branch", as GitHub filters it
        base = query.get("base")
        found = [
            self._pull_object(repo, p, "pull-request-simple")
            for p in sorted(repo.pulls.values(), key=lambda p: -p["number"])
            if state in ("all", p["state"])
            and (head is None or head == f"{repo.full_name.split('/')[0]}:{p['head_ref']}")
            and (base is None or base == p["base_ref"])
        ]
        per_page = min(100, int(query.get("per_page", 30)))
        page = int(query.get("page", 1))
        return 200, {}, found[(page - 1) * per_page : page * per_page]

    def op_pulls_create(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        head_ref = body["head"].split(":", 1)[-1]
        if any(
            p["head_ref"] == head_ref and p["base_ref"] == body["base"] and p["state"] == "open"
            for p in repo.pulls.values()
        ):
            return _error(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {body['head']}.",
                    }
                ],
            )
        number = max([0, *repo.pulls, *repo.comments]) + 1
        self.add_pull(
            repo.full_name,
            number,
            head_sha="0" * 40,  # the fake holds no git objects: the branch tip is unknown here
            head_ref=head_ref,
            base_ref=body["base"],
            title=body.get("title", ""),
            body=body.get("body"),
        )
        return 201, {}, self._pull_object(repo, repo.pulls[number], "pull-request")

    def op_pulls_update(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        pull = repo.pulls.get(int(params["pull_number"]))
        if pull is None:
            return _error(404, "Not Found")
        for key in ("title", "body", "state"):
            if key in (body or {}):
                pull[key] = body[key]
        if "base" in (body or {}):
            pull["base_ref"] = body["base"]
        pull["updates"] = pull.get("updates", 0) + 1
        return 200, {}, self._pull_object(repo, pull, "pull-request")

    def op_issues_add_labels(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        pull = repo.pulls.get(int(params["issue_number"]))
        if pull is None:
            return _error(404, "Not Found")
        for item in (body or {}).get("labels", []):
            name = item if isinstance(item, str) else item["name"]
            if name not in pull["labels"]:
                pull["labels"].append(name)
        return 200, {}, [self._label(repo, name) for name in pull["labels"]]

    def _ref_object(self, repo: Repo, ref: str) -> dict[str, Any]:
        obj = openapi.synthesize_component("git-ref")
        sha = repo.refs[ref]
        obj.update(ref=ref, url=f"{self.url}/repos/{repo.full_name}/git/{ref}")
        obj["object"].update(sha=sha, type="tag" if sha in repo.tags else "commit")
        return obj

    def op_git_create_ref(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        if not body["ref"].startswith("refs/") or body["ref"].count("/") < 2:
            return _error(422, "Reference name is invalid")
        if body["ref"] in repo.refs:
            return _error(422, "Reference already exists")
        repo.refs[body["ref"]] = body["sha"]
        return 201, {}, self._ref_object(repo, body["ref"])

    def op_git_get_ref(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        ref = "refs/" + params["ref"]
        return (
            (200, {}, self._ref_object(repo, ref)) if ref in repo.refs else _error(404, "Not Found")
        )

    def op_git_list_matching_refs(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        prefix = "refs/" + params["ref"]
        return (
            200,
            {},
            [self._ref_object(repo, r) for r in sorted(repo.refs) if r.startswith(prefix)],
        )

    def op_git_create_tag(self, params, query, body, login) -> Reply:
        repo = self._repo_of(params)
        tag = openapi.synthesize_component("git-tag")
        sha = f"{next(self._ids):040x}"
        tag.update(sha=sha, tag=body["tag"], message=body["message"])
        tag["object"].update(sha=body["object"], type=body["type"])
        repo.tags[sha] = tag
        return 201, {}, tag


def main(argv: list[str] | None = None) -> int:
    return serve_main(FakeGitHub, argv)


if __name__ == "__main__":
    raise SystemExit(main())
