"""Read a run directory that came from an untrusted job (a fork's pull_request run).

The trusted `workflow_run` half of the fork-safe flow downloads the run directory the untrusted
job uploaded. Everything in it is attacker-controlled, so this module:

- reads only the documents it knows, by name, as regular files (no symlinks out of the directory);
- refuses a document over its size limit before reading it (a 10 MB body never reaches the parser);
- parses strictly (no NaN/Infinity, no duplicate keys, bounded nesting) and validates against the
  JSON Schemas in `mlops_ci/project/schemas/`, whose string and array limits keep the report renderable;
- ignores everything else, including `report.md`: the report is rendered anew from the validated
  JSON, so markdown or HTML the untrusted side wrote is never posted as is;
- executes nothing: no file from the directory is imported, run, or handed to DVC or git.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from mlops_ci.ci.documents import loads_strict
from mlops_ci.ci.untrusted.inventory import entry_point
from mlops_ci.project.errors import MlopsCiError
from mlops_ci.project.settings import SCHEMAS

KIB = 1024
MIB = 1024 * KIB

# Per-document byte limits. comparison.json is the big one: 50 plots x 2 revisions x 200 points.
DOCUMENTS: dict[str, tuple[str, int, bool]] = {
    # name: (kind, max bytes, required)
    "comparison.json": ("comparison", 4 * MIB, True),
    "verdict.json": ("verdict", 1 * MIB, False),
    "train.json": ("train", 1 * MIB, False),
    "ci.json": ("ci", 64 * KIB, False),
}
MAX_DEPTH = 32


class UntrustedInputRejected(MlopsCiError):
    """A document from an untrusted run directory is missing, too large or schema-invalid."""


@dataclass
class ValidatedRun:
    """Documents that passed validation; `ignored` lists files that were present but not read."""

    comparison: dict[str, Any]
    verdict: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    ci: dict[str, Any] | None = None
    ignored: list[str] = field(default_factory=list)


@cache
def load_schema(kind: str) -> dict[str, Any]:
    path = SCHEMAS.joinpath(f"{kind}.schema.json")
    text = path.read_text("utf-8")
    return json.loads(text)


def validate_document(kind: str, data: Any, source: str = "document") -> dict[str, Any]:
    """Check `data` against the schema of `kind`; raise with the first few problems."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema(kind))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:5]:
            where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            lines.append(f"  at {where}: {_short(err.message)}")
        more = f"\n  ... and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise UntrustedInputRejected(
            f"{source} does not match the {kind} schema (schema_version 1):\n"
            + "\n".join(lines)
            + more
            + f"\nRegenerate it with the same mlops-ci version (`mlops-ci {kind}`) and upload "
            "the run directory unchanged."
        )
    return data


def _short(message: str, limit: int = 200) -> str:
    # jsonschema quotes the offending value; an attacker's 4 MB string must not fill the log.
    return message if len(message) <= limit else message[:limit] + "…"


@entry_point("a document of an untrusted run directory")
def read_document(path: Path, kind: str, max_bytes: int) -> dict[str, Any]:
    """Size-check, strictly parse and validate one untrusted document."""
    try:
        info = os.lstat(path)
    except FileNotFoundError as exc:
        raise UntrustedInputRejected(f"{path} is missing from the run directory") from exc
    if not stat.S_ISREG(info.st_mode):
        raise UntrustedInputRejected(
            f"{path} is not a regular file (symlinks and devices are refused in an untrusted "
            "run directory)"
        )
    if info.st_size > max_bytes:
        raise UntrustedInputRejected(
            f"{path} is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit for "
            f"{path.name}; it was not read. Keep documents within the limits in docs/documents.md"
        )
    # O_NOFOLLOW closes the race between lstat and open; read one byte past the limit in case
    # the file grew meanwhile.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise UntrustedInputRejected(f"{path} grew past the {max_bytes:,}-byte limit while read")
    try:
        data = loads_strict(raw, MAX_DEPTH)
    except ValueError as exc:  # UnicodeDecodeError is one
        if "nests deeper" in str(exc):
            raise UntrustedInputRejected(f"{path} {exc}") from exc
        raise UntrustedInputRejected(f"{path} is not valid JSON: {_short(str(exc))}") from exc
    return validate_document(kind, data, source=str(path))


@entry_point("an untrusted run directory as a whole")
def load_untrusted_run_dir(run_dir: Path) -> ValidatedRun:
    """Validate the documents of a downloaded run directory; the only way publish reads it."""
    try:
        info = os.lstat(run_dir)
    except FileNotFoundError as exc:
        raise UntrustedInputRejected(
            f"run directory {run_dir} does not exist; download the artifact of the pull "
            "request run there first"
        ) from exc
    if not stat.S_ISDIR(info.st_mode):
        raise UntrustedInputRejected(f"{run_dir} is not a directory (symlinks are refused)")
    docs: dict[str, dict[str, Any] | None] = {}
    for name, (kind, max_bytes, required) in DOCUMENTS.items():
        path = run_dir / name
        if not required and not os.path.lexists(path):
            docs[kind] = None
            continue
        docs[kind] = read_document(path, kind, max_bytes)
    ignored = sorted(p.name for p in run_dir.iterdir() if p.name not in DOCUMENTS)
    comparison = docs["comparison"]
    assert comparison is not None  # required above
    return ValidatedRun(
        comparison=comparison,
        verdict=docs["verdict"],
        train=docs["train"],
        ci=docs["ci"],
        ignored=ignored,
    )
