"""The step summary file (GitHub) and the error for a run that has no pull request."""

from __future__ import annotations

from pathlib import Path

from mlops_ci.ci.limits import SUMMARY_LIMIT_BYTES, fit
from mlops_ci.project.errors import MlopsCiError


class NoPullRequest(MlopsCiError):
    """The run belongs to no pull/merge request, so there is nothing to comment on."""


def append_summary(path: Path, markdown: str, full_report: str) -> Path:
    """Append to a step summary file, shrunk to what is left of its 1 MiB."""
    used = path.stat().st_size if path.exists() else 0
    note = (
        "> The report was shortened to fit the job summary's 1 MiB limit; "
        f"the full version is in `{full_report}` (run directory artifact)."
    )
    text = fit(markdown.rstrip("\n") + "\n", SUMMARY_LIMIT_BYTES - used, note, measure_bytes=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
    return path
