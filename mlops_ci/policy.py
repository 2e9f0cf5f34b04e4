"""The gate's policy: `mlops-ci.yaml` as it is at the baseline revision.

A pull request that loosens a threshold is judged by the threshold it wants to loosen; its change
to the policy is shown (the diff) and takes effect on merge. `compare` and the gate read the
policy through this one function, so they never disagree about which file applies.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_ci.errors import BaselineNotFound
from mlops_ci.gate import PolicySource
from mlops_ci.git import Git
from mlops_ci.settings import SETTINGS_FILE, Settings, parse_settings


@dataclass(frozen=True)
class Policy:
    settings: Settings
    source: PolicySource
    diff: str = ""

    def change(self) -> dict[str, Any]:
        """The comparison's `policy_change` field (docs/documents.md)."""
        return {"changed": self.source.changed, "diff": self.diff}


def load_policy(repo_dir: Path, baseline_sha: str | None) -> Policy:
    """The policy at the baseline revision; the working tree's only when there is no baseline."""
    path = repo_dir / SETTINGS_FILE
    work = path.read_text(encoding="utf-8") if path.exists() else None
    if not baseline_sha:
        settings = parse_settings(work, SETTINGS_FILE)
        where = "working tree" if work is not None else "defaults"
        return Policy(settings, PolicySource(None, where, SETTINGS_FILE))
    git = Git(repo_dir)
    if git.rev_parse(baseline_sha) is None:
        raise BaselineNotFound(
            f"the baseline commit {baseline_sha} is not in this clone, so its {SETTINGS_FILE} "
            "(the policy) cannot be read; fetch it (e.g. `git fetch origin main`) or rerun "
            "`mlops-ci compare`"
        )
    raw = git.show(baseline_sha, SETTINGS_FILE)
    text = raw.decode("utf-8", "replace") if raw is not None else None
    settings = parse_settings(text, f"{SETTINGS_FILE} at {baseline_sha[:12]} (the baseline)")
    diff = "".join(
        difflib.unified_diff(
            (text or "").splitlines(keepends=True),
            (work or "").splitlines(keepends=True),
            fromfile=f"{SETTINGS_FILE} @ {baseline_sha[:7]} (baseline, applied)",
            tofile=f"{SETTINGS_FILE} (this change, applies after merge)",
        )
    )
    source = PolicySource(
        baseline_sha, "baseline" if text is not None else "defaults", SETTINGS_FILE, bool(diff)
    )
    return Policy(settings, source, diff)
