"""Run-directory documents: the JSON that crosses process and trust boundaries (docs/documents.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from mlops_ci import __version__
from mlops_ci.errors import ConfigError

SCHEMA_VERSION = 1


def now() -> str:
    """The current UTC time as the documents write it (ISO 8601, whole seconds)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def header(kind: str) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "kind": kind, "tool_version": __version__}


def write(run_dir: Path, name: str, data: dict[str, Any]) -> Path:
    """Write atomically, so a reader never sees half a document."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / name
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=f".{name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str, allow_nan=False)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def write_text(run_dir: Path, name: str, text: str) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / name
    path.write_text(text, encoding="utf-8")
    return path


# The command that writes each kind: what an error about a missing or stale document suggests.
WRITER = {
    "train": "train",
    "comparison": "compare",
    "verdict": "gate",
    "leaderboard": "sweep collect",
}
REPORT_FILE = "report.md"  # the full report; its name is what jobs, summaries and outputs point at


def check(
    data: Any, kind: str, source: str, error: type[Exception] = ConfigError
) -> dict[str, Any]:
    """`data` as a document of `kind` at this schema version, else `error` saying what to rerun."""
    command = f"`mlops-ci {WRITER.get(kind, kind)}`"
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise error(f"{source} is not a {kind} document (kind: {found!r}); run {command} first")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise error(
            f"{source} has schema_version {data.get('schema_version')!r}; this mlops-ci reads "
            f"version {SCHEMA_VERSION}: rerun {command} with this version"
        )
    return data


def read(run_dir: Path, name: str, *, kind: str | None = None, required: bool = True) -> Any:
    """Read a document, checking its kind and schema version; None when absent and optional."""
    path = run_dir / name
    if not path.exists():
        if not required:
            return None
        hint = f"run `mlops-ci {WRITER.get(kind, kind)}` first" if kind else "check --run-dir"
        raise ConfigError(f"{path} does not exist; {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if kind:
        return check(data, kind, str(path))
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(
            f"{path} is not a document of this mlops-ci (schema_version {SCHEMA_VERSION})"
        )
    return data
