"""What CI run are we in: the forge, the event, the PR and its SHAs. No HTTP, cheap imports.

Fork PRs run in two halves (docs/architecture.md): the untrusted `pull_request` job writes `ci.json` into
the run directory with `write_ci_metadata`; the trusted `workflow_run` job reads it back with
`read_ci_metadata`, which treats every field as hostile input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops_ci.ci import documents
from mlops_ci.project.errors import MlopsCiError

CI_METADATA = "ci.json"
SCHEMA_VERSION = documents.SCHEMA_VERSION
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_ZERO_SHA = "0" * 40
_REF_RE = re.compile(r"^[A-Za-z0-9._/@+#-][A-Za-z0-9._/@+#:-]{0,254}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._/-]{1,200}$")
_MAX_PR = 10**9


class InvalidCiMetadata(MlopsCiError):
    """`ci.json` (written by an untrusted job) or the CI event payload is malformed."""


@dataclass(frozen=True)
class CiEvent:
    forge: str  # github | gitlab | local
    event_name: str
    pr_number: int | None = None
    base_ref: str | None = None
    base_sha: str | None = None
    head_ref: str | None = None
    head_sha: str | None = None
    repository: str | None = None
    run_url: str | None = None
    is_fork: bool = False
    server_url: str | None = None
    # workflow_run only: the name of the workflow whose run triggered this one.
    triggering_workflow: str | None = None
    # The PR number is a claim of the untrusted `ci.json`: confirm it with the forge before use.
    pr_claimed: bool = False

    @property
    def is_pull_request(self) -> bool:
        return self.pr_number is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sha(value: Any) -> str | None:
    if isinstance(value, str) and _SHA_RE.match(value) and value != _ZERO_SHA:
        return value
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _github_run_url(env: Mapping[str, str]) -> str | None:
    server, repo, run_id = (
        env.get("GITHUB_SERVER_URL"),
        env.get("GITHUB_REPOSITORY"),
        env.get("GITHUB_RUN_ID"),
    )
    if server and repo and run_id:
        return f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"
    return None


def _load_payload(env: Mapping[str, str]) -> dict[str, Any]:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidCiMetadata(f"cannot read the GitHub event payload {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _github_event(env: Mapping[str, str], run_dir: Path | None) -> CiEvent:
    name = env.get("GITHUB_EVENT_NAME", "")
    payload = _load_payload(env)
    common = {
        "forge": "github",
        "event_name": name,
        "repository": env.get("GITHUB_REPOSITORY") or None,
        "run_url": _github_run_url(env),
        "server_url": (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
    }
    if name in ("pull_request", "pull_request_target") and isinstance(
        payload.get("pull_request"), dict
    ):
        pr = payload["pull_request"]
        head, base = pr.get("head") or {}, pr.get("base") or {}
        head_repo = (head.get("repo") or {}).get("full_name")
        base_repo = (base.get("repo") or {}).get("full_name")
        number = pr.get("number", payload.get("number"))
        return CiEvent(
            **common,
            pr_number=number if isinstance(number, int) else None,
            base_ref=_str(base.get("ref")),
            base_sha=_sha(base.get("sha")),
            head_ref=_str(head.get("ref")),
            head_sha=_sha(head.get("sha")),
            is_fork=bool(head_repo and base_repo and head_repo != base_repo),
        )
    if name == "push":
        ref = env.get("GITHUB_REF", payload.get("ref", ""))
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
        return CiEvent(
            **common,
            base_ref=branch,
            base_sha=_sha(payload.get("before")),
            head_ref=branch,
            head_sha=_sha(payload.get("after")) or _sha(env.get("GITHUB_SHA")),
        )
    if name == "workflow_run" and isinstance(payload.get("workflow_run"), dict):
        return _workflow_run_event(common, payload["workflow_run"], run_dir)
    return CiEvent(
        **common,
        head_ref=_str(env.get("GITHUB_HEAD_REF")) or _str(env.get("GITHUB_REF_NAME")),
        head_sha=_sha(env.get("GITHUB_SHA")),
        base_ref=_str(env.get("GITHUB_BASE_REF")),
    )


def _workflow_run_event(
    common: dict[str, Any], run: dict[str, Any], run_dir: Path | None
) -> CiEvent:
    """The trusted half: PR facts come from the triggering run, checked against its metadata."""
    head_sha = _sha(run.get("head_sha"))
    pulls = [p for p in run.get("pull_requests") or [] if isinstance(p, dict)]
    # Fork PRs have an empty pull_requests list: ci.json from the untrusted run fills the gap.
    meta = (
        read_ci_metadata(run_dir)
        if run_dir is not None and (run_dir / CI_METADATA).exists()
        else None
    )
    pr_number = (
        pulls[0].get("number") if pulls and isinstance(pulls[0].get("number"), int) else None
    )
    claimed = False
    if meta is not None:
        if head_sha and meta.head_sha and meta.head_sha != head_sha:
            raise InvalidCiMetadata(
                f"{CI_METADATA} names head {meta.head_sha} but the triggering run built {head_sha}; "
                "the run directory does not belong to this run"
            )
        if pr_number is not None and meta.pr_number not in (None, pr_number):
            raise InvalidCiMetadata(
                f"{CI_METADATA} names PR #{meta.pr_number} but the triggering run is for #{pr_number}"
            )
        if pr_number is None:
            pr_number, claimed = meta.pr_number, meta.pr_number is not None
    head_repo = (run.get("head_repository") or {}).get("full_name")
    base_repo = (run.get("repository") or {}).get("full_name")
    base = pulls[0].get("base") if pulls else None
    return CiEvent(
        **{**common, "run_url": _str(run.get("html_url")) or common["run_url"]},
        pr_number=pr_number,
        base_ref=_str((base or {}).get("ref")) or (meta.base_ref if meta else None),
        base_sha=_sha((base or {}).get("sha")) or (meta.base_sha if meta else None),
        head_ref=_str(run.get("head_branch")),
        # Never the metadata's SHA: a status goes only on the commit the trusted run built.
        head_sha=head_sha,
        is_fork=bool(head_repo and base_repo and head_repo != base_repo),
        triggering_workflow=_str(run.get("name")),
        pr_claimed=claimed,
    )


def _gitlab_event(env: Mapping[str, str]) -> CiEvent:
    iid = env.get("CI_MERGE_REQUEST_IID", "")
    source, target = (
        env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID"),
        env.get("CI_MERGE_REQUEST_PROJECT_ID"),
    )
    in_mr = iid.isdigit()
    return CiEvent(
        forge="gitlab",
        event_name=env.get("CI_PIPELINE_SOURCE", ""),
        pr_number=int(iid) if in_mr else None,
        base_ref=_str(env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"))
        or _str(env.get("CI_COMMIT_BRANCH")),
        base_sha=_sha(env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA"))
        or _sha(env.get("CI_MERGE_REQUEST_TARGET_BRANCH_SHA"))
        or (None if in_mr else _sha(env.get("CI_COMMIT_BEFORE_SHA"))),
        head_ref=_str(env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"))
        or _str(env.get("CI_COMMIT_REF_NAME")),
        head_sha=_sha(env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA"))
        or _sha(env.get("CI_COMMIT_SHA")),
        repository=_str(env.get("CI_PROJECT_PATH")),
        run_url=_str(env.get("CI_PIPELINE_URL")) or _str(env.get("CI_JOB_URL")),
        is_fork=bool(in_mr and source and target and source != target),
        server_url=_str(env.get("CI_SERVER_URL")),
    )


def forge_kind(env: Mapping[str, str]) -> str:
    """github, gitlab or local; MLOPS_CI_FORGE overrides the detection."""
    forced = env.get("MLOPS_CI_FORGE", "").strip().lower()
    if forced in ("github", "gitlab", "local"):
        return forced
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    return "local"


def read_ci_event(env: Mapping[str, str], run_dir: Path | None = None) -> CiEvent:
    """The CI event this process runs for, from the environment (and `ci.json` for workflow_run)."""
    kind = forge_kind(env)
    if kind == "github":
        return _github_event(env, run_dir)
    if kind == "gitlab":
        return _gitlab_event(env)
    return CiEvent(forge="local", event_name="local")


def write_ci_metadata(run_dir: Path, event: CiEvent) -> Path:
    """`ci.json`: what the trusted workflow_run job needs to post for this (fork) PR."""
    facts = {k: v for k, v in event.to_dict().items() if k != "pr_claimed"}
    return documents.write(run_dir, CI_METADATA, {**documents.header("ci"), **facts})


def _field(doc: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidCiMetadata(f"{CI_METADATA}: {name} is not valid ({str(value)[:60]!r})")
    return value


def read_ci_metadata(run_dir: Path) -> CiEvent:
    """Read `ci.json` as untrusted input: exact types, digits-only numbers, 40-hex SHAs."""
    path = run_dir / CI_METADATA
    try:
        raw = path.read_text(encoding="utf-8")
        if len(raw) > 64 * 1024:
            raise InvalidCiMetadata(f"{path} is larger than 64 KiB; it is not mlops-ci metadata")
        doc = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise InvalidCiMetadata(f"cannot read {path}: {exc}") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("kind") != "ci"
        or doc.get("schema_version") != SCHEMA_VERSION
    ):
        raise InvalidCiMetadata(f"{path} is not a schema_version {SCHEMA_VERSION} ci document")
    number = doc.get("pr_number")
    if number is not None:
        text = str(number) if isinstance(number, int) and not isinstance(number, bool) else number
        if (
            not isinstance(text, str)
            or not text.isascii()
            or not text.isdigit()
            or not 0 < int(text) < _MAX_PR
        ):
            raise InvalidCiMetadata(f"{CI_METADATA}: pr_number must be a positive whole number")
        number = int(text)
    is_fork = doc.get("is_fork", False)
    if not isinstance(is_fork, bool):
        raise InvalidCiMetadata(f"{CI_METADATA}: is_fork must be true or false")
    forge = doc.get("forge")
    if forge not in ("github", "gitlab", "local"):
        raise InvalidCiMetadata(f"{CI_METADATA}: forge must be github, gitlab or local")
    return CiEvent(
        forge=forge,
        event_name=_field(doc, "event_name", re.compile(r"^[a-z_]{1,40}$")) or "",
        pr_number=number,
        base_ref=_field(doc, "base_ref", _REF_RE),
        base_sha=_field(doc, "base_sha", _SHA_RE),
        head_ref=_field(doc, "head_ref", _REF_RE),
        head_sha=_field(doc, "head_sha", _SHA_RE),
        repository=_field(doc, "repository", _REPO_RE),
        # URLs from the untrusted side are not used for links; only our own env is.
        run_url=None,
        is_fork=is_fork,
        server_url=None,
        pr_claimed=number is not None,
    )
