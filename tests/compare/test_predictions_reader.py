"""The predictions reader: small CSVs through the csv module, large ones through pandas, and
both must read the same table. Each case is read both ways and compared cell by cell, then
through `load_predictions` (what compare uses), so a divergence shows as a failing case."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from mlops_ci.compare.predictions import (
    InvalidPredictions,
    load_predictions,
    read_csv_columns,
)

SMALL, LARGE = 1 << 40, 0  # thresholds that force the csv-module path / the pandas path

CASES = {
    "plain": b"id,y_true,y_pred,y_score\na,1,1,0.9\nb,0,1,0.6\n",
    "spaces": b"id, y_true , y_pred\n a, 1, 0\n b, 0 ,0\n",
    "bom and crlf": "\ufeffid,y_true,y_pred\r\n1,1,1\r\n2,0,0\r\n".encode(),
    "quoted ids": b'id,y_true,y_pred\n"a,1",1,1\n"b ""x""",0,0\n',
    "leading zeros kept": b"id,y_true,y_pred\n007,1,1\n7,0,0\n",
    "na cells": b"id,y_true,y_pred,y_score\na,1,1,NA\nb,0,,0.2\nc,1,1,null\n",
    "missing id": b"id,y_true,y_pred\na,1,1\nNA,0,0\n",
    "booleans": b"id,y_true,y_pred\na,True,true\nb,False,FALSE\n",
    "text label": b"id,y_true,y_pred\na,cat,1\nb,dog,0\n",
    "short row": b"id,y_true,y_pred,y_score\na,1,1\nb,0,0,0.1\n",
    "blank lines": b"id,y_true,y_pred\n\na,1,1\n\nb,0,0\n\n",
    "exponents": b"id,y_true,y_pred\na,1e0,1.0\nb,-0.0,2E-3\n",
    "extra columns": b"id,feature,y_true,group,y_pred\na,3,1,x,1\nb,4,0,y,0\n",
    "header only": b"id,y_true,y_pred\n",
}


def _same(left: np.ndarray, right: np.ndarray) -> bool:
    if left.dtype.kind == "f" or right.dtype.kind == "f":
        return np.array_equal(left.astype(float), right.astype(float), equal_nan=True)
    return [None if v is None else str(v) for v in left] == [
        None if v is None else str(v) for v in right
    ]


def _outcome(raw: bytes) -> tuple[str, object]:
    try:
        preds = load_predictions(raw, source="p.csv")
    except InvalidPredictions as exc:
        return "error", str(exc).split(";")[0].split(" (")[0]
    score = None if preds.y_score is None else preds.y_score.tolist()
    return "ok", (preds.ids.tolist(), preds.y_true.tolist(), preds.y_pred.tolist(), score)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_csv_module_and_pandas_read_the_same_columns(name: str) -> None:
    raw = CASES[name]
    small_header, small = read_csv_columns(raw, pandas_from=SMALL)
    large_header, large = read_csv_columns(raw, pandas_from=LARGE)
    assert small_header == large_header
    assert small.keys() == large.keys()
    for column in small:
        assert _same(small[column], large[column]), (column, small[column], large[column])


def test_a_row_with_too_many_fields_is_refused_both_ways() -> None:
    raw = b"id,y_true,y_pred\na,1,1\nb,0,0,9\n"
    for threshold in (SMALL, LARGE):
        with pytest.raises(ValueError, match="Expected 3 fields"):
            read_csv_columns(raw, pandas_from=threshold)
    with pytest.raises(InvalidPredictions, match="cannot be read as a predictions table"):
        load_predictions(raw, source="p.csv")


def test_generated_tables_read_the_same_way_both_ways() -> None:
    rng = random.Random(7)
    for _ in range(60):
        rows = ["id,y_true,y_pred,y_score"]
        for i in range(rng.randint(1, 30)):
            score = rng.choice([f"{rng.random():.6g}", "", "nan", " 0.5", "1e-9"])
            label = rng.choice(["0", "1", "1.0", " 0", "NA"])
            rows.append(f"{rng.choice(['r', 'x', '0'])}{i},{label},{rng.randint(0, 1)},{score}")
        raw = ("\n".join(rows) + "\n").encode()
        header_a, a = read_csv_columns(raw, pandas_from=SMALL)
        header_b, b = read_csv_columns(raw, pandas_from=LARGE)
        assert header_a == header_b
        assert all(_same(a[c], b[c]) for c in a), raw


def test_validated_predictions_agree_on_every_case() -> None:
    """The errors and values compare sees are those pandas' reading gave before."""
    expected = {
        "plain": "ok",
        "missing id": "error",
        "na cells": "error",
        "text label": "error",
        "short row": "error",
        "header only": "error",
    }
    for name, raw in CASES.items():
        kind, _ = _outcome(raw)
        assert kind == expected.get(name, "ok"), name
    assert _outcome(CASES["leading zeros kept"])[1][0] == ["007", "7"]  # type: ignore[index]
    assert _outcome(CASES["booleans"])[1][1] == [1.0, 0.0]  # type: ignore[index]


def test_json_records_and_lines_are_read_from_bytes() -> None:
    records = [{"id": 1, "y_true": 1, "y_pred": 1, "y_score": 0.8}, {"id": "b", "y_true": 0,
               "y_pred": 0, "y_score": 0.1}]  # fmt: skip
    as_records = json.dumps(records).encode()
    as_lines = "\n".join(json.dumps(r) for r in records).encode()
    for raw in (as_records, as_lines):
        preds = load_predictions(raw, source="p.json")
        assert preds.ids.tolist() == ["1", "b"]
        assert preds.y_score is not None and preds.y_score.tolist() == [0.8, 0.1]
    with pytest.raises(InvalidPredictions, match="cannot be read"):
        load_predictions(b"[1, 2]", source="p.json")


def test_an_empty_file_says_so() -> None:
    for raw in (b"", b"\n\n"):
        with pytest.raises(InvalidPredictions, match="is empty"):
            load_predictions(raw, source="p.csv")


def test_two_large_files_are_read_at_once_with_the_same_answer() -> None:
    from mlops_ci.compare.predictions import PANDAS_FROM_BYTES, load_pair

    rows = "\n".join(f"r{i},{i % 2},{(i // 3) % 2},{(i % 97) / 97:.4f}" for i in range(140_000))
    raw = ("id,y_true,y_pred,y_score\n" + rows + "\n").encode()
    assert len(raw) >= PANDAS_FROM_BYTES  # the threaded path
    base, cand = load_pair(raw, raw, sources=("p.csv@baseline", "p.csv@candidate"))
    alone = load_predictions(raw, source="p.csv")
    for got in (base, cand):
        assert got.ids.tolist() == alone.ids.tolist()
        assert np.array_equal(got.y_score, alone.y_score)
    bad = raw.replace(b"r7,", b"r8,", 1)  # a duplicate id, in the candidate only
    with pytest.raises(InvalidPredictions, match=r"p.csv@candidate: 1 id\(s\) appear more"):
        load_pair(raw, bad, sources=("p.csv@baseline", "p.csv@candidate"))
