"""The gate's policy: `mlops-ci.yaml` as it is at the baseline revision.

A pull request that loosens a threshold is judged by the threshold it wants to loosen; its change
to the policy is shown (the diff) and takes effect on merge. `compare` and the gate read the
policy through this one function, so they never disagree about which file applies.

The change's own `mlops-ci.yaml` (the *proposed* policy) is parsed too: it applies after merge,
so the gate checks it now (`gate.check_proposed_policy`) and a typo cannot land on main.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.project.errors import BaselineNotFound, ConfigError
from mlops_ci.project.git import Git
from mlops_ci.project.settings import (
    SETTINGS_FILE,
    Settings,
    decode_settings,
    parse_settings,
    read_settings_text,
)

PROPOSED_SOURCE = f"{SETTINGS_FILE} in this change"


@dataclass(frozen=True)
class PolicySource:
    """Where the policy was read: `baseline` (the normal case), `working tree` (no baseline:
    the first pull request) or `defaults` (no policy file at that revision)."""

    revision: str | None
    source: str
    path: str = "mlops-ci.yaml"
    changed: bool = False


@dataclass(frozen=True)
class Policy:
    settings: Settings
    source: PolicySource
    diff: str = ""
    # The change's own policy when it differs from the applied one: parsed, or why not.
    proposed: Settings | None = None
    proposed_error: str | None = None

    def change(self) -> dict[str, Any]:
        """The comparison's `policy_change` field (docs/documents.md)."""
        return {"changed": self.source.changed, "diff": self.diff}


def load_policy(repo_dir: Path, baseline_sha: str | None, git: Git | None = None) -> Policy:
    """The policy at the baseline revision; the working tree's only when there is no baseline.
    `git`: the repository's, when the caller has one (its answers are shared)."""
    if not baseline_sha:
        work = read_settings_text(repo_dir / SETTINGS_FILE)
        settings = parse_settings(work, SETTINGS_FILE)
        where = "working tree" if work is not None else "defaults"
        return Policy(settings, PolicySource(None, where, SETTINGS_FILE))
    git = git or Git(repo_dir)
    if git.rev_parse(baseline_sha) is None:
        raise BaselineNotFound(
            f"the baseline commit {baseline_sha} is not in this clone, so its {SETTINGS_FILE} "
            "(the policy) cannot be read; fetch it (e.g. `git fetch origin main`) or rerun "
            "`mlops-ci compare`"
        )
    where = f"{SETTINGS_FILE} at {baseline_sha[:12]} (the baseline)"
    raw = git.show(baseline_sha, SETTINGS_FILE)
    text = decode_settings(raw, where) if raw is not None else None
    settings = parse_settings(text, where)
    # The change's own file: a broken one is reported by the gate (it must not land), not
    # raised here, since the baseline's policy still decides this change.
    work: str | None = None
    proposed: Settings | None = None
    proposed_error: str | None = None
    try:
        work = read_settings_text(repo_dir / SETTINGS_FILE, PROPOSED_SOURCE)
    except ConfigError as exc:
        proposed_error = str(exc)
    diff = "".join(
        difflib.unified_diff(
            (text or "").splitlines(keepends=True),
            (work or "").splitlines(keepends=True),
            fromfile=f"{SETTINGS_FILE} @ {baseline_sha[:7]} (baseline, applied)",
            tofile=f"{SETTINGS_FILE} (this change, applies after merge)",
        )
    )
    if diff and work is not None and proposed_error is None:
        try:
            proposed = parse_settings(work, PROPOSED_SOURCE)
        except ConfigError as exc:
            proposed_error = str(exc)
    source = PolicySource(
        baseline_sha,
        "baseline" if text is not None else "defaults",
        SETTINGS_FILE,
        bool(diff) or proposed_error is not None,
    )
    return Policy(settings, source, diff, proposed, proposed_error)
