"""The forge write tokens, and environments without them.

Write tokens never reach a process that runs repository code: the model a deploy verifies is
unpickled (code), and a `command:` deploy target is the repository's own program.
"""

from __future__ import annotations

from collections.abc import Mapping

# Every variable mlops-ci reads a forge or git-push token from (forge/detect.py, the GitLab
# template's promote job).
WRITE_TOKEN_VARIABLES = (
    "MLOPS_CI_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GITLAB_TOKEN",
    "MLOPS_CI_PUSH_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
)


def without_write_tokens(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a child process that runs repository code."""
    return {k: v for k, v in env.items() if k not in WRITE_TOKEN_VARIABLES}
