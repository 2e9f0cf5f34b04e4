"""The report's sections, each rendered once from its template with escaped, pre-built rows.

Rows are built in Python (one string per row) so a 10,000-row report renders in milliseconds and
`fit` can cut a table without rendering it again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mlops_ci.compare.wording import (
    ESTIMATED,
    how_to_estimate,
    point_value_line,
    worse_by_point,
)
from mlops_ci.report import templating
from mlops_ci.report.markdown import (
    fmt_number,
    fmt_percent,
    fmt_signed,
    md_code_block,
    md_link,
    md_text,
    table,
    table_row,
)

STATUS_MARKS = {
    "unknown": "⚠️ unknown (unreadable)",
    "regressed": "🔴 regressed",
    "removed": "⚠️ removed",
    "inconclusive": "⚪ inconclusive",
    "changed": "🔁 changed",
    "within-noise": "〰️ within noise",
    "added": "🆕 added",
    "improved": "🟢 improved",
    "unchanged": "unchanged",
}
# Worst first: a reviewer reads the top of the table.
STATUS_ORDER = {status: i for i, status in enumerate(STATUS_MARKS)}
VERDICT_MARKS = {"pass": "✅ **pass**", "fail": "❌ **fail**", "neutral": "➖ **neutral**"}
STAGE_MARKS = {
    "ran": "ran",
    "restored": "restored",
    "unchanged": "unchanged",
    "failed": "❌ failed",
    "skipped": "skipped",
}
MAX_STAGES = 50
MAX_NOTES = 20
MAX_RULES = 10
_SHA = re.compile(r"[0-9a-f]{7,64}")


@dataclass
class Section:
    """One block of the report; `rows` (already in `text`) let `fit` cut the metrics table."""

    key: str
    text: str
    label: str = ""
    rows: list[str] = field(default_factory=list)
    head: str = ""


def render(name: str, **context: object) -> str:
    """One section from `report/templates/<name>.md.j2`."""
    return templating.render(f"{name}.md.j2", **context)


def short_sha(sha: object) -> str | None:
    return str(sha)[:7] if isinstance(sha, str) and _SHA.fullmatch(sha) else None


def revision_md(rev: dict, commit_url: Callable[[str], str | None] | None) -> str:
    """`branch` @ short SHA (linked when the forge is known) for one side of the comparison."""
    name = rev.get("branch") or rev.get("ref") or "?"
    sha = rev.get("sha")
    short = short_sha(sha)
    if short is None:
        return md_text(name, 60)
    url = commit_url(str(sha)) if commit_url else None
    return f"{md_text(name, 60)} @ {md_link(short, url)}"


def _is_first(comparison: dict, metrics: list[dict]) -> bool:
    if not metrics:
        return not comparison.get("baseline", {}).get("sha")
    return all(m.get("baseline") is None for m in metrics)


def headline(
    comparison: dict,
    verdict: dict | None,
    metrics: list[dict],
    *,
    marker: str,
    commit_url: Callable[[str], str | None] | None,
    has_changes: bool,
    verdict_note: str | None = None,
) -> Section:
    counts: dict[str, int] = {}
    for m in metrics:
        counts[str(m.get("status"))] = counts.get(str(m.get("status")), 0) + 1
    # Counts by status say "0 regressed" when nothing had a noise estimate; those rows are
    # counted by point value instead, and the headline says so.
    by_point = point_value_line(metrics)
    estimated = any(counts.get(s) for s in ESTIMATED)
    parts = []
    if estimated or not by_point:
        parts = [f"{counts.get(s, 0)} {s}" for s in ("improved", "regressed", "inconclusive")]
    if by_point:
        parts.append(by_point)
    parts += [
        f"{counts[s]} {s}"
        for s in ("unknown", "added", "removed", "within-noise", "unchanged")
        if counts.get(s)
    ]
    verdict_line = failed = advisory = None
    if verdict_note is not None:
        verdict_line = f"Gate: ⚠️ no verdict: {md_text(verdict_note, 600)}"
    if isinstance(verdict, dict) and verdict.get("advisory") is True:
        advisory = (
            "Advisory: this pull request comes from a fork, and its numbers come from the "
            "fork's own job, which the fork controls. The verdict applies this repository's "
            "policy to them; it cannot prove them."
        )
    if isinstance(verdict, dict):
        mark = VERDICT_MARKS.get(str(verdict.get("verdict")), md_text(verdict.get("verdict"), 20))
        summary = verdict.get("summary")
        verdict_line = f"Gate: {mark}" + (f": {md_text(summary, 300)}" if summary else "")
        rules = [r for r in verdict.get("rules") or [] if isinstance(r, dict)]
        bad = [r for r in rules if r.get("outcome") in ("fail", "neutral")]
        failed = [
            f"{md_text(r.get('outcome'), 10)}: {md_text(r.get('reason') or r.get('rule'), 300)}"
            for r in bad[:MAX_RULES]
        ]
        if len(bad) > MAX_RULES:
            failed.append(f"… and {len(bad) - MAX_RULES} more rules")
    baseline, candidate = comparison.get("baseline") or {}, comparison.get("candidate") or {}
    revisions = (
        f"Baseline {revision_md(baseline, commit_url)}"
        + (f" ({md_text(baseline['subject'], 80)})" if baseline.get("subject") else "")
        + f" · candidate {revision_md(candidate, commit_url)}"
        + (" (uncommitted changes)" if candidate.get("dirty") else "")
    )
    situation = None
    same = baseline.get("sha") and baseline.get("sha") == candidate.get("sha")
    if same and not candidate.get("dirty"):
        situation = (
            "The baseline is this very commit (the branch is already in "
            f"{md_text(baseline.get('ref') or 'the target branch', 60)}): it is compared with "
            "itself, so nothing can differ."
        )
    elif _is_first(comparison, metrics):
        situation = (
            "First report: the baseline has no metrics yet, so there is nothing to "
            "compare against. The candidate's values are shown as added."
        )
    elif not has_changes:
        situation = "Nothing changed: no metric moved and no param changed."
    elif by_point:
        family = comparison.get("family")
        members = family.get("interval_members") if isinstance(family, dict) else None
        situation = how_to_estimate(_count(members) > 0)
    artifact = comparison.get("artifact")
    title = "mlops-ci report" + (f": {md_text(artifact, 60)}" if artifact else "")
    text = render(
        "headline",
        marker=marker,
        title=title,
        verdict_line=verdict_line,
        counts_line=" · ".join(parts),
        revisions_line=revisions,
        situation=situation,
        failed_rules=failed,
        advisory=advisory,
    )
    return Section("headline", text)


def _count(value: object) -> int:
    """A count from a document: a non-negative whole number, else 0 (no claim is made)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def decided_text(m: dict, comparison: dict) -> str:
    """How a row's status was decided, in words (`decided_by` of the comparison row)."""
    how = m.get("decided_by")
    family = comparison.get("family") if isinstance(comparison.get("family"), dict) else {}
    if how == "interval":
        level = family.get("interval_confidence")
        together = _count(family.get("interval_members"))
        if isinstance(level, float) and together > 1:
            return f"interval ({level * 100:.3g}% jointly with {together - 1} others)"
        return "interval"
    if how in ("noise band", "tolerance"):
        low, high = m.get("band_low"), m.get("band_high")
        band = f"[{fmt_number(low)}, {fmt_number(high)}]" if low is not None else ""
        if how == "tolerance":
            return f"tolerance {band} (policy)"
        noise = m.get("noise") if isinstance(m.get("noise"), dict) else {}
        df = _count(noise.get("df"))
        level = family.get("band_confidence")
        shown = f"{level * 100:.3g}% " if isinstance(level, float) else ""
        repeats = f", {df} repeat runs" if df else ""
        return f"{shown}noise band {band}{repeats}"
    if how == "none":
        if m.get("status") == "unchanged":
            return "equal"
        return "none: no interval, tolerance or noise estimate"
    return ""


