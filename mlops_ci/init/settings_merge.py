"""Merge what `mlops-ci init` would write into an existing `mlops-ci.yaml`, keeping the user's.

Round-trips the user's file through ruamel.yaml (comments, order, flow style and quotes kept)
and adds only the keys it lacks, one level deep for the sections whose entries are
independent (`metrics`, `promote`, `deploy`, ...). A key the user set is never changed,
except by an explicit command-line choice (`init --model PATH`). The `# now 0.93` comments
init writes beside metrics are never compared: a file that lacks nothing is left as it is.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Sections whose entries are merged one by one; any other key is kept or added whole.
NESTED = ("metrics", "promote", "deploy")


@dataclass
class Merged:
    text: str
    kept: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    set: list[str] = field(default_factory=list)  # changed by an explicit option

    @property
    def changed(self) -> bool:
        return bool(self.added or self.set)


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap the user's long lines
    return yaml


def merge_settings(existing: str, planned: str, explicit: Mapping[str, str]) -> Merged:
    """`existing` with what `planned` has and it lacks; `explicit` keys set whatever it says.

    Raises ValueError when `existing` is not a YAML mapping (the caller says what to fix).
    """
    yaml = _yaml()
    user = yaml.load(existing) if existing.strip() else None
    if user is None:
        return Merged(planned, added=list(yaml.load(planned)))
    if not isinstance(user, dict):
        raise ValueError("it is not a mapping of settings")
    plan = yaml.load(planned)
    merged = Merged(existing)
    for key, value in plan.items():
        if key not in user:
            _append(user, plan, key)
            merged.added.append(key)
        elif key in NESTED and isinstance(user[key], dict) and isinstance(value, dict):
            for sub in value:
                if sub in user[key]:
                    merged.kept.append(f"{key}.{sub}")
                else:
                    _append(user[key], value, sub)
                    merged.added.append(f"{key}.{sub}")
        else:
            merged.kept.append(key)
    for key, value in explicit.items():
        if user.get(key) != value:
            user[key] = value
            merged.set.append(key)
            merged.kept = [k for k in merged.kept if k != key]
            merged.added = [k for k in merged.added if k != key]
    if merged.changed:
        out = io.StringIO()
        yaml.dump(user, out)
        merged.text = out.getvalue()
    return merged


def _append(into: Any, source: Any, key: str) -> None:
    """Add `source[key]` at the end of `into`, with the comment on its line."""
    into[key] = source[key]
    comment = source.ca.items.get(key)
    if comment and len(comment) > 2 and comment[2] is not None:
        # Only the end-of-line comment: what follows it belongs to the next key of `source`.
        token = comment[2]
        text = token.value.split("\n", 1)[0]
        into.yaml_add_eol_comment(text.lstrip("# ").rstrip(), key)
