"""Confusion plots count two columns of a predictions table without building a dict per row:
the counts equal what the row-dict reading gave (csv.DictReader, as DVC's CSV loader reads),
by the csv module for small files and by pandas for large ones."""

from __future__ import annotations

import random

import pytest

from mlops_ci.compare.plot_data import _confusion, confusion_counts, plot_table

CASES = {
    "plain.csv": "id,y_true,y_pred\na,1,1\nb,0,1\nc,1,0\nd,1,1\n",
    "labels.csv": 'y_true,y_pred,score\ncat,dog,0.2\n"cat, big",cat,0.9\ndog,dog,0.1\n',
    "blank lines.csv": "y_true,y_pred\n\n1,1\n\n0,0\n1,0\n",
    "spaces.csv": "y_true,y_pred\n 1,1\n1 ,1\n",
    "tabs.tsv": "y_true\ty_pred\n1\t0\n0\t0\n1\t0\n",
    "empty cells.csv": "y_true,y_pred\n1,\n,0\n1,\n",
}


def row_dicts(path: str, raw: bytes) -> list[dict]:
    return _confusion(plot_table(path, raw, {}), "y_true", "y_pred")


@pytest.mark.parametrize("name", sorted(CASES))
def test_counts_equal_the_row_dict_reading_both_ways(name: str) -> None:
    raw = CASES[name].encode()
    want = row_dicts(name, raw)
    assert want, name
    assert confusion_counts(name, raw, "y_true", "y_pred", pandas_from=1 << 40) == want
    assert confusion_counts(name, raw, "y_true", "y_pred", pandas_from=0) == want


def test_a_short_row_counts_as_none_like_the_row_dicts() -> None:
    raw = b"y_true,y_pred\n1,1\n0\n"
    assert confusion_counts("p.csv", raw, "y_true", "y_pred", pandas_from=1 << 40) == row_dicts(
        "p.csv", raw
    )


def test_generated_tables_count_alike() -> None:
    rng = random.Random(3)
    labels = ["0", "1", "2", "a", "b c", '"q"']
    for _ in range(40):
        lines = ["id,y_true,y_pred"]
        for i in range(rng.randint(1, 300)):
            cells = [rng.choice(labels) for _ in range(2)]
            quoted = [f'"{c.replace(chr(34), chr(34) * 2)}"' if ('"' in c or " " in c) else c
                      for c in cells]  # fmt: skip
            lines.append(f"r{i},{quoted[0]},{quoted[1]}")
        raw = ("\n".join(lines) + "\n").encode()
        want = row_dicts("p.csv", raw)
        assert confusion_counts("p.csv", raw, "y_true", "y_pred", pandas_from=1 << 40) == want
        assert confusion_counts("p.csv", raw, "y_true", "y_pred", pandas_from=0) == want


def test_a_missing_column_counts_as_the_row_dicts_do() -> None:
    raw = b"y_true,other\n1,1\n0,0\n"
    want = row_dicts("p.csv", raw)  # every predicted value is "None"
    assert confusion_counts("p.csv", raw, "y_true", "y_pred", pandas_from=1 << 40) == want
    assert confusion_counts("p.csv", raw, "y_true", "y_pred", pandas_from=0) == want
