"""Build the living PR report from `comparison.json` (+ `verdict.json`).

`build_report` is pure: documents in, markdown out. The full report and the one fitted to the
forge's limit are both kept, with the sections, so another destination (the job summary, 1 MiB)
can be fitted again without rendering anything twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mlops_ci import __version__
from mlops_ci.ci.documents import check
from mlops_ci.ci.limits import hidden_marker
from mlops_ci.project.errors import MlopsCiError
from mlops_ci.report import png
from mlops_ci.report.data_section import data_changed, data_section
from mlops_ci.report.fit import fit_sections, size
from mlops_ci.report.markdown import clip, md_link, md_text, one_line, table, table_row
from mlops_ci.report.plot_charts import plot_view
from mlops_ci.report.sections import (
    Section,
    headline,
    metrics_sections,
    notes_section,
    params_section,
    policy_section,
    render,
    short_sha,
    slices_section,
    stages_section,
)
from mlops_ci.report.trend import Trend, trend_charts

MAX_CHARTS = 8
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
# The forge's marker alphabet (letters, digits, _.:/@#+=-, no "--"), less the separator.
_MARKER_UNSAFE = re.compile(r"[^A-Za-z0-9_./@+=-]+")
MARKER_PREFIX = "mlops-ci-report"
# What `report_marker_id` makes; any other `marker_id` is taken as a workflow name and cleaned.
_REPORT_MARKER_ID = re.compile(
    rf"{MARKER_PREFIX}:(?!.*--)[A-Za-z0-9_./@+=-]{{1,80}}:[A-Za-z0-9_./@+=-]{{1,80}}"
)


class ReportInputError(MlopsCiError):
    """`comparison.json` or `verdict.json` is not a document this version can report on."""


@dataclass(frozen=True)
class ReportLinks:
    """Where things live on the forge: `commit_url(sha)` for SHAs, `run_url` for the CI run
    whose artifacts hold the full report."""

    commit_url: Callable[[str], str | None] | None = None
    run_url: str | None = None


@dataclass
class Report:
    markdown: str
    full_markdown: str
    dropped: list[str]
    marker: str
    marker_id: str = ""
    limit: int | None = None
    sections: list[Section] = field(default_factory=list, repr=False)
    plots: list[dict] = field(default_factory=list, repr=False)
    revisions: tuple[str, str] = ("baseline", "candidate")
    terminal: str = ""
    footer: Callable[[list[str], int | None], str] | None = field(default=None, repr=False)

    def fitted(self, limit: int | None) -> tuple[str, list[str]]:
        """This report fitted to another `limit` (e.g. the 1 MiB job summary)."""
        if self.footer is None or limit == self.limit:
            return self.markdown, self.dropped
        footer = self.footer
        return fit_sections(self.sections, limit, lambda dropped: footer(dropped, limit))


def report_marker_id(artifact: str, workflow: str) -> str:
    """The plain id of one report (artifact + workflow), what the forge looks comments up by:
    the one way to name a report comment (`upsert_comment(markdown, marker_id)`)."""

    def clean(value: str) -> str:
        return re.sub(r"-{2,}", "-", _MARKER_UNSAFE.sub("_", value))[:80].strip("-") or "_"

    return f"{MARKER_PREFIX}:{clean(artifact)}:{clean(workflow)}"


def report_marker(artifact: str, workflow: str) -> str:
    """The hidden HTML comment that identifies one report (artifact + workflow) for updates."""
    return hidden_marker(report_marker_id(artifact, workflow))


_LISTS = ("metrics", "params", "plots", "stages", "errors", "warnings")


def check_documents(comparison: object, verdict: object) -> None:
    """ReportInputError unless these are a comparison (+ verdict) of the shape reported on."""
    data = check(comparison, "comparison", "comparison.json", ReportInputError)
    if verdict is not None:
        check(verdict, "verdict", "verdict.json", ReportInputError)
    # The shapes the sections rely on (docs/documents.md); anything else is not a comparison.
    for key in ("baseline", "candidate"):
        if not isinstance(data.get(key), dict):
            raise ReportInputError(
                f"comparison.json: {key} must be an object, not {type(data.get(key)).__name__}; "
                "rerun `mlops-ci compare`"
            )
    for key in _LISTS:
        if data.get(key) is not None and not isinstance(data[key], list):
            raise ReportInputError(
                f"comparison.json: {key} must be a list, not {type(data[key]).__name__}; "
                "rerun `mlops-ci compare`"
            )


_IMAGE_STATUS = {"changed": "🔄 changed", "unchanged": "unchanged", "added": "➕ added",
                 "removed": "➖ removed"}  # fmt: skip


def _image_rows(plots: list[dict]) -> list[dict[str, str]]:
    """Image plots (DVC draws `*.png` and the like as they are): compared by content digest;
    the files of both revisions are in the run directory, never on a public image host."""
    return [
        {"id_md": md_text(str(p.get("id") or ""), 120),
         "status_md": md_text(_IMAGE_STATUS.get(str(p.get("status")), str(p.get("status"))), 40)}
        for p in plots
        if p.get("kind") == "image"
    ]  # fmt: skip


_PLOT_STATUS = {"changed": "🔁 changed", "added": "🆕 added", "removed": "⚠️ removed",
                "unchanged": "unchanged"}  # fmt: skip
MAX_LISTED_PLOTS = 60


def _plots_section(
    comparison: dict,
    plots: list[dict],
    labels: tuple[str, str],
    run_url: str | None = None,
    pngs: png.PngResult | None = None,
) -> Section | None:
    images = _image_rows(plots)
    plots = [p for p in plots if p.get("kind") != "image"]
    # Changed plots first, so the charts a reviewer needs are the ones drawn.
    plots = sorted(plots, key=lambda p: p.get("status") == "unchanged")
    views, listed = [], []
    for i, plot in enumerate(plots):
        if i < MAX_CHARTS:
            view = plot_view(plot, labels)
            shown = view.shown
            if view.markdown:
                views.append({"title_md": md_text(view.title, 80), "markdown": view.markdown})
        else:
            shown = f"not drawn: over {MAX_CHARTS} plots"
        if plot.get("status") != "unchanged" and len(listed) < MAX_LISTED_PLOTS:
            status = str(plot.get("status"))
            listed.append(
                table_row([md_text(plot.get("id"), 120),
                           md_text(_PLOT_STATUS.get(status, status), 20), md_text(shown, 300)])
            )  # fmt: skip
    changed = sum(1 for p in plots if p.get("status") != "unchanged")
    if changed > len(listed):
        listed.append(table_row([f"… and {changed - len(listed)} more", "", ""]))
    same = len(plots) - changed
    png_line = None
    if pngs is not None and pngs.files:  # only what was drawn (`report --png`)
        names = ", ".join(path.name for path in pngs.files)
        png_line = f"PNG files in the run directory under plots/: {md_text(names, 600)}"
    if not listed and not views and not png_line and not images:
        return None
    where = "the run directory under `images/`"
    if run_url:
        where += f" ({md_link('artifacts of this run', run_url)})"
    text = render(
        "plots", charts=views, png_line=png_line, images=images, images_where=where,
        listed=table(["Plot", "Status", "Shown as"], listed) if listed else None,
        same=f"{same} unchanged plot{'s' if same != 1 else ''}." if same else None,
    )  # fmt: skip
    return Section("plots", text, label=f"plots ({len(views)} charts)")


def _trend_section(trend: Trend | None, comparison: dict) -> Section | None:
    if trend is None:
        return None
    charts = [{"markdown": c.markdown()} for c in trend_charts(trend, comparison)]
    if not charts:
        return None
    return Section(
        "trend", render("trend", ref=md_text(trend.ref, 60), charts=charts), label="trend"
    )


def revision_labels(comparison: dict) -> tuple[str, str]:
    """How the report names the two sides: short SHAs, else `baseline` / `candidate`."""
    base, cand = (
        short_sha((comparison.get(side) or {}).get("sha")) or side
        for side in ("baseline", "candidate")
    )
    if (comparison.get("candidate") or {}).get("dirty"):
        cand = "workspace"  # uncommitted: its SHA is the commit it started from
    return base, cand


def _waivers_section(verdict: dict | None) -> Section | None:
    """The review's waivers, right under the headline (report/waivers.py)."""
    from mlops_ci.report.waivers import waivers_block

    text = waivers_block(verdict) if isinstance(verdict, dict) else ""
    return Section("waivers", text + "\n") if text else None


