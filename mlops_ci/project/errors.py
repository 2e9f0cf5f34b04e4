"""Errors the user can act on, each with the exit code the CLI returns for it.

Exit codes (docs/architecture.md): 0 success, 1 gate failed, 2 bad input/usage/config,
3 an outside service failed after retries, 4 unexpected error, 130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_SERVICE = 3
EXIT_UNEXPECTED = 4
EXIT_INTERRUPTED = 130


class MlopsCiError(Exception):
    """Base of every error whose message tells the user what to fix."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(MlopsCiError):
    """`mlops-ci.yaml`, params or another input file is malformed."""


class NotAGitRepo(MlopsCiError):
    """The working directory is not inside a git repository."""


class NotADvcRepo(MlopsCiError):
    """The repository has no DVC project (no `.dvc/`)."""


class GitError(MlopsCiError):
    """A git command failed; the message carries the command, exit code and stderr."""


class StageFailed(MlopsCiError):
    """A pipeline stage's command exited non-zero.

    Exit code 2: the pipeline is the user's input, and the message names the stage to fix.
    """

    stage: str | None = None
    runs: list = []  # noqa: RUF012 - replaced per instance by whoever raises it


class BaselineNotFound(MlopsCiError):
    """The baseline revision cannot be resolved."""


class ServiceError(MlopsCiError):
    """An outside service (forge API, DVC remote, deploy target) failed after retries."""

    exit_code = EXIT_SERVICE


class RegistryError(MlopsCiError):
    """A registry question (GTO tags) has no answer: unknown version, empty stage."""


class PromotionRefused(MlopsCiError):
    """The gate's verdict for the commit is `fail`, so it is not registered (exit 1)."""

    exit_code = EXIT_GATE_FAILED


class VerificationFailed(MlopsCiError):
    """A bundle's checksums or predictions do not match; it was not switched to."""


class OutputNotWritten(MlopsCiError):
    """An output file could not be written: the disk is full, read-only, or not ours to write
    (exit 3, like an outside service: the environment failed, not the input)."""

    exit_code = EXIT_SERVICE
