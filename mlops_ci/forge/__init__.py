"""Forges: GitHub, GitLab and local behind one small interface.

    event = read_ci_event(os.environ, run_dir)      # no HTTP
    forge = detect_forge(os.environ, run_dir)
    forge.upsert_comment(report.markdown, report.marker_id)  # mlops_ci.report.report_marker_id

Importing this package stays cheap: `requests` loads only when a remote forge is built.
"""

from __future__ import annotations

from mlops_ci.forge.base import (
    STATUS_DESCRIPTION_LIMIT,
    Forge,
    PostedComment,
    fit,
    hidden_marker,
)
from mlops_ci.forge.detect import detect_forge
from mlops_ci.forge.errors import (
    ForgeAuthFailed,
    ForgeError,
    ForgeNotFound,
    ForgeRateLimited,
    ForgeRejected,
    ForgeUnavailable,
    InvalidCiMetadata,
)
from mlops_ci.forge.event import (
    CI_METADATA,
    CiEvent,
    forge_kind,
    read_ci_event,
    read_ci_metadata,
    write_ci_metadata,
)
from mlops_ci.forge.summary import NoPullRequest

__all__ = [
    "CI_METADATA",
    "STATUS_DESCRIPTION_LIMIT",
    "CiEvent",
    "Forge",
    "ForgeAuthFailed",
    "ForgeError",
    "ForgeNotFound",
    "ForgeRateLimited",
    "ForgeRejected",
    "ForgeUnavailable",
    "InvalidCiMetadata",
    "NoPullRequest",
    "PostedComment",
    "detect_forge",
    "fit",
    "forge_kind",
    "hidden_marker",
    "read_ci_event",
    "read_ci_metadata",
    "status_context",
    "write_ci_metadata",
]


def status_context(artifact: str) -> str:
    """The commit status context of an artifact's gate: `mlops-ci/<artifact>`."""
    return f"mlops-ci/{artifact}"
