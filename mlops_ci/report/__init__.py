"""The living PR report: safe GitHub-flavoured markdown, inline Mermaid charts, trend, size-aware.

from mlops_ci.report import build_report, write_report
report = build_report(comparison, verdict, limit=65_536, marker_id="pr")
write_report(Path(".mlops-ci"), report)
"""

from __future__ import annotations

from mlops_ci.ci.limits import GITHUB_COMMENT_LIMIT, GITLAB_NOTE_LIMIT
from mlops_ci.report.render import (
    Report,
    ReportInputError,
    ReportLinks,
    build_report,
    format_terminal,
    report_marker,
    report_marker_id,
)
from mlops_ci.report.trend import Trend, TrendPoint, key_metrics, read_trend
from mlops_ci.report.write import write_report

__all__ = [
    "GITHUB_COMMENT_LIMIT",
    "GITLAB_NOTE_LIMIT",
    "Report",
    "ReportInputError",
    "ReportLinks",
    "Trend",
    "TrendPoint",
    "build_report",
    "format_terminal",
    "key_metrics",
    "read_trend",
    "report_marker",
    "report_marker_id",
    "write_report",
]