def metric_row(m: dict, with_ci: bool, comparison: dict | None = None) -> str:
    direction = {"higher": " ↑", "lower": " ↓"}.get(str(m.get("direction")), "")
    cells = [
        md_text(m.get("name"), 100) + direction,
        fmt_number(m.get("baseline")),
        fmt_number(m.get("candidate")),
        fmt_signed(m.get("delta")),
        fmt_percent(m.get("rel_delta")),
    ]
    if with_ci:
        low, high = m.get("ci_low"), m.get("ci_high")
        cells.append(f"[{fmt_signed(low)}, {fmt_signed(high)}]" if low is not None else "")
    status = STATUS_MARKS.get(str(m.get("status")), md_text(m.get("status"), 20))
    if m.get("status") == "changed" and worse_by_point(m) is not None:
        status += f" ({'worse' if worse_by_point(m) else 'better'} by point value)"
    cells.append(status)
    if comparison is not None:
        cells.append(md_text(decided_text(m, comparison), 120))
    return table_row(cells)


def metrics_head(comparison: dict, with_ci: bool) -> str:
    header = ["Metric", "Baseline", "Candidate", "Δ", "Δ %"]
    if with_ci:
        confidence = comparison.get("confidence")
        level = (
            f"{confidence * 100:.0f}% "
            if isinstance(confidence, float) and 0 < confidence < 1
            else ""
        )
        family = comparison.get("family") if isinstance(comparison.get("family"), dict) else {}
        together, members = family.get("interval_confidence"), family.get("interval_members")
        if isinstance(together, float) and _count(members) > 1:
            header.append(f"CI (all hold at {together * 100:.3g}%)")
        else:
            header.append(f"{level}CI")
    decided = any(
        isinstance(m, dict) and m.get("decided_by") for m in comparison.get("metrics") or []
    )
    return table([*header, "Status", *(["Decided by"] if decided else [])], [])


