"""What changed between two versions of a table: schema, missing values, per-column distribution
shift and label balance.

Shift is tested per column, on the non-missing values of both revisions:

- numbers: the two-sample Kolmogorov-Smirnov test; its statistic D (the largest gap between
  the two empirical CDFs, 0 to 1) is the effect size;
- categories: Pearson's chi-square test of homogeneity on the category counts; Cramér's V
  (sqrt(chi2 / n) for two samples, 0 to 1) is the effect size.

Every p-value of a comparison is corrected together (Benjamini-Hochberg, `correct`), so twenty
unchanged columns do not raise one false alarm in every run. Every p-value is computed here
(numpy and closed forms, held to scipy by tests): importing `scipy.stats` for one KS test
costs more than a second, on every pull request whose predictions file changed.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlops_ci.compare.table_profile import Column
    from mlops_ci.compare.tabular import Table

# Above this many distinct values on either side a text column is an identifier or free text:
# a chi-square over it says nothing, so it is not tested.
MAX_CATEGORIES = 200
SHOWN_CATEGORIES = 10  # new or vanished categories named in the report
SHOWN_CLASSES = 20


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(value: object, limit: int = 200) -> str:
    """A name or category from the data as document text: no control characters, bounded."""
    text = _CONTROL.sub("\ufffd", str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(column: Column) -> str:
    """number, mixed (text dtype, mostly numbers: tested on its numbers) or category."""
    kind = column_kind(column.dtype())
    if kind == "text":
        return "mixed" if column.values and column.non_numeric_share < 0.5 else "category"
    return kind


def column_kind(dtype: str) -> str:
    if dtype.startswith(("int", "uint", "Int", "UInt", "float", "Float")):
        return "number"
    if dtype in ("bool", "boolean"):
        return "category"
    return "text"


def _rate(missing: int, rows: int) -> float:
    return round(missing / rows, 6) if rows else 0.0


# The KS p-value is exact while the smaller side has fewer values than this and the larger
# at most `EXACT_UP_TO` (where scipy's `ks_2samp(method="auto")` is exact too); otherwise it is
# Kolmogorov's limit distribution at sqrt(n m / (n + m)) D, slightly conservative there. The
# exact one costs a pass over a row of the lattice per value of the smaller side.
ASYMPTOTIC_FROM = 1_000
EXACT_UP_TO = 10_000


def _ks(base: np.ndarray, cand: np.ndarray) -> tuple[float, float]:
    from mlops_ci.compare.numeric import np

    a, b = np.sort(base), np.sort(cand)
    d = ks_statistic(a, b)
    n, m = len(a), len(b)
    if min(n, m) < ASYMPTOTIC_FROM and max(n, m) <= EXACT_UP_TO:
        return d, ks_exact_sf(n, m, d)
    return d, kolmogorov_sf(math.sqrt(n * m / (n + m)) * d)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample KS statistic of sorted samples: the largest gap between the empirical
    CDFs, compared after the last of each run of equal values (ties across samples too)."""
    from mlops_ci.compare.numeric import np

    both = np.concatenate([a, b])
    order = np.argsort(both, kind="stable")  # two sorted runs: a merge
    from_a = np.cumsum(order < len(a))
    values = both[order]
    ends = np.flatnonzero(np.append(values[1:] != values[:-1], True))
    taken_a = from_a[ends]
    gap = taken_a / len(a) - (ends + 1 - taken_a) / len(b)
    return float(np.max(np.abs(gap)))