def _verdict_record(verdict: dict | None) -> str:
    """The verdict of a pull request's head as a hidden record, so the review command can
    re-judge it without the run directory (docs/review.md)."""
    if not (isinstance(verdict, dict) and verdict.get("head_sha")):
        return ""
    from mlops_ci.report.waivers import encode_payload

    return "\n" + encode_payload(verdict) + "\n"


def build_report(
    comparison: dict,
    verdict: dict | None = None,
    *,
    limit: int | None,
    links: ReportLinks | None = None,
    trend: Trend | None = None,
    full_report_hint: str = ".mlops-ci/report.md",
    marker_id: str | None = None,
    verdict_note: str | None = None,
    inputs: Mapping[str, str | None] | None = None,
    pngs: png.PngResult | None = None,
) -> Report:
    """The report for `comparison` (+ `verdict`), fitted to `limit` characters (None: no limit).

    `marker_id`: an id from `report_marker_id`, or a workflow name (the artifact then comes
    from the comparison); default: workflow `mlops-ci`. `verdict_note`: why no verdict is shown
    (stale, or the gate could not decide). `inputs`: digests of the documents rendered, kept in
    a hidden comment so a reader can tell which run the report belongs to.
    """
    check_documents(comparison, verdict)
    links = links or ReportLinks()
    if not (marker_id and _REPORT_MARKER_ID.fullmatch(marker_id)):
        artifact = str(comparison.get("artifact") or "model")
        marker_id = report_marker_id(artifact, marker_id or "mlops-ci")
    marker = hidden_marker(marker_id)
    metrics = [m for m in comparison.get("metrics") or [] if isinstance(m, dict)]
    plots = [p for p in comparison.get("plots") or [] if isinstance(p, dict)]
    params = params_section(comparison)
    has_changes = (
        any(m.get("status") != "unchanged" for m in metrics)
        or params is not None
        or data_changed(comparison)
    )
    labels = revision_labels(comparison)
    metrics_main, unchanged = metrics_sections(comparison, metrics)
    notes = list(pngs.notes) if pngs is not None else []
    sections = [
        headline(
            comparison,
            verdict,
            metrics,
            marker=marker,
            commit_url=links.commit_url,
            has_changes=has_changes,
            verdict_note=verdict_note,
        ),
        _waivers_section(verdict),
        metrics_main,
        slices_section(comparison),
        params,
        data_section(comparison),
        policy_section(comparison),
        stages_section(comparison),
        _plots_section(comparison, plots, labels, links.run_url, pngs),
        _trend_section(trend, comparison),
        unchanged,
        notes_section(comparison, notes),
    ]
    kept = [s for s in sections if s is not None]
    where = md_text(full_report_hint, 200)
    if links.run_url:
        where = f"{where} ({md_link('artifacts of this run', links.run_url)})"

    # Digests are ours (sha256:hex), never text from the repository; no "--" can end the comment.
    recorded = " ".join(f"{k} {v}" for k, v in (inputs or {}).items() if v and _DIGEST.match(v))

    record = _verdict_record(verdict)

    def footer(dropped: list[str], at: int | None) -> str:
        return (
            render(
                "footer",
                dropped=[md_text(d, 80) for d in dropped],
                limit=f"{at or 0:,}",
                where=where,
                version=__version__,
                inputs=recorded,
            )
            + record
        )

    full = "".join(s.text for s in kept) + footer([], None)
    fitted, dropped = fit_sections(kept, limit, lambda d: footer(d, limit))
    report = Report(
        markdown=fitted,
        full_markdown=full,
        dropped=dropped,
        marker=marker,
        marker_id=marker_id,
        limit=limit,
        sections=kept,
        plots=[p for p in plots if p.get("kind") != "image"],  # drawn as PNG; images are files
        revisions=labels,  # type: ignore[arg-type]
        footer=footer,
    )
    report.terminal = _terminal(comparison, verdict, metrics, report, full_report_hint)
    return report


