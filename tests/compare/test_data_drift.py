"""The data section's statistics on generated tables with known changes: row loss, a dtype
change, a new category, a small mean shift at 50k rows, and no change at all.

The simulations are seeded and kept small (vectorised generation, two-sample tests only), so
they run in the suite on two cores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_ci.compare import drift
from mlops_ci.compare.drift import correct
from mlops_ci.compare.tabular import table_from_frame
from mlops_ci.project.data_settings import DataSettings

DEFAULT_FDR = DataSettings().fdr

TRIALS = 200


def column_rows(base: pd.DataFrame, cand: pd.DataFrame, key: str | None) -> list[dict]:
    return drift.column_rows(table_from_frame(base), table_from_frame(cand), key)


def label_balance(base: pd.DataFrame, cand: pd.DataFrame, target: str) -> dict | None:
    return drift.label_balance(table_from_frame(base), table_from_frame(cand), target)


def frame(rng: np.random.Generator, n: int, columns: int = 20) -> pd.DataFrame:
    """Half numeric (normal), half categorical (five unequal categories) columns."""
    data: dict[str, object] = {}
    for i in range(columns):
        if i % 2 == 0:
            data[f"num{i}"] = rng.normal(size=n)
        else:
            data[f"cat{i}"] = rng.choice(
                np.array(list("abcde")), size=n, p=[0.4, 0.3, 0.15, 0.1, 0.05]
            )
    return pd.DataFrame(data)


def flagged(base: pd.DataFrame, cand: pd.DataFrame, key: str | None = None) -> list[str]:
    rows = column_rows(base, cand, key)
    correct(rows, DEFAULT_FDR)
    return [r["name"] for r in rows if r["drifted"]]


@pytest.mark.slow
def test_no_change_is_flagged_in_at_most_5_percent_of_trials_with_20_columns():
    rng = np.random.default_rng(20260101)
    false_alarms = 0
    for _ in range(TRIALS):
        base, cand = frame(rng, 1_000), frame(rng, 1_000)  # the same distribution twice
        false_alarms += bool(flagged(base, cand))
    assert false_alarms / TRIALS <= 0.05, f"{false_alarms} of {TRIALS} no-change trials flagged"


@pytest.mark.slow
def test_a_mean_shift_of_a_fifth_of_a_standard_deviation_at_50k_rows_is_detected():
    """Detected = the column's p-value survives the correction even as one of 20 columns with
    19 true nulls beside it: BH then multiplies it by at most 20 (`p * 20 <= fdr`), a bound
    every BH outcome with that column in it meets."""
    rng = np.random.default_rng(20260102)
    n, detected = 50_000, 0
    for _ in range(TRIALS):
        base = pd.DataFrame({"x": rng.normal(size=n)})
        cand = pd.DataFrame({"x": rng.normal(loc=0.2, size=n)})
        (row,) = column_rows(base, cand, None)
        detected += row["p_value"] * 20 <= DEFAULT_FDR
        assert row["test"] == "ks" and 0 < row["effect"] < 0.2
    assert detected / TRIALS >= 0.95, f"only {detected} of {TRIALS} shifts detected"


def test_the_shifted_column_is_the_one_flagged_among_twenty():
    rng = np.random.default_rng(7)
    base, cand = frame(rng, 50_000), frame(rng, 50_000)
    cand["num4"] = cand["num4"] + 0.2
    assert flagged(base, cand) == ["num4"]


def test_a_new_category_is_named_and_flagged():
    rng = np.random.default_rng(3)
    base = pd.DataFrame({"colour": rng.choice(["red", "blue"], size=5_000)})
    cand = pd.DataFrame({"colour": rng.choice(["red", "blue", "green"], size=5_000)})
    rows = column_rows(base, cand, None)
    correct(rows, DEFAULT_FDR)
    (row,) = rows
    assert row["new_categories"] == ["green"]
    assert row["test"] == "chi2" and row["drifted"] and 0.3 < row["effect"] < 0.6


def test_a_dtype_change_and_schema_changes_are_reported():
    base = pd.DataFrame({"id": [1, 2, 3], "age": [30, 40, 50], "old": [1.0, 2.0, 3.0]})
    cand = pd.DataFrame({"id": [1, 2, 3], "age": ["30", "forty", "50"], "new": ["a", "b", "c"]})
    rows = {r["name"]: r for r in column_rows(base, cand, "id")}
    assert rows["age"]["change"] == "dtype"
    assert (rows["age"]["baseline_dtype"], rows["age"]["candidate_dtype"]) == (
        "int64",
        str(cand["age"].dtype),
    )
    # a column of mostly numbers is tested on its numbers, and says how much is not one
    assert rows["age"]["test"] == "ks" and rows["age"]["candidate_non_numeric"] == 0.333333
    assert "tested on its numbers; not numbers: 0.00% → 33.33%" in rows["age"]["note"]
    assert rows["old"]["change"] == "removed" and rows["new"]["change"] == "added"
    assert rows["id"]["note"] == "key column: not tested"


def test_missing_rates_and_label_balance():
    base = pd.DataFrame({"x": [1.0, None, 3.0, 4.0], "y": [0, 0, 1, 1]})
    cand = pd.DataFrame({"x": [None, None, 3.0, 4.0], "y": [0, 1, 1, 1]})
    rows = {r["name"]: r for r in column_rows(base, cand, None)}
    assert (rows["x"]["baseline_missing"], rows["x"]["candidate_missing"]) == (0.25, 0.5)
    balance = label_balance(base, cand, "y")
    assert balance is not None and balance["max_shift"] == pytest.approx(0.25)
    assert {c["class"]: (c["baseline"], c["candidate"]) for c in balance["classes"]} == {
        "0": (0.5, 0.25),
        "1": (0.5, 0.75),
    }


def test_benjamini_hochberg_matches_the_textbook_example():
    # Benjamini & Hochberg (1995), the 15 p-values of their example: 4 rejected at 0.05.
    ps = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240,
          0.4262, 0.5719, 0.6528, 0.7590, 1.0]  # fmt: skip
    rows = [{"p_value": p} for p in ps]
    correct(rows, 0.05)
    assert [r["drifted"] for r in rows] == [True] * 4 + [False] * 11
    assert rows[3]["p_adjusted"] == pytest.approx(0.0095 * 15 / 4, rel=1e-5)


def test_the_closed_form_p_values_equal_scipys():
    from scipy.special import chdtrc, kolmogorov

    from mlops_ci.compare.drift import chi2_sf, kolmogorov_sf

    for x in [*np.linspace(0.01, 4, 200), 0.999, 1.0, 1.001, 12.0]:
        assert kolmogorov_sf(float(x)) == pytest.approx(float(kolmogorov(x)), abs=1e-13)
    for df in [*range(1, 25), 99, 199]:
        for x in [*np.linspace(0.01, 3 * df + 30, 40), 1500.0]:
            expected = float(chdtrc(df, x))
            assert chi2_sf(float(x), df) == pytest.approx(expected, rel=1e-10, abs=1e-300)


KS_SIZES = [(1, 1), (2, 3), (5, 7), (10, 10), (3, 200), (143, 143), (100, 150), (700, 701),
            (999, 999), (500, 2000), (999, 10_000)]  # fmt: skip


@pytest.mark.parametrize(("n", "m"), KS_SIZES)
def test_the_exact_ks_p_value_and_statistic_equal_scipys(n: int, m: int):
    import warnings

    from scipy.stats import ks_2samp

    rng = np.random.default_rng(n * 10_007 + m)
    for shift in (0.0, 0.1, 0.5, 2.0):
        for decimals in (None, 1):  # continuous, and rounded to ties within and across sides
            a, b = rng.normal(size=n), rng.normal(shift, size=m)
            if decimals is not None:
                a, b = a.round(decimals), b.round(decimals)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy's note that ties make it conservative
                expected = ks_2samp(a, b, method="exact")
            d, p = drift._ks(a, b)
            assert d == pytest.approx(expected.statistic, abs=1e-14)
            assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-11), (shift, decimals)


def test_the_ks_statistic_equals_scipys_on_large_samples_with_ties():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(7)
    for a, b in [
        (rng.normal(size=50_000).round(3), rng.normal(0.05, size=40_000).round(3)),
        (rng.integers(0, 50, 20_000).astype(float), rng.integers(0, 51, 30_000).astype(float)),
    ]:
        d, p = drift._ks(a, b)
        assert d == ks_2samp(a, b).statistic
        assert p == pytest.approx(
            drift.kolmogorov_sf((len(a) * len(b) / (len(a) + len(b))) ** 0.5 * d)
        )


def test_testing_a_changed_small_table_does_not_load_scipy():
    import subprocess
    import sys

    script = (
        "import sys, pandas as pd\n"
        "from mlops_ci.compare import drift\n"
        "from mlops_ci.compare.tabular import table_from_frame\n"
        "base = table_from_frame(pd.DataFrame({'p': [0.1, 0.4, 0.35, 0.8] * 30}))\n"
        "cand = table_from_frame(pd.DataFrame({'p': [0.2, 0.5, 0.3, 0.9] * 30}))\n"
        "(row,) = drift.column_rows(base, cand, None)\n"
        "assert row['test'] == 'ks' and row['p_value'] is not None\n"
        "print('scipy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
