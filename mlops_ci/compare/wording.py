"""The words for what a comparison found, in one place: the report's headline, metrics table and
trend and the gate's reasons all take them from here, so they cannot say different things
about the same metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

# Statuses decided by an interval, a noise band or a tolerance: they carry a noise estimate.
ESTIMATED = frozenset({"improved", "regressed", "inconclusive", "within-noise"})


def how_to_estimate(has_intervals: bool) -> str:
    """What gives the uncoloured metrics a noise estimate: a predictions file only helps a
    comparison that has no intervals yet."""
    bands = "run `mlops-ci noise` on the target branch."
    if has_intervals:
        return f"For noise bands on the metrics without an interval, {bands}"
    return (
        "For intervals, declare a per-sample predictions file (`predictions:` in "
        f"mlops-ci.yaml); for noise bands, {bands}"
    )


def p_text(p: object) -> str:
    """A p-value in scientific notation (3.10e-09): a rounded "0" would claim certainty."""
    if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
        return ""
    return f"{float(p):.2e}"


def worse_by_point(row: Mapping[str, Any]) -> bool | None:
    """Whether the candidate's point value is worse than the baseline's for the row's direction;
    None without two numbers or a direction, or when they are equal."""
    base, cand = row.get("baseline"), row.get("candidate")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (base, cand)):
        return None
    direction = row.get("direction")
    if direction not in ("higher", "lower") or base == cand:
        return None
    return (cand < base) == (direction == "higher")


def point_value_counts(metrics: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(worse, better) by point value among rows that changed without a noise estimate."""
    worse = better = 0
    for row in metrics:
        if row.get("status") != "changed":
            continue
        found = worse_by_point(row)
        if found is True:
            worse += 1
        elif found is False:
            better += 1
    return worse, better


def point_value_line(metrics: Iterable[Mapping[str, Any]]) -> str | None:
    """ "2 worse, 1 better by point value; no noise estimate", or None when every changed row
    has a noise estimate."""
    rows = [m for m in metrics if m.get("status") == "changed"]
    if not rows:
        return None
    worse, better = point_value_counts(rows)
    other = len(rows) - worse - better
    parts = [f"{worse} worse", f"{better} better"]
    if other:
        parts.append(f"{other} changed without a direction")
    return f"{', '.join(parts)} by point value; no noise estimate"


def interval_finding(worse_low: float, worse_high: float) -> str:
    """What an interval of the worsening (positive: worse) says about noise, as the table's
    status does (regressed / improved / inconclusive)."""
    if worse_low > 0:
        return "rules out noise: a real drop"
    if worse_high < 0:
        return "rules out noise: a real gain"
    return "does not rule out noise"
