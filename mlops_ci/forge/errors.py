"""Forge failures, each named for the condition. All are outside-service errors (exit 3)."""

from __future__ import annotations

from mlops_ci.project.errors import ServiceError


class ForgeError(ServiceError):
    """A forge API call failed; the message carries the forge's own words, never the token."""

    def __init__(self, message: str, *, status: int | None = None, forge_message: str = ""):
        super().__init__(message)
        self.status = status
        self.forge_message = forge_message


class ForgeUnavailable(ForgeError):
    """Connection errors, timeouts or 5xx answers outlasted every retry."""


class ForgeRateLimited(ForgeError):
    """The forge asked us to wait longer than we may (MLOPS_CI_MAX_WAIT), or kept limiting."""


class ForgeAuthFailed(ForgeError):
    """401/403: the token is missing, wrong, or lacks a permission."""


class ForgeNotFound(ForgeError):
    """404: the repository, pull request or object does not exist (or the token cannot see it)."""


class ForgeRejected(ForgeError):
    """Any other 4xx: the forge refused the request as sent (validation, conflict)."""
