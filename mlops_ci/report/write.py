"""Write a report to the run directory: the full markdown, the fitted one, and PNG plots."""

from __future__ import annotations

from pathlib import Path

from mlops_ci.ci import documents
from mlops_ci.ci.documents import REPORT_FILE
from mlops_ci.report import png
from mlops_ci.report.render import Report

FULL_NAME = REPORT_FILE
FITTED_NAME = "report-comment.md"


def write_report(run_dir: Path, report: Report, *, output: Path | None = None) -> Path:
    """Write `report.md` (full) and `report-comment.md` (fitted to the forge limit) under
    `run_dir`; with `output`, also the full report there. Returns the path of `report.md`.

    Files are written before anything is posted, so a forge failure never loses the report.
    """
    full = documents.write_text(run_dir, FULL_NAME, report.full_markdown)
    documents.write_text(run_dir, FITTED_NAME, report.markdown)
    if output is not None:
        documents.write_file(output, report.full_markdown)
    return full


def write_pngs(
    run_dir: Path, plots: list[dict], revisions: tuple[str, str], *, limit: int = png.DEFAULT_LIMIT
) -> png.PngResult:
    """`plots/*.png` under `run_dir` (asked for with --png), and `plots-notes.txt` when some
    could not be drawn."""
    result = png.render_pngs(
        plots, run_dir / "plots", baseline_rev=revisions[0], candidate_rev=revisions[1],
        limit=limit,
    )  # fmt: skip
    notes = run_dir / "plots-notes.txt"
    if result.notes:
        documents.write_file(notes, "\n".join(result.notes) + "\n")
    elif notes.exists():
        notes.unlink()
    return result
