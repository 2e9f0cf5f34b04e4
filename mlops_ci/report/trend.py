"""Key metrics over the last N commits of the target branch, read cheaply from git history.

Only metrics files committed to git are read (`git log -- files`, then one `git cat-file
--batch` for all of them); no DVC checkout, no cache. A metrics file that is missing or
unreadable at a commit leaves a gap. `compare` reads it with the noise bands and carries it in
the comparison; the report reads git itself only for a comparison without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mlops_ci.compare.diff import is_number
from mlops_ci.compare.noise import load_or_none, lookup
from mlops_ci.project.git import Git
from mlops_ci.report.mermaid import CANDIDATE_COLOUR, Chart, chart_text, xychart

DEFAULT_COMMITS = 10
KEY_METRICS = 3


@dataclass(frozen=True)
class TrendPoint:
    sha: str
    subject: str
    values: dict[str, float | None]


@dataclass(frozen=True)
class Trend:
    """Values of `metrics` at `points` (oldest first) on branch `ref`."""

    ref: str
    metrics: list[str]
    points: list[TrendPoint] = field(default_factory=list)


def key_metrics(
    comparison: dict, names: Sequence[str] | None = None, limit: int = KEY_METRICS
) -> list[dict]:
    """The comparison's metric rows to follow: `names` (e.g. the policy's) else the first
    numeric ones, at most `limit`."""
    rows = [m for m in comparison.get("metrics") or [] if isinstance(m, dict)]
    if names:
        order = {name: i for i, name in enumerate(names)}  # the caller's order: gated first
        wanted = sorted((m for m in rows if m.get("name") in order), key=lambda m: order[m["name"]])
    else:
        wanted = [m for m in rows if _number(m.get("candidate")) is not None]
    return [m for m in wanted if m.get("file") and m.get("key")][:limit]


def read_trend(
    git: Git, ref: str, metrics: Sequence[dict], *, commits: int = DEFAULT_COMMITS
) -> Trend:
    """Trend of `metrics` (comparison rows with `name`, `file`, `key`) over `ref`'s history."""
    names = [str(m["name"]) for m in metrics]
    files = sorted({str(m["file"]) for m in metrics})
    if not metrics or git.rev_parse(ref) is None:
        return Trend(ref=ref, metrics=names)
    history = list(reversed(git.log(ref, commits, paths=files)))
    # One `git cat-file --batch` for every commit x file; a newline would break its protocol.
    specs = [f"{c.sha}:{path}" for c in history for path in files if "\n" not in path]
    blobs = git.read_many(specs)
    points = []
    for commit in history:
        documents = {path: load_or_none(blobs.get(f"{commit.sha}:{path}"), path) for path in files}
        values = {
            str(m["name"]): _number(lookup(documents[str(m["file"])], str(m["key"])))
            for m in metrics
        }
        points.append(TrendPoint(sha=commit.sha, subject=commit.subject, values=values))
    return Trend(ref=ref, metrics=names, points=points)


def carried_trend(carried: object, metrics: Sequence[dict], commits: int) -> Trend | None:
    """The trend the comparison carries (read with its noise bands, in one git batch), when it
    follows every metric wanted; None sends the report to git."""
    if not isinstance(carried, dict) or not isinstance(carried.get("commits"), list):
        return None
    names = [str(m["name"]) for m in metrics]
    if not set(names) <= set(carried.get("metrics") or ()):
        return None
    points = [
        TrendPoint(
            sha=str(c["sha"]),
            subject=str(c["subject"]),
            values={n: _number(c["values"].get(n)) for n in names},
        )
        for c in carried["commits"][-commits:]
        if isinstance(c, dict) and isinstance(c.get("values"), dict)
    ]
    return Trend(ref=str(carried.get("ref")), metrics=names, points=points)


def _number(value: object) -> float | None:
    return float(value) if is_number(value) else None  # type: ignore[arg-type]


def trend_charts(trend: Trend, comparison: dict) -> list[Chart]:
    """One line chart per key metric: the branch's commits, then this change as `PR`.

    The values are the table's: the commit the table compares with is labelled `baseline`
    (added before `PR` when it is not among the branch's last commits, and given the table's
    value where git alone could not read one), so the line's last step is the table's change.
    """
    rows = {m.get("name"): m for m in comparison.get("metrics") or [] if isinstance(m, dict)}
    base_sha = str((comparison.get("baseline") or {}).get("sha") or "")
    charts = []
    for name in trend.metrics:
        row = rows.get(name) or {}
        labels, values = [], []
        for point in trend.points:
            value = point.values.get(name)
            is_base = bool(base_sha) and point.sha == base_sha
            if is_base and value is None:
                value = _number(row.get("baseline"))
            if value is not None:
                labels.append(f"{point.sha[:7]} baseline" if is_base else point.sha[:7])
                values.append(value)
        on_branch = len(values)
        base_value = _number(row.get("baseline"))
        if base_value is not None and not any(lab.endswith("baseline") for lab in labels):
            labels.append("baseline")
            values.append(base_value)
        candidate = _number(row.get("candidate"))
        if candidate is not None:
            labels.append("PR")
            values.append(candidate)
        if len(values) < 2:
            continue
        title = f"{chart_text(name)} - {on_branch} commits of {chart_text(trend.ref)}, then PR"
        source = xychart(
            title,
            x_label="commit",
            y_label=name,
            categories=labels,
            series=[("line", values)],
            palette=(CANDIDATE_COLOUR,),
        )
        legend = (
            "*Oldest first; `baseline` is the commit the table compares with, `PR` this change.*\n"
        )
        charts.append(Chart(title, source, legend))
    return charts
