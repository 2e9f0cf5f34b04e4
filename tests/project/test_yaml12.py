"""The plain-document YAML 1.2 reader (mlops_ci/project/yaml12.py) against ruamel, DVC's own
parser: every document it is sure of reads to exactly what ruamel's safe loader gives (types
too: `True` is not `1`), and what it is not sure of goes to ruamel."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from ruamel.yaml import YAML

from mlops_ci.project import yaml12
from mlops_ci.project.dvcfile import parse_structured

SCALARS = [
    "1", "-1", "+1", "007", "0", "-0", "12345678901234567890", "1.5", "-1.5", "+1.5", "1.", ".5",
    "1e3", "1e-3", "1E3", "1.0e3", "1.0e-3", "1.0E+3", "-1e-3", "2.5e+10", "1_000", "0x1F",
    "0o17", "0b101", "1_0.5", "1e", "1e+", "3.0e", "-.5", "+.5e2", ".5e+2", ".5E-2", "1.e2", "+1.e-2", "00.5", "01e2",
    ".inf", "-.inf", "+.inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", "-.nan", "nan", "inf", "NaN",
    "true", "True", "TRUE", "false", "False", "FALSE", "tRUE", "yes", "no", "on", "off", "y", "n",
    "Yes", "NO", "Off", "null", "Null", "NULL", "nULL", "~", "None",
    "2024-01-01", "2024-01-01 10:00:00", "12:30", "1:20", "hello", "hello world", "a.b", "a/b",
    "a-b", "_x", "x_1", "1a", "a1", "-a", ".a", "1.2.3", "0.1.2", "v1.0", "e3", "E3",
    "adam", "relu", "sklearn.linear_model.LogisticRegression", "data/prepared/train.csv",
    "'quoted 1'", '"double 2"', "'yes'", '"1e3"', "''", '""', "[1, 2.5, x]", "{a: 1, b: no}",
    "[]", "{}", "| \n  block\n  text", "> \n  folded\n  text", "ünïcode", "日本", "a b  c",
]  # fmt: skip
KEYS = ["lr", "seed", "C", "1", "true", "yes", "null", "1.5", "model", "a b", "x-y", "_k"]


def ruamel_load(text: str) -> tuple[bool, Any]:
    try:
        return True, YAML(typ="safe", pure=True).load(text)
    except Exception:  # ruamel refuses it: so must we (by not being sure)
        return False, None


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, NaN equal to NaN, mapping order included."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def check(text: str) -> bool:
    """Whether yaml12 was sure; when it was, it must agree with ruamel."""
    sure, ours = yaml12.load(text)
    if sure:
        ok, theirs = ruamel_load(text)
        assert ok, f"ruamel refuses what yaml12 read:\n{text}"
        assert same(ours, theirs), f"{text!r}: yaml12 {ours!r} != ruamel {theirs!r}"
    return sure


@pytest.mark.parametrize("scalar", SCALARS)
def test_each_scalar_reads_as_ruamel_reads_it(scalar: str) -> None:
    check(f"value: {scalar}\n")
    check(f"- {scalar}\n")
    if "\n" not in scalar:
        check(f"{scalar}: 1\n")


def test_generated_params_files_read_as_ruamel_reads_them() -> None:
    rng = random.Random(20261130)
    sure = 0
    trials = 1500

    def value(depth: int) -> str:
        kind = rng.random()
        if depth < 3 and kind < 0.15:
            keys = rng.sample(KEYS, rng.randint(1, 4))
            pad = "  " * (depth + 1)
            return "\n" + "".join(f"{pad}{k}: {value(depth + 1)}\n" for k in keys).rstrip("\n")
        if depth < 3 and kind < 0.25:
            pad = "  " * (depth + 1)
            items = [rng.choice(SCALARS[:60]) for _ in range(rng.randint(1, 3))]
            return "\n" + "".join(f"{pad}- {item}\n" for item in items).rstrip("\n")
        return rng.choice([s for s in SCALARS if "\n" not in s])

    for _ in range(trials):
        keys = rng.sample(KEYS, rng.randint(1, 6))
        text = "".join(f"{k}: {value(0)}\n" for k in keys)
        if rng.random() < 0.2:
            text = "# params\n" + text.replace("\n", "  # note\n", 1)
        sure += check(text)
    assert sure > trials // 3  # the subset is the common case, not a rarity


def test_what_leaves_the_subset_goes_to_ruamel() -> None:
    for text in [
        "a: &x 1\nb: *x\n", "base: {a: 1}\nc:\n  <<: {a: 1}\n", "a: !!str 1\n", "%YAML 1.2\n---\na: 1\n",
        'a: "tab\\tx"\n', "a:\n\t- 1\n", "a: 1\na: 2\n", "? [1, 2]\n: x\n", "a: 1\n---\nb: 2\n",
        "d: 2024-01-01\n", "h: 0x1F\n", "u: 1_000\n", "a: [1, 2\n", "a: 50%\n", "p: '*.csv'\n",
    ]:  # fmt: skip
        assert yaml12.load(text) == (False, None), text


def test_a_params_file_reads_the_same_through_compare_either_way() -> None:
    text = (
        "prepare:\n  test_size: 0.2\n  seed: 42\ntrain:\n  model: logistic_regression\n"
        "  logistic_regression:\n    C: 1.0\n    max_iter: 1000\n  lr: 1e-3\n  early: yes\n"
        "  layers: [64, 32]\n  dropout: .5\n  tags: ~\n  use_gpu: false\n"
    )
    assert yaml12.load(text)[0]  # the plain case never loads ruamel
    assert same(parse_structured("params.yaml", text.encode()), ruamel_load(text)[1])