def metrics_sections(comparison: dict, metrics: list[dict]) -> tuple[Section, Section | None]:
    with_ci = any(m.get("ci_low") is not None for m in metrics)
    head = metrics_head(comparison, with_ci)
    decided = comparison if any(m.get("decided_by") for m in metrics) else None
    changed = [m for m in metrics if m.get("status") != "unchanged"]
    changed.sort(key=lambda m: STATUS_ORDER.get(str(m.get("status")), 0))
    rows = [metric_row(m, with_ci, decided) for m in changed]
    empty = "No metric changed." if metrics else "No metrics were found in either revision."
    text = render(
        "metrics", header=head, rows=rows, left_out=None, empty_text=empty,
        how=how_decided(comparison, metrics),
    )  # fmt: skip
    main = Section("metrics", text, rows=rows, head=head)
    unchanged = [metric_row(m, with_ci, decided) for m in metrics if m.get("status") == "unchanged"]
    if not unchanged:
        return main, None
    summary = f"{len(unchanged)} unchanged metric{'s' if len(unchanged) != 1 else ''}"
    text = render("unchanged", summary=summary, header=head, rows=unchanged)
    return main, Section("unchanged", text, label=f"{len(unchanged)} unchanged metric rows")


def how_decided(comparison: dict, metrics: list[dict]) -> str | None:
    """One paragraph under the metrics table: what colour means for this comparison."""
    family = comparison.get("family")
    if not isinstance(family, dict):
        return None
    parts = []
    members, level = _count(family.get("interval_members")), family.get("interval_confidence")
    if members and isinstance(level, float):
        parts.append(
            f"the {members} intervals (each metric from per-sample predictions, on all rows and "
            f"on every gated slice) hold together at {level * 100:.3g}%: simultaneous bootstrap "
            "intervals, studentized max-|t|"
        )
    bands, band_level = _count(family.get("band_members")), family.get("band_confidence")
    if bands and isinstance(band_level, float):
        parts.append(
            f"{bands} metric{'s' if bands != 1 else ''} without an interval "
            f"{'are' if bands != 1 else 'is'} judged by a {band_level * 100:.3g}% noise band "
            "from the target branch's repeat runs with unchanged inputs"
        )
    none = [str(m.get("name")) for m in metrics if m.get("decided_by") == "none"
            and m.get("status") == "changed"]  # fmt: skip
    if none:
        shown = ", ".join(none[:5]) + (f" and {len(none) - 5} more" if len(none) > 5 else "")
        parts.append(
            f"no interval, tolerance or noise estimate for {shown}: shown as changed, uncoloured"
        )
    confidence = family.get("confidence")
    if not parts or not isinstance(confidence, float):
        return None
    head = (
        f"How colour is decided: a no-op change colours anything at all at most "
        f"{(1 - confidence) * 100:.3g}% of the time; "
    )
    return md_text(head + "; ".join(parts) + ". Gate rules judge the point values.", 1200)


