"""Docs that cannot drift: every action input and output is documented in docs/actions.md, in
the section of its action, with its default; and nothing is documented that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
ACTIONS = sorted(ROOT.glob("actions/*/action.yml"))
DOCS = ROOT / "docs" / "actions.md"


def sections() -> dict[str, str]:
    """`## \\`name\\`` heading → the text up to the next `## `."""
    parts = re.split(r"^## ", DOCS.read_text(), flags=re.M)
    found = {}
    for part in parts:
        match = re.match(r"`([a-z-]+)`\n", part)
        if match:
            found[match.group(1)] = part
    return found


def table_names(text: str, heading: str) -> dict[str, str]:
    """First-column names of the table under `### heading` → the rest of the row."""
    block = text.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|(.*)$", block, flags=re.M)
    return dict(rows)


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: p.parent.name)
def test_every_input_and_output_is_documented(path: Path):
    action = yaml.safe_load(path.read_text())
    name = path.parent.name
    docs = sections()
    assert name in docs, f"docs/actions.md has no section ## `{name}`"
    text = docs[name]
    inputs = table_names(text, "Inputs")
    outputs = table_names(text, "Outputs")
    declared_inputs = action.get("inputs") or {}
    declared_outputs = action.get("outputs") or {}
    missing = sorted(set(declared_inputs) - set(inputs))
    assert not missing, f"{name}: inputs not documented in docs/actions.md: {missing}"
    missing = sorted(set(declared_outputs) - set(outputs))
    assert not missing, f"{name}: outputs not documented in docs/actions.md: {missing}"
    extra = sorted((set(inputs) - set(declared_inputs)) | (set(outputs) - set(declared_outputs)))
    assert not extra, f"{name}: documented but not in action.yml: {extra}"
    for key, spec in declared_inputs.items():
        default = str(spec.get("default", ""))
        shown = f"`{default}`" if default else "(empty)"
        assert inputs[key].strip().startswith(shown), f"{name}.{key}: default should read {shown}"
    for heading in ("Permissions", "Example"):
        assert f"### {heading}\n" in text, f"{name}: no {heading} section"
    assert f"actions/{name}@" in text.split("### Example\n", 1)[1], f"{name}: example missing"


def test_every_workflow_is_listed():
    text = DOCS.read_text()
    for path in (ROOT / ".github" / "workflows").glob("*.yml"):
        assert f"`{path.name}`" in text, f"{path.name} is not described in docs/actions.md"