def _terminal(
    comparison: dict, verdict: dict | None, metrics: list[dict], report: Report, hint: str
) -> str:
    """A plain-text summary: no markdown, no control characters from the repo."""

    def plain(value: object, n: int = 60) -> str:
        return clip(one_line(value), n)

    lines = [f"mlops-ci report: {plain(comparison.get('artifact') or 'model')}"]
    if verdict and verdict.get("advisory") is True:
        lines.append("advisory: the numbers come from the fork's own job")
    if verdict:
        lines.append(
            f"gate: {plain(verdict.get('verdict'), 10)}: {plain(verdict.get('summary'), 200)}"
        )
    changed = [m for m in metrics if m.get("status") != "unchanged"]
    lines.append(
        f"{len(changed)} of {len(metrics)} metrics changed; baseline "
        f"{report.revisions[0]}, candidate {report.revisions[1]}"
    )
    width = min(40, max((len(plain(m.get("name"), 40)) for m in changed[:40]), default=6))
    for m in changed[:40]:
        lines.append(
            f"  {plain(m.get('name'), 40):<{width}}  {_num(m.get('baseline')):>10} -> "
            f"{_num(m.get('candidate')):>10}  {plain(m.get('status'), 14)}"
        )
    if len(changed) > 40:
        lines.append(f"  ... {len(changed) - 40} more")
    params = [p for p in comparison.get("params") or [] if isinstance(p, dict)]
    if params:
        lines.append(f"params changed: {plain(', '.join(str(p.get('name')) for p in params), 200)}")
    if report.dropped:
        lines.append(
            f"comment shortened to {size(report.markdown):,} characters; left out: "
            + "; ".join(report.dropped)
        )
    lines.append(f"full report: {plain(hint, 200)}")
    return "\n".join(lines) + "\n"


def _num(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else clip(one_line(value), 10)


def format_terminal(report: Report) -> str:
    """The report in a readable terminal form."""
    return report.terminal
