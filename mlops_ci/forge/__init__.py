"""Forges: GitHub, GitLab and local behind one small interface, over one retrying HTTP session.

    event = read_ci_event(os.environ, run_dir)      # mlops_ci.ci.event; no HTTP
    forge = detect_forge(os.environ, run_dir)
    forge.upsert_comment(report.markdown, report.marker_id)  # mlops_ci.report.report_marker_id

Importing this package stays cheap: `requests` loads only when a remote forge is built.
"""

from __future__ import annotations

from mlops_ci.forge.base import Forge, PostedComment
from mlops_ci.forge.detect import detect_forge
from mlops_ci.forge.errors import (
    ForgeAuthFailed,
    ForgeError,
    ForgeNotFound,
    ForgeRateLimited,
    ForgeRejected,
    ForgeUnavailable,
)
from mlops_ci.forge.summary import NoPullRequest

__all__ = [
    "Forge",
    "ForgeAuthFailed",
    "ForgeError",
    "ForgeNotFound",
    "ForgeRateLimited",
    "ForgeRejected",
    "ForgeUnavailable",
    "NoPullRequest",
    "PostedComment",
    "detect_forge",
    "status_context",
]


def status_context(artifact: str) -> str:
    """The commit status context of an artifact's gate: `mlops-ci/<artifact>`."""
    return f"mlops-ci/{artifact}"
