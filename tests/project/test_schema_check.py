"""The fast schema check never says "conforms" where jsonschema says otherwise, and agrees with
it on valid documents, over the settings schema and thousands of generated documents (valid
ones, and each mutated in one place)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from mlops_ci.project.schema_check import conforms
from mlops_ci.project.settings import settings_schema

ROOT = Path(__file__).resolve().parents[2]
SCALARS: list[Any] = [None, True, False, 0, 1, -1, 0.5, 0.95, 1.5, 1e9, -3.2, "", " ", "x", "a/b",
                      "-bad", "staging", "fail", "higher", "minor", "predictions", [], {}, [1],
                      {"a": 1}, dt.date(2026, 1, 1), 1.0, 100, 256, 257]  # fmt: skip


def valid_documents() -> list[dict[str, Any]]:
    docs = [yaml.safe_load((ROOT / "mlops-ci.yaml").read_text()), {}]
    docs.append(
        {
            "artifact": "churn-model",
            "confidence": 0.9,
            "bootstrap_resamples": 2000,
            "metrics": {
                "accuracy": {"min": 0.8, "max_drop": 0.01, "significant": True},
                "eval/m.json:loss": {"direction": "lower", "max_drop_pct": 5},
                "default": {"max_drop_pct": 2},
                "latency_ms": None,
            },
            "on_missing_metric": "neutral",
            "promote": {"stages": ["staging", "prod"], "auto": "staging", "bump": "patch"},
            "deploy": {"target": "s3://b/p", "verify": "checksums"},
            "remote": {"url": "s3://b/dvc", "endpoint_url": "http://127.0.0.1:9000"},
            "sweep": {
                "grid": {"train.C": [0.1, 1]},
                "candidates": [{"train.C": 3}],
                "max_candidates": 10,
            },
            "slices": ["group"],
        }
    )
    return docs


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += paths(value, (*prefix, i))
    return found


def mutate(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    where = rng.choice(paths(doc))
    if not where:
        return rng.choice(SCALARS)
    parent = doc
    for part in where[:-1]:
        parent = parent[part]
    action = rng.random()
    if action < 0.6:
        parent[where[-1]] = copy.deepcopy(rng.choice(SCALARS))
    elif action < 0.8 and isinstance(parent, dict):
        parent[rng.choice(["typo", "max_dorp", "stage", "Artifact"])] = 1
    elif isinstance(parent, dict):
        parent.pop(where[-1])
    else:
        parent.append(copy.deepcopy(rng.choice(SCALARS)))
    return doc


def test_the_fast_check_agrees_with_jsonschema() -> None:
    schema = settings_schema()
    validator = Draft202012Validator(schema)
    rng = random.Random(5)
    counts = {"both valid": 0, "both invalid": 0, "deferred": 0}
    for base in valid_documents():
        assert validator.is_valid(base) and conforms(base, schema), base
        for _ in range(1500):
            doc = mutate(base, rng)
            for _ in range(rng.randint(0, 2)):
                doc = mutate(doc, rng) if isinstance(doc, dict) else doc
            fast, full = conforms(doc, schema), validator.is_valid(doc)
            assert not (fast and not full), json.dumps(doc, default=str)  # never a false yes
            if fast:
                counts["both valid"] += 1
            elif full:
                counts["deferred"] += 1  # allowed, only slower; must not happen here
            else:
                counts["both invalid"] += 1
    assert counts["deferred"] == 0, counts
    assert counts["both valid"] > 300 and counts["both invalid"] > 1000, counts


def test_unknown_keywords_and_remote_refs_are_left_to_jsonschema() -> None:
    assert not conforms(1, {"multipleOf": 2})
    assert not conforms(1, {"$ref": "https://example.invalid/s.json#/x"})
    assert conforms({"a": 1}, {"type": "object", "properties": {"a": {"type": "integer"}}})
    assert not conforms(True, {"enum": [1]}) and conforms(1.0, {"enum": [1]})