def _standardized(m: dict) -> float:
    """A slice metric's loss in units of its interval's half-width, so that metrics of different
    scales compare; the raw loss when it has no interval (a slice too small to gate)."""
    low, high = m.get("ci_low"), m.get("ci_high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and high > low:
        return float(m["worsening"]) / ((high - low) / 2)
    return float(m["worsening"])


def slices_section(comparison: dict) -> Section | None:
    """The worst slices: for each, the metric that lost most, with its simultaneous interval."""
    slices = comparison.get("slices")
    if not isinstance(slices, dict) or not isinstance(slices.get("rows"), list):
        return None
    picked = []
    for s in slices["rows"]:
        if not isinstance(s, dict):
            continue
        metrics = [m for m in s.get("metrics") or [] if isinstance(m, dict)
                   and isinstance(m.get("worsening"), (int, float))]  # fmt: skip
        if metrics:
            worst = max(metrics, key=_standardized)
            picked.append((s.get("gated") is True, _standardized(worst), s, worst))
    if not picked:
        return None
    picked.sort(key=lambda p: (not p[0], -p[1]))
    show = slices.get("show")
    limit = show if isinstance(show, int) and show > 0 else 5
    rows = []
    for gated, _, s, m in picked[:limit]:
        low, high = m.get("ci_low"), m.get("ci_high")
        ci = f"[{fmt_signed(low)}, {fmt_signed(high)}]" if low is not None else ""
        n = f"{s.get('n_baseline')} / {s.get('n_candidate')}"
        status = STATUS_MARKS.get(str(m.get("status")), md_text(m.get("status"), 20))
        if not gated:
            status = f"not gated (under {md_text(slices.get('min_size'), 10)} rows)"
        cells = [
            md_text(f"{s.get('column')}={s.get('value')}", 80), n,
            md_text(m.get("name"), 40), fmt_number(m.get("baseline")),
            fmt_number(m.get("candidate")), fmt_signed(m.get("delta")), ci, status,
        ]  # fmt: skip
        rows.append(table_row(cells))
    head = table(
        ["Slice", "Rows (baseline / candidate)", "Worst metric", "Baseline", "Candidate", "Δ",
         "CI (simultaneous)", "Status"], []
    )  # fmt: skip
    gated = sum(1 for p in picked if p[0])
    note = (
        f"{len(picked)} slices by {md_text(', '.join(map(str, slices.get('columns') or [])), 200)}"
        f"; {gated} gated, the rest under {md_text(slices.get('min_size'), 10)} rows are "
        "reported only. Worst first."
    )
    text = render("slices", header=head, rows=rows, note=note)
    return Section("slices", text, label=f"slices ({len(picked)})")


def _param_value(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, default=str)
    return fmt_number(value) if isinstance(value, (int, float)) else md_text(value, 60)


def params_section(comparison: dict) -> Section | None:
    params = [p for p in comparison.get("params") or [] if isinstance(p, dict)]
    if not params:
        return None
    rows = [
        table_row(
            [
                md_text(p.get("name"), 100),
                _param_value(p.get("baseline")),
                _param_value(p.get("candidate")),
                md_text(p.get("change"), 20),
            ]
        )
        for p in params
    ]
    head = table(["Param", "Baseline", "Candidate", "Change"], [])
    text = render("params", header=head, rows=rows)
    return Section("params", text, label=f"params table ({len(rows)} changed params)")


def policy_section(comparison: dict) -> Section | None:
    change = comparison.get("policy_change") or {}
    if not isinstance(change, dict) or not change.get("changed"):
        return None
    diff = md_code_block(str(change.get("diff") or "(no diff recorded)"), "diff", limit=3000)
    return Section("policy", render("policy", diff_block=diff))


def _duration(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
    return ""


def stages_section(comparison: dict) -> Section | None:
    stages = [s for s in comparison.get("stages") or [] if isinstance(s, dict)]
    if not stages:
        return None
    rows = []
    for stage in stages[:MAX_STAGES]:
        status = STAGE_MARKS.get(str(stage.get("status")), md_text(stage.get("status"), 20))
        if stage.get("source"):
            status += f" from {md_text(stage['source'], 20)}"
        rows.append(
            table_row([md_text(stage.get("name"), 80), status, _duration(stage.get("duration_s"))])
        )
    left_out = (
        f"{len(stages) - MAX_STAGES} more stages in the full report"
        if len(stages) > MAX_STAGES
        else None
    )
    text = render(
        "stages", header=table(["Stage", "Status", "Duration"], []), rows=rows, left_out=left_out
    )
    return Section("stages", text)


def notes_section(comparison: dict, extra: list[str]) -> Section | None:
    notes = []
    for error in comparison.get("errors") or []:
        if isinstance(error, dict):
            where = " ".join(
                md_text(error.get(k), 80) for k in ("file", "revision") if error.get(k)
            )
            notes.append(f"error reading {where}: {md_text(error.get('message'), 300)}")
    notes += [md_text(w, 300) for w in comparison.get("warnings") or []]
    notes += [md_text(n, 300) for n in extra]
    if not notes:
        return None
    if len(notes) > MAX_NOTES:
        notes = [*notes[:MAX_NOTES], f"… and {len(notes) - MAX_NOTES} more"]
    return Section("notes", render("notes", notes=notes))
