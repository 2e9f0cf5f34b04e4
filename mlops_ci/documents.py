"""Run-directory documents: the JSON that crosses process and trust boundaries (docs/documents.md)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from mlops_ci import __version__
from mlops_ci.errors import ConfigError

SCHEMA_VERSION = 1


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


def read(run_dir: Path, name: str, *, kind: str | None = None, required: bool = True) -> Any:
    """Read a document, checking its kind and schema version; None when absent and optional."""
    path = run_dir / name
    if not path.exists():
        if not required:
            return None
        command = {"comparison": "compare", "verdict": "gate"}.get(kind or "", kind)
        hint = f"run `mlops-ci {command}` first" if command else "check --run-dir"
        raise ConfigError(f"{path} does not exist; {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    if kind and data.get("kind") != kind:
        raise ConfigError(f"{path} is not a {kind} document (kind: {data.get('kind')!r})")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(
            f"{path} has schema_version {data.get('schema_version')!r}; this mlops-ci "
            f"reads version {SCHEMA_VERSION}: rerun the command that wrote it with this version"
        )
    return data