def ks_exact_sf(n: int, m: int, d: float) -> float:
    """P(D >= d) for the two-sided two-sample KS statistic of samples of sizes n and m without
    ties, counted over the lattice paths from (0, 0) to (n, m) (Hodges 1958): the share of
    paths that reach a point where |i/n - j/m| >= d. `d` is first rounded to the lattice's own
    steps (multiples of 1 / lcm(n, m)), as scipy does."""
    g = math.gcd(n, m)
    h = round(d * (n // g) * m)  # d in steps of 1 / lcm(n, m)
    if h == 0:
        return 1.0
    if n == m:
        return _outside_square(n, h)
    return min(1.0, max(0.0, 1.0 - _inside_share(min(n, m), max(n, m), h * g)))


def _outside_square(n: int, h: int) -> float:
    """Equal sizes: 2 * sum over k >= 1 of (-1)^(k+1) C(2n, n - k h) / C(2n, n) (Gnedenko and
    Korolyuk), each ratio a product of (n - j) / (n + j + 1), so small p-values keep their
    digits."""
    from mlops_ci.compare.numeric import np

    steps = np.arange(n)
    ratios = np.cumprod((n - steps) / (n + steps + 1.0))  # ratios[t - 1]: C(2n, n - t) / C(2n, n)
    terms = ratios[np.arange(h, n + 1, h) - 1]
    signs = np.where(np.arange(len(terms)) % 2 == 0, 1.0, -1.0)
    return float(min(1.0, max(0.0, 2.0 * np.sum(signs[::-1] * terms[::-1]))))


def _inside_share(n: int, m: int, limit: int) -> float:
    """The share of lattice paths from (0, 0) to (n, m), n < m, that stay where
    |i m - j n| < limit. Row i holds the paths to each (i, j): a running sum of row i - 1
    over the points of row i inside the band, rescaled to its largest value so nothing
    overflows; the scales are summed in logs."""
    from mlops_ci.compare.numeric import np

    row = np.zeros(m + 1)
    row[: min(m, -(-limit // n) - 1) + 1] = 1.0  # row 0: j n < limit
    log_scale = 0.0
    for i in range(1, n + 1):
        lo = max(0, (i * m - limit) // n + 1)
        hi = min(m, -(-(i * m + limit) // n) - 1)
        if hi < lo:  # no point of this row is inside: no path stays in
            return 0.0
        sums = np.cumsum(row[lo : hi + 1])
        top = sums[-1]
        if top == 0.0:
            return 0.0
        row[:] = 0.0
        row[lo : hi + 1] = sums / top
        log_scale += math.log(top)
    paths = math.log(row[m]) + log_scale if row[m] > 0 else -math.inf
    return math.exp(paths - math.log(math.comb(n + m, n)))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for Kolmogorov's distribution (what `scipy.special.kolmogorov` computes):
    the alternating series for x >= 1, Jacobi's theta form below, 1e-16 close either way."""
    if x <= 0:
        return 1.0
    if x < 1:
        y = math.pi**2 / (8 * x * x)
        cdf = (
            math.sqrt(2 * math.pi) / x * sum(math.exp(-((2 * k - 1) ** 2) * y) for k in range(1, 8))
        )
        return min(1.0, max(0.0, 1.0 - cdf))
    series = sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101))
    return min(1.0, max(0.0, 2 * series))


def chi2_sf(stat: float, df: int) -> float:
    """P(X > stat) for a chi-square with a whole number `df` of degrees of freedom, in closed
    form (Abramowitz & Stegun 26.4.4 and 26.4.5), summed in log space so large statistics
    neither overflow nor lose the tail."""
    if stat <= 0:
        return 1.0
    half = stat / 2
    if df % 2 == 0:
        logs = [i * math.log(half) - math.lgamma(i + 1) - half for i in range(df // 2)]
        base = 0.0
    else:
        logs = [(i - 0.5) * math.log(half) - math.lgamma(i + 0.5) - half
                for i in range(1, (df - 1) // 2 + 1)]  # fmt: skip
        base = math.erfc(math.sqrt(half))
    top = max(logs, default=-math.inf)
    if top == -math.inf:
        return min(1.0, base)
    total = sum(math.exp(v - top) for v in logs)
    return min(1.0, base + math.exp(top + math.log(total)))


def _chi2(base: dict[str, int], cand: dict[str, int]) -> tuple[float, float]:
    from mlops_ci.compare.numeric import np

    cats = sorted(set(base) | set(cand))
    table = np.array([[base.get(c, 0) for c in cats], [cand.get(c, 0) for c in cats]], float)
    n = table.sum()
    if len(cats) < 2 or n == 0 or table.sum(axis=1).min() == 0:
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    stat = float(((table - expected) ** 2 / expected).sum())
    p = chi2_sf(stat, len(cats) - 1)
    return math.sqrt(stat / n), p  # Cramér's V with two rows: min(r, c) - 1 = 1


def column_rows(base: Table, cand: Table, key: str | None) -> list[dict[str, Any]]:
    """One row per column of either side: dtypes, missing rates (over every row), the shift
    test (uncorrected). A column that cannot be tested at both revisions is `untestable`,
    with the reason in `note`: a drift rule fails on it rather than pass unseen."""
    rows = []
    names = [*base.columns, *(c for c in cand.columns if c not in base.columns)]
    for name in names:
        row: dict[str, Any] = {
            "name": clean(name), "change": "same",
            "baseline_dtype": None, "candidate_dtype": None,
            "baseline_missing": None, "candidate_missing": None,
            "baseline_non_numeric": None, "candidate_non_numeric": None,
            "test": None, "effect": None, "p_value": None, "p_adjusted": None,
            "drifted": False, "untestable": False, "note": None,
        }  # fmt: skip
        old, new = base.columns.get(name), cand.columns.get(name)
        for side, column, table in (("baseline", old, base), ("candidate", new, cand)):
            if column is not None:
                row[f"{side}_dtype"] = column.dtype()
                row[f"{side}_missing"] = _rate(column.missing, table.rows)
                if column_kind(column.dtype()) == "text" and column.values:
                    row[f"{side}_non_numeric"] = round(column.non_numeric_share, 6)
        if old is None or new is None:
            row["change"] = "added" if new is not None else "removed"
            where = "candidate" if new is not None else "baseline"
            row["untestable"] = True
            row["note"] = f"only at the {where} (added, removed or renamed): cannot be tested"
            rows.append(row)
            continue
        if row["baseline_dtype"] != row["candidate_dtype"]:
            row["change"] = "dtype"
        if key is not None and str(name) == key:
            row["note"] = "key column: not tested"
        else:
            _test(row, old, new, base.frame[name], cand.frame[name])
        rows.append(row)
    return rows


def _numbers(series: pd.Series) -> np.ndarray:
    """The numeric part of a sampled column (text that is not a number left out)."""
    from mlops_ci.compare.numeric import pd

    values = pd.to_numeric(series, errors="coerce") if series.dtype == object or \
        column_kind(str(series.dtype)) == "text" else series  # fmt: skip
    return values.dropna().to_numpy(dtype=float)


def _test(row: dict[str, Any], old: Column, new: Column, base: pd.Series, cand: pd.Series) -> None:
    kinds = _kind(old), _kind(new)
    numeric = {"number", "mixed"}
    if old.values < 2 or new.values < 2:
        row["note"] = "too few values to test"
        row["untestable"] = max(old.values, new.values) >= 2  # one side blanked: fail closed
    elif kinds[0] in numeric and kinds[1] in numeric:
        a, b = _numbers(base), _numbers(cand)
        if min(len(a), len(b)) < 2:
            row["note"] = "too few numbers in the sample to test"
            row["untestable"] = True
            return
        row["effect"], row["p_value"] = _ks(a, b)
        row["test"] = "ks"
        if "mixed" in kinds:
            shares = [f"{c.non_numeric_share:.2%}" for c in (old, new)]
            row["note"] = f"tested on its numbers; not numbers: {shares[0]} → {shares[1]}"
    elif kinds[0] != kinds[1]:
        words = {"number": "numbers", "mixed": "mostly numbers", "category": "text"}
        row["note"] = (
            f"{words[kinds[0]]} at the baseline, {words[kinds[1]]} at the candidate "
            f"({new.non_numeric_share:.2%} not numbers): cannot be tested"
        )
        row["untestable"] = True
    else:
        too_many = [c.counts is None or len(c.counts) > MAX_CATEGORIES for c in (old, new)]
        if any(too_many):
            row["note"] = f"over {MAX_CATEGORIES} distinct values: not tested"
            # Identifiers or free text at both revisions are not tested by design; a column
            # that became one cannot be compared with what it was.
            row["untestable"] = too_many[0] != too_many[1]
            return
        assert old.counts is not None and new.counts is not None
        row["effect"], row["p_value"] = _chi2(dict(old.counts), dict(new.counts))
        row["test"] = "chi2"
        added = sorted(set(new.counts) - set(old.counts), key=lambda c: -new.counts[c])
        removed = sorted(set(old.counts) - set(new.counts), key=lambda c: -old.counts[c])
        if added:
            row["new_categories"] = [clean(c) for c in added[:SHOWN_CATEGORIES]]
        if removed:
            row["vanished_categories"] = [clean(c) for c in removed[:SHOWN_CATEGORIES]]
    # The p-value stays unrounded: the correction reads it, and 3.1e-9 rounded is 0.
    for key in ("effect", "p_value"):
        if row[key] is not None and not math.isfinite(row[key]):
            row[key] = None
    if row["effect"] is not None:
        row["effect"] = round(row["effect"], 6)


def correct(rows: list[dict[str, Any]], fdr: float) -> None:
    """Benjamini-Hochberg over every tested row (of all tables): sets `p_adjusted` and
    `drifted` (adjusted p at most `fdr`)."""
    tested = [r for r in rows if r.get("p_value") is not None]
    m = len(tested)
    if not m:
        return
    order = sorted(range(m), key=lambda i: tested[i]["p_value"])
    adjusted = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):  # from the largest p down: the running minimum
        i = order[rank - 1]
        running = min(running, tested[i]["p_value"] * m / rank)
        adjusted[i] = running
    for row, p in zip(tested, adjusted, strict=True):
        row["p_adjusted"] = float(f"{p:.6g}")
        row["drifted"] = p <= fdr


def label_balance(base: Table, cand: Table, target: str) -> dict[str, Any] | None:
    """Each class's share of the rows at both revisions (over every row while the column has
    at most `table_profile.MAX_TRACKED` classes, else on the sample), and the largest change."""
    if target not in base.columns and target not in cand.columns:
        return None
    shares = {"baseline": _shares(base, target), "candidate": _shares(cand, target)}
    classes = sorted(
        set(shares["baseline"]) | set(shares["candidate"]),
        key=lambda c: -max(shares["baseline"].get(c, 0.0), shares["candidate"].get(c, 0.0)),
    )
    rows = [
        {
            "class": clean(c),
            "baseline": round(shares["baseline"].get(c, 0.0), 6),
            "candidate": round(shares["candidate"].get(c, 0.0), 6),
        }
        for c in classes
    ]
    shift = max((abs(r["candidate"] - r["baseline"]) for r in rows), default=0.0)
    return {
        "column": clean(target),
        "classes": rows[:SHOWN_CLASSES],
        "more_classes": max(len(rows) - SHOWN_CLASSES, 0),
        "max_shift": round(shift, 6),
    }


def _shares(table: Table, target: str) -> dict[str, float]:
    column = table.columns.get(target)
    if column is None or not table.rows:
        return {}
    if column.counts is not None:
        shares = {k: v / table.rows for k, v in column.counts.items()}
        if column.missing:
            shares["(missing)"] = column.missing / table.rows
        return shares
    values = table.frame[target]
    counts = values.astype(str).where(values.notna(), "(missing)")
    return {str(k): float(v) for k, v in counts.value_counts(normalize=True).items()}
